//! "Who can?": the bindings (and so the Members and Users) that may perform an action on a mirrored resource,
//! each with the grants that let it. Same rules as `plystra.check` by construction: every binding that could be
//! allowed (one in the resource's Space whose Member has a MemberRole of a Role joined to a Permission for that
//! resource type and action, whatever their statuses) is decided by the decision core over the loader's
//! context, exactly as `plystra.check` decides it, and kept when allowed. No audit row is written: a lookup
//! reads. tests/sql/065_lookups.sql proves the equivalence both ways over every binding, resource and action.

use pgrx::prelude::*;
use pgrx::JsonB;
use plystra_core::decide;
use plystra_core::model::Request;
use plystra_core::request::RequestError;
use serde_json::json;

use crate::error::raise_invalid_request;
use crate::{kept, loader};

const FUNCTION: &str = "plystra.lookup_subjects";
/// The most rows one call returns; a caller pages with `after`.
const MAX_ROWS: i32 = 1000;

/// Every binding that could be allowed, after `$4` (exclusive), in binding-id order: a superset of the allowed
/// ones (statuses, expiry, scopes and the registry are the decision's to judge).
const CANDIDATE_BINDINGS_SQL: &str = "\
SELECT DISTINCT um.id, um.user_id, um.member_id, r.space_id
FROM plystra.resources r
JOIN plystra.permissions p ON p.resource = $1 AND p.action = $3
JOIN plystra.role_permissions rp ON rp.permission_id = p.id
JOIN plystra.member_roles mr ON mr.role_id = rp.role_id
JOIN plystra.user_members um ON um.member_id = mr.member_id AND um.space_id = r.space_id
WHERE r.resource_type = $1 AND r.id = $2 AND ($4::text IS NULL OR um.id > $4)
ORDER BY um.id";

/// The allowed bindings after `after` (exclusive), at most `max_rows`, in binding-id order.
#[pg_extern(stable, security_definer, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn lookup_subjects(
    resource_type: Option<&str>,
    resource_id: Option<&str>,
    action: Option<&str>,
    after: default!(Option<&str>, "NULL"),
    max_rows: default!(Option<i32>, 100),
) -> TableIterator<
    'static,
    (name!(user_member_id, String), name!(member_id, String), name!(user_id, String), name!(grants, JsonB)),
> {
    let invalid = |field: &str, problem: &str| {
        raise_invalid_request(&RequestError { field: field.into(), problem: problem.into() }, FUNCTION)
    };
    let (Some(resource_type), Some(resource_id), Some(action)) = (resource_type, resource_id, action) else {
        invalid("resource_type", "resource_type, resource_id and action are required")
    };
    let max_rows = max_rows.unwrap_or(100);
    if !(1..=MAX_ROWS).contains(&max_rows) {
        invalid("max_rows", "must be between 1 and 1000");
    }
    let candidates: Vec<(String, String, String, String)> = Spi::connect(|client| {
        let args = [resource_type.into(), resource_id.into(), action.into(), after.into()];
        kept::select(client, CANDIDATE_BINDINGS_SQL, &[kept::TEXT; 4], None, &args, |rows| {
            rows.filter_map(|row| {
                Some((
                    row.get::<String>(1).ok()??,
                    row.get::<String>(2).ok()??,
                    row.get::<String>(3).ok()??,
                    row.get::<String>(4).ok()??,
                ))
            })
            .collect()
        })
    });
    let mut out = Vec::new();
    for (binding, user, member, space) in candidates {
        if out.len() as i32 >= max_rows {
            break;
        }
        let req = Request::about((&user, &member, &binding, &space), resource_type, resource_id, action);
        let ctx = loader::load_context(&req, false);
        let outcome = decide(&req, &ctx);
        if !outcome.allow {
            continue;
        }
        // The grants whose scope covers the resource: the ones that let this binding act.
        let grants: Vec<_> = ctx
            .candidates
            .iter()
            .zip(&outcome.scope_checks)
            .filter(|(_, check)| check.covered)
            .map(|(c, check)| {
                json!({
                    "member_role_id": c.member_role_id,
                    "role_id": c.role.id,
                    "role_key": c.role.key,
                    "permission_id": c.permission.id,
                    "scope": c.permission.scope,
                    "anchor_group_id": c.scope_anchor.as_ref().map(|g| g.id.clone()),
                    "anchor_group_path": c.scope_anchor.as_ref().map(|g| g.path.clone()),
                    "scope_rule": check.rule,
                })
            })
            .collect();
        out.push((binding, member, user, JsonB(json!(grants))));
    }
    TableIterator::new(out)
}

/// The binding an actor named by its User alone acts through (the rule `plystra.check` applies to
/// `actor: {user_id}`): `{user_id, member_id, user_member_id, space_id}`, or `{deny_code}` when there is none
/// (`ACTOR_NOT_FOUND`) or no single one to choose (`ACTOR_BINDING_AMBIGUOUS`). `space_id` NULL: any Space.
#[pg_extern(stable, security_definer, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn resolve_actor(user_id: Option<&str>, space_id: Option<&str>) -> JsonB {
    const FUNCTION: &str = "plystra.resolve_actor";
    let invalid = |field: &str, problem: &str| {
        raise_invalid_request(&RequestError { field: field.into(), problem: problem.into() }, FUNCTION)
    };
    let user_id = match user_id {
        Some(u) if !u.is_empty() && u.len() <= plystra_core::request::MAX_ID_BYTES && !u.contains('\0') => u,
        Some(_) => invalid("user_id", "must be a non-empty id of at most 256 bytes"),
        None => invalid("user_id", "is required"),
    };
    if space_id.is_some_and(|s| s.is_empty() || s.len() > plystra_core::request::MAX_ID_BYTES) {
        invalid("space_id", "must be a non-empty id of at most 256 bytes, or NULL");
    }
    JsonB(match loader::binding_of_user(user_id, space_id) {
        loader::Resolution::Found { member_id, user_member_id, space_id } => json!({
            "user_id": user_id, "member_id": member_id, "user_member_id": user_member_id, "space_id": space_id}),
        loader::Resolution::None => json!({"deny_code": plystra_core::DenyCode::ActorNotFound.as_str()}),
        loader::Resolution::Ambiguous => json!({"deny_code": plystra_core::DenyCode::ActorBindingAmbiguous.as_str()}),
    })
}
