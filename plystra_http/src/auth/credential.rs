//! The caller's credential: a bearer session (`Authorization: Bearer ply_at_…`) or an API key
//! (`X-Plystra-API-Key: ply_ak_…` or `Authorization: Bearer ply_ak_…`), looked up by HMAC in the database.

use axum::http::{header, HeaderMap, StatusCode};
use deadpool_postgres::GenericClient;
use time::OffsetDateTime;

use crate::auth::secrets::{self, API_KEY_PREFIX};
use crate::config::Config;
use crate::db;
use crate::error::{code, ApiError};

pub const API_KEY_HEADER: &str = "x-plystra-api-key";

#[derive(Debug, Clone)]
pub struct SessionCredential {
    pub session_id: String,
    pub user_id: String,
    pub email: String,
    pub user_status: String,
    pub active_space_id: Option<String>,
    pub active_member_id: Option<String>,
    pub active_user_member_id: Option<String>,
    pub expires_at: OffsetDateTime,
    pub refresh_expires_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct ApiKeyCredential {
    pub id: String,
    pub name: String,
    pub level: String,
    pub space_id: Option<String>,
    pub group_id: Option<String>,
    pub permission_keys: Vec<String>,
    pub created_by_user_id: Option<String>,
    pub created_by_member_id: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Credential {
    Session(SessionCredential),
    ApiKey(ApiKeyCredential),
}

impl Credential {
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::Session(_) => "session",
            Credential::ApiKey(_) => "api_key",
        }
    }

    /// The user acting (the session's user, or the key's creator).
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Credential::Session(s) => Some(&s.user_id),
            Credential::ApiKey(k) => k.created_by_user_id.as_deref(),
        }
    }
}

tokio::task_local! {
    static CURRENT: Credential;
}

/// Runs `f` with `credential` as the request's credential (read by [`current`]).
pub async fn scope<F: std::future::Future>(credential: Credential, f: F) -> F::Output {
    CURRENT.scope(credential, f).await
}

/// The credential the protection seam accepted for this request, if any.
pub fn current() -> Option<Credential> {
    CURRENT.try_with(|c| c.clone()).ok()
}

pub fn authentication_required() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code::AUTHENTICATION_REQUIRED, "A valid access token is required.")
}

/// What the request presents: a bearer token and/or an API key.
pub enum Presented {
    None,
    SessionToken(String),
    ApiKey(String),
}

pub fn presented(headers: &HeaderMap) -> Presented {
    let api_key_header = headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok()).map(|s| s.trim().to_string());
    if let Some(k) = api_key_header.filter(|k| !k.is_empty()) {
        return Presented::ApiKey(k);
    }
    match bearer(headers) {
        Some(t) if t.starts_with(API_KEY_PREFIX) => Presented::ApiKey(t),
        Some(t) => Presented::SessionToken(t),
        None => Presented::None,
    }
}

/// The token of `Authorization: Bearer <token>` (the scheme is case-insensitive).
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

const SESSION_SQL: &str = "\
SELECT s.id, s.user_id, u.email, u.status, s.active_space_id, s.active_member_id, s.active_user_member_id,
       s.access_token_hash, s.expires_at, s.refresh_expires_at
FROM plystra.sessions s
JOIN plystra.users u ON u.id = s.user_id AND u.status = 'active' AND u.deleted_at IS NULL
WHERE s.access_token_hash = ANY($1) AND s.revoked_at IS NULL AND s.expires_at > now()";

/// The live session of an access token (not revoked, not expired, its user active), or `None`.
pub async fn session_for_access_token(
    client: &impl GenericClient,
    config: &Config,
    token: &str,
) -> Result<Option<SessionCredential>, tokio_postgres::Error> {
    if !secrets::well_formed(token, secrets::ACCESS_PREFIX) {
        return Ok(None);
    }
    let hashes = secrets::candidate_hashes(Some(config.session_secret()), &config.session_secret_previous, token);
    let Some(row) = db::query_opt_cached(client, SESSION_SQL, &[&hashes]).await? else { return Ok(None) };
    let stored: String = row.get("access_token_hash");
    if !secrets::matches_any(&stored, &hashes) {
        return Ok(None);
    }
    Ok(Some(SessionCredential {
        session_id: row.get("id"),
        user_id: row.get("user_id"),
        email: row.get("email"),
        user_status: row.get("status"),
        active_space_id: row.get("active_space_id"),
        active_member_id: row.get("active_member_id"),
        active_user_member_id: row.get("active_user_member_id"),
        expires_at: row.get("expires_at"),
        refresh_expires_at: row.get("refresh_expires_at"),
    }))
}

const API_KEY_SQL: &str = "\
SELECT k.id, k.name, k.level, k.space_id, k.group_id, k.key_hash, k.created_by_user_id, k.created_by_member_id,
       ARRAY(SELECT jsonb_array_elements_text(k.permission_keys)) AS permission_keys
FROM plystra.api_keys k
WHERE k.id = $1 AND k.key_hash = ANY($2) AND k.status = 'active' AND k.revoked_at IS NULL
  AND k.deleted_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())";

/// The active API key of a presented plaintext, or `None`.
pub async fn api_key(
    client: &impl GenericClient,
    config: &Config,
    token: &str,
) -> Result<Option<ApiKeyCredential>, tokio_postgres::Error> {
    let Some(id) = secrets::api_key_id(token) else { return Ok(None) };
    let hashes = secrets::candidate_hashes(config.api_key_secret.as_deref(), &config.api_key_secret_previous, token);
    if hashes.is_empty() {
        return Ok(None);
    }
    let Some(row) = db::query_opt_cached(client, API_KEY_SQL, &[&id, &hashes]).await? else { return Ok(None) };
    let stored: String = row.get("key_hash");
    if !secrets::matches_any(&stored, &hashes) {
        return Ok(None);
    }
    Ok(Some(ApiKeyCredential {
        id: row.get("id"),
        name: row.get("name"),
        level: row.get("level"),
        space_id: row.get("space_id"),
        group_id: row.get("group_id"),
        permission_keys: row.get("permission_keys"),
        created_by_user_id: row.get("created_by_user_id"),
        created_by_member_id: row.get("created_by_member_id"),
    }))
}

/// What the presented credential is, as the extension checks it (`plystra.decide_with_credential`): the HMACs of
/// a session token, or an API key's id and HMACs, under the current and the previous secret. 401
/// AUTHENTICATION_REQUIRED, without asking the database, when nothing is presented or the token cannot be one of
/// ours.
pub fn proof(config: &Config, headers: &HeaderMap) -> Result<(&'static str, serde_json::Value), ApiError> {
    match presented(headers) {
        Presented::None => Err(authentication_required()),
        Presented::SessionToken(t) => {
            if !secrets::well_formed(&t, secrets::ACCESS_PREFIX) {
                return Err(authentication_required());
            }
            let hashes = secrets::candidate_hashes(Some(config.session_secret()), &config.session_secret_previous, &t);
            Ok(("session", serde_json::json!({ "session_token_hashes": hashes })))
        }
        Presented::ApiKey(k) => {
            let id = secrets::api_key_id(&k).ok_or_else(authentication_required)?;
            let hashes =
                secrets::candidate_hashes(config.api_key_secret.as_deref(), &config.api_key_secret_previous, &k);
            if hashes.is_empty() {
                return Err(authentication_required());
            }
            Ok(("api_key", serde_json::json!({ "api_key_id": id, "api_key_hashes": hashes })))
        }
    }
}

/// The request's credential, or 401 AUTHENTICATION_REQUIRED when none is presented or it is not valid.
pub async fn authenticate(
    client: &impl GenericClient,
    config: &Config,
    headers: &HeaderMap,
) -> Result<Credential, ApiError> {
    let found = match presented(headers) {
        Presented::None => None,
        Presented::SessionToken(t) => {
            session_for_access_token(client, config, &t).await.map_err(crate::db::internal)?.map(Credential::Session)
        }
        Presented::ApiKey(k) => api_key(client, config, &k).await.map_err(crate::db::internal)?.map(Credential::ApiKey),
    };
    found.ok_or_else(authentication_required)
}
