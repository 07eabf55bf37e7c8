//! Parsing a decision request (the JSON document given to `plystra.check` / `plystra.explain`). Every problem
//! names the field, so that SQL callers get SQLSTATE 22023 and HTTP callers a 400 that says what to fix.

use std::fmt;

use serde_json::{Map, Value};

use crate::model::{ActorNaming, Inline, InlineActor, InlineGrant, InlineResource, Request, RequestContext};

/// Longest accepted id, key or request id, in bytes. Ids in the schema are at most 256 characters.
pub const MAX_ID_BYTES: usize = 256;
pub const MAX_IP_BYTES: usize = 64;
pub const MAX_USER_AGENT_BYTES: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestError {
    /// The offending field as a dotted path (`actor.user_id`), or `request` for the whole document.
    pub field: String,
    pub problem: String,
}

impl RequestError {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        RequestError { field: field.into(), problem: problem.into() }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid request: {} {}", self.field, self.problem)
    }
}

impl std::error::Error for RequestError {}

/// A parsed request plus the flags that change what is returned, not what is decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedRequest {
    pub request: Request,
    pub explain: bool,
}

const TOP_LEVEL_FIELDS: &[&str] =
    &["actor", "resource_type", "resource_id", "resource", "grants", "action", "request", "explain"];
/// The fields that name the actor (`binding_id` is `user_member_id`'s alias).
pub const ACTOR_ID_FIELDS: [&str; 5] = ["user_id", "member_id", "user_member_id", "binding_id", "space_id"];
/// The actor's inline metadata (Context Mode): any of them makes the actor the request's own.
pub const INLINE_ACTOR_FIELDS: [&str; 8] = [
    "user_email",
    "user_status",
    "member_display_name",
    "member_status",
    "binding_status",
    "relation_type",
    "space_name",
    "space_status",
];
pub(crate) const RESOURCE_FIELDS: &[&str] = &[
    "type",
    "id",
    "external_id",
    "space_id",
    "group_id",
    "group_path",
    "owner_member_id",
    "display_name",
    "visibility",
    "status",
    "metadata",
];
const GRANT_FIELDS: &[&str] = &[
    "role_id",
    "role_key",
    "permission_id",
    "resource",
    "action",
    "scope",
    "space_id",
    "scope_anchor_group_id",
    "scope_anchor_group_path",
];
/// Most inline grants one request may carry.
pub const MAX_INLINE_GRANTS: usize = 100;
/// Longest inline free text (display names), in bytes.
pub const MAX_TEXT_BYTES: usize = 1024;
/// Longest group path, in bytes (the schema's limit on groups.path).
pub const MAX_PATH_BYTES: usize = 1024;
const CONTEXT_FIELDS: &[&str] = &["request_id", "ip", "user_agent"];
/// v1.0's flat actor fields, removed from the API: named in the error so that old clients learn the new shape.
const FLAT_ACTOR_FIELDS: &[&str] = &["actor_user_id", "actor_member_id", "actor_user_member_id", "space_id"];

/// Where a field lies in a document, spelled out only when an error names it: a batch parses up to a thousand
/// items, and naming each item's fields for every item cost more than reading them.
#[derive(Clone, Copy)]
struct At<'a> {
    /// The batch item (`items[3]`), if any.
    item: Option<usize>,
    /// The field within the request or item (empty for the item itself).
    field: &'a str,
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.item, self.field) {
            (None, field) => f.write_str(field),
            (Some(i), "") => write!(f, "items[{i}]"),
            (Some(i), field) => write!(f, "items[{i}].{field}"),
        }
    }
}

/// A field inside an object named by `prefix` (`actor.user_email`, `grants[2].scope`), written out only when an
/// error names it: every request reads a dozen optional fields, and naming each up front cost a decision an
/// allocation a field.
struct Dotted<'a, P>(&'a P, &'a str);

impl<P: fmt::Display> fmt::Display for Dotted<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

fn object(value: &Value, field: impl fmt::Display) -> Result<&Map<String, Value>, RequestError> {
    value.as_object().ok_or_else(|| RequestError::new(field.to_string(), "must be a JSON object"))
}

fn reject_unknown(
    map: &Map<String, Value>,
    allowed: &[&[&str]],
    prefix: impl fmt::Display,
) -> Result<(), RequestError> {
    for key in map.keys() {
        if !allowed.iter().any(|list| list.contains(&key.as_str())) {
            let prefix = prefix.to_string();
            let field = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
            let problem = if prefix.is_empty() && FLAT_ACTOR_FIELDS.contains(&key.as_str()) {
                "is not accepted: give the actor as a nested object {\"actor\": {\"user_id\", \"member_id\", \"user_member_id\", \"space_id\"}}"
            } else {
                "is not a known field"
            };
            return Err(RequestError::new(field, problem));
        }
    }
    Ok(())
}

/// An optional string field: absent or null is `None`; anything but a string is an error.
fn opt_string(
    map: &Map<String, Value>,
    key: &str,
    field: impl fmt::Display,
    max: usize,
) -> Result<Option<String>, RequestError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            if s.len() > max {
                Err(RequestError::new(field.to_string(), format!("is longer than {max} bytes")))
            } else if s.contains('\0') {
                Err(RequestError::new(field.to_string(), "contains a NUL character"))
            } else {
                Ok(Some(s.clone()))
            }
        }
        Some(_) => Err(RequestError::new(field.to_string(), "must be a string")),
    }
}

fn required(value: Option<String>, field: impl fmt::Display) -> Result<String, RequestError> {
    match value {
        Some(s) if !s.is_empty() => Ok(s),
        Some(_) => Err(RequestError::new(field.to_string(), "must not be empty")),
        None => Err(RequestError::new(field.to_string(), "is required")),
    }
}

/// Two spellings of one field (v1.0's aliases) must agree when both are given.
fn one_of(
    a: Option<String>,
    a_field: impl fmt::Display,
    b: Option<String>,
    b_field: impl fmt::Display,
) -> Result<Option<String>, RequestError> {
    match (a, b) {
        (Some(x), Some(y)) if x != y => {
            Err(RequestError::new(b_field.to_string(), format!("disagrees with {a_field}")))
        }
        (Some(x), _) => Ok(Some(x)),
        (None, y) => Ok(y),
    }
}

/// The acting tuple `(user_id, member_id, user_member_id, space_id)` of a document's `actor`, how it was
/// named, and its inline metadata. An actor named by its User alone (`{user_id}` or `{user_id, space_id}`, no
/// Member and no binding) has empty ids that the loader fills in by resolving the binding.
struct ParsedActor {
    user_id: String,
    member_id: String,
    user_member_id: String,
    space_id: String,
    naming: ActorNaming,
    inline: Option<InlineActor>,
}

fn parse_actor(top: &Map<String, Value>) -> Result<ParsedActor, RequestError> {
    let actor = top.get("actor").ok_or_else(|| RequestError::new("actor", "is required"))?;
    let actor = object(actor, "actor")?;
    reject_unknown(actor, &[&ACTOR_ID_FIELDS, &INLINE_ACTOR_FIELDS], "actor")?;
    let user_id = required(opt_string(actor, "user_id", "actor.user_id", MAX_ID_BYTES)?, "actor.user_id")?;
    let member_id = opt_string(actor, "member_id", "actor.member_id", MAX_ID_BYTES)?;
    let user_member_id = one_of(
        opt_string(actor, "user_member_id", "actor.user_member_id", MAX_ID_BYTES)?,
        "actor.user_member_id",
        opt_string(actor, "binding_id", "actor.binding_id", MAX_ID_BYTES)?,
        "actor.binding_id",
    )?;
    let space_id = opt_string(actor, "space_id", "actor.space_id", MAX_ID_BYTES)?;
    let inline = parse_inline_actor(actor)?;
    if member_id.is_none() && user_member_id.is_none() && inline.is_none() {
        let space_id = match space_id {
            Some(s) if s.is_empty() => return Err(RequestError::new("actor.space_id", "must not be empty")),
            s => s.unwrap_or_default(),
        };
        return Ok(ParsedActor {
            user_id,
            member_id: String::new(),
            user_member_id: String::new(),
            space_id,
            naming: ActorNaming::ByUser,
            inline: None,
        });
    }
    Ok(ParsedActor {
        user_id,
        member_id: required(member_id, "actor.member_id")?,
        user_member_id: required(user_member_id, "actor.user_member_id")?,
        space_id: required(space_id, "actor.space_id")?,
        naming: ActorNaming::Tuple,
        inline,
    })
}

fn parse_inline_actor(actor: &Map<String, Value>) -> Result<Option<InlineActor>, RequestError> {
    let get = |key: &str, max: usize| opt_string(actor, key, Dotted(&"actor", key), max);
    let inline = InlineActor {
        user_email: get("user_email", MAX_ID_BYTES)?,
        user_status: get("user_status", MAX_ID_BYTES)?,
        member_display_name: get("member_display_name", MAX_TEXT_BYTES)?,
        member_status: get("member_status", MAX_ID_BYTES)?,
        binding_status: get("binding_status", MAX_ID_BYTES)?,
        relation_type: get("relation_type", MAX_ID_BYTES)?,
        space_name: get("space_name", MAX_TEXT_BYTES)?,
        space_status: get("space_status", MAX_ID_BYTES)?,
    };
    Ok((inline != InlineActor::default()).then_some(inline))
}

/// The inline fields of a `resource` object (Context Mode): `None` when it holds only `type` and `id`. `item`:
/// the batch item it belongs to, if any.
fn parse_inline_resource(
    res: &Map<String, Value>,
    item: Option<usize>,
) -> Result<Option<InlineResource>, RequestError> {
    let at = |field| At { item, field };
    let get = |key: &str, field, max: usize| opt_string(res, key, at(field), max);
    let metadata = match res.get("metadata") {
        None | Some(Value::Null) => None,
        Some(m @ Value::Object(_)) => Some(m.clone()),
        Some(_) => return Err(RequestError::new(at("resource.metadata").to_string(), "must be a JSON object")),
    };
    let inline = InlineResource {
        external_id: get("external_id", "resource.external_id", MAX_ID_BYTES)?,
        space_id: get("space_id", "resource.space_id", MAX_ID_BYTES)?,
        group_id: get("group_id", "resource.group_id", MAX_ID_BYTES)?,
        group_path: get("group_path", "resource.group_path", MAX_PATH_BYTES)?,
        owner_member_id: get("owner_member_id", "resource.owner_member_id", MAX_ID_BYTES)?,
        display_name: get("display_name", "resource.display_name", MAX_TEXT_BYTES)?,
        visibility: get("visibility", "resource.visibility", MAX_ID_BYTES)?,
        status: get("status", "resource.status", MAX_ID_BYTES)?,
        metadata,
    };
    Ok((inline != InlineResource::default()).then_some(inline))
}

/// The `grants` list (Context Mode): each grant's resource, action and scope are required.
fn parse_grants(top: &Map<String, Value>) -> Result<Option<Vec<InlineGrant>>, RequestError> {
    let grants = match top.get("grants") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(grants)) => grants,
        Some(_) => return Err(RequestError::new("grants", "must be a JSON array")),
    };
    if grants.len() > MAX_INLINE_GRANTS {
        return Err(RequestError::new("grants", format!("holds more than {MAX_INLINE_GRANTS} grants")));
    }
    let parsed = grants
        .iter()
        .enumerate()
        .map(|(i, grant)| {
            let prefix = format!("grants[{i}]");
            let map = object(grant, &prefix)?;
            reject_unknown(map, &[GRANT_FIELDS], &prefix)?;
            let get = |key: &str, max: usize| opt_string(map, key, Dotted(&prefix, key), max);
            let need = |key: &str| required(get(key, MAX_ID_BYTES)?, Dotted(&prefix, key));
            Ok(InlineGrant {
                role_id: get("role_id", MAX_ID_BYTES)?,
                role_key: get("role_key", MAX_ID_BYTES)?,
                permission_id: get("permission_id", MAX_ID_BYTES)?,
                resource: need("resource")?,
                action: need("action")?,
                scope: need("scope")?,
                space_id: get("space_id", MAX_ID_BYTES)?,
                scope_anchor_group_id: get("scope_anchor_group_id", MAX_ID_BYTES)?,
                scope_anchor_group_path: get("scope_anchor_group_path", MAX_PATH_BYTES)?,
            })
        })
        .collect::<Result<Vec<_>, RequestError>>()?;
    Ok(Some(parsed))
}

/// A request's or a batch item's target: resource type and id, action, and the resource's inline description.
struct ParsedTarget {
    resource_type: String,
    resource_id: String,
    action: String,
    inline: Option<InlineResource>,
}

/// The target of a request or a batch item; `item` is the item's index in a batch (`items[3]`), which then starts
/// every field named in an error.
fn parse_target(map: &Map<String, Value>, item: Option<usize>) -> Result<ParsedTarget, RequestError> {
    let at = |field| At { item, field };
    let (res_type, res_id, inline) = match map.get("resource") {
        None | Some(Value::Null) => (None, None, None),
        Some(v) => {
            let res = object(v, at("resource"))?;
            reject_unknown(res, &[RESOURCE_FIELDS], at("resource"))?;
            (
                opt_string(res, "type", at("resource.type"), MAX_ID_BYTES)?,
                opt_string(res, "id", at("resource.id"), MAX_ID_BYTES)?,
                parse_inline_resource(res, item)?,
            )
        }
    };
    let resource_type = one_of(
        opt_string(map, "resource_type", at("resource_type"), MAX_ID_BYTES)?,
        at("resource_type"),
        res_type,
        at("resource.type"),
    )?;
    let resource_type = required(resource_type, at("resource_type"))?;
    let resource_id = one_of(
        opt_string(map, "resource_id", at("resource_id"), MAX_ID_BYTES)?,
        at("resource_id"),
        res_id,
        at("resource.id"),
    )?;
    let resource_id = required(resource_id, at("resource_id"))?;
    let action = required(opt_string(map, "action", at("action"), MAX_ID_BYTES)?, at("action"))?;
    not_reserved(&resource_type, &action, item)?;
    Ok(ParsedTarget { resource_type, resource_id, action, inline })
}

fn inline_of(
    resource: Option<InlineResource>,
    grants: Option<Vec<InlineGrant>>,
    actor: Option<InlineActor>,
) -> Option<Box<Inline>> {
    let inline = Inline { resource, grants, actor };
    (inline != Inline::default()).then(|| Box::new(inline))
}

/// The optional `request: {request_id, ip, user_agent}`.
fn parse_context(top: &Map<String, Value>) -> Result<RequestContext, RequestError> {
    Ok(match top.get("request") {
        None | Some(Value::Null) => RequestContext::default(),
        Some(v) => {
            let ctx = object(v, "request")?;
            reject_unknown(ctx, &[CONTEXT_FIELDS], "request")?;
            RequestContext {
                request_id: opt_string(ctx, "request_id", "request.request_id", MAX_ID_BYTES)?,
                ip: opt_string(ctx, "ip", "request.ip", MAX_IP_BYTES)?,
                user_agent: opt_string(ctx, "user_agent", "request.user_agent", MAX_USER_AGENT_BYTES)?,
            }
        }
    })
}

pub fn parse_request(doc: &Value) -> Result<ParsedRequest, RequestError> {
    let top = object(doc, "request")?;
    reject_unknown(top, &[TOP_LEVEL_FIELDS], "")?;
    let actor = parse_actor(top)?;
    let target = parse_target(top, None)?;
    let grants = parse_grants(top)?;
    if grants.is_some() && actor.naming == ActorNaming::ByUser {
        return Err(RequestError::new("actor", "must name member_id, user_member_id and space_id with inline grants"));
    }
    let context = parse_context(top)?;
    let explain = match top.get("explain") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(RequestError::new("explain", "must be a boolean")),
    };

    Ok(ParsedRequest {
        request: Request {
            user_id: actor.user_id,
            member_id: actor.member_id,
            user_member_id: actor.user_member_id,
            space_id: actor.space_id,
            resource_type: target.resource_type,
            resource_id: target.resource_id,
            action: target.action,
            context,
            actor_naming: actor.naming,
            inline: inline_of(target.inline, grants, actor.inline),
        },
        explain,
    })
}

/// Most items one batch may hold: a batch is one statement, and its audit rows are written before it answers.
pub const MAX_BATCH_ITEMS: usize = 1000;

const BATCH_FIELDS: &[&str] = &["actor", "items", "request"];
const ITEM_FIELDS: &[&str] = &["resource_type", "resource_id", "resource", "action"];

/// Parses a batch `{"actor": {...}, "items": [{resource_type, resource_id, action} or {resource: {type, id,
/// ...inline fields}, action}, ...], "request": {...}}` (the document of `plystra.check_batch`) into one request
/// per item, in order: the same actor and request context, each item's resource (registered, or described
/// inline) and action. A batch takes no inline grants or actor metadata. A problem names its field
/// (`items[3].action`); an empty list or one over [`MAX_BATCH_ITEMS`] is refused.
pub fn parse_batch(doc: &Value) -> Result<Vec<Request>, RequestError> {
    let top = object(doc, "request")?;
    reject_unknown(top, &[BATCH_FIELDS], "")?;
    let actor = parse_actor(top)?;
    if actor.inline.is_some() {
        return Err(RequestError::new("actor", "takes no inline metadata in a batch"));
    }
    let items = top.get("items").ok_or_else(|| RequestError::new("items", "is required"))?;
    let items = items.as_array().ok_or_else(|| RequestError::new("items", "must be a JSON array"))?;
    if items.is_empty() {
        return Err(RequestError::new("items", "must not be empty"));
    }
    if items.len() > MAX_BATCH_ITEMS {
        return Err(RequestError::new("items", format!("holds more than {MAX_BATCH_ITEMS} items")));
    }
    let context = parse_context(top)?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = At { item: Some(i), field: "" };
            let map = object(item, at)?;
            reject_unknown(map, &[ITEM_FIELDS], at)?;
            let target = parse_target(map, Some(i))?;
            Ok(Request {
                user_id: actor.user_id.clone(),
                member_id: actor.member_id.clone(),
                user_member_id: actor.user_member_id.clone(),
                space_id: actor.space_id.clone(),
                resource_type: target.resource_type,
                resource_id: target.resource_id,
                action: target.action,
                context: context.clone(),
                actor_naming: actor.naming,
                inline: inline_of(target.inline, None, None),
            })
        })
        .collect()
}

/// A decision's audit action is `<resource_type>.<action>`, both chosen by the caller; these rules keep it from
/// reading as an action Plystra writes itself. Resource types no decision may name and no Resource Registry entry
/// may take (`resource_types_key_reserved` in `migrations/017_reserved_resource_types.sql`, kept equal by a
/// test): `auth` begins the authentication events (`auth.login_failed`), `audit_partition` the log's upkeep.
pub const RESERVED_RESOURCE_TYPES: &[&str] = &["auth", "audit_partition"];

/// The entities of the management audit trigger (`tg_audit_mutation`), whose rows have action `<entity>.<verb>`.
/// A resource type may share an entity's name (an application's own "user" or "group" objects), but a decision
/// about one may not use a verb of [`MANAGEMENT_VERBS`]: `user_member` / `revoked` would file a row that reads as
/// the revocation of a binding.
pub const MANAGEMENT_ENTITIES: &[&str] = &[
    "admin_grant",
    "api_key",
    "group",
    "member",
    "member_role",
    "permission",
    "resource",
    "resource_action",
    "resource_mapping",
    "resource_type",
    "role",
    "role_permission",
    "space",
    "user",
    "user_member",
];

/// The verbs of the management audit trigger's actions.
pub const MANAGEMENT_VERBS: &[&str] = &["created", "updated", "deleted", "restored", "disabled", "revoked", "archived"];

/// Refuses a target whose audit action would read as one Plystra writes itself (see [`RESERVED_RESOURCE_TYPES`]).
/// The action `<resource_type>.<action>` is read as a reader filtering by prefix or suffix reads it: by its first
/// dot-separated segment (a resource type `auth.x` makes `auth.x.read`, which `LIKE 'auth.%'` finds) and its last
/// (`user_member` with `x.revoked`), each trimmed of surrounding whitespace and compared without regard to case,
/// as [`folds_to`] compares (`Auth.login_failed` reads as the event to a reader who ignores case, and
/// PostgreSQL's `lower()` and `ILIKE` fold the Kelvin sign in `api_\u{212A}ey` to `k`).
fn not_reserved(resource_type: &str, action: &str, item: Option<usize>) -> Result<(), RequestError> {
    let is = |list: &[&str], s: &str| list.iter().any(|name| folds_to(s.trim(), name));
    let first = resource_type.split('.').next().unwrap_or(resource_type);
    let last = action.rsplit('.').next().unwrap_or(action);
    if is(RESERVED_RESOURCE_TYPES, first) {
        return Err(RequestError::new(
            At { item, field: "resource_type" }.to_string(),
            format!("\"{resource_type}\" is reserved: it begins the audit actions of Plystra's own events"),
        ));
    }
    if is(MANAGEMENT_ENTITIES, first) && is(MANAGEMENT_VERBS, last) {
        return Err(RequestError::new(
            At { item, field: "action" }.to_string(),
            format!(
                "\"{action}\" on resource type \"{resource_type}\" is reserved: {resource_type}.{action} is a \
                 management change Plystra records itself"
            ),
        ));
    }
    Ok(())
}

/// Whether `s` reads as `name` (lowercase ASCII) to a reader who ignores case: each character of `s` folded to
/// the ASCII letter a case mapping gives it, if any. Its lowercase (the Kelvin sign `\u{212A}` is `k`; `\u{130}`,
/// a dotted capital I, is `i` and a combining dot, as PostgreSQL's `lower()` makes it `i`), else its uppercase
/// (the long s `\u{17F}` is `S`, which `upper()` makes of it). A character no case mapping takes to ASCII is
/// itself, so names in other scripts stay free.
fn folds_to(s: &str, name: &str) -> bool {
    fn fold(c: char) -> char {
        if c.is_ascii() {
            return c.to_ascii_lowercase();
        }
        let ascii = |first: Option<char>| first.filter(char::is_ascii).map(|a| a.to_ascii_lowercase());
        ascii(c.to_lowercase().next()).or_else(|| ascii(c.to_uppercase().next())).unwrap_or(c)
    }
    let mut folded = s.chars().map(fold);
    name.chars().all(|n| folded.next() == Some(n)) && folded.next().is_none()
}

/// The checks of the parser that the typed forms (`plystra.allowed`), which do not pass through it, need too.
pub fn typed_request_check(req: &Request) -> Result<(), RequestError> {
    not_reserved(&req.resource_type, &req.action, None)
}

/// What an audit row may hold of a request, whatever function made it: the parser bounds what `plystra.check`
/// reads, but the typed forms (`plystra.allowed` takes any text) and the request context of
/// `plystra.set_request_context` do not pass through it. A value past these bounds could not be indexed (a btree
/// entry holds about 2.7 kB): with the audit writer it would fail the writer's batch, and with it every decision
/// waiting on that batch. So a decision whose row would carry one is refused, naming the field.
pub fn audit_row_bounds(req: &Request) -> Result<(), RequestError> {
    let ctx = &req.context;
    let fields: [(&str, Option<&str>, usize); 10] = [
        ("actor.user_id", Some(&req.user_id), MAX_ID_BYTES),
        ("actor.member_id", Some(&req.member_id), MAX_ID_BYTES),
        ("actor.user_member_id", Some(&req.user_member_id), MAX_ID_BYTES),
        ("actor.space_id", Some(&req.space_id), MAX_ID_BYTES),
        ("resource_type", Some(&req.resource_type), MAX_ID_BYTES),
        ("resource_id", Some(&req.resource_id), MAX_ID_BYTES),
        ("action", Some(&req.action), MAX_ID_BYTES),
        ("request.request_id", ctx.request_id.as_deref(), MAX_ID_BYTES),
        ("request.ip", ctx.ip.as_deref(), MAX_IP_BYTES),
        ("request.user_agent", ctx.user_agent.as_deref(), MAX_USER_AGENT_BYTES),
    ];
    if let Some((field, _, limit)) = fields.iter().find(|(_, value, limit)| value.is_some_and(|v| v.len() > *limit)) {
        return Err(RequestError::new(*field, format!("is longer than {limit} bytes")));
    }
    // A row named like Plystra's own events is refused here too, whatever path built the request.
    typed_request_check(req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn demo() -> Value {
        json!({
            "actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer",
                      "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
            "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"
        })
    }

    fn err(doc: Value) -> RequestError {
        parse_request(&doc).expect_err("expected a validation error")
    }

    #[test]
    fn canonical_request_parses() {
        let p = parse_request(&demo()).unwrap();
        assert_eq!(p.request.user_member_id, "um_alice_finance_reviewer");
        assert_eq!(p.request.action, "approve");
        assert!(!p.explain);
    }

    #[test]
    fn aliases_binding_id_and_nested_resource() {
        let p = parse_request(&json!({
            "actor": {"user_id": "u", "member_id": "m", "binding_id": "b", "space_id": "s"},
            "resource": {"type": "invoice", "id": "i"}, "action": "read", "explain": true,
            "request": {"request_id": "req_1", "ip": "127.0.0.1", "user_agent": "curl"}
        }))
        .unwrap();
        assert_eq!(p.request.user_member_id, "b");
        assert_eq!((p.request.resource_type.as_str(), p.request.resource_id.as_str()), ("invoice", "i"));
        assert!(p.explain);
        assert_eq!(p.request.context.request_id.as_deref(), Some("req_1"));
    }

    #[test]
    fn every_problem_names_its_field() {
        let mut d = demo();
        d["actor"].as_object_mut().unwrap().remove("user_id");
        assert_eq!(err(d).field, "actor.user_id");

        let mut d = demo();
        d["actor"]["space_id"] = json!(42);
        assert_eq!(err(d), RequestError::new("actor.space_id", "must be a string"));

        let mut d = demo();
        d["action"] = json!("");
        assert_eq!(err(d), RequestError::new("action", "must not be empty"));

        let mut d = demo();
        d["resource_id"] = json!(null);
        assert_eq!(err(d), RequestError::new("resource_id", "is required"));

        let mut d = demo();
        d["resource_type"] = json!("x".repeat(MAX_ID_BYTES + 1));
        assert_eq!(err(d).field, "resource_type");

        let mut d = demo();
        d["actor"]["binding_id"] = json!("another");
        assert_eq!(err(d).field, "actor.binding_id");

        let mut d = demo();
        d["resource"] = json!({"type": "contract"});
        assert_eq!(err(d).field, "resource.type");

        let mut d = demo();
        d["explain"] = json!("yes");
        assert_eq!(err(d).field, "explain");

        let mut d = demo();
        d["request"] = json!({"user_agent": "a".repeat(MAX_USER_AGENT_BYTES + 1)});
        assert_eq!(err(d).field, "request.user_agent");

        let mut d = demo();
        d["actor"]["user_email"] = json!(3);
        assert_eq!(err(d), RequestError::new("actor.user_email", "must be a string"));

        let mut d = demo();
        d["actor"]["user_nickname"] = json!("al");
        assert_eq!(err(d).field, "actor.user_nickname");

        let mut d = demo();
        d["actor"].as_object_mut().unwrap().remove("member_id");
        assert_eq!(err(d), RequestError::new("actor.member_id", "is required"));

        let mut d = demo();
        d["actor"] = json!({"user_id": "user_alice", "space_id": ""});
        assert_eq!(err(d).field, "actor.space_id");

        assert_eq!(err(json!([1, 2])).field, "request");
        assert_eq!(err(json!({})).field, "actor");
        assert_eq!(err(json!({"actor": "alice"})).field, "actor");
    }

    #[test]
    fn flat_actor_fields_are_refused_with_a_hint() {
        let mut d = demo();
        d["actor_user_id"] = json!("user_alice");
        let e = err(d);
        assert_eq!(e.field, "actor_user_id");
        assert!(e.problem.contains("nested object"));
        assert_eq!(
            e.to_string().split_whitespace().take(3).collect::<Vec<_>>(),
            ["invalid", "request:", "actor_user_id"]
        );
    }

    #[test]
    fn an_actor_named_by_its_user_alone_is_resolved_later() {
        let p = parse_request(&json!({"actor": {"user_id": "user_alice"}, "resource_type": "invoice",
                                      "resource_id": "invoice_001", "action": "approve"}))
        .unwrap();
        assert_eq!(p.request.actor_naming, ActorNaming::ByUser);
        assert_eq!((p.request.member_id.as_str(), p.request.space_id.as_str()), ("", ""));
        let p = parse_request(&json!({"actor": {"user_id": "user_alice", "space_id": "space_acme"},
                                      "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"}))
        .unwrap();
        assert_eq!((p.request.actor_naming, p.request.space_id.as_str()), (ActorNaming::ByUser, "space_acme"));
        assert_eq!(parse_request(&demo()).unwrap().request.actor_naming, ActorNaming::Tuple);
        // Inline grants need the whole tuple: a pure-inline actor is never resolved from Core.
        let e =
            err(json!({"actor": {"user_id": "u"}, "resource_type": "invoice", "resource_id": "i", "action": "read",
                           "grants": [{"resource": "invoice", "action": "read", "scope": "space"}]}));
        assert_eq!(e.field, "actor");
    }

    #[test]
    fn context_mode_fields_parse_and_name_their_problems() {
        let mut d = demo();
        d["resource_id"] = json!("invoice_draft_001");
        d["resource"] =
            json!({"group_path": "finance.apac", "owner_member_id": "member_x", "metadata": {"amount": 10}});
        d["grants"] = json!([{"resource": "invoice", "action": "approve", "scope": "group_tree",
                              "scope_anchor_group_path": "finance"}]);
        d["actor"]["user_email"] = json!("alice@example.com");
        let inline = *parse_request(&d).unwrap().request.inline.unwrap();
        let res = inline.resource.unwrap();
        assert_eq!(res.group_path.as_deref(), Some("finance.apac"));
        assert_eq!(res.metadata, Some(json!({"amount": 10})));
        assert_eq!(inline.grants.unwrap()[0].scope_anchor_group_path.as_deref(), Some("finance"));
        assert_eq!(inline.actor.unwrap().user_email.as_deref(), Some("alice@example.com"));
        assert!(parse_request(&demo()).unwrap().request.inline.is_none());
        // An empty metadata object is still an inline description (a resource with no properties).
        let mut d = demo();
        d["resource"] = json!({"metadata": {}});
        assert!(parse_request(&d).unwrap().request.inline.unwrap().resource.is_some());

        for (grants, field) in [
            (json!({"resource": "invoice"}), "grants"),
            (json!([{"action": "approve", "scope": "space"}]), "grants[0].resource"),
            (json!([{"resource": "invoice", "action": "approve"}]), "grants[0].scope"),
            (json!([{"resource": "invoice", "action": "approve", "scope": "space", "role": "x"}]), "grants[0].role"),
            (json!([{"resource": "invoice", "action": "approve", "scope": 1}]), "grants[0].scope"),
            (json!(["x"]), "grants[0]"),
        ] {
            let mut d = demo();
            d["grants"] = grants;
            assert_eq!(err(d).field, field);
        }
        let mut d = demo();
        let one = json!({"resource": "invoice", "action": "approve", "scope": "space"});
        d["grants"] = Value::Array(vec![one; MAX_INLINE_GRANTS + 1]);
        assert_eq!(err(d).field, "grants");

        let mut d = demo();
        d["resource"] = json!({"metadata": [1]});
        assert_eq!(err(d), RequestError::new("resource.metadata", "must be a JSON object"));
        let mut d = demo();
        d["resource"] = json!({"group_path": "a".repeat(MAX_PATH_BYTES + 1)});
        assert_eq!(err(d).field, "resource.group_path");
        let mut d = demo();
        d["resource"]["owner_member_id"] = json!("a\u{0}b");
        assert_eq!(err(d).field, "resource.owner_member_id");
    }

    fn batch() -> Value {
        json!({
            "actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer",
                      "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
            "items": [
                {"resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"},
                {"resource": {"type": "invoice", "id": "invoice_002"}, "action": "read"}
            ],
            "request": {"request_id": "req_b"}
        })
    }

    fn batch_err(doc: Value) -> RequestError {
        parse_batch(&doc).expect_err("expected a validation error")
    }

    #[test]
    fn a_batch_is_one_request_per_item_in_order() {
        let mut with_inline = batch();
        with_inline["items"][1]["resource"]["metadata"] = json!({"ownerID": "m"});
        let items = parse_batch(&with_inline).unwrap();
        assert_eq!(
            items[1].inline.as_ref().unwrap().resource.as_ref().unwrap().metadata,
            Some(json!({"ownerID": "m"}))
        );
        assert!(items[0].inline.is_none());
        let items = parse_batch(&batch()).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!((items[0].resource_id.as_str(), items[0].action.as_str()), ("invoice_001", "approve"));
        assert_eq!((items[1].resource_type.as_str(), items[1].resource_id.as_str()), ("invoice", "invoice_002"));
        for item in &items {
            assert_eq!(item.user_member_id, "um_alice_finance_reviewer");
            assert_eq!(item.context.request_id.as_deref(), Some("req_b"));
        }
        // Each item reads as the single request with the same actor, resource and action.
        let single = parse_request(&json!({
            "actor": batch()["actor"], "resource_type": "invoice", "resource_id": "invoice_001",
            "action": "approve", "request": {"request_id": "req_b"}
        }))
        .unwrap();
        assert_eq!(items[0], single.request);
    }

    #[test]
    fn every_batch_problem_names_its_field() {
        assert_eq!(batch_err(json!([1])).field, "request");
        assert_eq!(batch_err(json!({"items": []})).field, "actor");

        let mut d = batch();
        d["items"] = json!({"resource_type": "invoice"});
        assert_eq!(batch_err(d), RequestError::new("items", "must be a JSON array"));

        let mut d = batch();
        d.as_object_mut().unwrap().remove("items");
        assert_eq!(batch_err(d), RequestError::new("items", "is required"));

        let mut d = batch();
        d["items"] = json!([]);
        assert_eq!(batch_err(d), RequestError::new("items", "must not be empty"));

        let mut d = batch();
        let item = json!({"resource_type": "invoice", "resource_id": "i", "action": "read"});
        d["items"] = Value::Array(vec![item.clone(); MAX_BATCH_ITEMS]);
        assert_eq!(parse_batch(&d).unwrap().len(), MAX_BATCH_ITEMS);
        d["items"] = Value::Array(vec![item; MAX_BATCH_ITEMS + 1]);
        assert_eq!(batch_err(d).field, "items");

        let mut d = batch();
        d["items"][1] = json!("invoice_002");
        assert_eq!(batch_err(d), RequestError::new("items[1]", "must be a JSON object"));

        let mut d = batch();
        d["items"][1]["action"] = json!(7);
        assert_eq!(batch_err(d), RequestError::new("items[1].action", "must be a string"));

        let mut d = batch();
        d["items"][0].as_object_mut().unwrap().remove("action");
        assert_eq!(batch_err(d), RequestError::new("items[0].action", "is required"));

        let mut d = batch();
        d["items"][1]["resource"]["owner"] = json!("x");
        assert_eq!(batch_err(d).field, "items[1].resource.owner");

        let mut d = batch();
        d["items"][1]["resource"]["metadata"] = json!("x");
        assert_eq!(batch_err(d).field, "items[1].resource.metadata");

        let mut d = batch();
        d["items"][1]["grants"] = json!([]);
        assert_eq!(batch_err(d).field, "items[1].grants");

        let mut d = batch();
        d["actor"]["user_status"] = json!("active");
        assert_eq!(batch_err(d).field, "actor");

        let mut d = batch();
        d["items"][0]["explain"] = json!(true);
        assert_eq!(batch_err(d).field, "items[0].explain");

        let mut d = batch();
        d["items"][0]["resource"] = json!({"type": "contract"});
        assert_eq!(batch_err(d).field, "items[0].resource.type");

        let mut d = batch();
        d["items"][1]["resource"] = json!({"type": "invoice"});
        assert_eq!(batch_err(d), RequestError::new("items[1].resource_id", "is required"));

        let mut d = batch();
        d["items"][0]["resource_id"] = json!("");
        assert_eq!(batch_err(d).field, "items[0].resource_id");

        let mut d = batch();
        d["resource_type"] = json!("invoice");
        assert_eq!(batch_err(d).field, "resource_type");

        let mut d = batch();
        d["request"] = json!({"ip": 1});
        assert_eq!(batch_err(d).field, "request.ip");

        let mut d = batch();
        d["actor"]["member_id"] = json!(null);
        assert_eq!(batch_err(d).field, "actor.member_id");
    }

    #[test]
    fn an_audit_row_holds_no_value_past_its_bounds() {
        let mut req = Request::about(("u", "m", "b", "s"), "invoice", "i", "read");
        assert_eq!(audit_row_bounds(&req), Ok(()));
        req.resource_id = "x".repeat(MAX_ID_BYTES);
        assert_eq!(audit_row_bounds(&req), Ok(()));
        req.resource_id = "x".repeat(MAX_ID_BYTES + 1);
        assert_eq!(audit_row_bounds(&req).unwrap_err().field, "resource_id");
        req.resource_id = "i".into();
        req.context.request_id = Some("r".repeat(3200));
        assert_eq!(audit_row_bounds(&req).unwrap_err().field, "request.request_id");
        req.context.request_id = None;
        req.context.user_agent = Some("a".repeat(MAX_USER_AGENT_BYTES));
        assert_eq!(audit_row_bounds(&req), Ok(()));
        req.context.ip = Some("1".repeat(MAX_IP_BYTES + 1));
        assert_eq!(audit_row_bounds(&req).unwrap_err().field, "request.ip");
    }

    #[test]
    fn no_decision_reads_as_an_action_plystra_writes() {
        // (resource type, action, the field named)
        let mut refused: Vec<(&str, &str, &str)> =
            RESERVED_RESOURCE_TYPES.iter().map(|t| (*t, "login_failed", "resource_type")).collect();
        refused.extend([
            ("auth", "read", "resource_type"),
            ("Auth", "login_failed", "resource_type"),
            ("AUDIT_PARTITION", "dropped", "resource_type"),
            ("User_Member", "Revoked", "action"),
            // What a prefix or suffix filter finds: auth.x.read, user_member.x.revoked, user_member.x.revoked.
            ("auth.x", "read", "resource_type"),
            (" auth", "login_failed", "resource_type"),
            ("user_member.x", "revoked", "action"),
            ("user_member", "x.revoked", "action"),
            ("space", "created ", "action"),
            // Case as PostgreSQL's lower() and upper() fold it: the Kelvin sign, the long s, the dotted capital I.
            ("api_\u{212A}ey", "revoked", "action"),
            ("\u{17F}pace", "created", "action"),
            ("user", "di\u{17F}abled", "action"),
            ("AUD\u{130}T_PARTITION", "dropped", "resource_type"),
        ]);
        for entity in MANAGEMENT_ENTITIES {
            for verb in MANAGEMENT_VERBS {
                refused.push((entity, verb, "action"));
            }
        }
        for (resource_type, action, field) in refused {
            let mut d = demo();
            d["resource_type"] = json!(resource_type);
            d["action"] = json!(action);
            let e = err(d);
            assert_eq!(e.field, field, "{resource_type}.{action}");
            assert!(e.problem.contains("reserved"), "{resource_type}.{action}: {}", e.problem);
            // The alias spelling and a batch item are refused alike.
            let mut d = demo();
            d.as_object_mut().unwrap().remove("resource_type");
            d.as_object_mut().unwrap().remove("resource_id");
            d["resource"] = json!({"type": resource_type, "id": "x"});
            d["action"] = json!(action);
            assert_eq!(err(d).field, field, "{resource_type}.{action}");
            let mut d = batch();
            d["items"][0]["resource_type"] = json!(resource_type);
            d["items"][0]["action"] = json!(action);
            assert_eq!(batch_err(d).field, format!("items[0].{field}"), "{resource_type}.{action}");
            // The typed form's check, and the audit row's, which every audited decision passes.
            let req = Request::about(("u", "m", "b", "s"), resource_type, "i", action);
            assert_eq!(typed_request_check(&req).unwrap_err().field, field);
            assert_eq!(audit_row_bounds(&req).unwrap_err().field, field);
        }
        // An application's own "user" or "group" objects, with its own verbs, and names that only look alike.
        for (resource_type, action) in [
            ("user", "read"),
            ("group", "delete"),
            ("users", "revoked"),
            ("authority", "read"),
            ("auth_", "x"),
            ("x.auth", "read"),
            ("user", "revoked.x"),
            // No case mapping takes these to ASCII: a fullwidth a, a Greek upsilon, a German u with umlaut.
            ("\u{FF41}uth", "read"),
            ("\u{3C5}ser", "revoked"),
            ("\u{FC}ser", "revoked"),
        ] {
            let mut d = demo();
            d["resource_type"] = json!(resource_type);
            d["action"] = json!(action);
            assert!(parse_request(&d).is_ok(), "{resource_type}.{action}");
            let req = Request::about(("u", "m", "b", "s"), resource_type, "i", action);
            assert_eq!(audit_row_bounds(&req), Ok(()));
        }
    }

    use crate::MIGRATIONS;

    /// Each `'<word>'` that follows `prefix` anywhere in the migrations' code (comments skipped).
    fn quoted_after(prefix: &str) -> Vec<String> {
        let mut found = Vec::new();
        for sql in MIGRATIONS {
            for line in sql.lines().filter(|l| !l.trim_start().starts_with("--")) {
                let mut rest = line;
                while let Some(at) = rest.find(prefix) {
                    rest = &rest[at + prefix.len()..];
                    if let Some(end) = rest.find('\'') {
                        found.push(rest[..end].to_string());
                    }
                }
            }
        }
        found.sort();
        found.dedup();
        found
    }

    /// The quoted words in the bodies of every definition of `plystra.tg_audit_mutation()` that follow `prefix`.
    fn in_mutation_trigger(prefix: &str) -> Vec<String> {
        let mut found = Vec::new();
        for sql in MIGRATIONS {
            for (at, _) in sql.match_indices("FUNCTION plystra.tg_audit_mutation()\nRETURNS") {
                let body = &sql[at..];
                let body = &body[..body.find("\n$$;").expect("a function body")];
                for (k, _) in body.match_indices(prefix) {
                    let word = &body[k + prefix.len()..];
                    found.push(word[..word.find('\'').unwrap()].to_string());
                }
            }
        }
        found.sort();
        found.dedup();
        found
    }

    #[test]
    fn the_reserved_names_are_the_registrys_check_and_every_action_plystra_writes() {
        let marker = "CONSTRAINT resource_types_key_reserved CHECK (key NOT IN (";
        let sql = MIGRATIONS.iter().rev().find(|m| m.contains(marker)).expect("migration 017 defines the CHECK");
        let start = sql.find(marker).unwrap() + marker.len();
        let end = sql[start..].find(')').unwrap() + start;
        let listed: Vec<String> = sql[start..end].split(',').map(|v| v.trim().trim_matches('\'').to_string()).collect();
        assert_eq!(
            RESERVED_RESOURCE_TYPES, listed,
            "RESERVED_RESOURCE_TYPES and the CHECK resource_types_key_reserved"
        );
        // Every entity the management trigger is attached with (`tg_audit_mutation('<entity>')`).
        let mut entities = quoted_after("tg_audit_mutation('");
        let mut ours: Vec<String> = MANAGEMENT_ENTITIES.iter().map(|e| e.to_string()).collect();
        entities.sort();
        ours.sort();
        assert_eq!(ours, entities, "MANAGEMENT_ENTITIES and the entities tg_audit_mutation is attached with");
        // Every verb any version of the trigger writes.
        let mut verbs = in_mutation_trigger("verb := '");
        verbs.extend(in_mutation_trigger("THEN '"));
        verbs.extend(in_mutation_trigger("ELSE '"));
        verbs.sort();
        verbs.dedup();
        let mut ours: Vec<String> = MANAGEMENT_VERBS.iter().map(|v| v.to_string()).collect();
        ours.sort();
        assert_eq!(ours, verbs, "MANAGEMENT_VERBS and the verbs tg_audit_mutation writes");
        // Every other action prefix (`'<prefix>.' || verb`), and the authentication events' `auth.`.
        let action_prefix = |w: String| {
            let word = w.strip_suffix('.')?;
            // `'.' ||` joins an entity and its verb.
            (!word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')).then(|| word.to_string())
        };
        let mut prefixes: Vec<String> = quoted_after(" '").into_iter().filter_map(action_prefix).collect();
        prefixes.push("auth".into());
        // `'plystra.' ||` builds qualified names, not actions.
        prefixes.retain(|p| p != "plystra");
        assert!(prefixes.iter().any(|p| p == "audit_partition"), "{prefixes:?}");
        for prefix in prefixes {
            assert!(RESERVED_RESOURCE_TYPES.contains(&prefix.as_str()), "{prefix} begins actions Plystra writes");
        }
    }
}
