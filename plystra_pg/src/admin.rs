//! Admin authorization in SQL: the front turns a session or API key into a credential id, and asks here whether
//! it holds a Core management permission on a scope. The rule is `plystra_core::admin`.

use pgrx::prelude::*;
use pgrx::JsonB;
use plystra_core::admin::{allowing, valid_permission_key, Holding, Scope, Standing};
use serde_json::json;

use crate::error::raise_invalid_request;
use crate::kept;
use plystra_core::request::RequestError;

const GROUP_SQL: &str = "SELECT space_id, path FROM plystra.groups WHERE id = $1 AND deleted_at IS NULL";

/// A not-deleted group's Space and path.
fn group_space_and_path(group_id: &str) -> Option<(String, String)> {
    space_and_path(GROUP_SQL, group_id)
}

fn space_and_path(sql: &'static str, group_id: &str) -> Option<(String, String)> {
    Spi::connect(|client| {
        kept::select(client, sql, &[kept::TEXT], Some(1), &[group_id.into()], |mut rows| {
            let row = rows.next()?;
            Some((row.get::<String>(1).ok()??, row.get::<String>(2).ok()??))
        })
    })
}

/// A key's holdings: each permission key it carries, on its standing (a key is never a super admin: its keys are
/// exactly what it holds; an unknown level or a missing anchor holds nothing).
fn key_holdings(api_key_id: &str, standing: Option<Standing>, keys: Vec<String>) -> Vec<Holding> {
    let Some(standing) = standing.filter(|s| *s != Standing::SuperAdmin) else { return Vec::new() };
    keys.into_iter().map(|k| Holding { id: api_key_id.into(), standing: standing.clone(), permission_key: k }).collect()
}

/// The scope a requirement names: a group (its Space comes with it), a Space, or the instance. `None` when the
/// group does not exist, or does not belong to the Space also given.
pub(crate) fn scope(space_id: Option<&str>, group_id: Option<&str>) -> Option<Scope> {
    match (space_id, group_id) {
        (_, Some(group_id)) => {
            let (group_space, path) = group_space_and_path(group_id)?;
            if space_id.is_some_and(|s| s != group_space) {
                return None;
            }
            Some(Scope::Group { space_id: group_space, group_id: group_id.into(), path })
        }
        (Some(space_id), None) => Some(Scope::Space { space_id: space_id.into() }),
        (None, None) => Some(Scope::Instance),
    }
}

fn standing(level: &str, space_id: Option<String>, group_path: Option<String>) -> Option<Standing> {
    match level {
        "instance_super_admin" => Some(Standing::SuperAdmin),
        "instance_admin" | "instance" => Some(Standing::Instance),
        "space_admin" | "space" => Some(Standing::Space { space_id: space_id? }),
        "group_admin" | "group" => Some(Standing::Group { space_id: space_id?, path: group_path? }),
        _ => None,
    }
}

pub(crate) fn check_key(permission: &str, function: &'static str) {
    if !valid_permission_key(permission) {
        raise_invalid_request(
            &RequestError { field: "permission".into(), problem: "must be * or domain:action in lowercase".into() },
            function,
        );
    }
}

/// The level names of AdminGrants, by standing (an answer names the level that allowed).
fn grant_level(h: &Holding) -> &'static str {
    match h.standing {
        Standing::SuperAdmin => "instance_super_admin",
        Standing::Instance => "instance_admin",
        Standing::Space { .. } => "space_admin",
        Standing::Group { .. } => "group_admin",
    }
}

/// The level names of API keys, by standing (a key is never a super admin).
fn key_level(h: &Holding) -> &'static str {
    match h.standing {
        Standing::SuperAdmin | Standing::Instance => "instance",
        Standing::Space { .. } => "space",
        Standing::Group { .. } => "group",
    }
}

fn answer(
    holdings: &[Holding],
    level_of: fn(&Holding) -> &'static str,
    permission: &str,
    scope: Option<Scope>,
) -> JsonB {
    let Some(scope) = scope else {
        return JsonB(json!({"allowed": false, "reason": "the group does not exist in that Space"}));
    };
    match allowing(holdings, permission, &scope) {
        Some(h) => {
            JsonB(json!({"allowed": true, "grant_id": h.id, "level": level_of(h), "permission_key": h.permission_key}))
        }
        None => JsonB(json!({"allowed": false, "reason": "no active grant holds the permission on this scope"})),
    }
}

/// Active AdminGrants of an active user (status active, not revoked, not deleted, not expired), the user named
/// by the SQL expression given, as `id, level, permission_key, space_id, path`, in no order: a macro so that the
/// gate's reading of a credential (`credential.rs`) joins the same query laterally and the queries stay
/// `&'static str` for `kept`.
macro_rules! grants_in_force {
    ($user:literal) => {
        concat!(
            "SELECT g.id, g.level, g.permission_key, coalesce(gg.space_id, g.space_id) AS space_id, gg.path AS path ",
            "FROM plystra.active_admin_grants g ",
            "JOIN plystra.users u ON u.id = g.user_id AND u.status = 'active' AND u.deleted_at IS NULL ",
            "LEFT JOIN plystra.groups gg ON gg.id = g.group_id ",
            "WHERE g.user_id = ",
            $user
        )
    };
}
pub(crate) use grants_in_force;

/// [`grants_in_force`] in the order an answer names them: a super admin's grant first, then by id.
macro_rules! user_grants {
    ($user:literal) => {
        concat!(grants_in_force!($user), " ORDER BY g.level = 'instance_super_admin' DESC, g.id")
    };
}

const USER_GRANTS_SQL: &str = user_grants!("$1");

/// The holding of one grant row `id, level, permission_key, space_id, path` (the gate's reading of a credential;
/// an unknown level holds nothing).
pub(crate) fn holding(
    id: String,
    level: &str,
    permission_key: String,
    space_id: Option<String>,
    path: Option<String>,
) -> Option<Holding> {
    standing(level, space_id, path).map(|standing| Holding { id, standing, permission_key })
}

/// The holdings of a user's active AdminGrants (none when the user is not active).
fn user_holdings(user_id: &str) -> Vec<Holding> {
    Spi::connect(|client| {
        kept::select(client, USER_GRANTS_SQL, &[kept::TEXT], None, &[user_id.into()], |rows| {
            let mut holdings = Vec::new();
            for row in rows {
                let id: String = row.get(1).ok().flatten().unwrap_or_default();
                let level: String = row.get(2).ok().flatten().unwrap_or_default();
                let key: String = row.get(3).ok().flatten().unwrap_or_default();
                if let Some(standing) = standing(&level, row.get(4).ok().flatten(), row.get(5).ok().flatten()) {
                    holdings.push(Holding { id, standing, permission_key: key });
                }
            }
            holdings
        })
    })
}

#[pg_extern(stable, security_definer, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
pub(crate) fn admin_permission(
    user_id: &str,
    permission: &str,
    space_id: Option<&str>,
    group_id: Option<&str>,
) -> JsonB {
    check_key(permission, "plystra.admin_permission");
    Holder::of_user(user_id).answer(permission, scope(space_id, group_id))
}

/// An active API key (not revoked, not deleted, not expired) with its level, anchor, permission keys and the user
/// who created it.
const API_KEY_SQL: &str = concat!(
    "SELECT k.level, coalesce(gg.space_id, k.space_id), gg.path, ",
    "ARRAY(SELECT jsonb_array_elements_text(k.permission_keys)), k.created_by_user_id ",
    "FROM plystra.api_keys k LEFT JOIN plystra.groups gg ON gg.id = k.group_id WHERE k.id = $1 AND ",
    crate::credential::active_api_key!()
);

/// A key allows what it carries on its scope, and never more than its creator holds now: the creator must be an
/// active user whose active AdminGrants allow the same permission on the same scope (revoking the creator's
/// grant, or disabling the creator, ends the key's use of it). A key with no creator user was inserted directly
/// in SQL by the database owner (the REST front always records a creator; a key-created key inherits its
/// parent's) and is bounded by its own permission keys only.
#[pg_extern(stable, security_definer, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
pub(crate) fn api_key_permission(
    api_key_id: &str,
    permission: &str,
    space_id: Option<&str>,
    group_id: Option<&str>,
) -> JsonB {
    check_key(permission, "plystra.api_key_permission");
    let holder = Holder::of_api_key(api_key_id);
    holder.answer(permission, scope(space_id, group_id))
}

/// What a credential holds, read once: a user's active AdminGrants, or an API key's permission keys on its
/// standing together with its creator's grants (which bound the key). A caller that asks about several scopes
/// (the front's gate) reads the credential once and asks each scope of it.
pub(crate) enum Holder {
    User(Vec<Holding>),
    ApiKey { holdings: Vec<Holding>, creator: Option<Vec<Holding>> },
}

impl Holder {
    pub(crate) fn of_user(user_id: &str) -> Holder {
        Holder::User(user_holdings(user_id))
    }

    pub(crate) fn of_api_key(api_key_id: &str) -> Holder {
        let (holdings, creator) = Spi::connect(|client| {
            kept::select(client, API_KEY_SQL, &[kept::TEXT], Some(1), &[api_key_id.into()], |mut rows| {
                let Some(row) = rows.next() else { return (Vec::new(), None) };
                let level: String = row.get(1).ok().flatten().unwrap_or_default();
                let standing = standing(&level, row.get(2).ok().flatten(), row.get(3).ok().flatten());
                let keys: Vec<String> = row.get(4).ok().flatten().unwrap_or_default();
                (key_holdings(api_key_id, standing, keys), row.get::<String>(5).ok().flatten())
            })
        });
        Holder::ApiKey { holdings, creator: creator.map(|c| user_holdings(&c)) }
    }

    /// The holder of a key already authenticated (the gate read its row with a Group key's anchor group, and its
    /// creator's grants: `space_id` and `group_path` are the anchor's, or the Space key's Space; `creator` is
    /// `None` for a key no user created).
    pub(crate) fn of_authenticated_key(
        api_key_id: &str,
        level: &str,
        space_id: Option<String>,
        group_path: Option<String>,
        permission_keys: &[String],
        creator: Option<Vec<Holding>>,
    ) -> Holder {
        let holdings = key_holdings(api_key_id, standing(level, space_id, group_path), permission_keys.to_vec());
        Holder::ApiKey { holdings, creator }
    }

    /// The answer of `plystra.admin_permission` / `plystra.api_key_permission` for `permission` on `scope`
    /// (`None`: a group that does not exist in the Space named).
    pub(crate) fn answer(&self, permission: &str, scope: Option<Scope>) -> JsonB {
        match self {
            Holder::User(holdings) => answer(holdings, grant_level, permission, scope),
            Holder::ApiKey { holdings, creator } => {
                let key_answer = answer(holdings, key_level, permission, scope.clone());
                if key_answer.0["allowed"] != json!(true) {
                    return key_answer;
                }
                if let (Some(creator), Some(scope)) = (creator, scope) {
                    if allowing(creator, permission, &scope).is_none() {
                        return JsonB(json!({"allowed": false,
                            "reason": "the key's creator no longer holds the permission on this scope (grant revoked or user not active)"}));
                    }
                }
                key_answer
            }
        }
    }

    pub(crate) fn holds(&self, permission: &str, scope: Option<Scope>) -> bool {
        self.answer(permission, scope).0["allowed"] == json!(true)
    }
}
