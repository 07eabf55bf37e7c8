//! The caller's credential: a bearer session (`Authorization: Bearer ply_at_…`) or an API key
//! (`X-Plystra-API-Key: ply_ak_…`, `Authorization: Bearer ply_ak_…`, or the key alone as the whole
//! `Authorization` value, as AuthZEN policy enforcement points send a PDP key), looked up by HMAC in the database.

use axum::http::{header, HeaderMap, StatusCode};
use deadpool_postgres::GenericClient;
use time::OffsetDateTime;

use crate::auth::secrets::{self, API_KEY_PREFIX};
use crate::config::Config;
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
        None => raw_api_key(headers).map_or(Presented::None, Presented::ApiKey),
    }
}

/// An API key given as the whole `Authorization` value, without a scheme (`Authorization: ply_ak_…`): the
/// OpenID AuthZEN todo interop's policy enforcement point sends its PDP key that way. Only an API key is
/// accepted bare; any other value without a scheme (a bare session token included) presents nothing.
fn raw_api_key(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    (value.starts_with(API_KEY_PREFIX) && !value.contains(char::is_whitespace)).then(|| value.to_string())
}

/// The token of `Authorization: Bearer <token>` (the scheme is case-insensitive).
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

/// A presented credential as the extension checks it: the HMACs of a session token, or an API key's id and HMACs,
/// under the current and the previous secret (see [`proof`]).
pub struct Proof {
    /// `session` or `api_key`.
    pub kind: &'static str,
    /// `{"session_token_hashes": [...]}` or `{"api_key_id": ..., "api_key_hashes": [...]}`.
    pub document: serde_json::Value,
    hashes: Vec<String>,
}

impl Proof {
    /// Whether a credential the extension found (a document with its stored `token_hash`) is this one. The
    /// database already matched the HMAC; this compares again here, in constant time, so that accepting a token
    /// never rests on a comparison that is not.
    pub fn confirms(&self, found: &serde_json::Value) -> bool {
        let stored: String = found["token_hash"].as_str().unwrap_or_default().to_string();
        secrets::matches_any(&stored, &self.hashes)
    }
}

/// Asks the extension which live credential `proof` stands for (`plystra.authenticate`: the one rule for a live
/// session and an active API key).
async fn authenticated(
    client: &impl GenericClient,
    proof: &Proof,
) -> Result<Option<Credential>, tokio_postgres::Error> {
    let found = crate::store::credentials::authenticate(client, &proof.document).await?;
    Ok(found.filter(|doc| proof.confirms(doc)).and_then(|doc| credential_of(&doc)))
}

/// A `plystra.authenticate` document as a credential (`None` if it does not read, which the tests rule out).
fn credential_of(doc: &serde_json::Value) -> Option<Credential> {
    let text = |k: &str| doc[k].as_str().map(str::to_string);
    let time = |k: &str| {
        doc[k].as_str().and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
    };
    match doc["kind"].as_str()? {
        "session" => Some(Credential::Session(SessionCredential {
            session_id: text("session_id")?,
            user_id: text("user_id")?,
            email: text("email")?,
            user_status: text("user_status")?,
            active_space_id: text("active_space_id"),
            active_member_id: text("active_member_id"),
            active_user_member_id: text("active_user_member_id"),
            expires_at: time("expires_at")?,
            refresh_expires_at: time("refresh_expires_at")?,
        })),
        "api_key" => Some(Credential::ApiKey(ApiKeyCredential {
            id: text("api_key_id")?,
            name: text("name")?,
            level: text("level")?,
            space_id: text("space_id"),
            group_id: text("group_id"),
            permission_keys: doc["permission_keys"]
                .as_array()?
                .iter()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect(),
            created_by_user_id: text("created_by_user_id"),
            created_by_member_id: text("created_by_member_id"),
        })),
        _ => None,
    }
}

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
    let proof = Proof { kind: "session", document: serde_json::json!({ "session_token_hashes": hashes }), hashes };
    Ok(match authenticated(client, &proof).await? {
        Some(Credential::Session(s)) => Some(s),
        _ => None,
    })
}

/// What the presented credential is, as the extension checks it. 401 AUTHENTICATION_REQUIRED, without asking
/// the database, when nothing is presented or the token cannot be one of ours.
pub fn proof(config: &Config, headers: &HeaderMap) -> Result<Proof, ApiError> {
    match presented(headers) {
        Presented::None => Err(authentication_required()),
        Presented::SessionToken(t) => {
            if !secrets::well_formed(&t, secrets::ACCESS_PREFIX) {
                return Err(authentication_required());
            }
            let hashes = secrets::candidate_hashes(Some(config.session_secret()), &config.session_secret_previous, &t);
            Ok(Proof { kind: "session", document: serde_json::json!({ "session_token_hashes": hashes }), hashes })
        }
        Presented::ApiKey(k) => {
            let id = secrets::api_key_id(&k).ok_or_else(authentication_required)?;
            let hashes =
                secrets::candidate_hashes(config.api_key_secret.as_deref(), &config.api_key_secret_previous, &k);
            if hashes.is_empty() {
                return Err(authentication_required());
            }
            let document = serde_json::json!({ "api_key_id": id, "api_key_hashes": hashes });
            Ok(Proof { kind: "api_key", document, hashes })
        }
    }
}

/// The request's credential, or 401 AUTHENTICATION_REQUIRED when none is presented or it is not valid.
pub async fn authenticate(
    client: &impl GenericClient,
    config: &Config,
    headers: &HeaderMap,
) -> Result<Credential, ApiError> {
    let proof = proof(config, headers)?;
    authenticated(client, &proof).await.map_err(crate::db::internal)?.ok_or_else(authentication_required)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn shown(headers: &HeaderMap) -> (&'static str, String) {
        match presented(headers) {
            Presented::None => ("none", String::new()),
            Presented::SessionToken(t) => ("session", t),
            Presented::ApiKey(k) => ("api_key", k),
        }
    }

    #[test]
    fn an_api_key_is_accepted_bare_or_as_a_bearer_token() {
        let key = format!("ply_ak_ak_x.{}", "ab".repeat(32));
        assert_eq!(shown(&with_authorization(&key)), ("api_key", key.clone()));
        assert_eq!(shown(&with_authorization(&format!("  {key}  "))), ("api_key", key.clone()));
        assert_eq!(shown(&with_authorization(&format!("Bearer {key}"))), ("api_key", key.clone()));
        assert_eq!(shown(&with_authorization(&format!("bearer {key}"))), ("api_key", key.clone()));
    }

    #[test]
    fn nothing_else_is_accepted_without_a_scheme() {
        let session = format!("ply_at_{}", "ab".repeat(32));
        // A bare session token is not a credential: sessions are presented as bearer tokens only.
        assert_eq!(shown(&with_authorization(&session)).0, "none");
        assert_eq!(shown(&with_authorization(&format!("Bearer {session}"))), ("session", session.clone()));
        for other in ["secret", "Basic dXNlcjpwYXNz", "ply_ak_ two words", "Token ply_ak_x"] {
            assert_eq!(shown(&with_authorization(other)).0, "none", "{other}");
        }
        assert_eq!(shown(&HeaderMap::new()).0, "none");
    }
}
