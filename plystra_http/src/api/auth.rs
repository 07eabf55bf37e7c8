//! Password sessions (docs/v1-reference.md §1.10, §1.11): login, refresh, logout, the session's user and acting context,
//! switching the acting Member, and the caller's admin standing. Tokens are opaque (`ply_at_`/`ply_rt_` + 64 hex)
//! and stored only as HMAC-SHA256 under PLYSTRA_SESSION_SECRET; previous secrets are still accepted.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_postgres::GenericClient;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::auth::credential::{self, Credential, SessionCredential};
use crate::auth::{password, secrets};
use crate::db::{self, rfc3339, Db};
use crate::envelope::Data;
use crate::error::{code, ApiError, ApiResult};
use crate::extract::{ApiJson, OptionalJson};
use crate::request_context::RequestContext;
use crate::store::{admin_grants, audit, login_failures, members, sessions, spaces, user_members, users};

pub const ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
pub const REFRESH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    #[schema(min_length = 1, max_length = 320)]
    pub email: String,
    /// At most 4096 bytes.
    pub password: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    #[schema(required = true, value_type = String, min_length = 1)]
    pub refresh_token: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchMemberBody {
    pub member_id: Option<String>,
    pub user_member_id: Option<String>,
    /// Alias of `user_member_id`.
    pub binding_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionUser {
    pub id: String,
    pub email: String,
    pub status: String,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct SessionActor {
    pub user_id: String,
    pub member_id: String,
    pub user_member_id: String,
    pub space_id: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AvailableMember {
    pub user_member_id: String,
    pub user_id: String,
    pub user_email: String,
    pub member_id: String,
    pub member_display_name: String,
    pub space_id: String,
    pub space_name: String,
    pub relation_type: String,
    pub is_primary: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: String,
    pub expires_at: String,
    pub refresh_expires_at: String,
    pub user: SessionUser,
    pub actor: SessionActor,
    pub available_members: Vec<AvailableMember>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefreshResponse {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: String,
    pub expires_at: String,
    pub refresh_expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActorContextResponse {
    pub session_id: String,
    pub user: SessionUser,
    pub actor: Option<SessionActor>,
    pub available_members: Vec<AvailableMember>,
    pub expires_at: String,
    pub refresh_expires_at: String,
}

/// The bindings a user may act through (the extension's `plystra.usable_bindings`, the one statement of the
/// rule), primary first, then by Space name and Member name (the login default is [`default_binding`]'s).
pub async fn available_members(client: &(impl GenericClient + Sync), user_id: &str) -> ApiResult<Vec<AvailableMember>> {
    let rows = user_members::usable_of_user(client, user_id).await.map_err(db::internal)?;
    Ok(rows
        .iter()
        .map(|r| AvailableMember {
            user_member_id: r.get(0),
            user_id: r.get(1),
            user_email: r.get(2),
            member_id: r.get(3),
            member_display_name: r.get(4),
            space_id: r.get(5),
            space_name: r.get(6),
            relation_type: r.get(7),
            is_primary: r.get(8),
        })
        .collect())
}

/// The binding a login acts through by default: the primary one (set only by the user or an instance
/// `users:manage` holder), else the oldest. Not the first by Space name: a Space admin may rename its Space, and
/// a binding added to a user later (by anyone) does not take over their default (security review F11).
async fn default_binding(
    client: &(impl GenericClient + Sync),
    members: &[AvailableMember],
) -> ApiResult<AvailableMember> {
    let ids: Vec<&str> = members.iter().map(|m| m.user_member_id.as_str()).collect();
    let chosen = user_members::default_of(client, &ids).await.map_err(db::internal)?;
    members
        .iter()
        .find(|m| Some(&m.user_member_id) == chosen.as_ref())
        .or_else(|| members.first())
        .cloned()
        .ok_or_else(ApiError::internal)
}

fn actor_of(b: &AvailableMember) -> SessionActor {
    SessionActor {
        user_id: b.user_id.clone(),
        member_id: b.member_id.clone(),
        user_member_id: b.user_member_id.clone(),
        space_id: b.space_id.clone(),
    }
}

fn bad_credentials() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code::AUTHENTICATION_REQUIRED, "Email or password is incorrect.")
}

fn with_retry_after(mut response: Response, seconds: i64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&seconds.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

fn locked(retry_after: i64) -> Response {
    let response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        code::LOGIN_LOCKED,
        "Too many failed logins for this account. Try again later.",
    )
    .with_details(json!({ "retry_after_seconds": retry_after.max(1) }))
    .into_response();
    with_retry_after(response, retry_after)
}

/// 429 LOGIN_THROTTLED: the server's password-hashing budget is busy, or this client address made too many
/// failed logins for new addresses within the window.
fn throttled(retry_after: i64, message: &'static str) -> Response {
    let response = ApiError::new(StatusCode::TOO_MANY_REQUESTS, code::LOGIN_THROTTLED, message)
        .with_details(json!({ "retry_after_seconds": retry_after.max(1) }))
        .into_response();
    with_retry_after(response, retry_after)
}

/// One login attempt reserved for an address before its password is verified (security review F6).
/// What this process knows of a client address's logins: how many it has in progress (each holds one of the
/// address's slots, at most half of PLYSTRA_AUTH_LOGIN_CONCURRENCY), and until when its budget of failed logins
/// is spent (`AppState::login_addresses`). Entries go when they no longer hold anything.
#[derive(Default)]
pub struct LoginAddresses {
    slots: std::collections::HashMap<String, usize>,
    spent_until: std::collections::HashMap<String, std::time::Instant>,
}

/// Spent budgets remembered at most (past it, expired ones are dropped, then new ones are not remembered: the
/// database still refuses them).
const SPENT_REMEMBERED: usize = 10_000;

impl LoginAddresses {
    /// One of `address`'s login slots (held until the login is answered), or the seconds to wait: its slots
    /// are all taken, or its budget of failed logins is spent.
    fn take(state: &AppState, address: Option<String>) -> Result<Option<Slot>, i64> {
        let Some(address) = address else { return Ok(None) };
        let mut known = state.login_addresses.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(until) = known.spent_until.get(&address).copied() {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if !left.is_zero() {
                return Err(left.as_secs().max(1) as i64);
            }
            known.spent_until.remove(&address);
        }
        let per_address = (state.config.login_concurrency / 2).max(1);
        let taken = known.slots.entry(address.clone()).or_insert(0);
        if *taken >= per_address {
            return Err(1);
        }
        *taken += 1;
        Ok(Some(Slot { state: state.clone(), address }))
    }

    /// Remembers that `address` spent its budget of failed logins for `wait` seconds.
    fn spent(state: &AppState, address: &str, wait: i64) {
        let mut known = state.login_addresses.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        if known.spent_until.len() >= SPENT_REMEMBERED {
            known.spent_until.retain(|_, until| *until > now);
        }
        if known.spent_until.len() < SPENT_REMEMBERED {
            known.spent_until.insert(address.to_string(), now + Duration::from_secs(wait.max(1) as u64));
        }
    }
}

/// A login slot of a client address (see [`LoginAddresses::take`]), given back when dropped.
struct Slot {
    state: AppState,
    address: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut known = self.state.login_addresses.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = known.slots.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                known.slots.remove(&self.address);
            }
        }
    }
}

struct Reservation {
    /// `lower(email)`, computed by PostgreSQL as the user lookup does.
    email_key: String,
    /// Attempts in the window, this one included; over the limit means refused without evaluation.
    attempt: i32,
    /// Seconds the address stays locked (when it is).
    locked_for: Option<i64>,
    /// Whether this attempt created the address's row (counted against the client address).
    new_row: bool,
}

/// Reserves the attempt in one statement: the row is locked by the upsert, so concurrent attempts at one
/// address are counted one after another and never more than PLYSTRA_AUTH_LOGIN_MAX_FAILURES are evaluated
/// per window. The attempt that reaches the limit sets the lock-out at once; a success deletes the row.
async fn reserve_attempt(
    client: &(impl GenericClient + Sync),
    state: &AppState,
    email: &str,
) -> ApiResult<Reservation> {
    let config = &state.config;
    let max = config.login_max_failures as i32;
    let window = config.login_window.as_secs_f64();
    let lockout = config.login_lockout.as_secs_f64();
    let row = login_failures::reserve_attempt(client, email, max, window, lockout).await.map_err(db::internal)?;
    Ok(Reservation { email_key: row.get(0), attempt: row.get(1), locked_for: row.get(2), new_row: row.get(3) })
}

/// The client address's key, in the database's failed-login budgets (no `@`, so it never equals an e-mail key) and
/// this process's login slots: the address, or an IPv6 address's /64 (`client_ip::network`).
fn ip_key(ctx: &RequestContext) -> Option<String> {
    ctx.ip.map(|ip| format!("ip:{}", crate::client_ip::network(ip)))
}

/// Seconds until the client address may try again, when it created PLYSTRA_AUTH_LOGIN_MAX_FAILURES_PER_IP
/// rows for addresses within the window.
async fn ip_budget_spent(client: &(impl GenericClient + Sync), state: &AppState, key: &str) -> ApiResult<Option<i64>> {
    let row = login_failures::address_budget(client, key, state.config.login_window.as_secs_f64())
        .await
        .map_err(db::internal)?;
    Ok(row.filter(|r| r.get::<_, i32>(0) as i64 >= state.config.login_max_failures_per_ip as i64).map(|r| r.get(1)))
}

/// Counts one new address row against the client address.
async fn count_ip(client: &(impl GenericClient + Sync), state: &AppState, key: &str) -> ApiResult<()> {
    let window = state.config.login_window.as_secs_f64();
    login_failures::count_address(client, key, window).await.map_err(db::internal)?;
    Ok(())
}

/// Deletes the rows whose window ran out and whose lock-out (if any) ended: they would start afresh anyway.
/// At most once a minute per server.
async fn prune_failures(client: &(impl GenericClient + Sync), state: &AppState) {
    {
        let mut last = state.login_pruned_at.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(60)) {
            return;
        }
        *last = Some(std::time::Instant::now());
    }
    let result = login_failures::prune(client, state.config.login_window.as_secs_f64()).await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not prune expired login_failures rows");
    }
}

/// Whether the installed extension has `plystra.audit_auth_event` (schema 006). A front running against an
/// older extension (during an upgrade) keeps logins working without these rows and says so once; once seen,
/// the function is not looked up again.
async fn auth_audit_available(tx: &(impl GenericClient + Sync)) -> ApiResult<bool> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static PRESENT: AtomicBool = AtomicBool::new(false);
    static WARNED: AtomicBool = AtomicBool::new(false);
    if PRESENT.load(Ordering::Relaxed) {
        return Ok(true);
    }
    let present = audit::auth_event_available(tx).await.map_err(db::internal)?;
    if present {
        PRESENT.store(true, Ordering::Relaxed);
    } else if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "the plystra extension has no plystra.audit_auth_event (schema 006): authentication events are not audited until it is updated"
        );
    }
    Ok(present)
}

/// Appends one authentication event to the audit trail (security review F14), in `client`'s transaction: the
/// request context first, then `plystra.audit_auth_event`. No password, hash or token is ever passed.
pub async fn audit_auth_event(
    tx: &(impl GenericClient + Sync),
    ctx: &RequestContext,
    action: &str,
    user_id: Option<&str>,
    space_id: Option<&str>,
    decision: &str,
    details: Value,
) -> ApiResult<()> {
    if !auth_audit_available(tx).await? {
        return Ok(());
    }
    // The session an event is about is its credential (a login's new session, a refresh's, a logout's); a
    // failed login has none.
    let session = user_id.zip(details.get("session_id").and_then(Value::as_str));
    let event = audit::AuthEvent { action, user_id, space_id, decision, details: &details };
    audit::auth_event(tx, ctx, session, &event).await.map_err(db::internal)
}

/// What the first, short checkout of a login found.
enum Admission {
    Refused(Response),
    Evaluate(Reservation, Option<tokio_postgres::Row>),
}

/// The login's first checkout: prune, the client address's budget, the attempt's reservation, the user.
async fn admit(state: &AppState, db: &mut Db, ctx: &RequestContext, email: &str) -> ApiResult<Admission> {
    let client = db.connection().await?;
    prune_failures(&**client, state).await;
    let ip = ip_key(ctx);
    if let Some(key) = &ip {
        if let Some(wait) = ip_budget_spent(&**client, state, key).await? {
            LoginAddresses::spent(state, key, wait);
            return Ok(Admission::Refused(throttled(
                wait,
                "Too many failed logins from this address. Try again later.",
            )));
        }
    }
    let reservation = reserve_attempt(&**client, state, email).await?;
    if reservation.attempt > state.config.login_max_failures as i32 {
        return Ok(Admission::Refused(locked(reservation.locked_for.unwrap_or(1))));
    }
    if let (true, Some(key)) = (reservation.new_row, &ip) {
        count_ip(&**client, state, key).await?;
    }
    // lower() on both sides, in PostgreSQL only: the key above is the same function's result.
    let user = users::for_login(&**client, &reservation.email_key).await.map_err(db::internal)?;
    Ok(Admission::Evaluate(reservation, user))
}

struct NewTokens {
    access: String,
    refresh: String,
    access_hash: String,
    refresh_hash: String,
}

/// A fresh access token and the refresh token of the session's `generation` (see
/// [`secrets::refresh_token`]: an old refresh token can be recognised when it comes back).
fn new_tokens(state: &AppState, session_id: &str, generation: u32) -> NewTokens {
    let access = format!("{}{}", secrets::ACCESS_PREFIX, secrets::random_hex(32));
    let secret = state.config.session_secret();
    let refresh = secrets::refresh_token(secret, session_id, generation)
        .unwrap_or_else(|| format!("{}{}", secrets::REFRESH_PREFIX, secrets::random_hex(32)));
    NewTokens {
        access_hash: secrets::hmac_hex(secret, &access),
        refresh_hash: secrets::hmac_hex(secret, &refresh),
        access,
        refresh,
    }
}

#[utoipa::path(post, operation_id = "login", path = "/api/v1/auth/login", tag = "Auth", request_body = LoginBody,
    responses((status = 200, description = "A new session", body = crate::envelope::Envelope<LoginResponse>),
              (status = 401, description = "AUTHENTICATION_REQUIRED: email or password is incorrect, or the user is not active", body = crate::error::ErrorEnvelope),
              (status = 403, description = "ACTIVE_MEMBER_REQUIRED", body = crate::error::ErrorEnvelope),
              (status = 429, description = "LOGIN_LOCKED (this address) or LOGIN_THROTTLED (hashing budget busy, or too many failed logins from this client address), with Retry-After", body = crate::error::ErrorEnvelope)))]
pub async fn login(
    State(state): State<AppState>,
    mut db: Db,
    ctx: RequestContext,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<Response> {
    let email = body.email.trim();
    if email.is_empty() {
        return Err(ApiError::required("email"));
    }
    if email.len() > 320 {
        return Err(ApiError::validation("email", "email is longer than 320 characters."));
    }
    if body.password.len() > 4096 {
        return Err(ApiError::validation("password", "password is longer than 4096 bytes."));
    }
    if !email.contains('@') {
        // No user has such an address (users_email_format); nothing to count or hash.
        return Err(bad_credentials());
    }
    // Argon2id takes tens of milliseconds and 64 MiB: at most PLYSTRA_AUTH_LOGIN_CONCURRENCY at once; the
    // rest are answered at once instead of queueing behind them.
    // One client address may not take every slot from the others (a user signing in in a loop, a flood of
    // made-up e-mails): it has at most half of them at once (at least one), and once its budget of failed logins
    // is spent it is refused before it takes one, until its window ends (remembered by this process).
    let _slot = match LoginAddresses::take(&state, ip_key(&ctx)) {
        Ok(slot) => slot,
        Err(wait) => return Ok(throttled(wait, "Too many logins from this address. Try again shortly.")),
    };
    let Ok(permit) = state.login_permits.clone().try_acquire_owned() else {
        return Ok(throttled(1, "Too many logins are being processed. Try again shortly."));
    };
    let (reservation, user) = match admit(&state, &mut db, &ctx, email).await? {
        Admission::Refused(response) => return Ok(response),
        Admission::Evaluate(reservation, user) => (reservation, user),
    };
    // No pooled connection is held while hashing. An unknown e-mail costs the same.
    let hash: Option<String> = user.as_ref().and_then(|u| u.get("password_hash"));
    let given = body.password.clone();
    let ok = tokio::task::spawn_blocking(move || match hash {
        Some(h) => password::verify(&given, &h),
        None => {
            password::verify_dummy(&given);
            false
        }
    })
    .await
    .map_err(|_| ApiError::internal())?;
    drop(permit);

    let mut client = db.connection().await?;
    let user = user.map(|u| SessionUser { id: u.get("id"), email: u.get("email"), status: u.get("status") });
    // A user who is not active gets the wrong password's answer, whatever the password (no oracle).
    let accepted = user.as_ref().is_some_and(|u| ok && u.status == "active");
    let (true, Some(user)) = (accepted, user.clone()) else {
        let tx = client.transaction().await.map_err(db::internal)?;
        let user_id = user.as_ref().map(|u| u.id.as_str());
        let reason = match (&user, ok) {
            (None, _) => "unknown_email",
            (Some(_), true) => "user_inactive",
            (Some(_), false) => "wrong_password",
        };
        let details = json!({ "reason": reason, "email": reservation.email_key, "attempt": reservation.attempt });
        audit_auth_event(&*tx, &ctx, "auth.login_failed", user_id, None, "deny", details).await?;
        if reservation.attempt >= state.config.login_max_failures as i32 {
            let details = json!({ "email": reservation.email_key, "failures": reservation.attempt,
                                  "locked_for_seconds": reservation.locked_for });
            audit_auth_event(&*tx, &ctx, "auth.locked_out", user_id, None, "deny", details).await?;
        }
        tx.commit().await.map_err(db::internal)?;
        return Err(bad_credentials());
    };
    login_failures::clear(&**client, &reservation.email_key).await.map_err(db::internal)?;
    // The client address's budget is for failed logins: a success gives back what its attempt counted (else a
    // hundred sign-ins from one address in a window, an office behind one NAT, locked everyone there out).
    if let (true, Some(key)) = (reservation.new_row, ip_key(&ctx)) {
        let window = state.config.login_window.as_secs_f64();
        login_failures::uncount_address(&**client, &key, window).await.map_err(db::internal)?;
    }
    let members = available_members(&**client, &user.id).await?;
    if members.is_empty() {
        let tx = client.transaction().await.map_err(db::internal)?;
        let details = json!({ "reason": "no_active_member", "email": reservation.email_key });
        audit_auth_event(&*tx, &ctx, "auth.login_failed", Some(&user.id), None, "deny", details).await?;
        tx.commit().await.map_err(db::internal)?;
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            code::ACTIVE_MEMBER_REQUIRED,
            "User has no active Member binding.",
        ));
    }
    let actor = actor_of(&default_binding(&**client, &members).await?);
    let session_id = secrets::new_session_id();
    let tokens = new_tokens(&state, &session_id, 0);
    let tx = client.transaction().await.map_err(db::internal)?;
    let new_session = sessions::NewSession {
        id: &session_id,
        user_id: &user.id,
        space_id: &actor.space_id,
        member_id: &actor.member_id,
        user_member_id: &actor.user_member_id,
        access_hash: &tokens.access_hash,
        refresh_hash: &tokens.refresh_hash,
        access_ttl_secs: ACCESS_TTL.as_secs_f64(),
        refresh_ttl_secs: REFRESH_TTL.as_secs_f64(),
        ip: ctx.ip_string(),
        user_agent: ctx.user_agent.as_deref(),
    };
    let row = sessions::create(&*tx, &new_session).await.map_err(db::internal)?;
    users::touch_last_login(&*tx, &user.id).await.map_err(db::internal)?;
    let details =
        json!({ "session_id": session_id, "member_id": actor.member_id, "user_member_id": actor.user_member_id });
    audit_auth_event(&*tx, &ctx, "auth.login_succeeded", Some(&user.id), Some(&actor.space_id), "allow", details)
        .await?;
    tx.commit().await.map_err(db::internal)?;
    Ok(Data::ok(LoginResponse {
        access_token: tokens.access,
        refresh_token: tokens.refresh,
        token_type: "Bearer".into(),
        expires_at: rfc3339(row.get(0)),
        refresh_expires_at: rfc3339(row.get(1)),
        user,
        actor,
        available_members: members,
    })
    .into_response())
}

fn session_expired() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code::SESSION_EXPIRED, "Refresh token is invalid or expired.")
}

/// Refresh-token reuse: a refresh token this server issued for a session, but no longer that session's current
/// one, was rotated already, so two parties hold the session (a stolen token). The whole session ends: the
/// party holding the newer tokens is logged out too, and the user logs in again.
async fn end_reused_session(client: &(impl GenericClient + Sync), state: &AppState, token: &str) -> ApiResult<()> {
    let Some((session_id, _)) = secrets::refresh_token_parts(token) else { return Ok(()) };
    let config = &state.config;
    let secrets_list: Vec<&str> = std::iter::once(config.session_secret())
        .chain(config.session_secret_previous.iter().map(String::as_str))
        .collect();
    if !secrets::refresh_token_is_genuine(&secrets_list, &session_id, token) {
        return Ok(());
    }
    let ended = sessions::end(client, &session_id).await.map_err(db::internal)?;
    if ended > 0 {
        tracing::warn!(session_id = %session_id, "a refresh token was used again after rotation: the session is ended");
    }
    Ok(())
}

#[utoipa::path(post, operation_id = "refresh_session", path = "/api/v1/auth/refresh", tag = "Auth", request_body = RefreshBody,
    responses((status = 200, description = "Both tokens rotated; the old refresh token stops working, and presenting it again ends the whole session", body = crate::envelope::Envelope<RefreshResponse>),
              (status = 401, description = "SESSION_EXPIRED", body = crate::error::ErrorEnvelope)))]
pub async fn refresh(
    State(state): State<AppState>,
    mut db: Db,
    ctx: RequestContext,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<Data<RefreshResponse>> {
    let token = body.refresh_token.filter(|t| !t.is_empty()).ok_or_else(|| ApiError::required("refresh_token"))?;
    if !secrets::well_formed(&token, secrets::REFRESH_PREFIX) {
        return Err(session_expired());
    }
    let config = &state.config;
    let hashes = secrets::candidate_hashes(Some(config.session_secret()), &config.session_secret_previous, &token);
    let mut client = db.connection().await?;
    let live = sessions::live_by_refresh(&**client, &hashes).await.map_err(db::internal)?;
    let Some(live) = live else {
        end_reused_session(&**client, &state, &token).await?;
        return Err(session_expired());
    };
    let session_id: String = live.get(0);
    let generation = secrets::refresh_token_parts(&token).map_or(0, |(_, g)| g.wrapping_add(1));
    let tokens = new_tokens(&state, &session_id, generation);
    let tx = client.transaction().await.map_err(db::internal)?;
    // One statement: the row is rotated only if the presented token is still its refresh token, so two
    // concurrent refreshes with the same token cannot both succeed.
    let (access_ttl, refresh_ttl) = (ACCESS_TTL.as_secs_f64(), REFRESH_TTL.as_secs_f64());
    let row = sessions::rotate(
        &*tx,
        &hashes,
        &session_id,
        &tokens.access_hash,
        &tokens.refresh_hash,
        access_ttl,
        refresh_ttl,
    )
    .await
    .map_err(db::internal)?
    .ok_or_else(session_expired)?;
    let (session_id, user_id, space_id): (String, String, Option<String>) = (row.get(2), row.get(3), row.get(4));
    let details = json!({ "session_id": session_id });
    audit_auth_event(&*tx, &ctx, "auth.refreshed", Some(&user_id), space_id.as_deref(), "allow", details).await?;
    tx.commit().await.map_err(db::internal)?;
    Ok(Data::ok(RefreshResponse {
        access_token: tokens.access,
        refresh_token: tokens.refresh,
        token_type: "Bearer".into(),
        expires_at: rfc3339(row.get(0)),
        refresh_expires_at: rfc3339(row.get(1)),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogoutResponse {
    pub logged_out: bool,
}

#[utoipa::path(post, operation_id = "logout", path = "/api/v1/auth/logout", tag = "Auth", request_body(content = Option<RefreshBody>),
    responses((status = 200, description = "The session is revoked", body = crate::envelope::Envelope<LogoutResponse>),
              (status = 401, description = "AUTHENTICATION_REQUIRED", body = crate::error::ErrorEnvelope)))]
pub async fn logout(
    State(state): State<AppState>,
    mut db: Db,
    ctx: RequestContext,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<RefreshBody>,
) -> ApiResult<Data<LogoutResponse>> {
    let config = &state.config;
    let candidates =
        |token: &str| secrets::candidate_hashes(Some(config.session_secret()), &config.session_secret_previous, token);
    let access: Vec<String> = credential::bearer(&headers)
        .filter(|t| secrets::well_formed(t, secrets::ACCESS_PREFIX))
        .map(|t| candidates(&t))
        .unwrap_or_default();
    let refresh: Vec<String> = body
        .refresh_token
        .filter(|t| secrets::well_formed(t, secrets::REFRESH_PREFIX))
        .map(|t| candidates(&t))
        .unwrap_or_default();
    if access.is_empty() && refresh.is_empty() {
        return Err(credential::authentication_required());
    }
    let mut client = db.connection().await?;
    let tx = client.transaction().await.map_err(db::internal)?;
    let ended = sessions::end_by_tokens(&*tx, &access, &refresh).await.map_err(db::internal)?;
    if ended.is_empty() {
        return Err(credential::authentication_required());
    }
    for row in &ended {
        let (session_id, user_id, space_id): (String, String, Option<String>) = (row.get(0), row.get(1), row.get(2));
        let details = json!({ "session_id": session_id });
        audit_auth_event(&*tx, &ctx, "auth.logged_out", Some(&user_id), space_id.as_deref(), "allow", details).await?;
    }
    tx.commit().await.map_err(db::internal)?;
    Ok(Data::ok(LogoutResponse { logged_out: true }))
}

/// The bearer session of a self-checking route, or 401.
async fn own_session(
    state: &AppState,
    db: &mut Db,
    headers: &HeaderMap,
) -> ApiResult<(deadpool_postgres::Object, SessionCredential)> {
    let client = db.connection().await?;
    let token = credential::bearer(headers).ok_or_else(credential::authentication_required)?;
    let session = credential::session_for_access_token(&client, &state.config, &token)
        .await
        .map_err(db::internal)?
        .ok_or_else(credential::authentication_required)?;
    Ok((client, session))
}

async fn context_of(client: &(impl GenericClient + Sync), s: &SessionCredential) -> ApiResult<ActorContextResponse> {
    let members = available_members(client, &s.user_id).await?;
    // The session's binding counts only while it is still one the user may act through.
    let actor =
        s.active_user_member_id.as_deref().and_then(|um| members.iter().find(|m| m.user_member_id == um)).map(actor_of);
    Ok(ActorContextResponse {
        session_id: s.session_id.clone(),
        user: SessionUser { id: s.user_id.clone(), email: s.email.clone(), status: s.user_status.clone() },
        actor,
        available_members: members,
        expires_at: rfc3339(s.expires_at),
        refresh_expires_at: rfc3339(s.refresh_expires_at),
    })
}

#[utoipa::path(get, operation_id = "get_me", path = "/api/v1/auth/me", tag = "Auth",
    responses((status = 200, description = "The session's user and acting context", body = crate::envelope::Envelope<ActorContextResponse>),
              (status = 401, description = "AUTHENTICATION_REQUIRED", body = crate::error::ErrorEnvelope)))]
pub async fn me(
    State(state): State<AppState>,
    mut db: Db,
    headers: HeaderMap,
) -> ApiResult<Data<ActorContextResponse>> {
    let (client, session) = own_session(&state, &mut db, &headers).await?;
    Ok(Data::ok(context_of(&**client, &session).await?))
}

#[utoipa::path(get, operation_id = "get_actor_context", path = "/api/v1/actor/context", tag = "Auth",
    responses((status = 200, description = "The acting Member and the bindings available to the session", body = crate::envelope::Envelope<ActorContextResponse>),
              (status = 401, description = "AUTHENTICATION_REQUIRED", body = crate::error::ErrorEnvelope)))]
pub async fn actor_context(
    State(state): State<AppState>,
    mut db: Db,
    headers: HeaderMap,
) -> ApiResult<Data<ActorContextResponse>> {
    let (client, session) = own_session(&state, &mut db, &headers).await?;
    Ok(Data::ok(context_of(&**client, &session).await?))
}

#[utoipa::path(post, operation_id = "switch_member", path = "/api/v1/actor/switch-member", tag = "Auth", request_body = SwitchMemberBody,
    responses((status = 200, description = "The session now acts through this binding", body = crate::envelope::Envelope<ActorContextResponse>),
              (status = 401, description = "AUTHENTICATION_REQUIRED", body = crate::error::ErrorEnvelope),
              (status = 403, description = "ACTIVE_MEMBER_REQUIRED", body = crate::error::ErrorEnvelope)))]
pub async fn switch_member(
    State(state): State<AppState>,
    mut db: Db,
    ctx: RequestContext,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SwitchMemberBody>,
) -> ApiResult<Data<ActorContextResponse>> {
    let (mut client, mut session) = own_session(&state, &mut db, &headers).await?;
    let wanted_binding = body.user_member_id.or(body.binding_id).filter(|s| !s.is_empty());
    let wanted_member = body.member_id.filter(|s| !s.is_empty());
    if wanted_binding.is_none() && wanted_member.is_none() {
        return Err(ApiError::required("user_member_id"));
    }
    let members = available_members(&**client, &session.user_id).await?;
    let chosen = members
        .iter()
        .find(|m| {
            wanted_binding.as_deref().is_none_or(|b| m.user_member_id == b)
                && wanted_member.as_deref().is_none_or(|mm| m.member_id == mm)
        })
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                code::ACTIVE_MEMBER_REQUIRED,
                "The requested Member is not an active binding of the session user.",
            )
        })?;
    let tx = client.transaction().await.map_err(db::internal)?;
    sessions::switch_binding(&*tx, &session.session_id, &chosen.space_id, &chosen.member_id, &chosen.user_member_id)
        .await
        .map_err(db::internal)?;
    // Each Space's trail names only its own bindings: a switch from another Space's binding is recorded in the new
    // Space without the previous binding's id, and in the Space left as a row of its own (its audit readers learn
    // that the session stopped acting there, not where it went).
    let previous_space = session.active_space_id.as_deref().filter(|s| *s != chosen.space_id);
    let previous_here = if previous_space.is_none() { session.active_user_member_id.as_deref() } else { None };
    let details = json!({ "session_id": session.session_id, "member_id": chosen.member_id,
                          "user_member_id": chosen.user_member_id,
                          "previous_user_member_id": previous_here });
    let space = Some(chosen.space_id.as_str());
    audit_auth_event(&*tx, &ctx, "auth.member_switched", Some(&session.user_id), space, "allow", details).await?;
    if let (Some(left), Some(previous)) = (previous_space, session.active_user_member_id.as_deref()) {
        let details = json!({ "session_id": session.session_id, "previous_user_member_id": previous,
                              "switched_to_another_space": true });
        audit_auth_event(&*tx, &ctx, "auth.member_switched", Some(&session.user_id), Some(left), "allow", details)
            .await?;
    }
    tx.commit().await.map_err(db::internal)?;
    session.active_space_id = Some(chosen.space_id.clone());
    session.active_member_id = Some(chosen.member_id.clone());
    session.active_user_member_id = Some(chosen.user_member_id.clone());
    Ok(Data::ok(context_of(&**client, &session).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminMe {
    pub credential_type: String,
    /// The credential's standing: instance_super_admin, instance_admin, space_admin, group_admin or none (an
    /// API key's is its level's, never above its creator's).
    pub standing: String,
    pub session_id: Option<String>,
    pub user_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub active_space: Value,
    #[schema(value_type = Option<Object>)]
    pub active_member: Value,
    pub grants: Vec<crate::api::admin_grants::AdminGrantDto>,
    #[schema(value_type = Object)]
    pub capabilities: Value,
    #[schema(value_type = Option<Object>)]
    pub api_key: Value,
}

#[utoipa::path(get, operation_id = "get_admin_me", path = "/api/v1/admin/me", tag = "Auth",
    responses((status = 200, description = "The caller's own standing, admin grants and capabilities (any credential)", body = crate::envelope::Envelope<AdminMe>),
              (status = 401, description = "AUTHENTICATION_REQUIRED", body = crate::error::ErrorEnvelope)))]
pub async fn admin_me(State(state): State<AppState>, mut db: Db, headers: HeaderMap) -> ApiResult<Data<AdminMe>> {
    // Any authenticated credential may read its own standing (a Space or group admin included): the route checks
    // its own credential instead of requiring an instance permission.
    let client = db.connection().await?;
    let credential = credential::authenticate(&client, &state.config, &headers).await?;
    let standing = crate::standing::of_credential(&client, &credential).await?.name().to_string();
    match credential {
        Credential::Session(s) => {
            let rows = admin_grants::active_of_user(&**client, &s.user_id).await.map_err(db::internal)?;
            let grants: Vec<_> = rows.iter().map(crate::api::admin_grants::dto).collect();
            let mut capabilities = serde_json::Map::new();
            for g in &grants {
                capabilities.insert(g.permission_key.clone(), json!(true));
                if g.level == "instance_super_admin" {
                    capabilities.insert("*".into(), json!(true));
                }
            }
            let space = match &s.active_space_id {
                Some(id) => spaces::name_of(&**client, id)
                    .await
                    .map_err(db::internal)?
                    .map(|r| json!({"id": r.get::<_, String>(0), "name": r.get::<_, String>(1)}))
                    .unwrap_or(Value::Null),
                None => Value::Null,
            };
            let member = match &s.active_member_id {
                Some(id) => members::display_name_of(&**client, id)
                    .await
                    .map_err(db::internal)?
                    .map(|r| {
                        json!({"id": r.get::<_, String>(0), "display_name": r.get::<_, String>(1),
                               "user_member_id": s.active_user_member_id})
                    })
                    .unwrap_or(Value::Null),
                None => Value::Null,
            };
            Ok(Data::ok(AdminMe {
                credential_type: "session".into(),
                standing,
                session_id: Some(s.session_id),
                user_id: Some(s.user_id),
                active_space: space,
                active_member: member,
                grants,
                capabilities: Value::Object(capabilities),
                api_key: Value::Null,
            }))
        }
        Credential::ApiKey(k) => {
            let capabilities: serde_json::Map<String, Value> =
                k.permission_keys.iter().map(|p| (p.clone(), json!(true))).collect();
            Ok(Data::ok(AdminMe {
                credential_type: "api_key".into(),
                standing,
                session_id: None,
                user_id: k.created_by_user_id.clone(),
                active_space: Value::Null,
                active_member: Value::Null,
                grants: Vec::new(),
                capabilities: Value::Object(capabilities),
                api_key: json!({"id": k.id, "name": k.name, "level": k.level, "space_id": k.space_id,
                                "group_id": k.group_id, "permission_keys": k.permission_keys}),
            }))
        }
    }
}
