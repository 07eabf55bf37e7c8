//! The store of sessions: creating one at login, rotating its tokens, switching its binding, ending it.

use tokio_postgres::{Error, GenericClient, Row};

/// A new session's row, as `login` writes it.
pub struct NewSession<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub space_id: &'a str,
    pub member_id: &'a str,
    pub user_member_id: &'a str,
    pub access_hash: &'a str,
    pub refresh_hash: &'a str,
    pub access_ttl_secs: f64,
    pub refresh_ttl_secs: f64,
    pub ip: Option<String>,
    pub user_agent: Option<&'a str>,
}

/// Inserts the session: its `expires_at` and `refresh_expires_at`.
pub async fn create(client: &(impl GenericClient + Sync), s: &NewSession<'_>) -> Result<Row, Error> {
    client
        .query_one(
            include_str!("sessions/create.sql"),
            &[
                &s.id,
                &s.user_id,
                &s.space_id,
                &s.member_id,
                &s.user_member_id,
                &s.access_hash,
                &s.refresh_hash,
                &s.access_ttl_secs,
                &s.refresh_ttl_secs,
                &s.ip,
                &s.user_agent,
            ],
        )
        .await
}

/// Ends one session (not already ended): how many rows it changed.
pub async fn end(client: &(impl GenericClient + Sync), session_id: &str) -> Result<u64, Error> {
    client.execute(include_str!("sessions/end.sql"), &[&session_id]).await
}

/// The live session whose refresh token has one of `hashes`.
pub async fn live_by_refresh(client: &(impl GenericClient + Sync), hashes: &[String]) -> Result<Option<Row>, Error> {
    client.query_opt(include_str!("sessions/live_by_refresh.sql"), &[&hashes]).await
}

/// Rotates both tokens of `session_id` while `hashes` still names its refresh token: its new expiries, id,
/// user and active Space; `None` when another refresh came first.
pub async fn rotate(
    client: &(impl GenericClient + Sync),
    hashes: &[String],
    session_id: &str,
    access_hash: &str,
    refresh_hash: &str,
    access_ttl_secs: f64,
    refresh_ttl_secs: f64,
) -> Result<Option<Row>, Error> {
    client
        .query_opt(
            include_str!("sessions/rotate.sql"),
            &[&hashes, &access_hash, &refresh_hash, &access_ttl_secs, &refresh_ttl_secs, &session_id],
        )
        .await
}

/// Ends the live sessions holding one of these access or refresh token HMACs: their id, user, active Space.
pub async fn end_by_tokens(
    client: &(impl GenericClient + Sync),
    access: &[String],
    refresh: &[String],
) -> Result<Vec<Row>, Error> {
    client.query(include_str!("sessions/end_by_tokens.sql"), &[&access, &refresh]).await
}

/// Makes the session act through a binding.
pub async fn switch_binding(
    client: &(impl GenericClient + Sync),
    session_id: &str,
    space_id: &str,
    member_id: &str,
    user_member_id: &str,
) -> Result<u64, Error> {
    client
        .execute(include_str!("sessions/switch_binding.sql"), &[&session_id, &space_id, &member_id, &user_member_id])
        .await
}
