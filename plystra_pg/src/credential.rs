//! Which presented credentials are live: a session (not revoked, not expired, its user active and not deleted)
//! and an API key (active, not revoked, deleted or expired). The rule is written here, as statements; the REST
//! front asks `plystra.authenticate` for every admin route, and the decision gate (`gate.rs`) reads the same
//! rule by index probes ([`read_by_probes`]), which a pg_test holds equal to the statements (the gate's
//! statements are kept as that oracle). An API key's reading, and a session's User's standing (not the session's
//! own row: sessions are written at every refresh and logout), are kept by the backend between requests under the
//! catalog version ([`KeyReading`], [`UserReading`]; `catalog.rs` states the rule), HMACs and expiry times judged at
//! every use.
//! The front sends the HMACs of the presented token under its current and previous secret (it holds the
//! secrets); the database stores only HMACs, so this compares and never hashes.

use pgrx::prelude::*;
use serde_json::{json, Value};

use std::rc::Rc;

use crate::admin::Holder;
use crate::catalog::Catalog;
use crate::error::raise_invalid_request;
use crate::kept;
use crate::probe::{statement_unix_micros, Reader};
use pgrx::spi::SpiTupleTable;
use plystra_core::admin::Holding;
use plystra_core::request::RequestError;

/// A presented token has one HMAC per configured secret (current and previous); a few more are tolerated.
const MAX_HASHES: usize = 4;

/// A live session; `$extra` adds columns after its own ten, `$join` a join after the session's user.
macro_rules! session_sql {
    ($($extra:expr, $join:expr)?) => {
        concat!(
            "SELECT s.id, s.user_id, u.email, u.status, s.active_space_id, s.active_member_id, s.active_user_member_id, ",
            "pg_catalog.to_json(s.expires_at) #>> '{}', pg_catalog.to_json(s.refresh_expires_at) #>> '{}', ",
            "s.access_token_hash",
            $($extra,)?
            " FROM plystra.sessions s ",
            "JOIN plystra.users u ON u.id = s.user_id AND u.status = 'active' AND u.deleted_at IS NULL ",
            $($join,)?
            "WHERE s.access_token_hash = ANY($1) AND s.revoked_at IS NULL AND s.expires_at > statement_timestamp()"
        )
    };
}

/// The admin grants of the user named by the SQL expression given, one row each (`x`, all NULL when there are
/// none), joined beside the credential's row, in no order (the gate asks only whether some grant holds).
macro_rules! grants_beside {
    ($user:literal) => {
        concat!("LEFT JOIN LATERAL (", crate::admin::grants_in_force!($user), ") x ON true ")
    };
}

/// The columns of [`grants_beside`]'s rows, after the credential's own.
macro_rules! grant_columns {
    () => {
        ", x.id, x.level, x.permission_key, x.space_id, x.path"
    };
}

const SESSION_SQL: &str = session_sql!();

/// A session with its user's admin grants: the oracle of the gate's reading by probes ([`read_by_probes`]).
const GATE_SESSION_SQL: &str = session_sql!(grant_columns!(), grants_beside!("s.user_id"));

/// The condition on `plystra.api_keys k` that makes a key active, for every query that reads keys (a macro so
/// that the queries stay `&'static str` for `kept`): the key's own state, and its Space's (a Space key's, or a
/// Group key's anchor group's: migration 021): every Space the key names must be there, active and not deleted,
/// and a Space or Group key must name one.
macro_rules! active_api_key {
    () => {
        "k.status = 'active' AND k.revoked_at IS NULL AND k.deleted_at IS NULL \
         AND (k.expires_at IS NULL OR k.expires_at > statement_timestamp()) \
         AND NOT EXISTS (SELECT FROM (VALUES (k.space_id), \
                 ((SELECT kg2.space_id FROM plystra.groups kg2 WHERE kg2.id = k.group_id))) AS kn(space_id) \
             WHERE kn.space_id IS NOT NULL AND NOT EXISTS (SELECT FROM plystra.spaces ks \
                 WHERE ks.id = kn.space_id AND ks.status = 'active' AND ks.deleted_at IS NULL)) \
         AND (k.level = 'instance' OR k.space_id IS NOT NULL \
              OR EXISTS (SELECT FROM plystra.groups kg3 WHERE kg3.id = k.group_id))"
    };
}
pub(crate) use active_api_key;

/// A live API key with its anchor group's Space and path (whatever the group's state, as
/// `plystra.api_key_permission` reads a key's anchor), so that a Group key's standing needs no statement of its
/// own; `$extra` adds columns after its own eleven, `$join` a join after the anchor group's.
macro_rules! api_key_sql {
    ($($extra:expr, $join:expr)?) => {
        concat!(
            "SELECT k.id, k.name, k.level, k.space_id, k.group_id, k.permission_keys::text, k.created_by_user_id, ",
            "k.created_by_member_id, k.key_hash, kg.space_id, kg.path",
            $($extra,)?
            " FROM plystra.api_keys k LEFT JOIN plystra.groups kg ON kg.id = k.group_id ",
            $($join,)?
            "WHERE k.id = $1 AND k.key_hash = ANY($2) AND ",
            active_api_key!()
        )
    };
}

const API_KEY_SQL: &str = api_key_sql!();

/// A key with its creator's admin grants, which bound what the key may do: the oracle of the gate's reading by
/// probes ([`read_by_probes`]).
const GATE_API_KEY_SQL: &str = api_key_sql!(grant_columns!(), grants_beside!("k.created_by_user_id"));

/// A live credential, with what the front and the gate need of it.
#[derive(Clone, Debug, PartialEq)]
pub enum Credential {
    Session {
        session_id: String,
        user_id: String,
        /// The User's e-mail and status, and the session's expiry times as text, read only where an answer shows
        /// them (`plystra.authenticate`); the gate's reading leaves them out (it finds only sessions of active
        /// Users).
        email: Option<String>,
        user_status: Option<String>,
        active_space_id: Option<String>,
        active_member_id: Option<String>,
        active_user_member_id: Option<String>,
        expires_at: Option<String>,
        refresh_expires_at: Option<String>,
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

/// What the caller presented: a session's token HMACs, or an API key's id and HMACs.
enum Presented<'a> {
    Session(Vec<String>),
    ApiKey(&'a str, Vec<String>),
}

/// Reads `{"session_token_hashes": [...]}` or `{"api_key_id": ..., "api_key_hashes": [...]}`; a malformed
/// document raises 22023 naming `function`.
fn presented<'a>(credential: &'a Value, function: &'static str) -> Presented<'a> {
    if !credential.is_object() {
        invalid(function, "credential", "must be a JSON object");
    }
    if credential.get("session_token_hashes").is_some() {
        return Presented::Session(hashes(credential, "session_token_hashes", function));
    }
    let Some(id) = credential["api_key_id"].as_str().filter(|s| !s.is_empty()) else {
        invalid(function, "credential", "must give session_token_hashes, or api_key_id and api_key_hashes")
    };
    Presented::ApiKey(id, hashes(credential, "api_key_hashes", function))
}

/// The live credential that `{"session_token_hashes": [...]}` or `{"api_key_id": ..., "api_key_hashes": [...]}`
/// stands for, or `None`. A malformed document raises 22023 naming `function`.
pub fn authenticate(credential: &Value, function: &'static str) -> Option<Credential> {
    read(credential, function, false).map(|(found, _)| found)
}

/// The gate's reading of a credential: the live credential with what it holds (a session's user's admin grants,
/// or an API key's permission keys on its standing, bounded by its creator's grants), read by index probes
/// ([`read_by_probes`]).
pub fn authenticate_holding(credential: &Value, function: &'static str) -> Option<(Credential, Holder)> {
    let (found, grants) = read_by_probes(credential, function)?;
    let holder = match &found {
        Credential::Session { .. } => Holder::User(grants),
        Credential::ApiKey { id, level, space_id, group_id, permission_keys, created_by_user_id, anchor, .. } => {
            Holder::of_authenticated_key(
                id,
                level,
                group_id.as_ref().map_or(space_id.clone(), |_| anchor.as_ref().map(|(space, _)| space.clone())),
                anchor.as_ref().map(|(_, path)| path.clone()),
                permission_keys,
                created_by_user_id.as_ref().map(|_| grants),
            )
        }
    };
    Some((found, holder))
}

/// The credential the first row reads as (`credential`, given the row's text columns), and the holdings of the
/// grant columns from `grants_from` on, one a row (a row without a grant, the lateral join's NULLs, holds nothing).
fn credential_and_grants<C>(
    rows: SpiTupleTable<'_>,
    grants_from: Option<usize>,
    credential: impl FnOnce(&dyn Fn(usize) -> Option<String>) -> Option<C>,
) -> Option<(C, Vec<Holding>)> {
    let mut credential = Some(credential);
    let mut found = None;
    let mut grants = Vec::new();
    for row in rows {
        let text = |c: usize| row.get::<String>(c).ok().flatten();
        if let Some(read) = credential.take() {
            found = Some(read(&text)?);
        }
        let Some(g) = grants_from else { break };
        let grant = || crate::admin::holding(text(g)?, &text(g + 1)?, text(g + 2)?, text(g + 3), text(g + 4));
        grants.extend(grant());
    }
    found.map(|found| (found, grants))
}

/// Whether an `expires_at` (`None`: never) lies after the statement's time `now`, as
/// `expires_at IS NULL OR expires_at > statement_timestamp()` reads it.
fn unexpired_at(expires_at: Option<i64>, now: i64) -> bool {
    expires_at.is_none_or(|t| t > now)
}

/// The admin grants of `user_id` in force apart from their expiry, as `admin::grants_in_force!` reads them (the
/// view `plystra.active_admin_grants`, a Group grant's Space and path from its group whatever the group's state),
/// one holding a grant with its `expires_at` (`None`: never), by probes. Whether the User is active is
/// [`UserReading::read`]'s to say.
fn grants_with_expiry(reader: &Reader, user_id: &str) -> Vec<(Holding, Option<i64>)> {
    let mut rows = Vec::new();
    reader.probe(c"admin_grants", c"admin_grants_user_id_idx", &[user_id], |row| {
        let in_force = row.text_is("status", "active") && row.is_null("revoked_at") && row.is_null("deleted_at");
        if in_force {
            rows.push((
                row.text("id"),
                row.text("level"),
                row.text("permission_key"),
                row.text("space_id"),
                row.text("group_id"),
                row.unix_micros("expires_at"),
            ));
        }
        true
    });
    rows.into_iter()
        .filter_map(|(id, level, key, space_id, group_id, expires_at)| {
            let group = group_id.and_then(|g| {
                reader.one(c"groups", c"groups_pkey", &[&g], |row| Some((row.text("space_id"), row.text("path"))))
            });
            let (group_space, path) = group.unwrap_or_default();
            Some((crate::admin::holding(id?, &level?, key?, group_space.or(space_id), path)?, expires_at))
        })
        .collect()
}

/// The holdings among `grants` still unexpired at `now` (`expires_at > statement_timestamp()`).
fn unexpired_holdings(grants: &[(Holding, Option<i64>)], now: i64) -> Vec<Holding> {
    grants.iter().filter(|(_, expires)| unexpired_at(*expires, now)).map(|(h, _)| h.clone()).collect()
}

/// What the gate reads of an API key before the presented HMACs and the statement's time are judged: the key if it
/// is active apart from its expiry (`active_api_key!` but for its expiry), with its anchor, its stored HMAC
/// (`token_hash`), its expiry, and its creator's grants in force apart from theirs. It depends on the key's row, its
/// anchor group's Space and path (immutable, and a group a key or grant names cannot be deleted: foreign keys), its
/// Space's status and deleted_at, its creator's User row and that User's admin grants, every write of which moves
/// the catalog version (migrations 011, 015 and 021): so a backend may keep it under the version
/// (`Catalog::api_key`), and judges only time and the HMACs at each use.
#[derive(Debug)]
pub(crate) struct KeyReading {
    credential: Credential,
    expires_at: Option<i64>,
    creator_grants: Vec<(Holding, Option<i64>)>,
}

impl KeyReading {
    /// The key's reading by index probes, or `None` for a key that is missing or not active.
    fn read(reader: &Reader, id: &str) -> Option<KeyReading> {
        let (mut credential, expires_at) = reader.one(c"api_keys", c"api_keys_pkey", &[id], |row| {
            let active = row.text_is("status", "active") && row.is_null("revoked_at") && row.is_null("deleted_at");
            if !active {
                return None;
            }
            let permission_keys: Vec<String> =
                row.jsonb_text("permission_keys").and_then(|keys| serde_json::from_str(&keys).ok()).unwrap_or_default();
            let credential = Credential::ApiKey {
                id: row.text("id")?,
                name: row.text("name")?,
                level: row.text("level")?,
                space_id: row.text("space_id"),
                group_id: row.text("group_id"),
                permission_keys,
                created_by_user_id: row.text("created_by_user_id"),
                created_by_member_id: row.text("created_by_member_id"),
                token_hash: row.text("key_hash")?,
                anchor: None,
            };
            Some((credential, row.unix_micros("expires_at")))
        })?;
        let mut creator_grants = Vec::new();
        if let Credential::ApiKey { level, space_id, group_id, created_by_user_id, anchor, .. } = &mut credential {
            // A Group key's anchor, whatever the group's state (as `plystra.api_key_permission` reads it).
            *anchor = group_id.as_deref().and_then(|g| {
                reader.one(c"groups", c"groups_pkey", &[g], |row| row.text("space_id").zip(row.text("path")))
            });
            // A key of a Space that is not active or is deleted is not an active key (migration 021).
            let anchor_space = anchor.as_ref().map(|(space, _)| space.as_str());
            let spaces = [space_id.as_deref(), anchor_space.filter(|s| Some(*s) != space_id.as_deref())];
            if *level != "instance" && spaces.iter().all(Option::is_none) {
                return None;
            }
            for space in spaces.into_iter().flatten() {
                reader.one(c"spaces", c"spaces_pkey", &[space], |row| {
                    (row.text_is("status", "active") && row.is_null("deleted_at")).then_some(())
                })?;
            }
            // A creator that is not active, or not there, bounds the key to nothing.
            if let Some(creator) = created_by_user_id.as_deref() {
                creator_grants = UserReading::read(reader, creator).map(|user| user.grants).unwrap_or_default();
            }
        }
        Some(KeyReading { credential, expires_at, creator_grants })
    }

    /// The live credential and its creator's grants, for a caller presenting `hashes` at `now`: `None` when no
    /// HMAC is the stored one or the key has expired.
    fn present(&self, hashes: &[String], now: i64) -> Option<(Credential, Vec<Holding>)> {
        let Credential::ApiKey { token_hash, .. } = &self.credential else { return None };
        if !hashes.contains(token_hash) || !unexpired_at(self.expires_at, now) {
            return None;
        }
        Some((self.credential.clone(), unexpired_holdings(&self.creator_grants, now)))
    }
}

/// What the gate reads of a session's User: that it is active and not deleted (else nothing is read or kept), and
/// its admin grants in force apart from their expiry. It depends on the User's row (status, deleted_at) and its
/// admin grants, every write of which moves the catalog version (migrations 011 and 015): so a backend may keep it
/// under the version (`Catalog::session_user`), and judges only the grants' expiry at each use.
#[derive(Debug)]
pub(crate) struct UserReading {
    grants: Vec<(Holding, Option<i64>)>,
}

impl UserReading {
    /// The User's reading by index probes, or `None` for a User that is missing, not active or deleted.
    fn read(reader: &Reader, user_id: &str) -> Option<UserReading> {
        reader.one(c"users", c"users_pkey", &[user_id], |row| {
            (row.text_is("status", "active") && row.is_null("deleted_at")).then_some(())
        })?;
        Some(UserReading { grants: grants_with_expiry(reader, user_id) })
    }
}

/// The gate's reading of a live credential and the admin grants that bound it, by index probes (`probe`) under
/// the snapshot a decision reads with: no statement to plan, start and end on every request. The rules are the
/// statements' above (`GATE_SESSION_SQL`, `GATE_API_KEY_SQL`: a live session of an active, not deleted User; an
/// active key, `active_api_key!`; the grants of `admin::grants_in_force!`), which stay as this reading's test
/// oracle: a pg_test reads every credential of a varied dataset both ways and requires the same answer (in a
/// transaction that has written, so nothing is kept; `tests/sql/074_credential_cache.sql` holds the kept readings
/// to the tables' answer).
pub(crate) fn read_by_probes(credential: &Value, function: &'static str) -> Option<(Credential, Vec<Holding>)> {
    let presented = presented(credential, function);
    let reader = Reader::begin();
    let now = statement_unix_micros();
    let (id, hashes) = match presented {
        Presented::ApiKey(id, hashes) => (id, hashes),
        Presented::Session(hashes) => {
            let session = hashes.iter().find_map(|hash| {
                reader.one(c"sessions", c"sessions_access_token_hash_key", &[hash], |row| {
                    // A session without an expiry is not live (the column is NOT NULL besides).
                    if !row.is_null("revoked_at") || row.unix_micros("expires_at").is_none_or(|t| t <= now) {
                        return None;
                    }
                    Some((
                        row.text("id")?,
                        row.text("user_id")?,
                        row.text("active_space_id"),
                        row.text("active_member_id"),
                        row.text("active_user_member_id"),
                        row.text("access_token_hash")?,
                    ))
                })
            })?;
            let (session_id, user_id, active_space_id, active_member_id, active_user_member_id, token_hash) = session;
            // The session's row is read every time (it changes at every refresh and logout); its User's standing
            // is kept between calls under the catalog version, as an API key's reading is.
            let catalog = Catalog::validate(&reader);
            let user = catalog.session_user(&user_id, || UserReading::read(&reader, &user_id).map(Rc::new))?;
            let grants = unexpired_holdings(&user.grants, now);
            let found = Credential::Session {
                session_id,
                user_id,
                email: None,
                user_status: None,
                active_space_id,
                active_member_id,
                active_user_member_id,
                expires_at: None,
                refresh_expires_at: None,
                token_hash,
            };
            return Some((found, grants));
        }
    };
    // Kept between calls under the catalog version, when this call's snapshot may use what is kept.
    let catalog = Catalog::validate(&reader);
    catalog.api_key(id, || KeyReading::read(&reader, id).map(Rc::new))?.present(&hashes, now)
}

/// The live credential, and (`with_grants`) the admin grants that bound it, by one statement (`with_grants`: the
/// oracle of [`read_by_probes`]).
pub(crate) fn read(
    credential: &Value,
    function: &'static str,
    with_grants: bool,
) -> Option<(Credential, Vec<Holding>)> {
    // Without the grants, one row at most; with them, one row a grant.
    let limit = if with_grants { None } else { Some(1) };
    let (id, hashes) = match presented(credential, function) {
        Presented::ApiKey(id, hashes) => (id, hashes),
        Presented::Session(hashes) => {
            let sql = if with_grants { GATE_SESSION_SQL } else { SESSION_SQL };
            return Spi::connect(|client| {
                kept::select(client, sql, &[kept::TEXT_ARRAY], limit, &[hashes.into()], |rows| {
                    credential_and_grants(rows, with_grants.then_some(11), |text| {
                        Some(Credential::Session {
                            session_id: text(1)?,
                            user_id: text(2)?,
                            email: Some(text(3)?),
                            user_status: Some(text(4)?),
                            active_space_id: text(5),
                            active_member_id: text(6),
                            active_user_member_id: text(7),
                            expires_at: Some(text(8)?),
                            refresh_expires_at: Some(text(9)?),
                            token_hash: text(10)?,
                        })
                    })
                })
            });
        }
    };
    Spi::connect(|client| {
        let types = [kept::TEXT, kept::TEXT_ARRAY];
        let sql = if with_grants { GATE_API_KEY_SQL } else { API_KEY_SQL };
        kept::select(client, sql, &types, limit, &[id.into(), hashes.into()], |rows| {
            credential_and_grants(rows, with_grants.then_some(12), |text| {
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
    })
}

crate::api::function_info_v1!(pg_finfo_plystra_authenticate);

/// The C entry point of `plystra.authenticate(credential jsonb) → jsonb`: the live credential's document, or
/// NULL. Its jsonb argument is read, and its answer written, in jsonb's binary form, as `plystra.check`'s are
/// (api.rs).
///
/// # Safety
/// Only PostgreSQL calls it, through the function manager, with one jsonb argument.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn plystra_authenticate(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    const FUNCTION: &str = "plystra.authenticate";
    // SAFETY: the declared signature has one jsonb argument.
    let credential =
        crate::api::read_jsonb(unsafe { crate::jsonb::jsonb_arg_value(fcinfo, 0) }, "credential", FUNCTION);
    match authenticate(&credential, FUNCTION) {
        Some(found) => crate::jsonb::to_jsonb_datum(&plystra_core::jsonb::Doc::from(&found.document())),
        None => {
            // SAFETY: a valid call's fcinfo; a NULL result is said through isnull.
            unsafe { (*fcinfo).isnull = true };
            pg_sys::Datum::from(0)
        }
    }
}
