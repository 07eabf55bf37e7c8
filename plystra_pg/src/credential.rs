//! Which presented credentials are live: a session (not revoked, not expired, its user active and not deleted)
//! and an API key (active, not revoked, deleted or expired). The rule is written here once; the REST front asks
//! `plystra.authenticate` for every admin route and the decision gate (`gate.rs`) uses the same functions.
//! The front sends the HMACs of the presented token under its current and previous secret (it holds the
//! secrets); the database stores only HMACs, so this compares and never hashes.

use pgrx::prelude::*;
use serde_json::{json, Value};

use crate::error::raise_invalid_request;
use crate::kept;
use plystra_core::request::RequestError;

/// A presented token has one HMAC per configured secret (current and previous); a few more are tolerated.
const MAX_HASHES: usize = 4;

const SESSION_SQL: &str = "\
SELECT s.id, s.user_id, u.email, u.status, s.active_space_id, s.active_member_id, s.active_user_member_id,
       pg_catalog.to_json(s.expires_at) #>> '{}', pg_catalog.to_json(s.refresh_expires_at) #>> '{}',
       s.access_token_hash
FROM plystra.sessions s
JOIN plystra.users u ON u.id = s.user_id AND u.status = 'active' AND u.deleted_at IS NULL
WHERE s.access_token_hash = ANY($1) AND s.revoked_at IS NULL AND s.expires_at > statement_timestamp()";

/// The condition on `plystra.api_keys k` that makes a key active, for every query that reads keys (a macro so
/// that the queries stay `&'static str` for `kept`).
macro_rules! active_api_key {
    () => {
        "k.status = 'active' AND k.revoked_at IS NULL AND k.deleted_at IS NULL \
         AND (k.expires_at IS NULL OR k.expires_at > statement_timestamp())"
    };
}
pub(crate) use active_api_key;

/// With the key, its anchor group's Space and path (whatever the group's state, as `plystra.api_key_permission`
/// reads a key's anchor), so that a Group key's standing needs no statement of its own.
const API_KEY_SQL: &str = concat!(
    "SELECT k.id, k.name, k.level, k.space_id, k.group_id, k.permission_keys::text, k.created_by_user_id, ",
    "k.created_by_member_id, k.key_hash, kg.space_id, kg.path ",
    "FROM plystra.api_keys k LEFT JOIN plystra.groups kg ON kg.id = k.group_id ",
    "WHERE k.id = $1 AND k.key_hash = ANY($2) AND ",
    active_api_key!()
);

/// A live credential, with what the front and the gate need of it.
pub enum Credential {
    Session {
        session_id: String,
        user_id: String,
        email: String,
        user_status: String,
        active_space_id: Option<String>,
        active_member_id: Option<String>,
        active_user_member_id: Option<String>,
        expires_at: String,
        refresh_expires_at: String,
        token_hash: String,
    },
    ApiKey {
        id: String,
        name: String,
        level: String,
        space_id: Option<String>,
        group_id: Option<String>,
        permission_keys: Vec<String>,
        created_by_user_id: Option<String>,
        created_by_member_id: Option<String>,
        token_hash: String,
        /// A Group key's anchor: the group's Space and path (`None` for other keys, or a group that is gone).
        anchor: Option<(String, String)>,
    },
}

impl Credential {
    /// The whole credential, for the front (`plystra.authenticate`).
    pub fn document(&self) -> Value {
        match self {
            Credential::Session {
                session_id,
                user_id,
                email,
                user_status,
                active_space_id,
                active_member_id,
                active_user_member_id,
                expires_at,
                refresh_expires_at,
                token_hash,
            } => json!({"kind": "session", "session_id": session_id, "user_id": user_id, "email": email,
                        "user_status": user_status, "active_space_id": active_space_id,
                        "active_member_id": active_member_id, "active_user_member_id": active_user_member_id,
                        "expires_at": expires_at, "refresh_expires_at": refresh_expires_at,
                        "token_hash": token_hash}),
            Credential::ApiKey {
                id,
                name,
                level,
                space_id,
                group_id,
                permission_keys,
                created_by_user_id,
                created_by_member_id,
                token_hash,
                ..
            } => json!({"kind": "api_key", "api_key_id": id, "name": name, "level": level, "space_id": space_id,
                        "group_id": group_id, "permission_keys": permission_keys,
                        "created_by_user_id": created_by_user_id, "created_by_member_id": created_by_member_id,
                        "token_hash": token_hash}),
        }
    }

    /// Who the credential is, for an answer that names it (no e-mail, no permission list). The stored token
    /// HMAC comes with it so that the front confirms the match itself, in constant time.
    pub fn summary(&self) -> Value {
        match self {
            Credential::Session { session_id, user_id, token_hash, .. } => {
                json!({"kind": "session", "session_id": session_id, "user_id": user_id, "token_hash": token_hash})
            }
            Credential::ApiKey { id, level, token_hash, .. } => {
                json!({"kind": "api_key", "api_key_id": id, "level": level, "token_hash": token_hash})
            }
        }
    }
}

fn invalid(function: &'static str, field: &str, problem: &str) -> ! {
    raise_invalid_request(&RequestError { field: field.into(), problem: problem.into() }, function)
}

/// The HMACs of the presented token, as strings (1 to [`MAX_HASHES`]).
fn hashes(credential: &Value, field: &str, function: &'static str) -> Vec<String> {
    let name = format!("credential.{field}");
    let Some(list) = credential[field].as_array() else { invalid(function, &name, "must be an array") };
    if list.is_empty() || list.len() > MAX_HASHES {
        invalid(function, &name, "must hold 1 to 4 hashes");
    }
    list.iter()
        .map(|h| h.as_str().map(str::to_string).unwrap_or_else(|| invalid(function, &name, "must hold strings")))
        .collect()
}

/// The live credential that `{"session_token_hashes": [...]}` or `{"api_key_id": ..., "api_key_hashes": [...]}`
/// stands for, or `None`. A malformed document raises 22023 naming `function`.
pub fn authenticate(credential: &Value, function: &'static str) -> Option<Credential> {
    if !credential.is_object() {
        invalid(function, "credential", "must be a JSON object");
    }
    if credential.get("session_token_hashes").is_some() {
        let hashes = hashes(credential, "session_token_hashes", function);
        return Spi::connect(|client| {
            kept::select(client, SESSION_SQL, &[kept::TEXT_ARRAY], Some(1), &[hashes.into()], |mut rows| {
                let row = rows.next()?;
                let text = |i: usize| row.get::<String>(i).ok().flatten();
                Some(Credential::Session {
                    session_id: text(1)?,
                    user_id: text(2)?,
                    email: text(3)?,
                    user_status: text(4)?,
                    active_space_id: text(5),
                    active_member_id: text(6),
                    active_user_member_id: text(7),
                    expires_at: text(8)?,
                    refresh_expires_at: text(9)?,
                    token_hash: text(10)?,
                })
            })
        });
    }
    let Some(id) = credential["api_key_id"].as_str().filter(|s| !s.is_empty()) else {
        invalid(function, "credential", "must give session_token_hashes, or api_key_id and api_key_hashes")
    };
    let hashes = hashes(credential, "api_key_hashes", function);
    Spi::connect(|client| {
        let types = [kept::TEXT, kept::TEXT_ARRAY];
        kept::select(client, API_KEY_SQL, &types, Some(1), &[id.into(), hashes.into()], |mut rows| {
            let row = rows.next()?;
            let text = |i: usize| row.get::<String>(i).ok().flatten();
            let permission_keys: Vec<String> =
                text(6).and_then(|keys| serde_json::from_str(&keys).ok()).unwrap_or_default();
            Some(Credential::ApiKey {
                id: text(1)?,
                name: text(2)?,
                level: text(3)?,
                space_id: text(4),
                group_id: text(5),
                permission_keys,
                created_by_user_id: text(7),
                created_by_member_id: text(8),
                token_hash: text(9)?,
                anchor: text(10).zip(text(11)),
            })
        })
    })
}

crate::api::function_info_v1!(pg_finfo_plystra_authenticate);

/// The C entry point of `plystra.authenticate(credential jsonb) → jsonb`: the live credential's document, or
/// NULL. Its jsonb argument is read as text, as `plystra.check`'s is (api.rs).
///
/// # Safety
/// Only PostgreSQL calls it, through the function manager, with one jsonb argument.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn plystra_authenticate(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    const FUNCTION: &str = "plystra.authenticate";
    // SAFETY: the declared signature has one jsonb argument.
    let text = unsafe { crate::api::jsonb_arg_text(fcinfo, 0) };
    let credential = crate::api::read_json(text.as_deref(), "credential", FUNCTION);
    match authenticate(&credential, FUNCTION) {
        Some(found) => pgrx::JsonB(found.document()).into_datum().expect("a jsonb document is never null"),
        None => {
            // SAFETY: a valid call's fcinfo; a NULL result is said through isnull.
            unsafe { (*fcinfo).isnull = true };
            pg_sys::Datum::from(0)
        }
    }
}
