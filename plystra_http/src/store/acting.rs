//! The store of the acting context: the transaction-local settings through which the extension's triggers and
//! audit rows learn who acts (actor, credential, request), and the pool's per-connection audit mode.

use deadpool_postgres::GenericClient;
use tokio_postgres::{Error, Row};

use crate::db::execute_cached;
use crate::request_context::RequestContext;

/// The credential as the extension records it (`plystra.set_credential`).
pub struct CredentialIds<'a> {
    /// `session` or `api_key`.
    pub kind: &'a str,
    pub user_id: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub api_key_id: Option<&'a str>,
    /// Whether the actor is one the body named (recorded beside the credential).
    pub actor_claimed: bool,
}

/// Who acts in a mutation's transaction.
pub struct Acting<'a> {
    pub user_id: Option<&'a str>,
    pub member_id: Option<&'a str>,
    pub user_member_id: Option<&'a str>,
    pub space_id: Option<&'a str>,
    /// The Space instance-level management rows are filed in (`plystra.set_audit_space`); `None`: the instance
    /// chain.
    pub audit_space_id: Option<&'a str>,
    pub request: &'a RequestContext,
    pub credential: Option<CredentialIds<'a>>,
}

/// Sets the session-level audit mode of a new pooled connection.
pub async fn set_audit_mode(client: &tokio_postgres::Client, mode: &str) -> Result<u64, Error> {
    client.execute(include_str!("acting/set_audit_mode.sql"), &[&mode]).await
}

/// Sets the session-level statement timeout of a new pooled connection (`statement_timeout`, e.g. "60000ms").
pub async fn set_statement_timeout(client: &tokio_postgres::Client, timeout: &str) -> Result<u64, Error> {
    client.execute(include_str!("acting/set_statement_timeout.sql"), &[&timeout]).await
}

/// Sets the whole acting context for the rest of the transaction, in one round trip.
pub async fn set_context(client: &impl GenericClient, a: &Acting<'_>) -> Result<u64, Error> {
    let c = a.credential.as_ref();
    execute_cached(
        client,
        include_str!("acting/set_context.sql"),
        &[
            &a.user_id,
            &a.member_id,
            &a.user_member_id,
            &a.space_id,
            &a.request.request_id,
            &a.request.ip_string(),
            &a.request.user_agent,
            &a.request.server_request_id,
            &c.map(|c| c.kind),
            &c.and_then(|c| c.user_id),
            &c.and_then(|c| c.session_id),
            &c.and_then(|c| c.api_key_id),
            &c.is_some_and(|c| c.actor_claimed),
            &a.audit_space_id,
        ],
    )
    .await
}

/// Records the credential for the rest of the transaction.
pub async fn set_credential(client: &impl GenericClient, c: &CredentialIds<'_>) -> Result<u64, Error> {
    execute_cached(
        client,
        include_str!("acting/set_credential.sql"),
        &[&c.kind, &c.user_id, &c.session_id, &c.api_key_id, &c.actor_claimed],
    )
    .await
}

/// The usable bindings matching every field a body's actor named, limited to `own_user`'s (a session) or to
/// `key_space` (a Space API key); two at most, to tell one from several.
pub async fn claimable_bindings(
    client: &impl GenericClient,
    named: [Option<String>; 4],
    own_user: &Option<String>,
    key_space: &Option<String>,
) -> Result<Vec<Row>, Error> {
    let [user_member_id, user_id, member_id, space_id] = named;
    client
        .query(
            include_str!("acting/claimable_bindings.sql"),
            &[&user_member_id, &user_id, &member_id, &space_id, own_user, key_space],
        )
        .await
}
