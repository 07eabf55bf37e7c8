//! The OpenID AuthZEN Authorization API 1.0 (`/access/v1/...`), for policy enforcement points that speak the
//! standard rather than Plystra's own routes. Every answer is the extension's, reached the way our own routes
//! reach it:
//!
//! * `evaluation`, `evaluations` and `search/action` are decisions (`authz:check`): each goes through the
//!   decision gate (`plystra.decide_with_credential`), which checks the credential and its permission on every
//!   scope the question touches in the statement that decides, and audits each decision as `/authz/check` does.
//!   The questions of one subject go as one `plystra.check_batch` document (a single evaluation as a batch of
//!   one): each answer is the one `plystra.check` gives, and the gate resolves the subject's binding once, before
//!   it places the scopes, so a resource described inline is placed in that binding's Space.
//! * `search/subject` and `search/resource` are the lookups (`plystra.lookup_subjects`, `lookup_resources`),
//!   an access review's reading (`authz:read` on the Space the question is about; the protection seam places it
//!   from the body with [`search_scope`]).
//! * `/.well-known/authzen-configuration` is the public metadata document.
//!
//! The mapping (also in the README): the AuthZEN `subject` (type `user`) is a Plystra User by id, acting
//! through a binding the extension resolves (in the Space of `context.space_id`, else `subject.properties.space_id`,
//! else the only or the primary one; `ACTOR_BINDING_AMBIGUOUS` when it cannot choose); `resource` is a registered
//! resource, or with an API key an inline one whose `properties` are read through the type's mapping (Context
//! Mode); `action.name` is the action. A deny is `200 {"decision": false}`; errors use our error envelope.
//! Unknown request fields are ignored, as the standard requires.

use std::borrow::Cow;
use std::collections::HashMap;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use plystra_core::contract::{BatchAnswer, CheckAnswer, MAX_BATCH_ITEMS};
use plystra_core::DenyCode;

use crate::api::authz::{ask, contract_mismatch, Outcome};
use crate::app::AppState;
use crate::auth::credential::{self, Credential, Proof};
use crate::db::{self, Db};
use crate::db_errors;
use crate::envelope::{decode_cursor, encode_cursor};
use crate::error::{code, ApiError, ApiResult};
use crate::extract::BodyBytes;
use crate::protection::{DecisionPermission, RequestScope};
use crate::request_context::{RequestContext, AUDIT_LOG_ID_HEADER, TRACE_ID_HEADER};
use crate::store;

pub const EVALUATION_PATH: &str = "/access/v1/evaluation";
pub const EVALUATIONS_PATH: &str = "/access/v1/evaluations";
pub const SEARCH_SUBJECT_PATH: &str = "/access/v1/search/subject";
pub const SEARCH_RESOURCE_PATH: &str = "/access/v1/search/resource";
pub const SEARCH_ACTION_PATH: &str = "/access/v1/search/action";
pub const METADATA_PATH: &str = "/.well-known/authzen-configuration";

/// The only subject type: a Plystra User.
const SUBJECT_TYPE: &str = "user";
/// The evaluation semantics of an `evaluations` request (`options.evaluations_semantic`).
const EXECUTE_ALL: &str = "execute_all";
const DENY_ON_FIRST_DENY: &str = "deny_on_first_deny";
const PERMIT_ON_FIRST_PERMIT: &str = "permit_on_first_permit";
/// Search pages: `page.limit` 1..=200 is honoured, 0 or none means this default, more is capped.
const DEFAULT_PAGE_LIMIT: usize = 50;
const MAX_PAGE_LIMIT: usize = 200;
/// Page-token orderings (a token of one search is refused by another).
const SUBJECTS_ORDER: &str = "authzen.search_subject";
const RESOURCES_ORDER: &str = "authzen.search_resource";
const ACTIONS_ORDER: &str = "authzen.search_action";

/// Whether a path belongs to the AuthZEN API (its answers echo `X-Request-ID` verbatim and name the scheme on 401).
pub fn is_authzen_path(path: &str) -> bool {
    path.starts_with("/access/v1/") || path == METADATA_PATH
}

// ---------------------------------------------------------------------------------------------------------------
// The information model (requests). Unknown fields are ignored; a field of the wrong type is a 400 naming it.

/// The subject: a Plystra User (`type` `user`, `id` its user id). `properties.space_id` picks the Space whose
/// binding it acts through when `context.space_id` does not.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct Subject {
    #[serde(rename = "type")]
    #[schema(required = true, schema_with = subject_type_schema)]
    pub subject_type: Option<String>,
    pub id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Map<String, Value>>,
}

/// A subject named by its user id: the subject of an evaluation and of the searches for its resources and
/// actions.
// The document's schema only; such a subject is read as a `Subject`.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only
pub struct IdentifiedSubject {
    #[schema(rename = "type", schema_with = subject_type_schema)]
    subject_type: String,
    #[schema(min_length = 1)]
    id: String,
    #[schema(value_type = Option<Object>)]
    properties: Option<Map<String, Value>>,
}

/// A resource named by its type and id: the resource of an evaluation and of the searches for the subjects and
/// the actions on it.
// The document's schema only; such a resource is read as a `Resource`.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only
pub struct IdentifiedResource {
    #[schema(rename = "type", min_length = 1)]
    resource_type: String,
    #[schema(min_length = 1)]
    id: String,
    #[schema(value_type = Option<Object>)]
    properties: Option<Map<String, Value>>,
}

/// The resource: a registered resource (`type` and `id`), or with an API key one described inline, its
/// `properties` read through the type's mapping (its Space, group, owner Member, visibility).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct Resource {
    #[serde(rename = "type")]
    #[schema(required = true, value_type = String, min_length = 1)]
    pub resource_type: Option<String>,
    pub id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Map<String, Value>>,
}

/// The action: `name` is the Resource Registry's action key.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct Action {
    #[schema(required = true, value_type = String, min_length = 1)]
    pub name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Map<String, Value>>,
}

/// One access evaluation. `context.space_id` names the Space the subject acts in; other context attributes are
/// accepted and not used (decisions read Plystra's data, not the environment).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct EvaluationRequest {
    #[schema(required = true, value_type = IdentifiedSubject)]
    pub subject: Option<Subject>,
    #[schema(required = true, value_type = Action)]
    pub action: Option<Action>,
    #[schema(required = true, value_type = IdentifiedResource)]
    pub resource: Option<Resource>,
    #[schema(value_type = Option<Object>)]
    pub context: Option<Map<String, Value>>,
}

/// How an `evaluations` request runs.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct EvaluationsOptions {
    /// `execute_all` (the default), `deny_on_first_deny` or `permit_on_first_permit`.
    pub evaluations_semantic: Option<String>,
    /// Plystra's option: each answer carries its `context` (deny code, reason, trace id). Off by default, so that
    /// an answer is exactly `{"decision": ...}` for clients that compare it whole.
    pub include_context: Option<bool>,
}

/// Many evaluations: the top-level `subject`, `action`, `resource` and `context` are defaults, each replaced
/// whole by an evaluation that gives its own.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct EvaluationsRequest {
    #[schema(value_type = Option<IdentifiedSubject>)]
    pub subject: Option<Subject>,
    pub action: Option<Action>,
    #[schema(value_type = Option<IdentifiedResource>)]
    pub resource: Option<Resource>,
    #[schema(value_type = Option<Object>)]
    pub context: Option<Map<String, Value>>,
    /// 1 to 1000 evaluations; absent or empty, the request is one evaluation of the top-level fields.
    #[schema(value_type = Option<Vec<EvaluationsItem>>)]
    pub evaluations: Option<Vec<EvaluationRequest>>,
    pub options: Option<EvaluationsOptions>,
}

/// One evaluation of an `evaluations` request, as the document describes it: each field it leaves out is the
/// request's top-level one.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only
pub struct EvaluationsItem {
    subject: Option<IdentifiedSubject>,
    action: Option<Action>,
    resource: Option<IdentifiedResource>,
    #[schema(value_type = Option<Object>)]
    context: Option<Map<String, Value>>,
}

/// `EvaluationsRequest` with its rules, as the document states it (an alias: the route annotation takes a plain
/// path).
type EvaluationsRequestRuled = crate::api::crud::schema::Ruled<EvaluationsRequest>;

/// Each of `subject`, `action` and `resource` given at the top level or by every evaluation (absent or empty,
/// `evaluations` is one evaluation of the top-level fields, which must then all be there).
impl crate::api::crud::schema::RequestRules for EvaluationsRequest {
    fn rules() -> Vec<utoipa::openapi::Schema> {
        use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, ObjectBuilder};
        // Given: present and an object (a null part is an absent one).
        let given_in = |part: &str| ObjectBuilder::new().required(part).property(part, ObjectBuilder::new());
        let given = |part: &str| {
            let by_every_evaluation = ObjectBuilder::new()
                .required("evaluations")
                .property("evaluations", ArrayBuilder::new().min_items(Some(1)).items(given_in(part)));
            let any = AnyOfBuilder::new()
                .description(Some(format!("{part}: at the top level, or in every evaluation")))
                .item(given_in(part))
                .item(by_every_evaluation);
            utoipa::openapi::Schema::AnyOf(any.build())
        };
        ["subject", "action", "resource"].map(given).into()
    }
}

/// The subject's `type`: the only one there is.
fn subject_type_schema() -> utoipa::openapi::Object {
    crate::api::crud::values_schema("subject type", &[SUBJECT_TYPE], false)
}

/// A search page request: `token` from the previous answer's `page.next_token`, `limit` results at most
/// (1 to 200; 0 or absent: 50; more: 200).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct PageRequest {
    pub token: Option<String>,
    pub limit: Option<u64>,
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Map<String, Value>>,
}

/// A search, as read: the entity searched for gives its `type` only (its `id` is ignored); `search/action` takes
/// no `action`. The document describes each search's own (`SubjectSearchRequest`, `ResourceSearchRequest`,
/// `ActionSearchRequest`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SearchRequest {
    pub subject: Option<Subject>,
    pub action: Option<Action>,
    pub resource: Option<Resource>,
    pub context: Option<Map<String, Value>>,
    pub page: Option<PageRequest>,
}

/// A search for the subjects who may perform `action` on `resource`.
// The document's schema only; the request is read as a `SearchRequest`, as the two others are.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only
pub struct SubjectSearchRequest {
    /// The subject searched for: its `type` only (an `id` is ignored).
    subject: Subject,
    action: Action,
    resource: IdentifiedResource,
    #[schema(value_type = Option<Object>)]
    context: Option<Map<String, Value>>,
    page: Option<PageRequest>,
}

/// A search for the resources of `resource.type` on which the subject may perform `action`.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only
pub struct ResourceSearchRequest {
    subject: IdentifiedSubject,
    action: Action,
    /// The resources searched for: their `type` only (an `id` is ignored).
    resource: Resource,
    #[schema(value_type = Option<Object>)]
    context: Option<Map<String, Value>>,
    page: Option<PageRequest>,
}

/// A search for the actions the subject may perform on the resource (an `action` given is ignored).
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only
pub struct ActionSearchRequest {
    subject: IdentifiedSubject,
    resource: IdentifiedResource,
    #[schema(value_type = Option<Object>)]
    context: Option<Map<String, Value>>,
    page: Option<PageRequest>,
}

// ---------------------------------------------------------------------------------------------------------------
// Answers.

/// What Plystra adds to a decision: the deny code and reason, the trace id, the audit row, and the binding the
/// subject acted through.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct DecisionContext {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub deny_code: Option<DenyCode>,
    pub reason: String,
    pub trace_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_log_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub space_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_member_id: Option<String>,
}

/// A decision: `decision` true (permit) or false (deny).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Decision {
    pub decision: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<DecisionContext>,
}

/// The decisions of an `evaluations` request, in order (with a short-circuit semantic, only those evaluated).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EvaluationsResponse {
    pub evaluations: Vec<Decision>,
}

/// What `/access/v1/evaluations` answers: the decisions of its evaluations, or, for a request without any, the one
/// decision of its top-level fields (as `/access/v1/evaluation` answers it).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum EvaluationsAnswer {
    Evaluations(EvaluationsResponse),
    Single(Decision),
}

/// A search page: `next_token` is empty on the last page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PageResponse {
    pub next_token: String,
    pub count: usize,
}

/// A subject found: the User and, in `properties`, the binding through which it may act.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubjectResult {
    #[serde(rename = "type")]
    pub subject_type: String,
    pub id: String,
    #[schema(value_type = Object)]
    pub properties: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResourceResult {
    #[serde(rename = "type")]
    pub resource_type: String,
    pub id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActionResult {
    pub name: String,
}

/// Why a search found nothing (the subject's binding could not be resolved).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchContext {
    #[schema(value_type = String)]
    pub deny_code: DenyCode,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubjectSearchResponse {
    pub page: PageResponse,
    pub results: Vec<SubjectResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResourceSearchResponse {
    pub page: PageResponse,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<SearchContext>,
    pub results: Vec<ResourceResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActionSearchResponse {
    pub page: PageResponse,
    pub results: Vec<ActionResult>,
}

/// The Policy Decision Point metadata.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PdpMetadata {
    pub policy_decision_point: String,
    pub access_evaluation_endpoint: String,
    pub access_evaluations_endpoint: String,
    pub search_subject_endpoint: String,
    pub search_resource_endpoint: String,
    pub search_action_endpoint: String,
}

// ---------------------------------------------------------------------------------------------------------------
// From the information model to the extension's questions.

/// One question for the extension: a User (and perhaps the Space it acts in), a resource, an action.
#[derive(Debug, Clone, PartialEq)]
struct Question {
    user_id: String,
    space_id: Option<String>,
    resource_type: String,
    resource_id: String,
    properties: Option<Map<String, Value>>,
    action: String,
}

impl Question {
    /// The actor: the User alone, with its Space when the request names one (the extension resolves the binding).
    fn actor(&self) -> Value {
        let mut actor = json!({ "user_id": self.user_id });
        if let Some(space) = &self.space_id {
            actor["space_id"] = json!(space);
        }
        actor
    }

    /// The resource. With an API key it is also described inline (its properties as `metadata`, `{}` when it has
    /// none), so that one Plystra does not hold is a new resource of the type in the actor's Space rather than
    /// RESOURCE_NOT_FOUND; a registered resource's own row wins over the description. A session asks about
    /// registered resources only (inline context needs an API key).
    fn resource(&self, inline: bool) -> Value {
        let mut resource = json!({ "type": self.resource_type, "id": self.resource_id });
        if inline {
            resource["metadata"] = Value::Object(self.properties.clone().unwrap_or_default());
        }
        resource
    }

    /// Who acts, for grouping the evaluations of one actor into one batch.
    fn actor_key(&self) -> (String, Option<String>) {
        (self.user_id.clone(), self.space_id.clone())
    }
}

/// The request's identity as our own decision routes send it (it reaches the audit row).
fn request_identity(ctx: &RequestContext) -> Value {
    json!({ "request_id": ctx.request_id, "ip": ctx.ip_string(), "user_agent": ctx.user_agent })
}

/// The questions of one actor as `plystra.check_batch`'s document (the gate's batch form).
fn batch_document(actor: Value, questions: &[&Question], inline: bool, ctx: &RequestContext) -> Value {
    let items: Vec<Value> =
        questions.iter().map(|q| json!({ "resource": q.resource(inline), "action": q.action })).collect();
    json!({ "actor": actor, "items": items, "request": request_identity(ctx) })
}

fn missing(field: &str) -> ApiError {
    ApiError::required(field)
}

/// A required, non-empty identifier at most as long as the extension accepts.
fn identifier(value: Option<&String>, field: &str) -> ApiResult<String> {
    match value {
        None => Err(missing(field)),
        Some(v) if v.is_empty() => Err(ApiError::validation(field, format!("{field} must not be empty."))),
        Some(v) if v.len() > plystra_core::request::MAX_ID_BYTES => Err(ApiError::validation(
            field,
            format!("{field} is longer than {} bytes.", plystra_core::request::MAX_ID_BYTES),
        )),
        Some(v) => Ok(v.clone()),
    }
}

/// An optional identifier found in a free-form object (`context`, `properties`): a string if present.
fn optional_identifier(map: Option<&Map<String, Value>>, key: &str, field: &str) -> ApiResult<Option<String>> {
    match map.and_then(|m| m.get(key)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => identifier(Some(s), field).map(Some),
        Some(_) => Err(ApiError::validation(field, format!("{field} must be a string."))),
    }
}

/// The subject's user id (type `user` only).
fn subject_user(subject: Option<&Subject>, at: &str) -> ApiResult<(String, Option<String>)> {
    let subject = subject.ok_or_else(|| missing(at))?;
    let type_field = format!("{at}.type");
    match subject.subject_type.as_deref() {
        None => return Err(missing(&type_field)),
        Some(SUBJECT_TYPE) => {}
        Some(_) => {
            return Err(ApiError::validation(
                type_field.clone(),
                format!("{type_field} must be \"user\": a subject is a Plystra User."),
            )
            .with_details(json!({ "field": type_field, "allowed": [SUBJECT_TYPE] })))
        }
    }
    let id = identifier(subject.id.as_ref(), &format!("{at}.id"))?;
    let space = optional_identifier(subject.properties.as_ref(), "space_id", &format!("{at}.properties.space_id"))?;
    Ok((id, space))
}

fn action_name(action: Option<&Action>, at: &str) -> ApiResult<String> {
    let action = action.ok_or_else(|| missing(at))?;
    identifier(action.name.as_ref(), &format!("{at}.name"))
}

fn resource_type(resource: Option<&Resource>, at: &str) -> ApiResult<String> {
    let resource = resource.ok_or_else(|| missing(at))?;
    identifier(resource.resource_type.as_ref(), &format!("{at}.type"))
}

/// The Space the subject acts in: `context.space_id`, else `subject.properties.space_id`, else none (the
/// extension resolves the binding).
fn acting_space(
    context: Option<&Map<String, Value>>,
    context_at: &str,
    subject_space: Option<String>,
) -> ApiResult<Option<String>> {
    Ok(optional_identifier(context, "space_id", &format!("{context_at}.space_id"))?.or(subject_space))
}

/// Where each part of an evaluation comes from: the evaluation's own object, else the top-level default, with
/// the path that names it in errors.
struct Parts<'a> {
    subject: (Option<&'a Subject>, String),
    action: (Option<&'a Action>, String),
    resource: (Option<&'a Resource>, String),
    context: (Option<&'a Map<String, Value>>, String),
}

fn question(parts: Parts<'_>) -> ApiResult<Question> {
    let (user_id, subject_space) = subject_user(parts.subject.0, &parts.subject.1)?;
    let action = action_name(parts.action.0, &parts.action.1)?;
    let resource_type = resource_type(parts.resource.0, &parts.resource.1)?;
    let resource = parts.resource.0.expect("checked by resource_type");
    let resource_id = identifier(resource.id.as_ref(), &format!("{}.id", parts.resource.1))?;
    let space_id = acting_space(parts.context.0, &parts.context.1, subject_space)?;
    Ok(Question { user_id, space_id, resource_type, resource_id, properties: resource.properties.clone(), action })
}

fn top_level(r: &EvaluationRequest) -> Parts<'_> {
    Parts {
        subject: (r.subject.as_ref(), "subject".into()),
        action: (r.action.as_ref(), "action".into()),
        resource: (r.resource.as_ref(), "resource".into()),
        context: (r.context.as_ref(), "context".into()),
    }
}

/// The questions of an `evaluations` request: each evaluation's own objects, else the top-level defaults.
fn evaluation_questions(request: &EvaluationsRequest) -> ApiResult<Vec<Question>> {
    let items = request.evaluations.as_deref().unwrap_or_default();
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            // A part missing from both the evaluation and the defaults is named as the evaluation's.
            fn pick<'a, T>(
                own: Option<&'a T>,
                default: Option<&'a T>,
                i: usize,
                name: &str,
            ) -> (Option<&'a T>, String) {
                match (own, default) {
                    (None, Some(d)) => (Some(d), name.to_string()),
                    (own, _) => (own, format!("evaluations[{i}].{name}")),
                }
            }
            question(Parts {
                subject: pick(item.subject.as_ref(), request.subject.as_ref(), i, "subject"),
                action: pick(item.action.as_ref(), request.action.as_ref(), i, "action"),
                resource: pick(item.resource.as_ref(), request.resource.as_ref(), i, "resource"),
                context: pick(item.context.as_ref(), request.context.as_ref(), i, "context"),
            })
        })
        .collect()
}

/// The extension's names for request fields, in AuthZEN's words (`actor.user_id` is `subject.id`). Every
/// question goes to the extension as a batch item; `evaluations` says which evaluation each item answers
/// (`items[3]` may be `evaluations[7]`), `None` for the one question of an evaluation or a search.
fn authzen_field(field: &str, evaluations: Option<&[usize]>) -> String {
    let (prefix, rest) = match field.strip_prefix("items[").and_then(|r| r.split_once("].")) {
        Some((n, rest)) => {
            let i = evaluations.and_then(|idx| n.parse::<usize>().ok().and_then(|n| idx.get(n).copied()));
            (i.map(|i| format!("evaluations[{i}].")).unwrap_or_default(), rest)
        }
        None => (String::new(), field),
    };
    let renamed = match rest {
        "actor" | "actor.user_id" => "subject.id".to_string(),
        "actor.space_id" => "context.space_id".to_string(),
        "resource_type" | "resource.type" => "resource.type".to_string(),
        "resource_id" | "resource.id" => "resource.id".to_string(),
        "action" => "action.name".to_string(),
        other => match other.strip_prefix("resource.metadata") {
            Some(tail) => format!("resource.properties{tail}"),
            None => other.to_string(),
        },
    };
    format!("{prefix}{renamed}")
}

/// A 400 from the extension (SQLSTATE 22023, naming its own field), its field renamed by `rename`.
fn renamed_problem(mut e: ApiError, rename: impl Fn(&str) -> String) -> ApiError {
    if e.status != StatusCode::BAD_REQUEST {
        return e;
    }
    if let Some(field) = e.details["field"].as_str().map(str::to_string) {
        let renamed = rename(&field);
        if renamed != field {
            if let Some(problem) = e.message.strip_prefix(field.as_str()) {
                e.message = format!("{renamed}{problem}").into();
            }
            e.details["field"] = json!(renamed);
        }
    }
    e
}

// ---------------------------------------------------------------------------------------------------------------
// Asking the gate.

/// A problem found before the extension is asked. As on our own decision routes it is answered only once the
/// credential is known: 401 first, then (for a request that does not read) the admin permission on what the
/// body names, then the problem.
enum Problem {
    Body(ApiError),
    Request(ApiError),
}

/// The action of a placement document: the gate places scopes from the actor and the resource, never from the
/// action, and a placement is never decided; the batch form only needs one.
const PLACEMENT_ACTION: &str = "placement_only";

/// What a body with a problem names, as a batch document for placing the credential's scopes (the gate resolves
/// the subject's binding as the decision would, and places an inline resource in its Space): its first subject,
/// Space and resource, as far as they read.
fn placement_document(raw: &Value, inline: bool) -> Value {
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let first = |a: &Value, b: &Value| text(a).or_else(|| text(b));
    let evaluation = &raw["evaluations"][0];
    let mut doc = Map::new();
    if let Some(user) = first(&evaluation["subject"]["id"], &raw["subject"]["id"]) {
        let mut actor = json!({ "user_id": user });
        let space = first(&evaluation["context"]["space_id"], &raw["context"]["space_id"]).or_else(|| {
            first(&evaluation["subject"]["properties"]["space_id"], &raw["subject"]["properties"]["space_id"])
        });
        if let Some(space) = space {
            actor["space_id"] = json!(space);
        }
        doc.insert("actor".into(), actor);
    }
    let mut items = Vec::new();
    let resource = if evaluation["resource"].is_object() { &evaluation["resource"] } else { &raw["resource"] };
    if let (Some(t), Some(id)) = (text(&resource["type"]), text(&resource["id"])) {
        let mut described = json!({ "type": t, "id": id });
        if inline {
            let properties = resource["properties"].as_object().cloned().unwrap_or_default();
            described["metadata"] = Value::Object(properties);
        }
        let action = first(&evaluation["action"]["name"], &raw["action"]["name"]);
        items.push(json!({ "resource": described, "action": action.unwrap_or_else(|| PLACEMENT_ACTION.into()) }));
    }
    doc.insert("items".into(), Value::Array(items));
    Value::Object(doc)
}

/// The decision gate for one request: the connection, the presented credential and the route's permission.
struct Gate<'a> {
    state: &'a AppState,
    db: &'a Db,
    client: &'a deadpool_postgres::Object,
    proof: &'a Proof,
    permission: &'a str,
}

impl Gate<'_> {
    fn inline(&self) -> bool {
        self.proof.kind == "api_key"
    }

    /// `plystra.decide_with_credential` (one round trip).
    async fn ask(&self, doc: &Value, authorize_only: bool) -> ApiResult<Outcome> {
        ask(self.state, self.db, self.client, self.proof, self.permission, doc, false, authorize_only).await
    }

    /// The actor the gate is asked about. An API key names the User alone and the extension resolves its binding.
    /// A session may act only through its own user's bindings, which the gate checks by their ids, so for a
    /// session the binding is resolved here first, by the same rule (`plystra.resolve_actor`); a User with no
    /// binding to choose stays named alone, and the gate refuses it as not the session's.
    async fn actor_of(&self, q: &Question) -> ApiResult<Value> {
        if self.inline() {
            return Ok(q.actor());
        }
        let found = store::decisions::resolve_actor(self.client, &q.user_id, q.space_id.as_deref())
            .await
            .map_err(db_errors::read_error)?;
        if found["user_member_id"].is_string() {
            let mut actor = Map::new();
            for key in ["user_id", "member_id", "user_member_id", "space_id"] {
                actor.insert(key.into(), found[key].clone());
            }
            return Ok(Value::Object(actor));
        }
        Ok(q.actor())
    }

    /// Answers a problem once the credential is known (see [`Problem`]).
    async fn refuse(&self, problem: Problem, raw: &Value) -> ApiError {
        match (self.ask(&placement_document(raw, self.inline()), true).await, problem) {
            (Err(e), Problem::Request(_)) => e,
            (Err(e), Problem::Body(_)) if e.status == StatusCode::UNAUTHORIZED => e,
            (_, Problem::Body(e) | Problem::Request(e)) => e,
        }
    }

    /// One decision (`at`: its index among many evaluations, for naming fields in errors), as a batch of one
    /// item (see the module comment).
    async fn one(&self, q: &Question, ctx: &RequestContext, at: Option<usize>) -> ApiResult<CheckAnswer<'static>> {
        let at = at.map(|i| vec![i]);
        let mut answers = self.batch(&[q], at.as_deref(), ctx, false).await?;
        answers.pop().ok_or_else(ApiError::internal)
    }

    /// Many decisions of one actor in one batch document (one round trip); `evaluations` says which evaluation
    /// each item answers, for naming fields in errors. With `authorize_only`, only the credential's permission on
    /// every scope the items touch is checked.
    async fn batch(
        &self,
        questions: &[&Question],
        evaluations: Option<&[usize]>,
        ctx: &RequestContext,
        authorize_only: bool,
    ) -> ApiResult<Vec<CheckAnswer<'static>>> {
        let Some(first) = questions.first() else { return Ok(Vec::new()) };
        let doc = batch_document(self.actor_of(first).await?, questions, self.inline(), ctx);
        let rename = |field: &str| authzen_field(field, evaluations);
        let outcome = self.ask(&doc, authorize_only).await.map_err(|e| renamed_problem(e, rename))?;
        if authorize_only {
            return Ok(Vec::new());
        }
        let answer: BatchAnswer<'static> =
            serde_json::from_str(outcome.decision()?.get()).map_err(contract_mismatch)?;
        if answer.results.len() != questions.len() {
            tracing::error!(asked = questions.len(), answered = answer.results.len(), "a batch answered another count");
            return Err(ApiError::internal());
        }
        for d in &answer.results {
            self.state.metrics.record_decision(d.decision, d.deny_code, d.audit_log_id.is_some());
        }
        Ok(answer.results)
    }
}

/// A body's problem, and the body as far as it reads as JSON (for placing the credential's scopes).
type Unread = Box<(Problem, Value)>;

/// The body, parsed as `T`, and as a JSON value (for placing the scopes of a request that does not read).
fn read<T: serde::de::DeserializeOwned>(body: BodyBytes) -> Result<(T, Value), Unread> {
    let bytes = body.0.map_err(|e| Box::new((Problem::Body(e), Value::Null)))?;
    if crate::extract::has_nul_escape(&bytes) {
        return Err(Box::new((Problem::Body(crate::extract::nul_in_body()), Value::Null)));
    }
    let raw: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !bytes.trim_ascii().is_empty() && !raw.is_object() && !raw.is_null() {
        let e =
            ApiError::new(StatusCode::BAD_REQUEST, code::VALIDATION_FAILED, "The request body must be a JSON object.")
                .with_details(json!({ "field": null }));
        return Err(Box::new((Problem::Request(e), Value::Null)));
    }
    match crate::extract::parse_json::<T>(&bytes) {
        Ok(parsed) => Ok((parsed, raw)),
        Err(e) => Err(Box::new((Problem::Request(e), raw))),
    }
}

/// Inline context needs an API key: a session may not describe a resource by its properties.
fn session_problem(kind: &str, questions: &[Question]) -> Option<ApiError> {
    (kind == "session" && questions.iter().any(|q| q.properties.is_some())).then(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            code::INLINE_CONTEXT_REQUIRES_API_KEY,
            "Inline resource properties (Context Mode) require a server-side API key.",
        )
    })
}

fn decision_of(d: &CheckAnswer<'_>) -> DecisionContext {
    let text = |v: &Option<Cow<'_, str>>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
    DecisionContext {
        deny_code: d.deny_code,
        reason: d.reason.to_string(),
        trace_id: d.trace_id.to_string(),
        audit_log_id: d.audit_log_id.as_deref().map(str::to_string),
        space_id: text(&d.audit.space_id),
        member_id: text(&d.audit.actor_member_id),
        user_member_id: text(&d.audit.actor_user_member_id),
    }
}

/// The questions grouped by actor, in the order each actor first appears: (question indexes).
fn by_actor(questions: &[Question]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut seen: HashMap<(String, Option<String>), usize> = HashMap::new();
    for (i, q) in questions.iter().enumerate() {
        let g = *seen.entry(q.actor_key()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    groups
}

fn with_decision_headers(mut response: Response, d: &CheckAnswer<'_>) -> Response {
    if let Ok(v) = HeaderValue::from_str(&d.trace_id) {
        response.headers_mut().insert(TRACE_ID_HEADER, v);
    }
    if let Some(v) = d.audit_log_id.as_deref().and_then(|id| HeaderValue::from_str(id).ok()) {
        response.headers_mut().insert(AUDIT_LOG_ID_HEADER, v);
    }
    response
}

async fn evaluate_single(gate: &Gate<'_>, q: Question, raw: &Value, ctx: &RequestContext) -> ApiResult<Response> {
    if let Some(problem) = session_problem(gate.proof.kind, std::slice::from_ref(&q)) {
        return Err(gate.refuse(Problem::Request(problem), raw).await);
    }
    let d = gate.one(&q, ctx, None).await?;
    let answer = Decision { decision: d.allow, context: Some(decision_of(&d)) };
    Ok(with_decision_headers(Json(answer).into_response(), &d))
}

#[utoipa::path(post, operation_id = "authzen_evaluation", path = "/access/v1/evaluation", tag = "AuthZEN",
    request_body = EvaluationRequest,
    params(("X-Request-ID" = Option<String>, Header, description = "Echoed unchanged")),
    responses((status = 200, description = "The decision: `{\"decision\": false}` is a deny. `context` carries Plystra's deny code, reason, trace id and audit row id, and the binding the subject acted through",
               body = Decision,
               headers(("X-Plystra-Trace-ID" = String, description = "trc_<16 hex>"),
                       ("X-Plystra-Audit-Log-ID" = String, description = "Set when an audit row was written"))),
              (status = 400, description = "VALIDATION_FAILED: a required field is missing or of the wrong type (details.field names it, e.g. subject.id)", body = crate::error::ErrorEnvelope),
              (status = 403, description = "ADMIN_PERMISSION_REQUIRED, or INLINE_CONTEXT_REQUIRES_API_KEY (resource properties with a session)", body = crate::error::ErrorEnvelope)))]
pub async fn evaluation(
    State(state): State<AppState>,
    mut db: Db,
    Extension(DecisionPermission(permission)): Extension<DecisionPermission>,
    ctx: RequestContext,
    headers: HeaderMap,
    body: BodyBytes,
) -> ApiResult<Response> {
    let proof = credential::proof(&state.config, &headers)?;
    let client = db.decision_connection(&state.pipe).await?;
    let gate = Gate { state: &state, db: &db, client: &client, proof: &proof, permission };
    let (request, raw) = match read::<EvaluationRequest>(body) {
        Ok(read) => read,
        Err(unread) => return Err(gate.refuse(unread.0, &unread.1).await),
    };
    match question(top_level(&request)) {
        Ok(q) => evaluate_single(&gate, q, &raw, &ctx).await,
        Err(e) => Err(gate.refuse(Problem::Request(e), &raw).await),
    }
}

/// The evaluation semantic an `evaluations` request asks for.
fn semantic_of(options: &EvaluationsOptions) -> ApiResult<&str> {
    let semantic = options.evaluations_semantic.as_deref().unwrap_or(EXECUTE_ALL);
    if [EXECUTE_ALL, DENY_ON_FIRST_DENY, PERMIT_ON_FIRST_PERMIT].contains(&semantic) {
        return Ok(semantic);
    }
    let field = "options.evaluations_semantic";
    Err(ApiError::validation(
        field,
        format!("{field} must be execute_all, deny_on_first_deny or permit_on_first_permit."),
    )
    .with_details(json!({ "field": field, "allowed": [EXECUTE_ALL, DENY_ON_FIRST_DENY, PERMIT_ON_FIRST_PERMIT] })))
}

#[utoipa::path(post, operation_id = "authzen_evaluations", path = "/access/v1/evaluations", tag = "AuthZEN",
    request_body = EvaluationsRequestRuled,
    params(("X-Request-ID" = Option<String>, Header, description = "Echoed unchanged")),
    responses((status = 200, description = "One decision per evaluation, in order (with deny_on_first_deny or permit_on_first_permit, up to the one that ended the run). Each is `{\"decision\": ...}`, with its `context` when `options.include_context` is true. Without evaluations, the request is one evaluation and is answered as /access/v1/evaluation",
               body = EvaluationsAnswer),
              (status = 400, description = "VALIDATION_FAILED: a missing field (details.field names it, e.g. evaluations[2].resource), more than 1000 evaluations, an unknown evaluations_semantic", body = crate::error::ErrorEnvelope),
              (status = 403, description = "ADMIN_PERMISSION_REQUIRED (any evaluation outside the credential's scope refuses the whole request, before anything is decided), or INLINE_CONTEXT_REQUIRES_API_KEY", body = crate::error::ErrorEnvelope)))]
pub async fn evaluations(
    State(state): State<AppState>,
    mut db: Db,
    Extension(DecisionPermission(permission)): Extension<DecisionPermission>,
    ctx: RequestContext,
    headers: HeaderMap,
    body: BodyBytes,
) -> ApiResult<Response> {
    let proof = credential::proof(&state.config, &headers)?;
    let read = read::<EvaluationsRequest>(body);
    let _bulk = match &read {
        Ok((request, _)) if request.evaluations.as_ref().is_some_and(|e| e.len() > 1) => {
            Some(Db::bulk_permit(&state.bulk_permits, state.config.database_pool_wait_timeout).await?)
        }
        _ => None,
    };
    let client = db.connection().await?;
    let gate = Gate { state: &state, db: &db, client: &client, proof: &proof, permission };
    let (request, raw) = match read {
        Ok(read) => read,
        Err(unread) => return Err(gate.refuse(unread.0, &unread.1).await),
    };
    let count = request.evaluations.as_ref().map_or(0, Vec::len);
    if count == 0 {
        // No evaluations: the request is one evaluation of its top-level fields (backwards compatible).
        let single = EvaluationRequest {
            subject: request.subject.clone(),
            action: request.action.clone(),
            resource: request.resource.clone(),
            context: request.context.clone(),
        };
        return match question(top_level(&single)) {
            Ok(q) => evaluate_single(&gate, q, &raw, &ctx).await,
            Err(e) => Err(gate.refuse(Problem::Request(e), &raw).await),
        };
    }
    let options = request.options.clone().unwrap_or_default();
    let checked = if count > MAX_BATCH_ITEMS {
        Err(ApiError::validation("evaluations", format!("evaluations holds more than {MAX_BATCH_ITEMS} items.")))
    } else {
        semantic_of(&options).and_then(|semantic| {
            let questions = evaluation_questions(&request)?;
            match session_problem(proof.kind, &questions) {
                Some(problem) => Err(problem),
                None => Ok((semantic, questions)),
            }
        })
    };
    let (semantic, questions) = match checked {
        Ok(checked) => checked,
        Err(e) => return Err(gate.refuse(Problem::Request(e), &raw).await),
    };
    let groups = by_actor(&questions);
    let pick = |indexes: &[usize]| indexes.iter().map(|&i| &questions[i]).collect::<Vec<_>>();
    // Unless the whole request is one batch document (one actor, every evaluation decided), the gate is asked
    // several times: every scope is checked first, before anything is decided (and audited), so that a credential
    // refused for one evaluation is refused for the whole request.
    if groups.len() > 1 || semantic != EXECUTE_ALL {
        for indexes in &groups {
            gate.batch(&pick(indexes), Some(indexes), &ctx, true).await?;
        }
    }
    let mut answers: Vec<Option<CheckAnswer<'static>>> = vec![None; questions.len()];
    if semantic == EXECUTE_ALL {
        // One batch document per actor: one round trip when the evaluations share their subject and Space.
        for indexes in &groups {
            let results = gate.batch(&pick(indexes), Some(indexes), &ctx, false).await?;
            for (&i, d) in indexes.iter().zip(results) {
                answers[i] = Some(d);
            }
        }
    } else {
        // A short-circuit: one evaluation at a time, in order, up to the first deny (or permit); the ones after
        // it are neither decided nor audited, and are not answered.
        let stop_on = semantic == PERMIT_ON_FIRST_PERMIT;
        for (i, q) in questions.iter().enumerate() {
            let d = gate.one(q, &ctx, Some(i)).await?;
            let stop = d.allow == stop_on;
            answers[i] = Some(d);
            if stop {
                break;
            }
        }
    }
    let with_context = options.include_context == Some(true);
    let evaluations = answers
        .into_iter()
        .map_while(|a| a)
        .map(|d| Decision { decision: d.allow, context: with_context.then(|| decision_of(&d)) })
        .collect();
    Ok(Json(EvaluationsResponse { evaluations }).into_response())
}

// ---------------------------------------------------------------------------------------------------------------
// The searches.

/// `page.limit` as honoured.
fn page_limit(page: Option<&PageRequest>) -> usize {
    match page.and_then(|p| p.limit) {
        None | Some(0) => DEFAULT_PAGE_LIMIT,
        Some(n) => (n as usize).min(MAX_PAGE_LIMIT),
    }
}

/// A fingerprint of everything a search's pages must repeat (its subject, action, resource, context and
/// `page.limit`): a page token carries it, so that a token presented with another search is refused.
fn search_fingerprint(raw: &Value) -> String {
    fn canonical(v: &Value, out: &mut String) {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    canonical(&map[k], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    canonical(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let repeated = json!({
        "subject": raw["subject"], "action": raw["action"], "resource": raw["resource"], "context": raw["context"],
        "limit": raw["page"]["limit"],
    });
    let mut text = String::new();
    canonical(&repeated, &mut text);
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// The position a page token resumes after (`None` on the first page). A token of another search, or of this
/// search with other entities or limit, is a 400.
fn resume_after(page: Option<&PageRequest>, ordering: &str, fingerprint: &str) -> ApiResult<Option<String>> {
    let token = page.and_then(|p| p.token.as_deref()).filter(|t| !t.is_empty());
    let Some(token) = token else { return Ok(None) };
    let invalid = || ApiError::validation("page.token", "page.token is not a token this search issued.");
    let key = decode_cursor(Some(token), ordering, 2).map_err(|_| invalid())?.ok_or_else(invalid)?;
    if key[1] != fingerprint {
        return Err(ApiError::validation(
            "page.token",
            "page.token belongs to a search with other entities or another page.limit: repeat them unchanged.",
        ));
    }
    Ok(Some(key[0].clone()))
}

/// Cuts `limit + 1` fetched results to a page and its next token.
fn page_of<T>(
    mut rows: Vec<T>,
    limit: usize,
    ordering: &str,
    fingerprint: &str,
    key: impl Fn(&T) -> String,
) -> (PageResponse, Vec<T>) {
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_token = match rows.last() {
        Some(last) if more => encode_cursor(ordering, vec![key(last), fingerprint.to_string()]),
        _ => String::new(),
    };
    (PageResponse { next_token, count: rows.len() }, rows)
}

/// What the protection seam found about a search before the handler runs (see [`search_scope`]).
#[derive(Debug, Clone)]
pub enum SearchPlacement {
    /// A subject search: the Space of the registered resource asked about (`None`: no such resource).
    Resource { space_id: Option<String> },
    /// A resource search: the subject's binding (`plystra.resolve_actor`'s answer), `None` when the body names
    /// no subject to resolve.
    Actor(Option<Value>),
}

/// The scope a search needs `authz:read` on, from its body (the route table's `ScopeFrom::SubjectSearch` and
/// `ResourceSearch`): for a subject search the registered resource's
/// Space, for a resource search the Space of the binding the subject acts through (resolved as a decision
/// resolves it: in `context.space_id`, else `subject.properties.space_id`, else a Space- or Group-level key's
/// own Space, else the only or primary binding). What cannot be placed (no such resource or binding, a body
/// that does not read) is the instance scope, so a scoped credential gets the same refusal for another Space's
/// ids and for ids that do not exist.
pub async fn search_scope(
    client: &impl GenericClient,
    credential: &Credential,
    subject_search: bool,
    doc: &Value,
) -> ApiResult<(RequestScope, SearchPlacement)> {
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let unplaced = RequestScope::default();
    if subject_search {
        let (Some(resource_type), Some(resource_id)) = (text(&doc["resource"]["type"]), text(&doc["resource"]["id"]))
        else {
            return Ok((unplaced, SearchPlacement::Resource { space_id: None }));
        };
        let space_id =
            store::resources::space_of_live(client, &resource_type, &resource_id).await.map_err(db::internal)?;
        let scope = RequestScope { space_id: space_id.clone(), group_id: None };
        return Ok((scope, SearchPlacement::Resource { space_id }));
    }
    let Some(user_id) = text(&doc["subject"]["id"]) else {
        return Ok((unplaced, SearchPlacement::Actor(None)));
    };
    let key_space = match credential {
        Credential::ApiKey(k) if k.level != "instance" => k.space_id.clone(),
        _ => None,
    };
    let named_space = text(&doc["context"]["space_id"]).or_else(|| text(&doc["subject"]["properties"]["space_id"]));
    let space = named_space.clone().or(key_space);
    let answer = match store::decisions::resolve_actor(client, &user_id, space.as_deref()).await {
        Ok(answer) => answer,
        // An id the extension refuses (too long, say) places nothing; the handler answers the 400.
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::INVALID_PARAMETER_VALUE) => {
            return Ok((unplaced, SearchPlacement::Actor(None)))
        }
        Err(e) => return Err(db_errors::read_error(e)),
    };
    // Placed as the decision gate places an actor named by its User: at its binding's Space; at the Space searched
    // when the User has several bindings there and none to choose; nowhere (the instance scope) when it has none
    // there, so a scoped credential gets the same refusal for another Space's users and for nobody.
    let space_id = match answer["deny_code"].as_str() {
        None => text(&answer["space_id"]),
        Some("ACTOR_BINDING_AMBIGUOUS") => space,
        Some(_) => None,
    };
    Ok((RequestScope { space_id, group_id: None }, SearchPlacement::Actor(Some(answer))))
}

fn placement(placement: Option<Extension<SearchPlacement>>) -> ApiResult<SearchPlacement> {
    placement.map(|Extension(p)| p).ok_or_else(|| {
        tracing::error!("a search reached its handler without the seam's placement");
        ApiError::internal()
    })
}

fn parse_search(body: BodyBytes) -> ApiResult<(SearchRequest, Value)> {
    read::<SearchRequest>(body).map_err(|unread| match unread.0 {
        Problem::Body(e) | Problem::Request(e) => e,
    })
}

#[utoipa::path(post, operation_id = "authzen_search_subject", path = "/access/v1/search/subject", tag = "AuthZEN",
    request_body = SubjectSearchRequest,
    params(("X-Request-ID" = Option<String>, Header, description = "Echoed unchanged")),
    responses((status = 200, description = "The users who may perform the action on the registered resource, one result per binding they may act through (its Space, Member and binding in `properties`), in binding-id order. `page.next_token` is empty on the last page. No audit row is written",
               body = SubjectSearchResponse),
              (status = 400, description = "VALIDATION_FAILED: subject.type is not user, action.name, resource.type or resource.id is missing, page.token is not this search's", body = crate::error::ErrorEnvelope),
              (status = 403, description = "ADMIN_PERMISSION_REQUIRED: authz:read on the resource's Space (a resource that does not exist needs it at instance scope)", body = crate::error::ErrorEnvelope)))]
pub async fn search_subject(
    mut db: Db,
    found: Option<Extension<SearchPlacement>>,
    body: BodyBytes,
) -> ApiResult<Response> {
    let (request, raw) = parse_search(body)?;
    let subject = request.subject.as_ref().ok_or_else(|| missing("subject"))?;
    match subject.subject_type.as_deref() {
        Some(SUBJECT_TYPE) => {}
        None => return Err(missing("subject.type")),
        Some(_) => {
            return Err(ApiError::validation(
                "subject.type",
                "subject.type must be \"user\": a subject is a Plystra User.",
            )
            .with_details(json!({ "field": "subject.type", "allowed": [SUBJECT_TYPE] })))
        }
    }
    let action = action_name(request.action.as_ref(), "action")?;
    let resource_type = resource_type(request.resource.as_ref(), "resource")?;
    let resource_id = identifier(request.resource.as_ref().and_then(|r| r.id.as_ref()), "resource.id")?;
    let fingerprint = search_fingerprint(&raw);
    let after = resume_after(request.page.as_ref(), SUBJECTS_ORDER, &fingerprint)?;
    let limit = page_limit(request.page.as_ref());
    let SearchPlacement::Resource { space_id } = placement(found)? else { return Err(ApiError::internal()) };
    let Some(space_id) = space_id else {
        // Not a registered resource: nobody holds a grant on it by name (an instance credential learns that).
        let (page, results) =
            page_of(Vec::new(), limit, SUBJECTS_ORDER, &fingerprint, |s: &SubjectResult| s.id.clone());
        return Ok(Json(SubjectSearchResponse { page, results }).into_response());
    };
    let client = db.connection().await?;
    let rows = store::lookups::subjects(&client, &resource_type, &resource_id, &action, &after, (limit + 1) as i32)
        .await
        .map_err(|e| renamed_problem(db_errors::read_error(e), |f| authzen_field(f, None)))?;
    let found: Vec<(String, SubjectResult)> = rows
        .iter()
        .map(|r| {
            let (binding, member, user): (String, String, String) = (r.get(0), r.get(1), r.get(2));
            let properties = json!({ "space_id": space_id, "member_id": member, "user_member_id": binding });
            (binding, SubjectResult { subject_type: SUBJECT_TYPE.into(), id: user, properties })
        })
        .collect();
    let (page, found) = page_of(found, limit, SUBJECTS_ORDER, &fingerprint, |(binding, _)| binding.clone());
    let results = found.into_iter().map(|(_, s)| s).collect();
    Ok(Json(SubjectSearchResponse { page, results }).into_response())
}

#[utoipa::path(post, operation_id = "authzen_search_resource", path = "/access/v1/search/resource", tag = "AuthZEN",
    request_body = ResourceSearchRequest,
    params(("X-Request-ID" = Option<String>, Header, description = "Echoed unchanged")),
    responses((status = 200, description = "The registered resources of the type on which the subject, acting through its binding, may perform the action, in id order. `context.deny_code` says why there are none when the binding could not be resolved (ACTOR_NOT_FOUND, ACTOR_BINDING_AMBIGUOUS). No audit row is written",
               body = ResourceSearchResponse),
              (status = 400, description = "VALIDATION_FAILED: subject, action.name or resource.type is missing, page.token is not this search's", body = crate::error::ErrorEnvelope),
              (status = 403, description = "ADMIN_PERMISSION_REQUIRED: authz:read on the Space of the subject's binding", body = crate::error::ErrorEnvelope)))]
pub async fn search_resource(
    mut db: Db,
    found: Option<Extension<SearchPlacement>>,
    body: BodyBytes,
) -> ApiResult<Response> {
    let (request, raw) = parse_search(body)?;
    let (_user, subject_space) = subject_user(request.subject.as_ref(), "subject")?;
    acting_space(request.context.as_ref(), "context", subject_space)?;
    let action = action_name(request.action.as_ref(), "action")?;
    let resource_type = resource_type(request.resource.as_ref(), "resource")?;
    let fingerprint = search_fingerprint(&raw);
    let after = resume_after(request.page.as_ref(), RESOURCES_ORDER, &fingerprint)?;
    let limit = page_limit(request.page.as_ref());
    let SearchPlacement::Actor(Some(binding)) = placement(found)? else { return Err(ApiError::internal()) };
    let key = |r: &ResourceResult| r.id.clone();
    if let Some(deny_code) = binding["deny_code"].as_str() {
        let Some(deny_code) = DenyCode::parse(deny_code) else {
            tracing::error!(answer = %binding, "plystra.resolve_actor answered a deny code this build does not know");
            return Err(ApiError::internal());
        };
        let (page, results) = page_of(Vec::new(), limit, RESOURCES_ORDER, &fingerprint, key);
        let context = Some(SearchContext { deny_code });
        return Ok(Json(ResourceSearchResponse { page, context, results }).into_response());
    }
    let text = |k: &str| {
        binding[k].as_str().map(str::to_string).ok_or_else(|| {
            tracing::error!(answer = %binding, "plystra.resolve_actor answered neither a binding nor a deny code");
            ApiError::internal()
        })
    };
    let (user_id, member_id, binding_id, space_id) =
        (text("user_id")?, text("member_id")?, text("user_member_id")?, text("space_id")?);
    let mut client = db.connection().await?;
    // The binding acts for this transaction only (plystra.set_actor's settings are transaction-local).
    let tx = client.transaction().await.map_err(db::internal)?;
    store::lookups::act_as(&tx, &user_id, &member_id, &binding_id, &space_id).await.map_err(db_errors::read_error)?;
    let rows = store::lookups::resources(&tx, &resource_type, &action, &after, (limit + 1) as i64)
        .await
        .map_err(|e| renamed_problem(db_errors::read_error(e), |f| authzen_field(f, None)))?;
    tx.commit().await.map_err(db::internal)?;
    let found = rows.iter().map(|r| ResourceResult { resource_type: resource_type.clone(), id: r.get(0) }).collect();
    let (page, results) = page_of(found, limit, RESOURCES_ORDER, &fingerprint, key);
    Ok(Json(ResourceSearchResponse { page, context: None, results }).into_response())
}

#[utoipa::path(post, operation_id = "authzen_search_action", path = "/access/v1/search/action", tag = "AuthZEN",
    request_body = ActionSearchRequest,
    params(("X-Request-ID" = Option<String>, Header, description = "Echoed unchanged")),
    responses((status = 200, description = "The actions of the resource's type (Resource Registry) that the subject may perform on it, in key order: each is decided, and audited, as /access/v1/evaluation decides it",
               body = ActionSearchResponse),
              (status = 400, description = "VALIDATION_FAILED: subject or resource (type and id) missing, page.token is not this search's", body = crate::error::ErrorEnvelope),
              (status = 403, description = "ADMIN_PERMISSION_REQUIRED (authz:check, as a decision), or INLINE_CONTEXT_REQUIRES_API_KEY", body = crate::error::ErrorEnvelope)))]
pub async fn search_action(
    State(state): State<AppState>,
    mut db: Db,
    Extension(DecisionPermission(permission)): Extension<DecisionPermission>,
    ctx: RequestContext,
    headers: HeaderMap,
    body: BodyBytes,
) -> ApiResult<Response> {
    let proof = credential::proof(&state.config, &headers)?;
    let client = db.connection().await?;
    let gate = Gate { state: &state, db: &db, client: &client, proof: &proof, permission };
    let (request, raw) = match read::<SearchRequest>(body) {
        Ok(read) => read,
        Err(unread) => return Err(gate.refuse(unread.0, &unread.1).await),
    };
    let fingerprint = search_fingerprint(&raw);
    let checked = (|| {
        let (user_id, subject_space) = subject_user(request.subject.as_ref(), "subject")?;
        let resource_type = resource_type(request.resource.as_ref(), "resource")?;
        let resource = request.resource.as_ref().expect("checked by resource_type");
        let resource_id = identifier(resource.id.as_ref(), "resource.id")?;
        let space_id = acting_space(request.context.as_ref(), "context", subject_space)?;
        let after = resume_after(request.page.as_ref(), ACTIONS_ORDER, &fingerprint)?;
        // Each action of the type is asked as its own evaluation; an `action` in the request is ignored.
        let q = Question {
            user_id,
            space_id,
            resource_type,
            resource_id,
            properties: resource.properties.clone(),
            action: String::new(),
        };
        match session_problem(proof.kind, std::slice::from_ref(&q)) {
            Some(problem) => Err(problem),
            None => Ok((q, after)),
        }
    })();
    let (base, after) = match checked {
        Ok(checked) => checked,
        Err(e) => return Err(gate.refuse(Problem::Request(e), &raw).await),
    };
    let limit = page_limit(request.page.as_ref());
    let keys = store::registry::actions_of_type(&client, &base.resource_type, &after).await.map_err(db::internal)?;
    if keys.is_empty() {
        // Nothing to decide; the credential must still hold the permission on what the request names.
        let placement = Question { action: PLACEMENT_ACTION.into(), ..base.clone() };
        gate.batch(&[&placement], None, &ctx, true).await?;
    }
    let mut allowed: Vec<ActionResult> = Vec::new();
    for chunk in keys.chunks(MAX_BATCH_ITEMS) {
        let questions: Vec<Question> = chunk.iter().map(|k| Question { action: k.clone(), ..base.clone() }).collect();
        let results = gate.batch(&questions.iter().collect::<Vec<_>>(), None, &ctx, false).await?;
        allowed
            .extend(chunk.iter().zip(results).filter(|(_, d)| d.allow).map(|(k, _)| ActionResult { name: k.clone() }));
        if allowed.len() > limit {
            break;
        }
    }
    let (page, results) = page_of(allowed, limit, ACTIONS_ORDER, &fingerprint, |a: &ActionResult| a.name.clone());
    Ok(Json(ActionSearchResponse { page, results }).into_response())
}

#[utoipa::path(get, operation_id = "authzen_configuration", path = "/.well-known/authzen-configuration", tag = "AuthZEN",
    responses((status = 200, description = "The Policy Decision Point metadata (public): this server's AuthZEN endpoints under SERVER_PUBLIC_URL", body = PdpMetadata)))]
pub async fn configuration(State(state): State<AppState>) -> Response {
    let base = state.config.public_url.trim_end_matches('/').to_string();
    let metadata = PdpMetadata {
        access_evaluation_endpoint: format!("{base}{EVALUATION_PATH}"),
        access_evaluations_endpoint: format!("{base}{EVALUATIONS_PATH}"),
        search_subject_endpoint: format!("{base}{SEARCH_SUBJECT_PATH}"),
        search_resource_endpoint: format!("{base}{SEARCH_RESOURCE_PATH}"),
        search_action_endpoint: format!("{base}{SEARCH_ACTION_PATH}"),
        policy_decision_point: base,
    };
    let mut response = Json(metadata).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn an_evaluation_becomes_a_question_about_a_user_acting_in_a_space() {
        let r: EvaluationRequest = parse(json!({
            "subject": {"type": "user", "id": "u1", "properties": {"space_id": "s_prop"}},
            "action": {"name": "read"},
            "resource": {"type": "doc", "id": "d1", "properties": {"ownerID": "m1"}},
            "context": {"time": "1985-10-26T01:22-07:00"},
            "unknown": {"ignored": true}
        }));
        let q = question(top_level(&r)).unwrap();
        assert_eq!(q.space_id.as_deref(), Some("s_prop"), "the subject's properties name the Space");
        assert_eq!(q.actor(), json!({"user_id": "u1", "space_id": "s_prop"}));
        assert_eq!(q.resource(true), json!({"type": "doc", "id": "d1", "metadata": {"ownerID": "m1"}}));
        assert_eq!(q.resource(false), json!({"type": "doc", "id": "d1"}));
        let r: EvaluationRequest = parse(json!({
            "subject": {"type": "user", "id": "u1", "properties": {"space_id": "s_prop"}},
            "action": {"name": "read"}, "resource": {"type": "doc", "id": "d1"},
            "context": {"space_id": "s_ctx"}
        }));
        let q = question(top_level(&r)).unwrap();
        assert_eq!(q.space_id.as_deref(), Some("s_ctx"), "context wins over the subject's properties");
        assert_eq!(q.resource(true)["metadata"], json!({}), "no properties: still described inline");
    }

    #[test]
    fn missing_and_wrong_fields_are_named() {
        let field = |v: Value| question(top_level(&parse(v))).unwrap_err().details["field"].clone();
        let ok = json!({"subject": {"type": "user", "id": "u"}, "action": {"name": "a"}, "resource": {"type": "t", "id": "r"}});
        for (path, expected) in [
            ("/subject", "subject"),
            ("/subject/id", "subject.id"),
            ("/subject/type", "subject.type"),
            ("/action", "action"),
            ("/action/name", "action.name"),
            ("/resource", "resource"),
            ("/resource/type", "resource.type"),
            ("/resource/id", "resource.id"),
        ] {
            let mut v = ok.clone();
            let (parent, key) = path.rsplit_once('/').unwrap();
            v.pointer_mut(if parent.is_empty() { "" } else { parent }).unwrap().as_object_mut().unwrap().remove(key);
            assert_eq!(field(v), json!(expected), "{path}");
        }
        let mut v = ok.clone();
        v["subject"]["type"] = json!("group");
        let e = question(top_level(&parse(v))).unwrap_err();
        assert_eq!(e.details["allowed"], json!(["user"]));
        let mut v = ok.clone();
        v["context"] = json!({"space_id": 7});
        assert_eq!(field(v), json!("context.space_id"));
        let mut v = ok.clone();
        v["resource"]["id"] = json!("");
        assert_eq!(field(v), json!("resource.id"));
        let mut v = ok;
        v["action"]["name"] = json!("x".repeat(plystra_core::request::MAX_ID_BYTES + 1));
        assert_eq!(field(v), json!("action.name"));
    }

    #[test]
    fn evaluations_take_the_defaults_each_object_whole() {
        let r: EvaluationsRequest = parse(json!({
            "subject": {"type": "user", "id": "u1"},
            "action": {"name": "read"},
            "context": {"space_id": "s1"},
            "evaluations": [
                {"resource": {"type": "doc", "id": "a"}},
                {"action": {"name": "edit"}, "resource": {"type": "doc", "id": "b"}},
                {"subject": {"type": "user", "id": "u2"}, "resource": {"type": "doc", "id": "c"}, "context": {}}
            ]
        }));
        let qs = evaluation_questions(&r).unwrap();
        assert_eq!((qs[0].action.as_str(), qs[0].space_id.as_deref()), ("read", Some("s1")));
        assert_eq!(qs[1].action, "edit");
        assert_eq!(
            (qs[2].user_id.as_str(), qs[2].space_id.as_deref()),
            ("u2", None),
            "an own context replaces it whole"
        );
        assert_eq!(by_actor(&qs), vec![vec![0, 1], vec![2]]);
        let r: EvaluationsRequest =
            parse(json!({"evaluations": [{"subject": {"type": "user", "id": "u"}, "action": {"name": "a"}}]}));
        let e = evaluation_questions(&r).unwrap_err();
        assert_eq!(e.details["field"], "evaluations[0].resource");
        let r: EvaluationsRequest = parse(
            json!({"evaluations": [{"subject": {"type": "user"}, "action": {"name": "a"}, "resource": {"type": "t", "id": "r"}}]}),
        );
        assert_eq!(evaluation_questions(&r).unwrap_err().details["field"], "evaluations[0].subject.id");
    }

    #[test]
    fn the_extensions_field_names_read_in_authzen_words() {
        assert_eq!(authzen_field("actor.user_id", None), "subject.id");
        assert_eq!(authzen_field("actor.space_id", None), "context.space_id");
        assert_eq!(authzen_field("items[0].resource_id", None), "resource.id");
        assert_eq!(
            authzen_field("items[1].resource.metadata.ownerID", Some(&[4, 9])),
            "evaluations[9].resource.properties.ownerID"
        );
        assert_eq!(authzen_field("items[0].action", Some(&[3])), "evaluations[3].action.name");
        assert_eq!(authzen_field("request.user_agent", None), "request.user_agent");
    }

    #[test]
    fn a_page_token_is_bound_to_its_search() {
        let raw = json!({"subject": {"type": "user", "id": "u"}, "action": {"name": "a"}, "resource": {"type": "t"}, "page": {"limit": 2}});
        let fp = search_fingerprint(&raw);
        let mut reordered =
            json!({"page": {"token": "x", "limit": 2}, "resource": {"type": "t"}, "action": {"name": "a"}});
        reordered["subject"] = json!({"id": "u", "type": "user"});
        assert_eq!(search_fingerprint(&reordered), fp, "the token and key order do not matter");
        let mut other = raw.clone();
        other["page"]["limit"] = json!(3);
        assert_ne!(search_fingerprint(&other), fp);
        let (page, rows) = page_of(vec!["a", "b", "c"], 2, RESOURCES_ORDER, &fp, |s| s.to_string());
        assert_eq!((rows.len(), page.count), (2, 2));
        let token = PageRequest { token: Some(page.next_token.clone()), ..PageRequest::default() };
        assert_eq!(resume_after(Some(&token), RESOURCES_ORDER, &fp).unwrap().as_deref(), Some("b"));
        assert!(resume_after(Some(&token), SUBJECTS_ORDER, &fp).is_err(), "another search's token");
        assert!(resume_after(Some(&token), RESOURCES_ORDER, &search_fingerprint(&other)).is_err(), "changed entities");
        let (page, _) = page_of(vec!["a"], 2, RESOURCES_ORDER, &fp, |s| s.to_string());
        assert_eq!(page.next_token, "", "the last page's next_token is empty");
    }

    #[test]
    fn page_limits_fall_back_and_cap() {
        let with = |n| PageRequest { limit: Some(n), ..PageRequest::default() };
        assert_eq!(page_limit(None), DEFAULT_PAGE_LIMIT);
        assert_eq!(page_limit(Some(&with(0))), DEFAULT_PAGE_LIMIT);
        assert_eq!(page_limit(Some(&with(7))), 7);
        assert_eq!(page_limit(Some(&with(10_000))), MAX_PAGE_LIMIT);
    }

    #[test]
    fn authzen_paths() {
        assert!(is_authzen_path("/access/v1/evaluation"));
        assert!(is_authzen_path("/.well-known/authzen-configuration"));
        assert!(!is_authzen_path("/api/v1/authz/check"));
    }
}
