//! The store of decisions: the extension's decision functions, called as they are (the rules are theirs).

use deadpool_postgres::GenericClient;
use serde_json::Value;
use tokio_postgres::Error;

use crate::db;

/// `plystra.decide_with_credential`: the credential (its proof), the admin permission on every scope the
/// request touches, the session's actor and the decision, in one statement. The answer is kept as the
/// extension's text (a decision is passed through to the client, not rebuilt).
pub async fn decide_with_credential(
    client: &impl GenericClient,
    proof: &Value,
    permission: &str,
    request: &Value,
    explain: bool,
    authorize_only: bool,
) -> Result<db::JsonDoc, Error> {
    db::query_one_cached(
        client,
        include_str!("decisions/decide_with_credential.sql"),
        &[proof, &permission, request, &explain, &authorize_only],
    )
    .await?
    .try_get(0)
}

/// `plystra.simulate`: the full trace of a decision, written nowhere.
pub async fn simulate(client: &impl GenericClient, request: &Value) -> Result<Value, Error> {
    db::query_one_cached(client, include_str!("decisions/simulate.sql"), &[request]).await?.try_get(0)
}

/// `plystra.resolve_actor`: the binding a User acts through in a Space (or why none).
pub async fn resolve_actor(client: &impl GenericClient, user_id: &str, space_id: Option<&str>) -> Result<Value, Error> {
    db::query_one_cached(client, include_str!("decisions/resolve_actor.sql"), &[&user_id, &space_id]).await?.try_get(0)
}
