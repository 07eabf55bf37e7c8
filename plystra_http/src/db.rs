//! The database side of the front: the connection pool, the per-connection audit mode, the acting context
//! set at the start of every management mutation, and small helpers that turn rows into DTO fields.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use deadpool_postgres::{
    Hook, HookError, Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, TimeoutType, Transaction,
};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, NoTls, Row};
use utoipa::ToSchema;

use crate::config::{AuditMode, Config};
use crate::error::ApiError;
use crate::request_context::RequestContext;

/// Set when a connection could not apply the audit mode because the role is not a superuser; the server then
/// keeps the database's own `plystra.audit_mode` and says so once at startup.
#[derive(Default)]
pub struct AuditModeStatus {
    pub not_permitted: AtomicBool,
}

impl AuditModeStatus {
    /// Whether decisions write no audit row: `mode` (AUDIT_WRITE_MODE) writes none, and the database role could
    /// set that mode on its connections.
    pub fn decisions_write_nothing(&self, mode: AuditMode) -> bool {
        mode == AuditMode::Off && !self.not_permitted.load(Ordering::Relaxed)
    }
}

pub fn create_pool(config: &Config, audit_status: Arc<AuditModeStatus>) -> Result<Pool, String> {
    create_pool_of(config, config.database_pool_size, audit_status)
}

/// A pool on the primary of `size` connections (a serving lane's share; see `lanes`).
pub fn create_pool_of(config: &Config, size: usize, audit_status: Arc<AuditModeStatus>) -> Result<Pool, String> {
    create_pool_for(config, &config.database_url, size, audit_status).map_err(|e| format!("DATABASE_URL: {e}"))
}

/// A pool of `size` connections on `url` (the primary's or a replica's) with the configured timeouts and audit
/// mode. (The size is fixed here: deadpool's `resize` does not take back the permits of connections not yet
/// opened.)
pub fn create_pool_for(
    config: &Config,
    url: &str,
    size: usize,
    audit_status: Arc<AuditModeStatus>,
) -> Result<Pool, String> {
    let pg_config: tokio_postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
    let manager = Manager::from_config(pg_config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    let mode: AuditMode = config.audit_mode;
    let max_lifetime = config.database_conn_max_lifetime;
    let wait_timeout = config.database_pool_wait_timeout;
    // A request is answered 503 once it has run HTTP_WRITE_TIMEOUT (`app::deadline`), and its future, with the
    // statement it was waiting for, is dropped; the statement itself would go on in its backend (waiting for a lock,
    // say) for as long as it lasts, and the connection, back in the pool, would make the next request wait behind
    // it. The same bound on each statement ends it there.
    let statement_timeout = format!("{}ms", config.http_write_timeout.as_millis());
    Pool::builder(manager)
        .max_size(size)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .create_timeout(Some(std::time::Duration::from_secs(5)))
        .wait_timeout(Some(wait_timeout))
        .post_create(Hook::async_fn(
            move |client: &mut deadpool_postgres::ClientWrapper, _: &deadpool_postgres::Metrics| {
                let status = audit_status.clone();
                let statement_timeout = statement_timeout.clone();
                Box::pin(async move {
                    crate::store::acting::set_statement_timeout(client, &statement_timeout)
                        .await
                        .map_err(HookError::Backend)?;
                    // Session-level (is_local = false): the mode holds for the connection's life in the pool.
                    match crate::store::acting::set_audit_mode(client, mode.as_guc()).await {
                        Ok(_) => Ok(()),
                        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) => {
                            status.not_permitted.store(true, Ordering::Relaxed);
                            Ok(())
                        }
                        Err(e) => Err(HookError::Backend(e)),
                    }
                })
            },
        ))
        // Old connections are retired so that server-side changes (settings, failover) reach the pool.
        .pre_recycle(Hook::sync_fn(move |_, metrics: &deadpool_postgres::Metrics| {
            if metrics.age() > max_lifetime {
                Err(HookError::message("connection reached DATABASE_CONN_MAX_LIFETIME"))
            } else {
                Ok(())
            }
        }))
        .build()
        .map_err(|e| format!("database pool: {e}"))
}

/// The request's database, taken by a handler as a parameter (`mut db: Db`). It checks nothing out until the
/// handler asks for a connection ([`Db::connection`]), so a route that never needs the database costs the
/// pool nothing. Where the connection comes from:
///
/// - the connection the protection seam checked out for an accepted admin request, parked in the request's
///   extensions ([`Db::hand_over`]): the handler's first connection is that one, so a request costs one pool
///   checkout. The seam leaves it as a fresh checkout would be: no transaction open, no session setting
///   changed. Unclaimed, it goes back to the pool when the request is done;
/// - the replica a read was routed to ([`crate::replicas::route`] leaves its decision in the extensions): the
///   replica's connection, or the primary's when the replica cannot give one in time;
/// - otherwise the primary's pool.
///
/// A handler that needs a second connection (or a transaction beside a read) asks again: every later
/// connection is a fresh checkout.
pub struct Db {
    pool: Pool,
    /// The other serving lanes' pools (see `lanes`), to borrow from when `pool` has nothing free.
    lanes: Arc<[Pool]>,
    handed_over: Option<Object>,
    routed: Option<crate::replicas::Routed>,
}

/// The seam's connection, parked in the request's extensions for the handler's [`Db`]. (Extensions must be
/// `Clone`; the connection is taken out once.)
#[derive(Clone)]
struct HandedOver(Arc<std::sync::Mutex<Option<Object>>>);

impl Db {
    /// A `Db` outside any request: every connection from `pool`.
    pub fn new(pool: Pool) -> Self {
        Db { pool, lanes: Arc::new([]), handed_over: None, routed: None }
    }

    /// The `Db` of a request: the connection the seam handed over (taken out of the extensions, so that only
    /// one `Db` gets it) and the replica the request was routed to, with the primary's `pool`.
    pub fn of_request(extensions: &mut axum::http::Extensions, pool: &Pool) -> Self {
        let handed_over =
            extensions.remove::<HandedOver>().and_then(|h| h.0.lock().unwrap_or_else(|e| e.into_inner()).take());
        let routed = extensions.get::<crate::replicas::Routed>().cloned();
        Db { pool: pool.clone(), lanes: Arc::new([]), handed_over, routed }
    }

    /// The `Db` of a request to a serving lane: [`Db::of_request`] on the lane's pool, borrowing from every lane's
    /// pool (its own among them) when its own has nothing free.
    pub fn of_lane_request(extensions: &mut axum::http::Extensions, state: &crate::app::AppState) -> Self {
        Db { lanes: state.pools.clone(), ..Db::of_request(extensions, &state.pool) }
    }

    /// A `Db` outside any request on a serving lane (readiness, version): its pool, borrowing as a request does.
    pub fn of_lane(state: &crate::app::AppState) -> Self {
        Db { lanes: state.pools.clone(), ..Db::new(state.pool.clone()) }
    }

    /// Parks `client` in a request's extensions: the first [`Db::connection`] of the request's `Db` takes it
    /// instead of checking out another.
    pub fn hand_over(client: Object, extensions: &mut axum::http::Extensions) {
        extensions.insert(HandedOver(Arc::new(std::sync::Mutex::new(Some(client)))));
    }

    /// A connection: the one handed over (first call only), else the routed replica's, else a pooled one from the
    /// primary; 503 DATABASE_UNAVAILABLE (with Retry-After) when the database cannot be reached or no pooled
    /// connection became free within DATABASE_POOL_WAIT_TIMEOUT.
    pub async fn connection(&mut self) -> Result<Object, ApiError> {
        if let Some(client) = self.handed_over.take().filter(|c| !c.is_closed()) {
            return Ok(client);
        }
        // A read the route layer sent to a replica takes its connection there.
        if let Some(routed) = &self.routed {
            if let Some(client) = routed.connection().await {
                return Ok(client);
            }
        }
        checkout(&self.pool, &self.lanes).await
    }

    /// A request of many decisions (a batch, AuthZEN evaluations of more than one item) first takes one of
    /// `bulk_permits` (half of DATABASE_MAX_OPEN_CONNS, at least one), waiting at most DATABASE_POOL_WAIT_TIMEOUT:
    /// such requests hold a connection for up to a thousand decisions each, so they never hold every pooled
    /// connection, and single decisions and administration keep the other half (an attack on the running front
    /// held the whole pool with twenty of them, every other tenant answered 503). Past the wait: 503
    /// DATABASE_UNAVAILABLE, `details.reason` `bulk_requests_busy`, with Retry-After.
    pub async fn bulk_permit(
        permits: &std::sync::Arc<tokio::sync::Semaphore>,
        wait: std::time::Duration,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        match tokio::time::timeout(wait, permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(ApiError::database_busy().with_details(serde_json::json!({ "reason": "bulk_requests_busy" }))),
        }
    }

    /// The connection for a single decision: the lane's pipeline when `pipe` takes it (never for a request
    /// routed to a replica or one the seam handed a connection to), else [`Db::connection`]'s.
    pub async fn decision_connection(&mut self, pipe: &crate::pipeline::Pipe) -> Result<DecisionConnection, ApiError> {
        if self.handed_over.is_none() && self.routed.is_none() {
            if let Some(piped) = pipe.join(&self.pool).await {
                return Ok(DecisionConnection::Piped(piped));
            }
        }
        self.connection().await.map(DecisionConnection::Own)
    }

    /// The primary's pool, whatever the request was routed to: for the writes of a read a replica answers (see
    /// [`Db::on_replica`]).
    pub fn primary(&self) -> &Pool {
        &self.pool
    }

    /// Whether this request's database work runs on a replica (its writes must then go to the primary).
    pub fn on_replica(&self) -> bool {
        self.routed.as_ref().is_some_and(crate::replicas::Routed::used)
    }
}

impl axum::extract::FromRequestParts<crate::app::AppState> for Db {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &crate::app::AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Db::of_lane_request(&mut parts.extensions, state))
    }
}

/// A connection for one decision: a pooled one of its own, or a place in the serving lane's pipeline
/// (`pipeline`). Either reads as the pooled connection it is.
#[allow(clippy::large_enum_variant, reason = "one a request, on its stack: boxing would allocate for every decision")]
pub enum DecisionConnection {
    Own(Object),
    Piped(crate::pipeline::Piped),
}

impl std::ops::Deref for DecisionConnection {
    type Target = Object;

    fn deref(&self) -> &Object {
        match self {
            DecisionConnection::Own(client) => client,
            DecisionConnection::Piped(piped) => piped,
        }
    }
}

/// A pooled connection from `pool`, or 503 DATABASE_UNAVAILABLE as [`Db::connection`] says. When `pool` has
/// nothing free at once, another lane's pool (of `lanes`) that has a connection free, or room to open one, serves
/// without waiting; only then does the request wait on its own pool. A serving lane's share of
/// DATABASE_MAX_OPEN_CONNS is where its connections come from first, not a limit on its requests. (A connection
/// opened so is driven by the borrowing lane's runtime for its life: it works from any lane, only with the
/// cross-thread wake-ups the lanes avoid.)
async fn checkout(pool: &Pool, lanes: &[Pool]) -> Result<Object, ApiError> {
    if !lanes.is_empty() {
        // Zero wait: a pool with no permit left answers at once (`pool` is among `lanes`; it is asked first).
        let now = deadpool_postgres::Timeouts { wait: Some(std::time::Duration::ZERO), ..pool.timeouts() };
        for candidate in std::iter::once(pool).chain(lanes) {
            match candidate.timeout_get(&now).await {
                Ok(client) => return Ok(client),
                Err(PoolError::Timeout(TimeoutType::Wait)) => continue,
                // The database could not be reached: asking the other pools would only wait for it again.
                Err(e) => return Err(checkout_failed(pool, e)),
            }
        }
    }
    pool.get().await.map_err(|e| checkout_failed(pool, e))
}

fn checkout_failed(pool: &Pool, e: PoolError) -> ApiError {
    match e {
        PoolError::Timeout(TimeoutType::Wait) => {
            tracing::warn!(max_size = pool.status().max_size, "no pooled database connection became free in time");
            ApiError::database_busy()
        }
        e => {
            tracing::error!(error = %e, "database connection failed");
            ApiError::database_unavailable()
        }
    }
}

/// The hot path's statements are prepared once per pooled connection (deadpool's statement cache), so each
/// costs one round trip instead of a parse and an execute. Any client works: a pooled connection or a
/// transaction. Each call is a client span of the request's trace while tracing is on ([`statement_span`]).
pub async fn query_opt_cached(
    client: &impl deadpool_postgres::GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>, tokio_postgres::Error> {
    traced(sql, async {
        let statement = client.prepare_cached(sql).await?;
        client.query_opt(&statement, params).await
    })
    .await
}

/// [`query_opt_cached`] for a statement that returns exactly one row.
pub async fn query_one_cached(
    client: &impl deadpool_postgres::GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Row, tokio_postgres::Error> {
    traced(sql, async {
        let statement = client.prepare_cached(sql).await?;
        client.query_one(&statement, params).await
    })
    .await
}

/// [`query_opt_cached`] for a statement that returns any number of rows.
pub async fn query_cached(
    client: &impl deadpool_postgres::GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, tokio_postgres::Error> {
    traced(sql, async {
        let statement = client.prepare_cached(sql).await?;
        client.query(&statement, params).await
    })
    .await
}

/// [`query_opt_cached`] for a statement that returns no rows: the number of rows it changed.
pub async fn execute_cached(
    client: &impl deadpool_postgres::GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, tokio_postgres::Error> {
    traced(sql, async {
        let statement = client.prepare_cached(sql).await?;
        client.execute(&statement, params).await
    })
    .await
}

/// The span of one statement: PostgreSQL, named by the statement's verb and object (never its parameters).
/// Disabled, and so free, while tracing is off: the name is only worked out for an exported span.
pub fn statement_span(sql: &str) -> tracing::Span {
    use tracing::field::Empty;
    let span = tracing::info_span!(
        target: crate::telemetry::SPAN_TARGET,
        "db",
        otel.name = Empty,
        otel.kind = "client",
        otel.status_code = Empty,
        db.system = "postgresql",
        db.system.name = "postgresql",
        db.operation.name = Empty,
        db.query.summary = Empty,
        error.type = Empty,
    );
    if !span.is_disabled() {
        let summary = crate::telemetry::statement_summary(sql);
        span.record("db.operation.name", summary.split(' ').next().unwrap_or(""));
        span.record("db.query.summary", summary.as_str());
        span.record("otel.name", summary.as_str());
    }
    span
}

/// Runs a statement inside its span ([`statement_span`]); a failed one marks the span (SQLSTATE, or a lost
/// connection). The cached helpers use it; so do the few routes that build their SQL per request.
pub async fn traced<T>(
    sql: &str,
    statement: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, tokio_postgres::Error> {
    use tracing::Instrument;
    let span = statement_span(sql);
    let result = statement.instrument(span.clone()).await;
    if let Err(e) = &result {
        span.record("otel.status_code", "ERROR");
        span.record("error.type", e.code().map_or("connection", |c| c.code()));
    }
    result
}

/// The optional `actor` of a mutation body (docs/v1-reference.md §1.10: "used only for audit"). The credential always acts
/// and is always recorded; a body actor is kept only when the credential may act as it (a session: one of its
/// own user's active bindings; an API key: an active binding inside its scope), and is then recorded as a
/// claimed actor beside the credential. Any other actor is refused with 403; `{}` names nobody.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActorContext {
    pub user_id: Option<String>,
    pub member_id: Option<String>,
    pub user_member_id: Option<String>,
    /// Alias of `user_member_id`.
    pub binding_id: Option<String>,
    pub space_id: Option<String>,
}

impl ActorContext {
    pub fn user_member(&self) -> Option<&str> {
        self.user_member_id.as_deref().or(self.binding_id.as_deref())
    }

    /// `{}` (or only empty strings) names nobody: the credential acts.
    pub fn is_empty(&self) -> bool {
        [&self.user_id, &self.member_id, &self.user_member_id, &self.binding_id, &self.space_id]
            .iter()
            .all(|f| f.as_deref().is_none_or(str::is_empty))
    }
}

/// Starts a management mutation: a transaction whose acting context (actor, credential and request) is set
/// before any write, so that the extension's triggers audit the write with this HTTP request's identity.
///
/// The authenticated credential is always recorded (`plystra.set_credential`: its type, user, session or API
/// key). The acting context is the credential's own (a session's user and active binding; an API key's creator
/// in the key's Space), unless the body names an actor the credential may act as: for a session, one of its
/// own user's active bindings; for an API key, an active binding inside the key's scope (any, for an instance
/// key; in its Space, for a Space key; a group key names none). Such an actor is recorded as claimed
/// (`actor_claimed`); any other is refused with 403 before anything is written. `"actor": {}` names nobody.
/// `audit_space_id` (a body's, on instance-scoped routes) names the Space an instance-level row's management audit
/// row is filed in; without it that row goes to the instance chain, never to the acting Space.
pub async fn begin_mutation<'a>(
    client: &'a mut Object,
    request: &RequestContext,
    actor: Option<&ActorContext>,
    audit_space_id: Option<&str>,
) -> Result<Transaction<'a>, ApiError> {
    begin_mutation_at(client, request, actor, audit_space_id, IsolationLevel::ReadCommitted).await
}

/// [`begin_mutation`] at another isolation level: REPEATABLE READ when what a route checks and what it then
/// answers or writes must come from one snapshot.
pub async fn begin_mutation_at<'a>(
    client: &'a mut Object,
    request: &RequestContext,
    actor: Option<&ActorContext>,
    audit_space_id: Option<&str>,
    isolation: IsolationLevel,
) -> Result<Transaction<'a>, ApiError> {
    // The credential the protection seam accepted (the request context carries it).
    let credential = request.credential.as_ref();
    let tx = client.build_transaction().isolation_level(isolation).start().await.map_err(internal)?;
    let claimed = match actor.filter(|a| !a.is_empty()) {
        Some(a) => {
            let credential = credential.ok_or_else(crate::auth::credential::authentication_required)?;
            Some(claimed_actor(&tx, credential, a).await?)
        }
        None => None,
    };
    let acting = claimed.clone().unwrap_or_else(|| credential_actor(credential));
    let acting = crate::store::acting::Acting {
        user_id: acting.user_id.as_deref(),
        member_id: acting.member_id.as_deref(),
        user_member_id: acting.user_member(),
        space_id: acting.space_id.as_deref(),
        audit_space_id,
        request,
        credential: credential.map(|c| credential_ids(c, claimed.is_some())),
    };
    crate::store::acting::set_context(&tx, &acting).await.map_err(internal)?;
    Ok(tx)
}

/// A credential as the extension records it: its kind, user, and session id or API key id.
fn credential_ids(
    credential: &crate::auth::Credential,
    actor_claimed: bool,
) -> crate::store::acting::CredentialIds<'_> {
    use crate::auth::Credential;
    let (session_id, api_key_id) = match credential {
        Credential::Session(s) => (Some(s.session_id.as_str()), None),
        Credential::ApiKey(k) => (None, Some(k.id.as_str())),
    };
    crate::store::acting::CredentialIds {
        kind: credential.kind(),
        user_id: credential.user_id(),
        session_id,
        api_key_id,
        actor_claimed,
    }
}

/// Records the authenticated credential for the rest of the transaction (the extension's audit rows read it).
pub async fn set_credential(
    client: &impl deadpool_postgres::GenericClient,
    credential: &crate::auth::Credential,
    actor_claimed: bool,
) -> Result<(), ApiError> {
    crate::store::acting::set_credential(client, &credential_ids(credential, actor_claimed)).await.map_err(internal)?;
    Ok(())
}

/// The binding a body actor names, if the credential may act as it; 403 otherwise, 400 when it names several.
async fn claimed_actor(
    client: &impl deadpool_postgres::GenericClient,
    credential: &crate::auth::Credential,
    a: &ActorContext,
) -> Result<ActorContext, ApiError> {
    use crate::auth::Credential;
    let refused = |why: &str| {
        ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            crate::error::code::ADMIN_PERMISSION_REQUIRED,
            format!("The credential may not act as the actor named in the body: {why}"),
        )
        .with_details(serde_json::json!({"field": "actor"}))
    };
    let (own_user, key_space) = match credential {
        Credential::Session(s) => (Some(s.user_id.clone()), None),
        Credential::ApiKey(k) => match k.level.as_str() {
            "instance" => (None, None),
            "space" => (None, k.space_id.clone()),
            _ => return Err(refused("a group-level API key cannot name an actor.")),
        },
    };
    let text = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(str::to_string);
    let named =
        [text(a.user_member()), text(a.user_id.as_deref()), text(a.member_id.as_deref()), text(a.space_id.as_deref())];
    let rows =
        crate::store::acting::claimable_bindings(client, named, &own_user, &key_space).await.map_err(internal)?;
    match rows.as_slice() {
        [] => Err(match credential {
            Credential::Session(_) => refused("it is not one of the session user's active bindings."),
            Credential::ApiKey(_) => refused("it is not an active binding inside the API key's scope."),
        }),
        [row] => Ok(ActorContext {
            user_member_id: Some(row.get(0)),
            user_id: Some(row.get(1)),
            member_id: Some(row.get(2)),
            space_id: Some(row.get(3)),
            binding_id: None,
        }),
        _ => Err(ApiError::validation("actor", "actor names more than one binding; give user_member_id.")),
    }
}

fn credential_actor(credential: Option<&crate::auth::Credential>) -> ActorContext {
    use crate::auth::Credential;
    match credential {
        Some(Credential::Session(s)) => ActorContext {
            user_id: Some(s.user_id.clone()),
            member_id: s.active_member_id.clone(),
            user_member_id: s.active_user_member_id.clone(),
            binding_id: None,
            space_id: s.active_space_id.clone(),
        },
        Some(Credential::ApiKey(k)) => ActorContext {
            user_id: k.created_by_user_id.clone(),
            member_id: None,
            user_member_id: None,
            binding_id: None,
            space_id: k.space_id.clone(),
        },
        None => ActorContext::default(),
    }
}

/// An unexpected database error: logged with its detail, answered as a bare 500.
pub fn internal(e: tokio_postgres::Error) -> ApiError {
    if connection_lost(&e) {
        tracing::warn!(error = %e, "the database connection was lost during the request");
        return ApiError::database_unavailable();
    }
    if lost_to_a_concurrent_request(&e) {
        tracing::warn!(error = %e, "the request lost to a concurrent one in the database and changed nothing");
        return ApiError::concurrent_conflict();
    }
    tracing::error!(error = %e, db_error = ?e.as_db_error().map(|d| (d.code().code(), d.message(), d.constraint())), "database error");
    ApiError::internal()
}

/// The database gave up the request's transaction for a concurrent one's sake, and rolled it back whole: a deadlock
/// (40P01), a serialization failure (40001), a lock it could not have in time (55P03). Sent again, the same request
/// may well succeed; it is not a server error.
pub fn lost_to_a_concurrent_request(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    const LOST: [SqlState; 3] =
        [SqlState::T_R_DEADLOCK_DETECTED, SqlState::T_R_SERIALIZATION_FAILURE, SqlState::LOCK_NOT_AVAILABLE];
    e.as_db_error().is_some_and(|d| LOST.contains(d.code()))
}

/// The connection ended under the request: its backend was terminated, the server is shutting down or
/// restarting after a crash (57P01, 57P02), the connection failed (08000, 08003, 08006), or the socket closed.
/// That is the database being unavailable (503 DATABASE_UNAVAILABLE, to retry), as when no connection could be
/// had, not a server error. (A protocol violation, 08P01, stays a 500: it is a bug, not an outage.)
pub fn connection_lost(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    const LOST: [SqlState; 5] = [
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::CONNECTION_EXCEPTION,
        SqlState::CONNECTION_DOES_NOT_EXIST,
        SqlState::CONNECTION_FAILURE,
    ];
    e.is_closed() || e.as_db_error().is_some_and(|d| LOST.contains(d.code()))
}

/// RFC 3339 in UTC without fractional seconds, as v1.0 prints times.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC).replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

/// A JSON document read from a `json` or `jsonb` column exactly as PostgreSQL prints it, and written to answers
/// unchanged. Reading cannot fail on data a caller wrote: PostgreSQL keeps every JSON number exactly (a
/// caller's 1.7976931348623157e308 comes back as a 309-digit integer), and parsing such text into a
/// `serde_json::Value` fails ("number out of range"), which `Row::get` turned into a panic. The text is only
/// checked to be JSON, never converted to numbers.
#[derive(Debug, Clone)]
pub struct JsonDoc(Box<serde_json::value::RawValue>);

impl JsonDoc {
    /// `{}`: what an absent (NULL) document reads as.
    pub fn empty_object() -> Self {
        JsonDoc(serde_json::value::RawValue::from_string("{}".into()).expect("{} is JSON"))
    }

    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The document as a JSON value, for an answer that is sent as it is.
    pub fn into_raw(self) -> Box<serde_json::value::RawValue> {
        self.0
    }
}

impl serde::Serialize for JsonDoc {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'a> tokio_postgres::types::FromSql<'a> for JsonDoc {
    fn from_sql(
        ty: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        // jsonb's binary form is a version byte (1) and the document's text; json's is the text.
        let text = if *ty == tokio_postgres::types::Type::JSONB {
            match raw.split_first() {
                Some((1, rest)) => rest,
                _ => return Err("unsupported jsonb binary version".into()),
            }
        } else {
            raw
        };
        let text = std::str::from_utf8(text)?.to_string();
        Ok(JsonDoc(serde_json::value::RawValue::from_string(text)?))
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        *ty == tokio_postgres::types::Type::JSONB || *ty == tokio_postgres::types::Type::JSON
    }
}

/// Column readers for DTOs. Optional strings become "" (v1.0's `nil` strings), optional times null.
/// The columns they read are the front's own (text and timestamptz columns of the views); [`RowExt::json`]
/// reads documents a caller wrote, and never fails on them.
pub trait RowExt {
    fn text(&self, col: &str) -> String;
    fn time(&self, col: &str) -> String;
    fn opt_time(&self, col: &str) -> Option<String>;
    fn json(&self, col: &str) -> JsonDoc;
}

impl RowExt for Row {
    fn text(&self, col: &str) -> String {
        self.get::<_, Option<String>>(col).unwrap_or_default()
    }
    fn time(&self, col: &str) -> String {
        self.get::<_, Option<OffsetDateTime>>(col).map(rfc3339).unwrap_or_default()
    }
    fn opt_time(&self, col: &str) -> Option<String> {
        self.get::<_, Option<OffsetDateTime>>(col).map(rfc3339)
    }
    fn json(&self, col: &str) -> JsonDoc {
        match self.try_get::<_, Option<JsonDoc>>(col) {
            Ok(doc) => doc.unwrap_or_else(JsonDoc::empty_object),
            // Only a column that is not json (a programming error) gets here: logged, never a panic.
            Err(e) => {
                tracing::error!(error = %e, column = col, "could not read a JSON column");
                JsonDoc::empty_object()
            }
        }
    }
}

/// A generated id: `<prefix>_<16 hex>` (docs/v1-reference.md §1.10).
pub fn new_id(prefix: &str) -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &hex[..16])
}

/// Parses an RFC 3339 timestamp from a request, naming the field on failure.
pub fn parse_time(field: &str, value: &str) -> Result<OffsetDateTime, ApiError> {
    OffsetDateTime::parse(value, &Rfc3339).map_err(|_| ApiError::validation(field, format!("{field} must be RFC3339.")))
}

/// A dynamic WHERE clause with numbered parameters, for list filters.
#[derive(Default)]
pub struct Filters {
    pub conditions: Vec<String>,
    pub params: Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>>,
}

impl Filters {
    /// Adds `<sql_with_$>` where `$` is replaced by the next parameter number.
    pub fn push<T: tokio_postgres::types::ToSql + Sync + Send + 'static>(&mut self, sql: &str, value: T) {
        self.params.push(Box::new(value));
        self.conditions.push(sql.replace('$', &format!("${}", self.params.len())));
    }

    pub fn push_opt(&mut self, sql: &str, value: &Option<String>) {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            self.push(sql, v.to_string());
        }
    }

    /// Adds a keyset condition on several parameters: `sql` uses `$1`, `$2`, ... relative to this call.
    pub fn push_many(&mut self, sql: &str, values: Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>>) {
        let base = self.params.len();
        let mut rendered = sql.to_string();
        for i in (1..=values.len()).rev() {
            rendered = rendered.replace(&format!("${i}"), &format!("${}", base + i));
        }
        self.params.extend(values);
        self.conditions.push(rendered);
    }

    pub fn where_clause(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.conditions.join(" AND "))
        }
    }

    pub fn refs(&self) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
        self.params.iter().map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_number_their_parameters() {
        let mut f = Filters::default();
        f.push("a = $", "x".to_string());
        f.push_opt("b = $", &None);
        f.push_opt("c = $", &Some("y".into()));
        f.push_many("(d, e) > ($1, $2)", vec![Box::new(1i64), Box::new(2i64)]);
        assert_eq!(f.where_clause(), "WHERE a = $1 AND c = $2 AND (d, e) > ($3, $4)");
        assert_eq!(f.refs().len(), 4);
    }

    #[test]
    fn times_print_as_rfc3339_utc_seconds() {
        let t = OffsetDateTime::parse("2026-01-02T03:04:05.678+02:00", &Rfc3339).unwrap();
        assert_eq!(rfc3339(t), "2026-01-02T01:04:05Z");
    }

    #[test]
    fn json_documents_pass_through_numbers_a_double_cannot_hold() {
        use tokio_postgres::types::{FromSql, Type};
        let huge = format!(r#"{{"max": 17976931348623157{}, "tiny": 1e-400}}"#, "0".repeat(292));
        assert!(serde_json::from_str::<serde_json::Value>(&huge).is_err(), "the reason JsonDoc exists");
        let mut jsonb = vec![1u8];
        jsonb.extend_from_slice(huge.as_bytes());
        let doc = JsonDoc::from_sql(&Type::JSONB, &jsonb).unwrap();
        assert_eq!(serde_json::to_string(&doc).unwrap(), huge);
        assert_eq!(JsonDoc::from_sql(&Type::JSON, huge.as_bytes()).unwrap().as_str(), huge);
        assert!(JsonDoc::from_sql(&Type::JSONB, b"\x02{}").is_err());
        assert_eq!(serde_json::to_string(&JsonDoc::empty_object()).unwrap(), "{}");
    }

    #[test]
    fn generated_ids_have_the_prefix_and_16_hex() {
        let id = new_id("space");
        assert!(id.starts_with("space_"));
        assert_eq!(id.len(), "space_".len() + 16);
    }
}
