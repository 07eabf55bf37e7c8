//! The store of the system routes: readiness, the audit-sealing gauges, the audit writer's queue, the console's counts.

use tokio_postgres::{Error, GenericClient, Row};

/// One trivial statement (simple protocol): whether the database answers.
pub async fn ping(client: &impl GenericClient) -> Result<(), Error> {
    client.simple_query(include_str!("system/ping.sql")).await.map(|_| ())
}

/// The audit gauges /metrics reads at scrape time, in one statement: unsealed audit rows, those unsealed longer than
/// the alarm, and the audit writer's queue (`plystra.audit_writer_stats()`, as the extension states it).
pub async fn audit_gauges(client: &(impl GenericClient + Sync)) -> Result<(i64, i64, serde_json::Value), Error> {
    let row = client.query_one(include_str!("system/audit_gauges.sql"), &[]).await?;
    Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
}

/// Live Spaces, users, Members, Groups, Roles, Permissions, resources; resource types; audit rows.
pub async fn overview(client: &(impl GenericClient + Sync)) -> Result<Row, Error> {
    client.query_one(include_str!("system/overview.sql"), &[]).await
}
