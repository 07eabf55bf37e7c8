//! The store of credentials: which live session or active API key a presented proof stands for. The rule is
//! the extension's (`plystra.authenticate`); this only calls it.

use deadpool_postgres::GenericClient;

use crate::db;

/// The credential document `plystra.authenticate` finds for `proof` (its HMACs), or NULL.
pub async fn authenticate(
    client: &impl GenericClient,
    proof: &serde_json::Value,
) -> Result<Option<serde_json::Value>, tokio_postgres::Error> {
    db::query_one_cached(client, include_str!("credentials/authenticate.sql"), &[proof]).await?.try_get(0)
}
