//! The store of the audit trail as the front writes and reads it: authentication events (the extension's
//! `plystra.audit_auth_event`) and the audit log's rows.

use serde_json::Value;
use tokio_postgres::{Error, GenericClient};

use crate::request_context::RequestContext;

/// Whether the installed extension has `plystra.audit_auth_event` (schema 006).
pub async fn auth_event_available(client: &(impl GenericClient + Sync)) -> Result<bool, Error> {
    Ok(client.query_one(include_str!("audit/auth_event_available.sql"), &[]).await?.get(0))
}

/// One authentication event as `plystra.audit_auth_event` records it.
pub struct AuthEvent<'a> {
    pub action: &'a str,
    pub user_id: Option<&'a str>,
    pub space_id: Option<&'a str>,
    /// `allow` or `deny`.
    pub decision: &'a str,
    pub details: &'a Value,
}

/// Appends one authentication event in `tx`'s transaction: the request context first, the session the event
/// is about as its credential (its user and session id, when there is one), then the event.
pub async fn auth_event(
    tx: &(impl GenericClient + Sync),
    ctx: &RequestContext,
    session: Option<(&str, &str)>,
    event: &AuthEvent<'_>,
) -> Result<(), Error> {
    tx.execute(
        include_str!("audit/set_request_context.sql"),
        &[&ctx.request_id, &ctx.ip_string(), &ctx.user_agent, &ctx.server_request_id],
    )
    .await?;
    if let Some((user_id, session_id)) = session {
        tx.execute(include_str!("audit/set_session_credential.sql"), &[&user_id, &session_id]).await?;
    }
    let AuthEvent { action, user_id, space_id, decision, details } = event;
    tx.query_one(include_str!("audit/auth_event.sql"), &[action, user_id, space_id, decision, details]).await?;
    Ok(())
}

/// A page of audit rows matching `filters` (columns on `plystra.audit_logs`), newest first, `limit` rows.
pub async fn logs(
    client: &(impl GenericClient + Sync),
    filters: &crate::db::Filters,
    limit: i64,
) -> Result<Vec<tokio_postgres::Row>, Error> {
    let sql = format!(
        "{} {} ORDER BY created_at DESC, seq DESC LIMIT {limit}",
        include_str!("audit/logs.sql").trim_end(),
        filters.where_clause()
    );
    crate::db::traced(&sql, client.query(&sql, &filters.refs())).await
}

/// The keyset condition of a page after the row `seq` (newest first), for [`logs`]' filters.
pub const AFTER_SEQ: &str =
    "(created_at, seq) < (SELECT a.created_at, a.seq FROM plystra.audit_logs a WHERE a.seq = $1)";

/// One audit row with its trace, by id, in `space_id` when given.
pub async fn log_by_id(
    client: &(impl GenericClient + Sync),
    id: &str,
    space_id: Option<&str>,
) -> Result<Option<tokio_postgres::Row>, Error> {
    client.query_opt(include_str!("audit/log_by_id.sql"), &[&id, &space_id]).await
}

/// The Space of an audit row (`None`: no such row, or an instance row).
pub async fn space_of_log(client: &(impl GenericClient + Sync), id: &str) -> Result<Option<String>, Error> {
    Ok(client.query_opt(include_str!("audit/space_of_log.sql"), &[&id]).await?.and_then(|r| r.get(0)))
}

/// `plystra.replay`: the decision an audit row recorded, decided again now (written to the trail when
/// `audit`).
pub async fn replay(
    client: &(impl GenericClient + Sync),
    id: &str,
    audit: bool,
) -> Result<Option<crate::db::JsonDoc>, Error> {
    client.query_one(include_str!("audit/replay.sql"), &[&id, &audit]).await?.try_get(0)
}

/// `plystra.verify_audit_chain` for a Space (no row: the Space has no chain yet).
pub async fn verify_chain(
    client: &(impl GenericClient + Sync),
    space_id: &str,
) -> Result<Option<tokio_postgres::Row>, Error> {
    client.query_opt(include_str!("audit/verify_chain.sql"), &[&space_id]).await
}
