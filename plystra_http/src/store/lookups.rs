//! The store of reach lookups: who may act on a resource, and what a binding may reach (the extension's
//! `plystra.lookup_subjects` and `plystra.lookup_resources`, the same rules as a decision).

use deadpool_postgres::GenericClient;
use tokio_postgres::{Error, Row};

use crate::db;

/// The bindings that may `action` the resource, after the binding `after`, at most `limit`: each row's
/// binding, Member, User and the grants that reach it.
pub async fn subjects(
    client: &impl GenericClient,
    resource_type: &str,
    resource_id: &str,
    action: &str,
    after: &Option<String>,
    limit: i32,
) -> Result<Vec<Row>, Error> {
    db::query_cached(
        client,
        include_str!("lookups/subjects.sql"),
        &[&resource_type, &resource_id, &action, after, &limit],
    )
    .await
}

/// Makes a binding the transaction's actor (what [`resources`] reaches from).
pub async fn act_as(
    tx: &impl GenericClient,
    user_id: &str,
    member_id: &str,
    user_member_id: &str,
    space_id: &str,
) -> Result<(), Error> {
    db::query_one_cached(tx, include_str!("lookups/act_as.sql"), &[&user_id, &member_id, &user_member_id, &space_id])
        .await
        .map(|_| ())
}

/// The ids of the resources of a type the transaction's actor may `action`, after `after`, at most `limit`.
pub async fn resources(
    tx: &impl GenericClient,
    resource_type: &str,
    action: &str,
    after: &Option<String>,
    limit: i64,
) -> Result<Vec<Row>, Error> {
    db::query_cached(tx, include_str!("lookups/resources.sql"), &[&resource_type, &action, after, &limit]).await
}
