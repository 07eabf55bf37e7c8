//! The store of the system routes: readiness, the audit-sealing gauges, the audit writer's queue, the console's counts.

use tokio_postgres::{Error, GenericClient, Row};

/// One trivial statement (simple protocol): whether the database answers.
pub async fn ping(client: &impl GenericClient) -> Result<(), Error> {
    client.simple_query(include_str!("system/ping.sql")).await.map(|_| ())
}

/// Unsealed audit rows, and those unsealed longer than the alarm.
pub async fn unsealed_audit_rows(client: &(impl GenericClient + Sync)) -> Result<(i64, i64), Error> {
    let row = client.query_one(include_str!("system/unsealed_audit_rows.sql"), &[]).await?;
    Ok((row.get(0), row.get(1)))
}

/// The audit writer's queue (`plystra.audit_writer_stats()`), as the extension states it.
pub async fn audit_writer_stats(client: &(impl GenericClient + Sync)) -> Result<serde_json::Value, Error> {
    let row = client.query_one(include_str!("system/audit_writer_stats.sql"), &[]).await?;
    row.try_get(0)
}

/// Live Spaces, users, Members, Groups, Roles, Permissions, resources; resource types; audit rows.
pub async fn overview(client: &(impl GenericClient + Sync)) -> Result<Row, Error> {
    client.query_one(include_str!("system/overview.sql"), &[]).await
}
