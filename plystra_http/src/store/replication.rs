//! The store of replication positions (WAL byte positions as numbers), for routing reads to replicas.

use deadpool_postgres::GenericClient;
use tokio_postgres::Error;

/// The primary's current WAL position.
pub async fn primary_position(client: &impl GenericClient) -> Result<i64, Error> {
    Ok(client.query_one(include_str!("replication/primary_position.sql"), &[]).await?.get(0))
}

/// Whether the server is a standby, and the WAL position it has replayed.
pub async fn replica_position(client: &impl GenericClient) -> Result<(bool, Option<i64>), Error> {
    let row = client.query_one(include_str!("replication/replica_position.sql"), &[]).await?;
    Ok((row.get(0), row.get(1)))
}

/// The primary's WAL insert position: a read after a commit waits for a replica past it.
pub async fn commit_position(client: &impl GenericClient) -> Result<i64, Error> {
    Ok(crate::db::query_one_cached(client, include_str!("replication/commit_position.sql"), &[]).await?.get(0))
}
