//! The decision contract: the request the REST front reads from its callers, and the answers the extension
//! writes (the compact answer, its audit summary, the explain trace, a batch's answers), as serde types. The
//! extension produces its answers through them and the front reads and re-serialises the same types, so that there
//! is one shape, here. With the `openapi` feature (the front's) they also derive `utoipa::ToSchema`, under the
//! names the REST front's OpenAPI document has always given them; the extension is built without it.
//!
//! `decision` and `deny_code` are typed ([`Decision`], [`DenyCode`]) and serialise to the same words as ever;
//! the OpenAPI document keeps describing them as strings, as it always has (a deny code added later must not
//! break a client generated from an older document).

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Map, Value};

use crate::deny::DenyCode;
use crate::jsonb::Doc;
use crate::model::RequestContext;

/// Most items a batch may hold; the extension refuses more with 22023, the front with a 400.
pub use crate::request::MAX_BATCH_ITEMS;

// ---------------------------------------------------------------------------------------------------------------
// The request.

/// The nested actor (the flat `actor_user_id` form of older clients is not accepted). With an API key it may be
/// named by its User alone (`{user_id}` or `{user_id, space_id}`): the extension resolves the binding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AuthzActor))]
#[serde(deny_unknown_fields)]
pub struct Actor {
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = String, min_length = 1))]
    pub user_id: Option<String>,
    pub member_id: Option<String>,
    pub user_member_id: Option<String>,
    /// Alias of `user_member_id`.
    pub binding_id: Option<String>,
    pub space_id: Option<String>,
    // Inline actor metadata (Context Mode, API key only): the actor and its grants then come from the request.
    pub user_email: Option<String>,
    pub user_status: Option<String>,
    pub member_display_name: Option<String>,
    pub member_status: Option<String>,
    pub binding_status: Option<String>,
    pub relation_type: Option<String>,
    pub space_name: Option<String>,
    pub space_status: Option<String>,
}

/// The resource: `type` and `id`, and (Context Mode, API key only) the description of a resource Plystra does not
/// hold; fields not given are read from `metadata` through the type's mapping. A registered resource is always
/// Plystra's own (the trace lists inline fields it ignored).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AuthzResource))]
#[serde(deny_unknown_fields)]
pub struct Resource {
    #[serde(rename = "type")]
    pub resource_type: Option<String>,
    pub id: Option<String>,
    // Inline snapshot fields (Context Mode).
    pub external_id: Option<String>,
    pub space_id: Option<String>,
    pub group_id: Option<String>,
    pub group_path: Option<String>,
    pub owner_member_id: Option<String>,
    pub display_name: Option<String>,
    pub visibility: Option<String>,
    pub status: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<Value>,
}

// A decision request (`/authz/check`, `/authz/explain`, `/spaces/{id}/authz/simulate`). The actor's
// `binding_id` and the resource's `{type, id}` are aliases, folded once, by `DecisionRequest::document`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AuthzRequest))]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    pub actor: Option<Actor>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub resource: Option<Resource>,
    /// Inline grants (Context Mode).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Object>>))]
    pub grants: Option<Vec<Value>>,
    pub action: Option<String>,
    pub explain: Option<bool>,
}

/// One item of a batch: a resource (`resource_type` + `resource_id`, or `resource: {type, id}`) and an action.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AuthzBatchItem))]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub resource: Option<Resource>,
    pub action: Option<String>,
}

/// Many decisions for one actor: the actor as for a check (a session may leave it out and act through its active
/// binding), and 1 to 1000 items.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AuthzBatchRequest))]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub actor: Option<Actor>,
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = Vec<BatchItem>, min_items = 1, max_items = 1000))]
    pub items: Option<Vec<BatchItem>>,
}

/// The fields of a request object that were given (nulls left out), as the extension reads them.
fn given_fields<T: Serialize>(value: &T) -> Map<String, Value> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map.into_iter().filter(|(_, v)| !v.is_null()).collect(),
        _ => Map::new(),
    }
}

impl Actor {
    /// Inline actor metadata (Context Mode): any field given that does not name the actor, empty or not (the
    /// extension's gate counts it the same way).
    pub fn is_inline(&self) -> bool {
        // Every field but the five that name the actor (`request::ACTOR_ID_FIELDS`), in one pattern without `..`, so
        // that a new field does not compile until it is placed; given (not null) is `Some`. This runs on every
        // request, and reading the serialized fields cost a few percent of the front's check (a `perf` profile,
        // 2026-11-30).
        !matches!(
            self,
            Actor {
                user_id: _,
                member_id: _,
                user_member_id: _,
                binding_id: _,
                space_id: _,
                user_email: None,
                user_status: None,
                member_display_name: None,
                member_status: None,
                binding_status: None,
                relation_type: None,
                space_name: None,
                space_status: None,
            }
        )
    }

    /// The actor as the extension reads it: its given fields, `binding_id` folded into `user_member_id` (an
    /// explicit `user_member_id` wins).
    pub fn document(&self) -> Map<String, Value> {
        let mut actor = given_fields(self);
        if let Some(binding) = actor.remove("binding_id") {
            actor.entry("user_member_id").or_insert(binding);
        }
        actor
    }
}

impl Resource {
    /// A resource's inline description (Context Mode): every given field but `type` and `id`, which travel as
    /// `resource_type` and `resource_id`.
    pub fn inline_description(&self) -> Map<String, Value> {
        let mut fields = given_fields(self);
        fields.remove("type");
        fields.remove("id");
        fields
    }

    pub fn is_inline(&self) -> bool {
        !self.inline_description().is_empty()
    }
}

/// The resource fields of a request or batch item in the extension's form: `resource_type` and `resource_id`
/// (the flat fields win over `resource.type` and `resource.id`), and the inline description, if any.
fn put_resource(
    doc: &mut Map<String, Value>,
    resource_type: &Option<String>,
    resource_id: &Option<String>,
    resource: Option<&Resource>,
) {
    if let Some(t) = resource_type.clone().or_else(|| resource.and_then(|r| r.resource_type.clone())) {
        doc.insert("resource_type".into(), Value::String(t));
    }
    if let Some(id) = resource_id.clone().or_else(|| resource.and_then(|r| r.id.clone())) {
        doc.insert("resource_id".into(), Value::String(id));
    }
    if let Some(described) = resource.map(Resource::inline_description).filter(|d| !d.is_empty()) {
        doc.insert("resource".into(), Value::Object(described));
    }
}

fn request_context_json(ctx: &RequestContext) -> Value {
    json!({ "request_id": ctx.request_id, "ip": ctx.ip, "user_agent": ctx.user_agent })
}

impl DecisionRequest {
    /// Context Mode: inline actor metadata, a resource description or grants (accepted only with a server-side
    /// API key). Any field given counts, empty or not: an empty list of grants makes the request pure inline.
    pub fn uses_inline_context(&self) -> bool {
        self.actor.as_ref().is_some_and(Actor::is_inline)
            || self.resource.as_ref().is_some_and(Resource::is_inline)
            || self.grants.is_some()
    }

    /// The extension's request document (`plystra.check`'s): the actor (its inline metadata included), the
    /// resource as `resource_type` and `resource_id` (its inline description as `resource`), the inline grants,
    /// the action, and the caller's request context (`request`: request id, client IP, user agent, which reach
    /// the audit row). `explain` is not part of it: the caller chooses the function.
    pub fn document(&self, ctx: &RequestContext) -> Value {
        let mut doc = Map::new();
        if let Some(a) = &self.actor {
            doc.insert("actor".into(), Value::Object(a.document()));
        }
        put_resource(&mut doc, &self.resource_type, &self.resource_id, self.resource.as_ref());
        if let Some(grants) = &self.grants {
            doc.insert("grants".into(), Value::Array(grants.clone()));
        }
        if let Some(action) = &self.action {
            doc.insert("action".into(), Value::String(action.clone()));
        }
        doc.insert("request".into(), request_context_json(ctx));
        Value::Object(doc)
    }
}

impl BatchRequest {
    /// The first item's resource that is described inline (Context Mode), if any.
    pub fn inline_resource(&self) -> Option<&Resource> {
        self.items.iter().flatten().filter_map(|i| i.resource.as_ref()).find(|r| r.is_inline())
    }

    /// The extension's batch document (`plystra.check_batch`'s): the actor, each item's resource and action in
    /// the form [`DecisionRequest::document`] gives them, and the caller's request context.
    pub fn document(&self, ctx: &RequestContext) -> Value {
        let mut doc = Map::new();
        if let Some(a) = &self.actor {
            doc.insert("actor".into(), Value::Object(a.document()));
        }
        doc.insert("request".into(), request_context_json(ctx));
        let items = self
            .items
            .iter()
            .flatten()
            .map(|item| {
                let mut out = Map::new();
                put_resource(&mut out, &item.resource_type, &item.resource_id, item.resource.as_ref());
                if let Some(action) = &item.action {
                    out.insert("action".into(), Value::String(action.clone()));
                }
                Value::Object(out)
            })
            .collect();
        doc.insert("items".into(), Value::Array(items));
        Value::Object(doc)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The answers.

/// A decision's outcome word: `"allow"` or `"deny"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    pub const fn from_allow(allow: bool) -> Decision {
        if allow {
            Decision::Allow
        } else {
            Decision::Deny
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A deny code travels as its wire name ([`DenyCode::as_str`], the one list of them); an unknown name does not
/// read.
impl Serialize for DenyCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DenyCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = Cow::<str>::deserialize(deserializer)?;
        DenyCode::parse(&name).ok_or_else(|| serde::de::Error::custom(format_args!("unknown deny code `{name}`")))
    }
}

// Its text borrows from the decided request where it can (`'a`): the extension writes a batch's hundred answers
// without copying them; a reader holds it as `AuditSummary<'static>`. (Plain comments above a schema type: a doc
// comment would become the OpenAPI document's description.)
/// The audit summary of a decision (also the shape of the audit row's identifying columns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AuthzAudit))]
pub struct AuditSummary<'a> {
    pub audit_log_id: Option<Cow<'a, str>>,
    pub actor_user_id: Option<Cow<'a, str>>,
    pub actor_member_id: Option<Cow<'a, str>>,
    pub actor_user_member_id: Option<Cow<'a, str>>,
    pub space_id: Option<Cow<'a, str>>,
    pub action: Option<Cow<'a, str>>,
    pub resource_type: Option<Cow<'a, str>>,
    pub resource_id: Option<Cow<'a, str>>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub decision: Decision,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub deny_code: Option<DenyCode>,
    pub request_id: Option<Cow<'a, str>>,
}

// The compact answer of a decision (`plystra.check`, `/authz/check`, each result of a batch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AuthzCheckResponse))]
pub struct CheckAnswer<'a> {
    pub allow: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub decision: Decision,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub deny_code: Option<DenyCode>,
    pub reason: Cow<'a, str>,
    pub trace_id: Cow<'a, str>,
    pub audit_log_id: Option<Cow<'a, str>>,
    #[cfg_attr(feature = "openapi", schema(value_type = AuditSummary))]
    pub audit: AuditSummary<'a>,
}

/// The answers of a batch, in item order: each exactly what /authz/check answers for the item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AuthzBatchResponse))]
pub struct BatchAnswer<'a> {
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<CheckAnswer>))]
    pub results: Vec<CheckAnswer<'a>>,
}

/// The decision-time trace (docs/v1-reference.md §1.7); the same document the audit row keeps in `trace`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AuthzExplainTrace))]
pub struct ExplainTrace {
    pub trace_version: String,
    pub trace_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub decision: Decision,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub deny_code: Option<DenyCode>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub actor: Value,
    /// null when the actor's Space was not found.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub space: Value,
    /// null when the decision ended before the resource was read (the actor was refused first).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub target: Value,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub resource_registry: Value,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Object>>))]
    pub matched_candidates: Value,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub request: Value,
    pub reason: String,
    #[cfg_attr(feature = "openapi", schema(value_type = AuditSummary))]
    pub audit: AuditSummary<'static>,
    /// The request as the extension read it (an addition to v1.0's trace, kept so that the HTTP
    /// answer and the audit row's `trace` are the same document).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub requested: Option<Value>,
    /// Context Mode only: which of `actor`, `target` and `grants` came from the request (`inline`) rather than
    /// from Plystra (`core`), and `ignored_inline_fields` when a registered resource was described.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub context_mode: Option<Value>,
    /// How many candidates the trace leaves out, when there are more than it shows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_candidates_omitted: Option<u64>,
}

// The extension writes answers in jsonb's binary form straight from these types (`crate::jsonb`): each type lists
// its members in jsonb's key order (shorter first, then bytewise), so that the encoder writes them without sorting,
// and borrows its text. `to_doc` is the same document serde writes; `tests::documents_are_the_serde_form` holds
// every type to it.

fn opt<'d>(s: &'d Option<Cow<'_, str>>) -> Doc<'d> {
    Doc::opt_str(s.as_deref())
}

fn opt_code(code: Option<DenyCode>) -> Doc<'static> {
    Doc::opt_str(code.map(DenyCode::as_str))
}

impl AuditSummary<'_> {
    /// This summary as a jsonb document that borrows its text.
    pub fn to_doc(&self) -> Doc<'_> {
        Doc::Obj(vec![
            ("action", opt(&self.action)),
            ("decision", Doc::str(self.decision.as_str())),
            ("space_id", opt(&self.space_id)),
            ("deny_code", opt_code(self.deny_code)),
            ("request_id", opt(&self.request_id)),
            ("resource_id", opt(&self.resource_id)),
            ("audit_log_id", opt(&self.audit_log_id)),
            ("actor_user_id", opt(&self.actor_user_id)),
            ("resource_type", opt(&self.resource_type)),
            ("actor_member_id", opt(&self.actor_member_id)),
            ("actor_user_member_id", opt(&self.actor_user_member_id)),
        ])
    }
}

impl CheckAnswer<'_> {
    /// This answer as a jsonb document that borrows its text.
    pub fn to_doc(&self) -> Doc<'_> {
        Doc::Obj(vec![
            ("allow", Doc::Bool(self.allow)),
            ("audit", self.audit.to_doc()),
            ("reason", Doc::str(&self.reason)),
            ("decision", Doc::str(self.decision.as_str())),
            ("trace_id", Doc::str(&self.trace_id)),
            ("deny_code", opt_code(self.deny_code)),
            ("audit_log_id", opt(&self.audit_log_id)),
        ])
    }
}

impl BatchAnswer<'_> {
    /// This answer as a jsonb document that borrows its text.
    pub fn to_doc(&self) -> Doc<'_> {
        Doc::Obj(vec![("results", Doc::Arr(self.results.iter().map(CheckAnswer::to_doc).collect()))])
    }
}

#[cfg(test)]
mod tests;
