//! SQL-native authorization for the current actor (set by `plystra.set_actor`): set-based lookups that
//! row-level-security policies evaluate once per statement, and per-row predicates for rows the application
//! owns. All of them are STABLE, never write audit rows, and work in read-only transactions and on a hot
//! standby; an unset or unusable actor (revoked, expired, inactive, cross-space) reaches nothing.

use std::ffi::CStr;
use std::rc::Rc;

use pgrx::pgrx_sql_entity_graph::metadata as sql_entity;
use pgrx::prelude::*;
use plystra_core::decide;
use plystra_core::model::{Request, RequestContext, Resource, Target};
use plystra_core::reach::{reach, Reach};

use crate::kept;
use crate::loader;
use crate::statement_cache::Memo;

/// A transaction-local setting, `None` when unset or empty. Read straight from the GUC table: no SPI.
pub fn setting(name: &CStr) -> Option<String> {
    // SAFETY: GetConfigOption returns NULL or a pointer to the setting's current NUL-terminated value,
    // valid until the setting changes; it is copied out at once.
    let ptr = unsafe { pg_sys::GetConfigOption(name.as_ptr(), true, false) };
    if ptr.is_null() {
        return None;
    }
    let value = unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned();
    (!value.is_empty()).then_some(value)
}

/// The request context recorded on audit rows, from `plystra.set_request_context`.
pub fn request_context_from_settings() -> RequestContext {
    RequestContext {
        request_id: setting(c"plystra.request_id"),
        ip: setting(c"plystra.request_ip"),
        user_agent: setting(c"plystra.request_user_agent"),
    }
}

/// The current actor asking about (resource_type, resource_id, action); `None` when no actor is set.
fn actor_request(resource_type: &str, resource_id: &str, action: &str) -> Option<Request> {
    let actor = (
        setting(c"plystra.actor_user_id")?,
        setting(c"plystra.actor_member_id")?,
        setting(c"plystra.actor_user_member_id")?,
        setting(c"plystra.actor_space_id")?,
    );
    Some(Request::about((&actor.0, &actor.1, &actor.2, &actor.3), resource_type, resource_id, action))
}

/// The actor's settings and the question: with the visibility, everything a reach depends on.
type ReachQuestion = (Option<Request>, String, String);

thread_local! {
    // Per-statement memos (see statement_cache): a policy's InitPlans share one context load.
    static REACH: Memo<ReachQuestion, Option<Rc<Reach>>> = const { Memo::new() };
    static GROUPS: Memo<ReachQuestion, Rc<Vec<String>>> = const { Memo::new() };
    static GROUP_ARRAYS: Memo<ReachQuestion, Rc<Vec<u8>>> = const { Memo::new() };
    static ACTOR_SPACE: Memo<Option<Request>, Option<String>> = const { Memo::new() };
}

/// Drops the memos' answers (when a transaction ends: `transaction_end`).
pub(crate) fn forget_memos() {
    REACH.with(Memo::clear);
    GROUPS.with(Memo::clear);
    GROUP_ARRAYS.with(Memo::clear);
    ACTOR_SPACE.with(Memo::clear);
}

fn question(resource_type: &str, action: &str) -> ReachQuestion {
    (actor_request(resource_type, "", action), resource_type.to_string(), action.to_string())
}

/// What the current actor reaches for (resource_type, action); `None` when it reaches nothing.
fn current_reach(resource_type: &str, action: &str) -> Option<Rc<Reach>> {
    let q = question(resource_type, action);
    let req = q.0.clone()?;
    REACH.with(|memo| {
        memo.get_or(q, || {
            let ctx = loader::load_context(&req, false);
            reach(&req, &ctx).filter(|r| !r.is_empty()).map(Rc::new)
        })
    })
}

/// The ids of the groups that the group and group_tree grants of `r` (the current reach for the question)
/// reach, expanded.
fn current_groups(r: &Reach, resource_type: &str, action: &str) -> Rc<Vec<String>> {
    GROUPS.with(|memo| memo.get_or(question(resource_type, action), || Rc::new(expand_groups(r))))
}

/// Group ids: the group-scope anchors, plus every group of the Space on or below a group_tree anchor. The
/// subtree test is a byte-wise range on the path (`~>=~`/`~<~`, served by the text_pattern_ops index), so
/// it is exact on label boundaries and no LIKE pattern is ever built from data.
///
/// `UNION ALL`, deduplicated by [`expand_groups`], and run under a generic plan (`kept::generic_plans`): a
/// `UNION` hashes the rows in a table sized by the planner's estimate of the range (thousands of rows for any
/// subtree), made and walked whole on every execution; and with the bounds known, PostgreSQL estimates the
/// custom plans so much cheaper than the generic one that it planned the statement again on every execution.
/// Together they were most of a narrow reader's row-level-security statement (a profile of one backend running
/// it: 37% of its samples under this statement with a generic plan and the `UNION`).
const REACHABLE_GROUPS_SQL: &str = "\
SELECT id FROM unnest($2::text[]) AS id
UNION ALL
SELECT g.id FROM unnest($3::text[]) AS a (path)
JOIN plystra.groups g ON g.space_id = $1
                     AND g.deleted_at IS NULL AND g.status = 'active'
                     AND (g.path = a.path OR (g.path ~>=~ (a.path || '.') AND g.path ~<~ (a.path || '/')))";

fn expand_groups(r: &Reach) -> Vec<String> {
    if r.groups.is_empty() && r.subtrees.is_empty() {
        return Vec::new();
    }
    let args = [r.space_id.as_str().into(), r.groups.clone().into(), r.subtrees.clone().into()];
    let types = [kept::TEXT, kept::TEXT_ARRAY, kept::TEXT_ARRAY];
    let mut ids: Vec<String> = kept::generic_plans(|| {
        Spi::connect(|client| {
            kept::select(client, REACHABLE_GROUPS_SQL, &types, None, &args, |rows| {
                rows.map(|row| row.get::<String>(1).expect("text id").unwrap_or_default()).collect()
            })
        })
    });
    // One subtree and no group anchor: each group of the Space is joined once, so the rows are distinct.
    // Otherwise an anchor may lie in another's subtree, or be named twice.
    if !(r.groups.is_empty() && r.subtrees.len() == 1) {
        ids.sort_unstable();
        ids.dedup();
    }
    ids
}

#[pg_extern(stable, security_definer, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn actor_space_id() -> Option<String> {
    let req = actor_request("", "", "")?;
    ACTOR_SPACE.with(|memo| {
        memo.get_or(Some(req.clone()), || {
            let ctx = loader::load_context(&req, false);
            plystra_core::decide::actor_usable(&req, &ctx.actor, ctx.now_micros).then(|| req.space_id.clone())
        })
    })
}

#[pg_extern(stable, security_definer, parallel_restricted, strict)]
#[search_path(pg_catalog, pg_temp)]
fn reaches_space(resource_type: &str, action: &str) -> bool {
    current_reach(resource_type, action).is_some_and(|r| r.whole_space)
}

/// The policy's whole-Space arm: the actor's Space when a space-scope grant reaches all of it, else NULL.
#[pg_extern(stable, security_definer, parallel_restricted, strict)]
#[search_path(pg_catalog, pg_temp)]
fn reachable_space(resource_type: &str, action: &str) -> Option<String> {
    current_reach(resource_type, action).filter(|r| r.whole_space).map(|r| r.space_id.clone())
}

#[pg_extern(stable, security_definer, parallel_restricted, strict)]
#[search_path(pg_catalog, pg_temp)]
fn reachable_owner(resource_type: &str, action: &str) -> Option<String> {
    current_reach(resource_type, action).and_then(|r| r.owner_member_id.clone())
}

#[pg_extern(stable, security_definer, parallel_restricted, strict)]
#[search_path(pg_catalog, pg_temp)]
fn reachable_groups(resource_type: &str, action: &str) -> SetOfIterator<'static, String> {
    let ids = current_reach(resource_type, action).map(|r| current_groups(&r, resource_type, action).to_vec());
    SetOfIterator::new(ids.unwrap_or_default())
}

/// The policy's group arm, as an array for `group_id = ANY (...)`: empty when the whole Space is reached,
/// since the whole-Space arm then covers every group and a long array would only lengthen the index scan.
///
/// A policy calls it from several InitPlans of one statement (the group arm, the wide-reach bounds, the exactness
/// test); the array is built once per question and visibility (the memo's rule, `statement_cache`) and each later
/// call gets a copy of its bytes. Built again on every call, an array of 50,051 groups cost about 5 ms a call.
#[pg_extern(stable, security_definer, parallel_restricted, strict)]
#[search_path(pg_catalog, pg_temp)]
fn reachable_group_ids(resource_type: &str, action: &str) -> GroupIdArray {
    let bytes = GROUP_ARRAYS.with(|memo| {
        memo.get_or(question(resource_type, action), || {
            let ids = match current_reach(resource_type, action) {
                Some(r) if !r.whole_space => current_groups(&r, resource_type, action).to_vec(),
                _ => Vec::new(),
            };
            let datum = ids.into_datum().expect("an array of text is never NULL");
            // SAFETY: `datum` is the flat, 4-byte-headed array varlena just built by construct_md_array (no
            // TOAST, no short header); it lives in the current memory context while its bytes are copied out.
            let bytes = unsafe {
                let ptr = datum.cast_mut_ptr::<u8>();
                std::slice::from_raw_parts(ptr, pgrx::varsize(ptr.cast())).to_vec()
            };
            Rc::new(bytes)
        })
    });
    GroupIdArray(bytes)
}

/// A `text[]` answer kept as the bytes of its flat array; returned as a palloc'd copy in the caller's context.
struct GroupIdArray(Rc<Vec<u8>>);

impl IntoDatum for GroupIdArray {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        // SAFETY: palloc'd in the current (the call's) memory context, and the copy is a whole varlena as built.
        unsafe {
            let copy = pg_sys::palloc(self.0.len()).cast::<u8>();
            std::ptr::copy_nonoverlapping(self.0.as_ptr(), copy, self.0.len());
            Some(pg_sys::Datum::from(copy))
        }
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::TEXTARRAYOID
    }
}

// SAFETY: the datum is a `text[]`, the type these say the function returns (as `Vec<String>` would).
unsafe impl pgrx::callconv::BoxRet for GroupIdArray {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut pgrx::callconv::FcInfo<'fcx>) -> pgrx::datum::Datum<'fcx> {
        match self.into_datum() {
            Some(datum) => unsafe { fcinfo.return_raw_datum(datum) },
            None => fcinfo.return_null(),
        }
    }
}

// SAFETY: the same SQL type as `Vec<String>`, so the function's declaration is unchanged (`text[]`).
unsafe impl sql_entity::SqlTranslatable for GroupIdArray {
    const TYPE_IDENT: &'static str = <Vec<String> as sql_entity::SqlTranslatable>::TYPE_IDENT;
    const TYPE_ORIGIN: sql_entity::TypeOrigin = <Vec<String> as sql_entity::SqlTranslatable>::TYPE_ORIGIN;
    const ARGUMENT_SQL: Result<sql_entity::SqlMappingRef, sql_entity::ArgumentError> =
        <Vec<String> as sql_entity::SqlTranslatable>::ARGUMENT_SQL;
    const RETURN_SQL: Result<sql_entity::ReturnsRef, sql_entity::ReturnsError> =
        <Vec<String> as sql_entity::SqlTranslatable>::RETURN_SQL;
}

/// Mirrored resources (plystra.resources) the current actor may act on.
const LOOKUP_RESOURCES_SQL: &str = "\
SELECT r.id FROM plystra.resources r
WHERE r.resource_type = $1 AND r.space_id = $2 AND r.deleted_at IS NULL AND r.status = 'active'
  AND ($3 OR r.owner_member_id = $4 OR r.group_id IN (SELECT unnest($5::text[])))
ORDER BY r.id";

#[pg_extern(stable, security_definer, parallel_restricted, strict)]
#[search_path(pg_catalog, pg_temp)]
fn lookup_resources(resource_type: &str, action: &str) -> SetOfIterator<'static, String> {
    let Some(r) = current_reach(resource_type, action) else {
        return SetOfIterator::new(Vec::new());
    };
    let groups = current_groups(&r, resource_type, action).to_vec();
    let args = [
        resource_type.into(),
        r.space_id.as_str().into(),
        r.whole_space.into(),
        r.owner_member_id.as_deref().into(),
        groups.into(),
    ];
    let types = [kept::TEXT, kept::TEXT, kept::BOOL, kept::TEXT, kept::TEXT_ARRAY];
    let ids = Spi::connect(|client| {
        kept::select(client, LOOKUP_RESOURCES_SQL, &types, None, &args, |rows| {
            rows.map(|row| row.get::<String>(1).expect("text id").unwrap_or_default()).collect::<Vec<_>>()
        })
    });
    SetOfIterator::new(ids)
}

/// The decision for the current actor on a mirrored resource, without an audit row.
#[pg_extern(stable, security_definer, parallel_restricted, strict)]
#[search_path(pg_catalog, pg_temp)]
fn allowed_resource(resource_type: &str, resource_id: &str, action: &str) -> bool {
    let Some(req) = actor_request(resource_type, resource_id, action) else {
        return false;
    };
    decide(&req, &loader::load_context(&req, false)).allow
}

/// Where an application row's group is named: by id, or by path within the row's Space.
enum RowGroup<'a> {
    Id(&'a str),
    Path(&'a str),
}

/// Decides for a row the application owns (not mirrored into plystra.resources): the target is built from
/// the row's Space, group and owner. `resource_id` is `""`, so the registry and grants are what count.
fn decide_row(
    resource_type: &str,
    action: &str,
    space_id: &str,
    group: Option<RowGroup<'_>>,
    owner_member_id: Option<&str>,
) -> bool {
    let Some(req) = actor_request(resource_type, "", action) else {
        return false;
    };
    let mut ctx = loader::load_context(&req, false);
    // A deleted or inactive group places nothing, exactly as in the loader (TARGET_GROUP_MISSING for group scopes).
    let group = group.and_then(|g| match g {
        RowGroup::Id(id) => loader::live_group(id),
        RowGroup::Path(path) => loader::live_group_by_path(space_id, path),
    });
    ctx.target = Some(Target {
        resource: Resource {
            id: String::new(),
            external_id: None,
            resource_type: resource_type.into(),
            space_id: space_id.into(),
            group_id: group.as_ref().map(|g| g.id.clone()),
            owner_member_id: owner_member_id.map(str::to_string),
            display_name: None,
            visibility: None,
            status: None,
            metadata: None,
        },
        group,
    });
    decide(&req, &ctx).allow
}

/// May the current actor perform `action` on an application row of `resource_type` in `space_id`, in group
/// `group_id` (NULL: no group), owned by `owner_member_id` (NULL: nobody)? Same rules as plystra.check.
#[pg_extern(stable, security_definer, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn allowed_row(
    resource_type: Option<&str>,
    action: Option<&str>,
    space_id: Option<&str>,
    group_id: Option<&str>,
    owner_member_id: Option<&str>,
) -> bool {
    let (Some(resource_type), Some(action), Some(space_id)) = (resource_type, action, space_id) else {
        return false;
    };
    decide_row(resource_type, action, space_id, group_id.map(RowGroup::Id), owner_member_id)
}

/// `allowed_row` for applications that store the group's path instead of its id.
#[pg_extern(stable, security_definer, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn allowed_row_by_path(
    resource_type: Option<&str>,
    action: Option<&str>,
    space_id: Option<&str>,
    group_path: Option<&str>,
    owner_member_id: Option<&str>,
) -> bool {
    let (Some(resource_type), Some(action), Some(space_id)) = (resource_type, action, space_id) else {
        return false;
    };
    decide_row(resource_type, action, space_id, group_path.map(RowGroup::Path), owner_member_id)
}
