//! The store of admin standing: whether a credential holds an admin permission on a scope (the extension's
//! `plystra.admin_permission` / `plystra.api_key_permission`), and a user's highest active grant.

use deadpool_postgres::GenericClient;
use serde_json::Value;
use tokio_postgres::Error;

use crate::db;

/// Whose permission is asked: a session's user, or an API key.
pub enum Holder<'a> {
    User(&'a str),
    ApiKey(&'a str),
}

/// The extension's answer on `permission` at the scope (NULL Space and Group: the instance).
pub async fn permission(
    client: &impl GenericClient,
    holder: Holder<'_>,
    permission: &str,
    space_id: &Option<String>,
    group_id: &Option<String>,
) -> Result<Value, Error> {
    let (sql, id) = match holder {
        Holder::User(id) => (include_str!("standing/admin_permission.sql"), id),
        Holder::ApiKey(id) => (include_str!("standing/api_key_permission.sql"), id),
    };
    db::query_one_cached(client, sql, &[&id, &permission, space_id, group_id]).await?.try_get(0)
}

/// A user's highest active admin grant as a number (4 super admin, 3 instance, 2 Space, 1 Group, 0 none).
pub async fn user_rank(client: &impl GenericClient, user_id: &str) -> Result<i32, Error> {
    Ok(db::query_one_cached(client, include_str!("standing/user_rank.sql"), &[&user_id]).await?.get(0))
}
