//! The store of request scopes: the Space and Group of the row or resource a route's path names, for the
//! protection seam (which of them a route reads is the route table's `ScopeFrom`).

use deadpool_postgres::GenericClient;
use tokio_postgres::Error;

use crate::db;
use crate::protection::Row;

/// The Space and Group of a Row by id (`None`: no such row).
pub async fn of_row(
    client: &impl GenericClient,
    row: Row,
    id: &Option<String>,
) -> Result<Option<(Option<String>, Option<String>)>, Error> {
    let sql = match row {
        Row::Group => include_str!("scopes/group.sql"),
        Row::Member => include_str!("scopes/member.sql"),
        Row::UserMember => include_str!("scopes/user_member.sql"),
        Row::Role => include_str!("scopes/role.sql"),
        Row::AuditLog => include_str!("scopes/audit_log.sql"),
        Row::AdminGrant => include_str!("scopes/admin_grant.sql"),
        Row::ApiKey => include_str!("scopes/api_key.sql"),
    };
    Ok(db::query_opt_cached(client, sql, &[id]).await?.map(|r| (r.get(0), r.get(1))))
}

/// The Space and Group of a resource (soft-deleted or not; `None`: no such resource).
pub async fn of_resource(
    client: &impl GenericClient,
    resource_type: &Option<String>,
    id: &Option<String>,
) -> Result<Option<(Option<String>, Option<String>)>, Error> {
    Ok(db::query_opt_cached(client, include_str!("scopes/resource.sql"), &[resource_type, id])
        .await?
        .map(|r| (r.get(0), r.get(1))))
}

/// Whether the Group is one of the Space's.
pub async fn group_in_space(client: &impl GenericClient, group_id: &str, space_id: &str) -> Result<bool, Error> {
    Ok(db::query_opt_cached(client, include_str!("scopes/group_in_space.sql"), &[&group_id, &space_id])
        .await?
        .is_some())
}
