//! The REST front's decision in one call (`plystra.decide_with_credential`): the credential the caller presented,
//! the route's admin permission on every scope the request touches, the session's acting binding, and the
//! decision itself. The front computes only what needs its secrets (the HMACs of the presented token, under the
//! current and the previous secret) and maps the outcome to HTTP; every rule that reads the database is here, in
//! the order the front applies them: authentication (and a session's inline description refused), then the admin
//! permission, then the actor, then the decision. A usual request's context is loaded before the permission is
//! checked, so that its objects are placed from what the decision reads anyway; nothing of it is answered or
//! audited unless the permission holds.
//! Nothing is kept between calls, so a revoked key or session is refused on its very next request.

use pgrx::prelude::*;
use serde_json::{json, Value};

use std::collections::HashMap;

use crate::admin::{scope as admin_scope, Holder};
use crate::credential::{authenticate_holding, Credential};
use crate::error::raise_invalid_request;
use crate::kept;
use crate::probe::Reader;
use plystra_core::model::{ActorNaming, Context, Request};
use plystra_core::request::{RequestError, INLINE_ACTOR_FIELDS};

const FUNCTION: &str = "plystra.decide_with_credential";

/// Where an authz request's objects lie: the resource's Space and Group, the binding's Space and user, the
/// Member's Space. Deleted rows too: their Space is known, and the decision answers for them. With them, the
/// Space and path of the resource's Group when it is not deleted (what `plystra.admin_permission` reads of a Group
/// scope), so that the permission on it needs no statement of its own.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Placement {
    resource_space: Option<String>,
    resource_group: Option<String>,
    binding_space: Option<String>,
    binding_user: Option<String>,
    member_space: Option<String>,
    group_place: Option<(String, String)>,
}

/// [`Placement`], read by index probes (`probe`) under the snapshot a decision reads with: at most four
/// primary-key probes, and no statement to plan, start and end on every request. `known`: the decision's context,
/// already loaded for this request under the same snapshot; what it shows is not read again. It holds only live
/// rows (a resource active and not deleted, a group likewise, actor rows not deleted), so a row it lacks may still
/// place the request (a deleted resource keeps its Space): that one is probed as before.
pub(crate) fn placement(
    resource_type: Option<&str>,
    resource_id: Option<&str>,
    binding: Option<&str>,
    member: Option<&str>,
    known: Option<&Context>,
) -> Placement {
    // Begun only when something must be probed.
    let reader = std::cell::OnceCell::new();
    let reader = || reader.get_or_init(Reader::begin);
    let mut placed = Placement::default();
    if let (Some(resource_type), Some(resource_id)) = (resource_type, resource_id) {
        (placed.resource_space, placed.resource_group) =
            match known.and_then(|c| c.target.as_ref()).map(|t| &t.resource) {
                Some(r) if r.id == resource_id && r.resource_type == resource_type => {
                    (Some(r.space_id.clone()), r.group_id.clone())
                }
                _ => crate::loader::resource_row(reader(), resource_id, |row| {
                    row.text_is("resource_type", resource_type).then(|| (row.text("space_id"), row.text("group_id")))
                })
                .unwrap_or_default(),
            };
    }
    if let Some(group) = placed.resource_group.as_deref() {
        placed.group_place = match known.and_then(|c| c.target.as_ref()?.group.as_ref()) {
            Some(g) if g.id == group => Some((g.space_id.clone(), g.path.clone())),
            _ => reader()
                .one(c"groups", c"groups_pkey", &[group], |row| {
                    row.is_null("deleted_at").then(|| (row.text("space_id"), row.text("path")))
                })
                .and_then(|(space, path)| space.zip(path)),
        };
    }
    if let Some(binding) = binding {
        (placed.binding_space, placed.binding_user) = match known.and_then(|c| c.actor.user_member.as_ref()) {
            Some(b) if b.id == binding => (Some(b.space_id.clone()), Some(b.user_id.clone())),
            _ => reader()
                .one(c"user_members", c"user_members_pkey", &[binding], |row| {
                    Some((row.text("space_id"), row.text("user_id")))
                })
                .unwrap_or_default(),
        };
    }
    if let Some(member) = member {
        placed.member_space = match known.and_then(|c| c.actor.member.as_ref()) {
            Some(m) if m.id == member => Some(m.space_id.clone()),
            _ => reader().one(c"members", c"members_pkey", &[member], |row| row.text("space_id")),
        };
    }
    placed
}

/// A user named without a binding is placed by a binding of theirs in the Space named.
const USER_IN_SPACE_SQL: &str = "SELECT 1 FROM plystra.user_members WHERE user_id = $1 AND space_id = $2 LIMIT 1";

/// The actor a session names must be one of the session user's usable bindings.
const SESSION_ACTOR_SQL: &str = "SELECT 1 FROM plystra.usable_bindings \
    WHERE id = $1 AND user_id = $2 AND member_id = $3 AND space_id = $4";

/// A scope the credential must hold the permission on: a Group (its Space derived), a Space, or the instance.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Scope {
    space_id: Option<String>,
    group_id: Option<String>,
}

const INSTANCE: Scope = Scope { space_id: None, group_id: None };

/// Group scopes already resolved (`plystra.admin_permission`'s reading of a (Space, Group) pair: `None` when the
/// group is deleted or lies in another Space), so that each is read once.
type GroupScopes = HashMap<(Option<String>, String), Option<plystra_core::admin::Scope>>;

fn invalid(field: &str, problem: &str) -> ! {
    raise_invalid_request(&RequestError { field: field.into(), problem: problem.into() }, FUNCTION)
}

fn text(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

/// The scopes an authz request touches (security review F3): the Core resource's Space and Group, the actor's
/// `space_id`, the Space of the named binding and of the named Member (a session without an actor: its active
/// binding's Space). The credential must hold the permission in every one, so a scoped credential asks only
/// about objects inside its scope, and the decision's answer (actor, binding, grants, groups) never shows
/// another Space. An id that names nothing cannot be placed: it adds the instance scope, which only an
/// instance credential holds, so "exists in another Space" and "does not exist" get the same refusal. The
/// actor's objects are checked within the resource's Group when they are in the resource's Space (a Group
/// credential may ask about its Space's Members on its own resources), except for an explanation: its trace
/// shows the actor's candidate grants anchored anywhere in the Space, so it needs the permission on the
/// actor's whole Space (a Group credential checks, but does not explain).
fn request_scopes(
    credential: &Credential,
    doc: &Value,
    parsed: Option<&Request>,
    known: Option<&Context>,
    explain: bool,
    groups: &mut GroupScopes,
) -> Vec<Scope> {
    let mut scopes: Vec<Scope> = Vec::new();
    let mut unplaced = false;
    // Context Mode and an actor named by its User: placed from the request as the decision reads it (`parsed`,
    // its User's binding already resolved; `None` when the request does not read).
    let pure_inline = parsed.and_then(|r| r.inline.as_deref()).is_some_and(|i| i.is_pure());
    let resolved;
    let doc = match parsed.filter(|r| r.actor_naming.by_user()) {
        // An inline target with no Space of its own lies in the resolved binding's Space.
        Some(req) => {
            resolved = with_resolved_actor(doc, req, home_space(credential));
            &resolved
        }
        None => doc,
    };
    let resource_type = text(&doc["resource_type"]).or_else(|| text(&doc["resource"]["type"]));
    let resource_id = text(&doc["resource_id"]).or_else(|| text(&doc["resource"]["id"]));
    let actor = &doc["actor"];
    let user = text(&actor["user_id"]);
    let binding = text(&actor["user_member_id"]).or_else(|| text(&actor["binding_id"]));
    let member = text(&actor["member_id"]);
    let Placement { resource_space, resource_group, binding_space, binding_user, member_space, group_place } =
        placement(resource_type.as_deref(), resource_id.as_deref(), binding.as_deref(), member.as_deref(), known);
    if let (Some(space), Some(group)) = (&resource_space, &resource_group) {
        // As `admin_permission` reads the Group: not deleted, and in the Space named with it.
        let scope = group_place
            .filter(|(group_space, _)| group_space == space)
            .map(|(space_id, path)| plystra_core::admin::Scope::Group { space_id, group_id: group.clone(), path });
        groups.insert((Some(space.clone()), group.clone()), scope);
    }
    let mut resource: Option<Scope> = None;
    let inline = parsed.map(crate::loader::inline_placements).unwrap_or_default();
    match (&resource_type, &resource_id) {
        (Some(_), Some(_)) => match (resource_space, &inline.target) {
            (Some(space), _) => resource = Some(Scope { space_id: Some(space), group_id: resource_group }),
            (None, Some((space, group))) => {
                resource = Some(Scope { space_id: Some(space.clone()), group_id: group.clone() })
            }
            (None, None) => unplaced = true,
        },
        (None, Some(_)) => unplaced = true,
        _ => {}
    }
    let mut actor_spaces: Vec<String> = Vec::new();
    if pure_inline {
        // The actor is the request's own (nothing of Core's is read about it): its Space is its scope.
        match text(&actor["space_id"]) {
            Some(space) => actor_spaces.push(space),
            None => unplaced = true,
        }
        for (space, group) in &inline.grants {
            let scope = Scope { space_id: Some(space.clone()), group_id: group.clone() };
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
    } else if actor.is_object() {
        if let Some(space) = text(&actor["space_id"]) {
            actor_spaces.push(space);
        }
        if binding.is_some() {
            match (binding_space, binding_user) {
                // The user named must be the binding's (else the answer would show another user).
                (Some(space), Some(bound)) if user.as_deref().is_none_or(|u| u == bound) => actor_spaces.push(space),
                _ => unplaced = true,
            }
        }
        if member.is_some() {
            match member_space {
                Some(space) => actor_spaces.push(space),
                None => unplaced = true,
            }
        }
        if let (Some(user), None) = (&user, &binding) {
            let space = actor_spaces.first().cloned();
            let found = Spi::connect(|client| {
                let args = [user.as_str().into(), space.as_deref().into()];
                kept::select(client, USER_IN_SPACE_SQL, &[kept::TEXT; 2], Some(1), &args, |mut rows| {
                    rows.next().is_some()
                })
            });
            if !found {
                unplaced = true;
            }
        }
        if actor_spaces.is_empty() {
            unplaced = true;
        }
    } else if doc.get("actor").is_none() {
        if let Credential::Session { active_space_id, .. } = credential {
            match active_space_id {
                Some(space) => actor_spaces.push(space.clone()),
                None => unplaced = true,
            }
        }
    }
    if let Some(r) = &resource {
        scopes.push(r.clone());
    }
    for space in actor_spaces {
        let group_id = resource
            .as_ref()
            .filter(|_| !explain)
            .filter(|r| r.space_id.as_deref() == Some(space.as_str()))
            .and_then(|r| r.group_id.clone());
        let scope = Scope { space_id: Some(space), group_id };
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if unplaced || scopes.is_empty() {
        scopes.push(INSTANCE);
    }
    scopes
}

/// The request as the decision reads it, its actor's binding resolved when it names only the User; `None` when it
/// does not read.
fn read_resolved(credential: &Credential, doc: &Value) -> Option<Request> {
    let mut req = plystra_core::request::parse_request(doc).ok()?.request;
    crate::loader::resolve_binding(&mut req, home_space(credential));
    Some(req)
}

/// The scopes a batch (`items`) touches: the union of the scopes of each item asked on its own (the actor's, and
/// the item's resource as in a check), so that a batch needs exactly what its items would need one by one. An
/// item list that is not an array, or longer than a batch may be, places nothing (the instance scope, then the
/// batch is refused as malformed).
fn batch_scopes(credential: &Credential, doc: &Value, groups: &mut GroupScopes) -> Vec<Scope> {
    let mut single = doc.clone();
    if let Some(map) = single.as_object_mut() {
        map.remove("items");
    }
    // The batch's one actor, resolved once when named by its User.
    if let Some(mut first) = plystra_core::request::parse_batch(doc).ok().and_then(|r| r.into_iter().next()) {
        if first.actor_naming == ActorNaming::ByUser {
            crate::loader::resolve_binding(&mut first, home_space(credential));
            single = with_resolved_actor(&single, &first, home_space(credential));
        }
    }
    let items = match doc["items"].as_array() {
        Some(items) if items.len() <= plystra_core::request::MAX_BATCH_ITEMS => items,
        _ => return vec![INSTANCE],
    };
    let mut scopes: Vec<Scope> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut add = |found: Vec<Scope>| {
        for scope in found {
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
    };
    if items.is_empty() {
        add(request_scopes(credential, &single, read_resolved(credential, &single).as_ref(), None, false, groups));
    }
    for item in items {
        // Items naming the same resource the same way (inline description included) place the same scopes.
        let key = json!([item.get("resource_type"), item.get("resource_id"), item.get("resource")]).to_string();
        if !seen.insert(key) {
            continue;
        }
        if let Some(map) = single.as_object_mut() {
            for field in ["resource_type", "resource_id", "resource", "action"] {
                match item.get(field) {
                    Some(v) => map.insert(field.into(), v.clone()),
                    None => map.remove(field),
                };
            }
        }
        add(request_scopes(credential, &single, read_resolved(credential, &single).as_ref(), None, false, groups));
    }
    scopes
}

/// The Space a Space- or Group-scoped API key works in: an actor named by its User alone is resolved there when
/// the request names no Space.
fn home_space(credential: &Credential) -> Option<&str> {
    match credential {
        Credential::ApiKey { level, space_id, .. } if level != "instance" => space_id.as_deref(),
        _ => None,
    }
}

/// The request document naming the binding `req`'s resolution chose, for placing scopes. A User with no
/// binding, or several, is left as named: it places nothing, so only the instance scope answers, the same answer
/// whether the User exists elsewhere or not.
fn with_resolved_actor(doc: &Value, req: &Request, home: Option<&str>) -> Value {
    let mut doc = doc.clone();
    match req.actor_naming {
        ActorNaming::Resolved => {
            doc["actor"]["member_id"] = json!(req.member_id);
            doc["actor"]["user_member_id"] = json!(req.user_member_id);
            doc["actor"]["space_id"] = json!(req.space_id);
        }
        // Ambiguous within the key's Space: placed there, and the decision says which rule failed.
        ActorNaming::Ambiguous if text(&doc["actor"]["space_id"]).is_none() => {
            if let Some(home) = home {
                doc["actor"]["space_id"] = json!(home);
            }
        }
        _ => {}
    }
    doc
}

/// Whether a request describes anything inline (Context Mode): actor metadata, inline grants, or resource fields
/// beyond its type and id, in the request or in any batch item.
fn names_inline(doc: &Value) -> bool {
    let set = |v: &Value| !v.is_null();
    let resource_inline =
        |res: &Value| res.as_object().is_some_and(|m| m.iter().any(|(k, v)| k != "type" && k != "id" && set(v)));
    set(&doc["grants"])
        || INLINE_ACTOR_FIELDS.iter().any(|k| set(&doc["actor"][*k]))
        || resource_inline(&doc["resource"])
        || doc["items"].as_array().is_some_and(|items| items.iter().any(|i| resource_inline(&i["resource"])))
}

/// Whether the credential holds `permission` on every scope (the rule of `plystra.admin_permission` and
/// `plystra.api_key_permission`): the credential's grants are read once, and each group once.
fn holds_all(holder: &Holder, permission: &str, scopes: &[Scope], mut groups: GroupScopes) -> bool {
    crate::admin::check_key(permission, FUNCTION);
    scopes.iter().all(|scope| {
        let resolved = match &scope.group_id {
            Some(group) => groups
                .entry((scope.space_id.clone(), group.clone()))
                .or_insert_with(|| admin_scope(scope.space_id.as_deref(), Some(group)))
                .clone(),
            None => admin_scope(scope.space_id.as_deref(), None),
        };
        holder.holds(permission, resolved)
    })
}

fn refusal(credential: &Credential, code: &str, message: &str) -> Value {
    json!({"outcome": "forbidden", "code": code, "message": message, "credential": credential.summary()})
}

/// A session that names no actor acts through its active binding: the request is made to name it, before it is
/// read, so that it is read once. Whether it was named so (a session without an active binding is refused by
/// [`session_actor`]).
fn session_default_actor(credential: &Credential, doc: &mut Value) -> bool {
    let Credential::Session { user_id, active_space_id, active_member_id, active_user_member_id, .. } = credential
    else {
        return false;
    };
    let (Some(space), Some(member), Some(binding)) = (active_space_id, active_member_id, active_user_member_id) else {
        return false;
    };
    if !doc.is_object() || !doc["actor"].is_null() {
        return false;
    }
    doc["actor"] = json!({"user_id": user_id, "member_id": member, "user_member_id": binding, "space_id": space});
    true
}

/// A session acts through its own usable binding: the actor it names must be one of them (an actor the session
/// named itself, [`session_default_actor`], is its active binding). `Err` is the refusal.
fn session_actor(credential: &Credential, doc: &Value) -> Result<(), Value> {
    let Credential::Session { user_id, .. } = credential else {
        return Ok(());
    };
    let refuse = |message| Err(refusal(credential, "ACTIVE_MEMBER_REQUIRED", message));
    if doc["actor"].is_null() {
        return refuse("Session has no active Member binding.");
    }
    let actor = &doc["actor"];
    let binding = text(&actor["user_member_id"]).or_else(|| text(&actor["binding_id"]));
    let (member, space) = (text(&actor["member_id"]), text(&actor["space_id"]));
    let usable = Spi::connect(|client| {
        let args =
            [binding.as_deref().into(), user_id.as_str().into(), member.as_deref().into(), space.as_deref().into()];
        kept::select(client, SESSION_ACTOR_SQL, &[kept::TEXT; 4], Some(1), &args, |mut rows| rows.next().is_some())
    });
    let own_user = text(&actor["user_id"]).is_none_or(|u| &u == user_id);
    if usable && own_user {
        Ok(())
    } else {
        refuse("The actor must be an active Member binding of the session user.")
    }
}

/// The whole call: see the module comment and the function's COMMENT (sql/front.sql).
pub fn decide_with_credential(
    credential: &Value,
    permission: &str,
    mut request: Value,
    explain: bool,
    authorize_only: bool,
) -> Value {
    if !request.is_object() {
        // Asked only about the credential, for a body that does not read: nothing in it places a scope.
        if !authorize_only {
            invalid("request", "must be a JSON object");
        }
        request = Value::Null;
    }
    let Some((credential, holder)) = authenticate_holding(credential, FUNCTION) else {
        return json!({"outcome": "unauthenticated"});
    };
    let batch = request.get("items").is_some();
    if batch && explain {
        invalid("explain", "is not available for a batch");
    }
    let named_by_session = session_default_actor(&credential, &mut request);
    // A session may describe nothing inline: refused before anything the request names is placed, so that the
    // answer is one whether a described id (a resource, a group, an anchor) lies in another Space or nowhere.
    let api_key = matches!(credential, Credential::ApiKey { .. });
    if !authorize_only && !api_key && names_inline(&request) {
        let message = "Inline actor, resource, or grant context requires a server-side API key.";
        return refusal(&credential, "INLINE_CONTEXT_REQUIRES_API_KEY", message);
    }
    // A check or explanation is read once, here: its scopes are placed from it and it is decided as read (its
    // User's binding resolved once). A request that does not read places what its fields name, and the decision
    // then refuses it with the parser's 22023.
    let parsed = if batch { None } else { read_resolved(&credential, &request) };
    // A request that names its actor by ids and its objects in Core (the usual check) is loaded for its decision
    // first, and placed from what was loaded: the gate then reads again nothing the decision reads (its own
    // placement probes were 17.5% of a backend's samples running this function over the benchmark's check mix).
    // Nothing of the loading is shown or written until the credential is found to hold the permission: a refusal
    // is answered as before.
    let (parsed, loaded) = match parsed {
        Some(req) if !authorize_only && req.inline.is_none() && !req.actor_naming.by_user() => {
            (None, Some(crate::api::load(req, explain, true)))
        }
        other => (other, None),
    };
    let mut groups = GroupScopes::new();
    let scopes = if batch {
        batch_scopes(&credential, &request, &mut groups)
    } else {
        let read = loaded.as_ref().map(crate::api::Loaded::request).or(parsed.as_ref());
        let known = loaded.as_ref().map(crate::api::Loaded::ctx);
        request_scopes(&credential, &request, read, known, explain, &mut groups)
    };
    if !holds_all(&holder, permission, &scopes, groups) {
        let scoped = matches!(&credential, Credential::ApiKey { level, .. } if level != "instance");
        let message = if scoped {
            // One answer whether an id lies in another Space or nowhere: ids of other Spaces cannot be
            // enumerated through it.
            "Scoped credentials may ask only about actors, resources and groups inside their scope."
        } else {
            "The credential does not hold the admin permission this route requires."
        };
        return refusal(&credential, "ADMIN_PERMISSION_REQUIRED", message);
    }
    if authorize_only {
        return json!({"outcome": "authorized", "credential": credential.summary()});
    }
    if !named_by_session {
        if let Err(refused) = session_actor(&credential, &request) {
            return refused;
        }
    }
    let asker = crate::api::Asker { pure_inline: api_key, home_space: home_space(&credential) };
    let decision = match (parsed, loaded) {
        _ if batch => crate::api::batch_value(&request, FUNCTION, asker),
        (_, Some(loaded)) => loaded.answer(FUNCTION, asker),
        (Some(req), None) => crate::api::answer_parsed(req, explain, FUNCTION, asker),
        (None, None) => crate::api::answer_value(&request, explain, FUNCTION, asker),
    };
    json!({"outcome": "decided", "credential": credential.summary(), "decision": decision})
}

crate::api::function_info_v1!(pg_finfo_plystra_decide_with_credential);

/// The C entry point of `plystra.decide_with_credential(credential jsonb, permission text, request jsonb,
/// explain boolean, authorize_only boolean)`: a C-language function for the reason `plystra.check` is one
/// (api.rs); its jsonb arguments are read, and its answer written, in jsonb's binary form as there.
///
/// # Safety
/// Only PostgreSQL calls it, through the function manager, with the five arguments above.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn plystra_decide_with_credential(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: the declared signature has these five arguments, in this order, with these types.
    let (credential, permission, request, explain, authorize_only) = unsafe {
        (
            crate::jsonb::jsonb_arg_value(fcinfo, 0),
            pgrx::fcinfo::pg_getarg::<String>(fcinfo, 1),
            crate::jsonb::jsonb_arg_value(fcinfo, 2),
            pgrx::fcinfo::pg_getarg::<bool>(fcinfo, 3),
            pgrx::fcinfo::pg_getarg::<bool>(fcinfo, 4),
        )
    };
    let credential = crate::api::read_jsonb(credential, "credential", FUNCTION);
    let request = crate::api::read_jsonb(request, "request", FUNCTION);
    let Some(permission) = permission else { invalid("permission", "is required") };
    let (Some(explain), Some(authorize_only)) = (explain, authorize_only) else {
        invalid("explain", "and authorize_only are required")
    };
    let answer = crate::catalog::Catalog::one_snapshot(|| {
        decide_with_credential(&credential, &permission, request, explain, authorize_only)
    });
    crate::jsonb::to_jsonb_datum(&plystra_core::jsonb::Doc::from(&answer))
}
