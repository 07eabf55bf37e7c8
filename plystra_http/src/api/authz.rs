//! POST /api/v1/authz/check and /api/v1/authz/explain (reference 1.7). The decision is the extension's, and so
//! is the access rule: one statement (`plystra.decide_with_credential`) checks the presented credential, its
//! admin permission on every scope the request touches and the session's actor, then decides. This module turns
//! the body into the extension's request document, carrying the HTTP request's id, client IP and user agent (so
//! they reach the audit row), and the answer into the envelope. A deny is an HTTP 200 with `decision: "deny"`.
//! POST /api/v1/authz/check-batch asks many (resource, action) items of one actor in the same one statement
//! (`plystra.check_batch`'s document); the credential must hold `authz:check` on every scope any item touches.
//!
//! While tracing is on, each route's work is a `decision` span (child of the request's server span) carrying
//! the decision's ids from the extension's answer (`plystra.trace_id`, `plystra.audit_log_id`) and its outcome;
//! the statement is a child of it (see `db::statement_span`).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tracing::field::Empty;
use tracing::{Instrument, Span};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::auth::credential::Proof;
use crate::db::Db;
use crate::db_errors;
use crate::envelope::Data;
use crate::error::{code, ApiError, ApiResult};
use crate::extract::BodyBytes;
use crate::protection::DecisionPermission;
use crate::request_context::{RequestContext, AUDIT_LOG_ID_HEADER, TRACE_ID_HEADER};
use crate::telemetry::SPAN_TARGET;

/// The nested actor (the flat `actor_user_id` form of older clients is not accepted). With an API key it may be
/// named by its User alone (`{user_id}` or `{user_id, space_id}`): the extension resolves the binding.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthzActor {
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
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthzResource {
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
    #[schema(value_type = Object)]
    pub metadata: Option<Value>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthzRequest {
    pub actor: Option<AuthzActor>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub resource: Option<AuthzResource>,
    /// Inline grants (Context Mode).
    #[schema(value_type = Option<Vec<Object>>)]
    pub grants: Option<Vec<Value>>,
    pub action: Option<String>,
    pub explain: Option<bool>,
}

impl AuthzRequest {
    /// Context Mode: inline actor metadata, a resource snapshot or grants (the reference accepts them only with a
    /// server-side API key).
    pub(crate) fn uses_inline_context(&self) -> bool {
        // Any field given counts, empty or not: the extension's gate applies the same rule.
        use plystra_core::request::ACTOR_ID_FIELDS;
        let actor_inline =
            self.actor.as_ref().is_some_and(|a| given_fields(a).keys().any(|k| !ACTOR_ID_FIELDS.contains(&k.as_str())));
        let resource_inline = self.resource.as_ref().is_some_and(|r| !inline_description(r).is_empty());
        actor_inline || resource_inline || self.grants.is_some()
    }

    /// The extension's request document: nested actor (its inline metadata included), resource (its inline
    /// description included), inline grants, action, and the HTTP request's identity.
    pub(crate) fn to_extension_request(&self, ctx: &RequestContext) -> Value {
        let resource = self.resource.as_ref();
        let mut doc = Map::new();
        if let Some(a) = &self.actor {
            let mut actor = given_fields(a);
            if let Some(binding) = actor.remove("binding_id") {
                actor.entry("user_member_id").or_insert(binding);
            }
            doc.insert("actor".into(), Value::Object(actor));
        }
        if let Some(described) = resource.map(inline_description).filter(|d| !d.is_empty()) {
            doc.insert("resource".into(), Value::Object(described));
        }
        if let Some(grants) = &self.grants {
            doc.insert("grants".into(), Value::Array(grants.clone()));
        }
        if let Some(t) = self.resource_type.clone().or_else(|| resource.and_then(|r| r.resource_type.clone())) {
            doc.insert("resource_type".into(), json!(t));
        }
        if let Some(id) = self.resource_id.clone().or_else(|| resource.and_then(|r| r.id.clone())) {
            doc.insert("resource_id".into(), json!(id));
        }
        if let Some(action) = &self.action {
            doc.insert("action".into(), json!(action));
        }
        doc.insert(
            "request".into(),
            json!({ "request_id": ctx.request_id, "ip": ctx.ip_string(), "user_agent": ctx.user_agent }),
        );
        Value::Object(doc)
    }
}

/// The audit summary of a decision (also the shape of the audit row's identifying columns).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuthzAudit {
    pub audit_log_id: Option<String>,
    pub actor_user_id: Option<String>,
    pub actor_member_id: Option<String>,
    pub actor_user_member_id: Option<String>,
    pub space_id: Option<String>,
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub decision: String,
    pub deny_code: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuthzCheckResponse {
    pub allow: bool,
    pub decision: String,
    pub deny_code: Option<String>,
    pub reason: String,
    pub trace_id: String,
    pub audit_log_id: Option<String>,
    pub audit: AuthzAudit,
}

/// The decision-time trace (reference 1.7); the same document the audit row keeps in `trace`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuthzExplainTrace {
    pub trace_version: String,
    pub trace_id: String,
    pub decision: String,
    pub deny_code: Option<String>,
    #[schema(value_type = Object)]
    pub actor: Value,
    #[schema(value_type = Object)]
    pub space: Value,
    #[schema(value_type = Object)]
    pub target: Value,
    #[schema(value_type = Object)]
    pub resource_registry: Value,
    #[schema(value_type = Option<Vec<Object>>)]
    pub matched_candidates: Value,
    #[schema(value_type = Object)]
    pub request: Value,
    pub reason: String,
    pub audit: AuthzAudit,
    /// The request as the extension read it (an addition to the reference's trace, kept so that the HTTP
    /// answer and the audit row's `trace` are the same document).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub requested: Option<Value>,
    /// Context Mode only: which of `actor`, `target` and `grants` came from the request (`inline`) rather than
    /// from Plystra (`core`), and `ignored_inline_fields` when a registered resource was described.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub context_mode: Option<Value>,
    /// How many candidates the trace leaves out, when there are more than it shows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_candidates_omitted: Option<u64>,
}

/// The fields of a request object that were given (nulls left out), as the extension reads them.
fn given_fields<T: Serialize>(value: &T) -> Map<String, Value> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map.into_iter().filter(|(_, v)| !v.is_null()).collect(),
        _ => Map::new(),
    }
}

/// A resource's inline description (Context Mode): every given field but `type` and `id`, which travel as
/// `resource_type` and `resource_id`.
fn inline_description(resource: &AuthzResource) -> Map<String, Value> {
    let mut fields = given_fields(resource);
    fields.remove("type");
    fields.remove("id");
    fields
}

fn active_member_required(message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, code::ACTIVE_MEMBER_REQUIRED, message)
}

fn inline_refused() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        code::INLINE_CONTEXT_REQUIRES_API_KEY,
        "Inline actor, resource, or grant context requires a server-side API key.",
    )
}

/// A problem found in the request before the database is asked. It is answered only once the credential is
/// known to be valid, at the point the other admin routes answer it: a body that cannot be read (too large, a
/// NUL) right after authentication, a request that does not read after the admin permission.
enum Problem {
    Body(ApiError),
    Request(ApiError),
}

/// The credential rules of reference 1.7 that need no database: inline context (Context Mode) needs an API key,
/// and an API key must name the actor. (A session's actor, and the key's scope over everything the request names,
/// are checked by the extension.)
fn credential_problem(kind: &str, body: &AuthzRequest) -> Option<ApiError> {
    let inline = body.uses_inline_context();
    match kind {
        "api_key" if body.actor.is_none() => {
            Some(ApiError::validation("actor", "actor is required when using an API key."))
        }
        "api_key" => None,
        _ if inline => Some(inline_refused()),
        _ => None,
    }
}

/// Reads a decision route's body: the request it holds (`T`, checked by `credential_rules` for the presented
/// credential's kind), or the problem and the body as far as it reads (the extension places the credential's
/// scopes from it before the problem is answered).
fn read_body<T: serde::de::DeserializeOwned>(
    body: BodyBytes,
    kind: &str,
    credential_rules: impl Fn(&str, &T) -> Option<ApiError>,
) -> Result<T, Box<(Problem, Value)>> {
    let bytes = body.0.map_err(|e| Box::new((Problem::Body(e), Value::Null)))?;
    if crate::extract::has_nul_escape(&bytes) {
        return Err(Box::new((Problem::Body(crate::extract::nul_in_body()), Value::Null)));
    }
    let parsed = crate::extract::parse_json::<T>(&bytes)
        .and_then(|request| credential_rules(kind, &request).map_or(Ok(request), Err));
    parsed.map_err(|e| Box::new((Problem::Request(e), serde_json::from_slice(&bytes).unwrap_or(Value::Null))))
}

/// Answers a request's problem once the credential is known: 401 before anything, then a body that cannot be
/// read, then the admin permission on what the body names, then a request that does not read (the order of every
/// admin route). One round trip: `decide_with_credential` with `authorize_only`.
async fn answer_problem(
    state: &AppState,
    db: &Db,
    client: &deadpool_postgres::Object,
    proof: &Proof,
    permission: &str,
    problem: Box<(Problem, Value)>,
    explain: bool,
) -> ApiResult<Response> {
    let (problem, raw) = *problem;
    // An explanation needs the permission on the actor's whole Space (see the extension's gate).
    let explain = explain || raw["explain"] == Value::Bool(true);
    match (ask(state, db, client, proof, permission, &raw, explain, true).await, problem) {
        (Err(e), Problem::Request(_)) => Err(e),
        (Err(e), Problem::Body(_)) if e.status == StatusCode::UNAUTHORIZED => Err(e),
        (_, Problem::Body(e) | Problem::Request(e)) => Err(e),
    }
}

/// What `plystra.decide_with_credential` answered, as an error when it is not a decision.
fn refusal(outcome: &Value, permission: &str) -> ApiError {
    let message = outcome["message"].as_str().unwrap_or_default().to_string();
    match (outcome["outcome"].as_str(), outcome["code"].as_str()) {
        (Some("unauthenticated"), _) => crate::auth::credential::authentication_required(),
        (Some("forbidden"), Some(code::ADMIN_PERMISSION_REQUIRED)) => {
            ApiError::admin_permission_required(permission, message)
        }
        (Some("forbidden"), Some(code::ACTIVE_MEMBER_REQUIRED)) => active_member_required(message),
        _ => {
            tracing::error!(outcome = %outcome, "the extension's gate answered an unknown outcome");
            ApiError::internal()
        }
    }
}

/// One statement: the credential, the admin permission on every scope the request touches, the session's
/// actor, and the decision (`plystra.decide_with_credential`). `request` is `None` when only the credential
/// and permission are asked (a request with a problem, answered once they hold).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn ask(
    state: &AppState,
    db: &Db,
    client: &deadpool_postgres::Object,
    proof: &Proof,
    permission: &str,
    request: &Value,
    explain: bool,
    authorize_only: bool,
) -> ApiResult<Value> {
    let outcome = crate::store::decisions::decide_with_credential(
        client,
        &proof.document,
        permission,
        request,
        explain,
        authorize_only,
    )
    .await
    .map_err(db_errors::read_error)?;
    if outcome["outcome"] != "unauthenticated" && !proof.confirms(&outcome["credential"]) {
        return Err(crate::auth::credential::authentication_required());
    }
    let kind = outcome["credential"]["kind"].as_str();
    let decided = matches!(outcome["outcome"].as_str(), Some("decided" | "authorized"));
    if let (true, Some("api_key"), Some(id)) = (decided, kind, outcome["credential"]["api_key_id"].as_str()) {
        crate::protection::record_last_use(state, db, client, id).await;
    }
    if decided {
        Ok(outcome)
    } else {
        Err(refusal(&outcome, permission))
    }
}

/// The span of a decision route's work (disabled, and free, while tracing is off). Its outcome fields are
/// recorded once the extension has answered.
fn decision_span(name: &'static str, permission: &'static str) -> Span {
    tracing::info_span!(
        target: SPAN_TARGET,
        "decision",
        otel.name = name,
        otel.status_code = Empty,
        plystra.permission = permission,
        plystra.decision = Empty,
        plystra.deny_code = Empty,
        plystra.trace_id = Empty,
        plystra.audit_log_id = Empty,
        plystra.batch.size = Empty,
        plystra.batch.denied = Empty,
        error.type = Empty,
    )
}

/// Runs a decision route's work inside its span; a refused request marks the span with its error code.
async fn traced(span: Span, work: impl std::future::Future<Output = ApiResult<Response>>) -> ApiResult<Response> {
    let result = work.instrument(span.clone()).await;
    if let Err(e) = &result {
        span.record("error.type", &*e.code);
        if e.status.is_server_error() {
            span.record("otel.status_code", "ERROR");
        }
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn decide(
    state: &AppState,
    mut db: Db,
    ctx: &RequestContext,
    headers: &HeaderMap,
    permission: &'static str,
    body: BodyBytes,
    explain_route: bool,
    span: &Span,
) -> ApiResult<Response> {
    let proof = crate::auth::credential::proof(&state.config, headers)?;
    let client = db.connection().await?;
    let body = match read_body(body, proof.kind, credential_problem) {
        Ok(body) => body,
        Err(problem) => return answer_problem(state, &db, &client, &proof, permission, problem, explain_route).await,
    };
    let explain = explain_route || body.explain == Some(true);
    let request = body.to_extension_request(ctx);
    let mut outcome = ask(state, &db, &client, &proof, permission, &request, explain, false).await?;
    // The decision echoes the caller's request; a document that does not read is a 500, never a panic.
    let answer = outcome["decision"].take();
    let contract_mismatch = |e: serde_json::Error| {
        tracing::error!(error = %e, "the extension's decision does not match the documented shape");
        ApiError::internal()
    };
    let (decision, deny_code, trace_id, audit_log_id, mut response) = if explain {
        let d: AuthzExplainTrace = serde_json::from_value(answer).map_err(contract_mismatch)?;
        let parts = (d.decision.clone(), d.deny_code.clone(), d.trace_id.clone(), d.audit.audit_log_id.clone());
        (parts.0, parts.1, parts.2, parts.3, Data::ok(d).into_response())
    } else {
        let d: AuthzCheckResponse = serde_json::from_value(answer).map_err(contract_mismatch)?;
        let parts = (d.decision.clone(), d.deny_code.clone(), d.trace_id.clone(), d.audit_log_id.clone());
        (parts.0, parts.1, parts.2, parts.3, Data::ok(d).into_response())
    };
    state.metrics.record_decision(&decision, deny_code.as_deref(), audit_log_id.is_some());
    span.record("plystra.decision", decision.as_str());
    span.record("plystra.deny_code", deny_code.as_deref());
    span.record("plystra.trace_id", trace_id.as_str());
    span.record("plystra.audit_log_id", audit_log_id.as_deref());
    if let Ok(v) = HeaderValue::from_str(&trace_id) {
        response.headers_mut().insert(TRACE_ID_HEADER, v);
    }
    if let Some(v) = audit_log_id.as_deref().and_then(|id| HeaderValue::from_str(id).ok()) {
        response.headers_mut().insert(AUDIT_LOG_ID_HEADER, v);
    }
    Ok(response)
}

/// A batch's span: its size, how many were denied, and every decision's ids in item order (array attributes
/// `plystra.trace_ids` and `plystra.audit_log_ids`, the latter "" where no row was written).
fn record_batch(span: &Span, results: &[AuthzCheckResponse]) {
    use opentelemetry::{Array, StringValue, Value as OtelValue};
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if span.is_disabled() {
        return;
    }
    // As i64: the OpenTelemetry layer exports unsigned numbers as text.
    span.record("plystra.batch.size", results.len() as i64);
    span.record("plystra.batch.denied", results.iter().filter(|d| d.decision == "deny").count() as i64);
    let strings = |f: &dyn Fn(&AuthzCheckResponse) -> String| {
        OtelValue::Array(Array::String(results.iter().map(|d| StringValue::from(f(d))).collect()))
    };
    span.set_attribute("plystra.trace_ids", strings(&|d| d.trace_id.clone()));
    span.set_attribute("plystra.audit_log_ids", strings(&|d| d.audit_log_id.clone().unwrap_or_default()));
}

/// Most items a batch may hold (the extension's limit, `plystra_core::request::MAX_BATCH_ITEMS`).
pub const MAX_BATCH_ITEMS: usize = 1000;

/// One item of a batch: a resource (`resource_type` + `resource_id`, or `resource: {type, id}`) and an action.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthzBatchItem {
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub resource: Option<AuthzResource>,
    pub action: Option<String>,
}

/// Many decisions for one actor: the actor as for a check (a session may leave it out and act through its active
/// binding), and 1 to 1000 items.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthzBatchRequest {
    pub actor: Option<AuthzActor>,
    pub items: Option<Vec<AuthzBatchItem>>,
}

impl AuthzBatchRequest {
    /// A problem a check would answer before the database decides (inline context, an API key without an actor),
    /// or a list of items that is missing, empty or too long.
    fn problem(&self, kind: &str) -> Option<ApiError> {
        let inline = |r: &AuthzResource| {
            AuthzRequest { resource: Some(r.clone()), ..AuthzRequest::default() }.uses_inline_context()
        };
        let inline_resource = self.items.iter().flatten().filter_map(|i| i.resource.as_ref()).find(|r| inline(r));
        let as_check =
            AuthzRequest { actor: self.actor.clone(), resource: inline_resource.cloned(), ..AuthzRequest::default() };
        if let Some(problem) = credential_problem(kind, &as_check) {
            return Some(problem);
        }
        match self.items.as_ref().map(Vec::len) {
            None => Some(ApiError::required("items")),
            Some(0) => Some(ApiError::validation("items", "items must not be empty.")),
            Some(n) if n > MAX_BATCH_ITEMS => {
                Some(ApiError::validation("items", format!("items holds more than {MAX_BATCH_ITEMS} items.")))
            }
            _ => None,
        }
    }

    /// The extension's batch document: the actor, each item's resource and action, the HTTP request's identity.
    fn to_extension_request(&self, ctx: &RequestContext) -> Value {
        let mut doc = AuthzRequest { actor: self.actor.clone(), ..AuthzRequest::default() }.to_extension_request(ctx);
        let items: Vec<Value> = self
            .items
            .iter()
            .flatten()
            .map(|item| {
                let resource = item.resource.as_ref();
                let mut out = Map::new();
                if let Some(t) = item.resource_type.clone().or_else(|| resource.and_then(|r| r.resource_type.clone())) {
                    out.insert("resource_type".into(), json!(t));
                }
                if let Some(id) = item.resource_id.clone().or_else(|| resource.and_then(|r| r.id.clone())) {
                    out.insert("resource_id".into(), json!(id));
                }
                if let Some(action) = &item.action {
                    out.insert("action".into(), json!(action));
                }
                if let Some(described) = resource.map(inline_description).filter(|d| !d.is_empty()) {
                    out.insert("resource".into(), Value::Object(described));
                }
                Value::Object(out)
            })
            .collect();
        doc["items"] = Value::Array(items);
        doc
    }
}

/// The answers of a batch, in item order: each exactly what /authz/check answers for the item.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuthzBatchResponse {
    pub results: Vec<AuthzCheckResponse>,
}

#[utoipa::path(post, operation_id = "authz_check_batch", path = "/api/v1/authz/check-batch", tag = "Authz",
    request_body = AuthzBatchRequest,
    responses((status = 200, description = "One decision per item, in order, each as /authz/check answers it and audited as its own decision", body = crate::envelope::Envelope<AuthzBatchResponse>),
              (status = 400, description = "VALIDATION_FAILED (details.field names the item, e.g. items[3].action)", body = crate::error::ErrorEnvelope),
              (status = 403, description = "INLINE_CONTEXT_REQUIRES_API_KEY", body = crate::error::ErrorEnvelope)))]
pub async fn check_batch(
    State(state): State<AppState>,
    db: Db,
    Extension(DecisionPermission(permission)): Extension<DecisionPermission>,
    ctx: RequestContext,
    headers: HeaderMap,
    body: BodyBytes,
) -> ApiResult<Response> {
    let span = decision_span("authz.check_batch", permission);
    traced(span.clone(), decide_batch(state, db, permission, ctx, headers, body, span)).await
}

async fn decide_batch(
    state: AppState,
    mut db: Db,
    permission: &'static str,
    ctx: RequestContext,
    headers: HeaderMap,
    body: BodyBytes,
    span: Span,
) -> ApiResult<Response> {
    let proof = crate::auth::credential::proof(&state.config, &headers)?;
    let client = db.connection().await?;
    let batch = match read_body(body, proof.kind, |kind, batch: &AuthzBatchRequest| batch.problem(kind)) {
        Ok(batch) => batch,
        Err(problem) => return answer_problem(&state, &db, &client, &proof, permission, problem, false).await,
    };
    let request = batch.to_extension_request(&ctx);
    let mut outcome = ask(&state, &db, &client, &proof, permission, &request, false, false).await?;
    let answer: AuthzBatchResponse = serde_json::from_value(outcome["decision"].take()).map_err(|e| {
        tracing::error!(error = %e, "the extension's batch decision does not match the documented shape");
        ApiError::internal()
    })?;
    for d in &answer.results {
        state.metrics.record_decision(&d.decision, d.deny_code.as_deref(), d.audit_log_id.is_some());
    }
    record_batch(&span, &answer.results);
    Ok(Data::ok(answer).into_response())
}

#[utoipa::path(post, operation_id = "authz_check", path = "/api/v1/authz/check", tag = "Authz", request_body = AuthzRequest,
    responses((status = 200, description = "The decision (a deny is HTTP 200 with decision deny)", body = crate::envelope::Envelope<AuthzCheckResponse>,
               headers(("X-Plystra-Trace-ID" = String, description = "trc_<16 hex>"),
                       ("X-Plystra-Audit-Log-ID" = String, description = "Set when an audit row was written"))),
              (status = 400, description = "VALIDATION_FAILED", body = crate::error::ErrorEnvelope),
              (status = 403, description = "INLINE_CONTEXT_REQUIRES_API_KEY", body = crate::error::ErrorEnvelope)))]
pub async fn check(
    State(state): State<AppState>,
    db: Db,
    Extension(DecisionPermission(permission)): Extension<DecisionPermission>,
    ctx: RequestContext,
    headers: HeaderMap,
    body: BodyBytes,
) -> ApiResult<Response> {
    let span = decision_span("authz.check", permission);
    traced(span.clone(), async { decide(&state, db, &ctx, &headers, permission, body, false, &span).await }).await
}

#[utoipa::path(post, operation_id = "authz_explain", path = "/api/v1/authz/explain", tag = "Authz", request_body = AuthzRequest,
    responses((status = 200, description = "The full decision-time trace", body = crate::envelope::Envelope<AuthzExplainTrace>,
               headers(("X-Plystra-Trace-ID" = String, description = "trc_<16 hex>"),
                       ("X-Plystra-Audit-Log-ID" = String, description = "Set when an audit row was written"))),
              (status = 400, description = "VALIDATION_FAILED", body = crate::error::ErrorEnvelope),
              (status = 403, description = "INLINE_CONTEXT_REQUIRES_API_KEY", body = crate::error::ErrorEnvelope)))]
pub async fn explain(
    State(state): State<AppState>,
    db: Db,
    Extension(DecisionPermission(permission)): Extension<DecisionPermission>,
    ctx: RequestContext,
    headers: HeaderMap,
    body: BodyBytes,
) -> ApiResult<Response> {
    let span = decision_span("authz.explain", permission);
    traced(span.clone(), async { decide(&state, db, &ctx, &headers, permission, body, true, &span).await }).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RequestContext {
        RequestContext {
            request_id: "req_1".into(),
            server_request_id: "req_1".into(),
            ip: Some("127.0.0.1".parse().unwrap()),
            user_agent: Some("ua".into()),
            credential: None,
        }
    }

    #[test]
    fn binding_id_and_resource_object_are_normalised() {
        let body: AuthzRequest = serde_json::from_value(json!({
            "actor": {"user_id": "u", "member_id": "m", "binding_id": "b", "space_id": "s"},
            "resource": {"type": "invoice", "id": "invoice_001"},
            "action": "approve"
        }))
        .unwrap();
        assert!(!body.uses_inline_context());
        let doc = body.to_extension_request(&ctx());
        assert_eq!(doc["actor"]["user_member_id"], "b");
        assert_eq!(doc["resource_type"], "invoice");
        assert_eq!(doc["resource_id"], "invoice_001");
        assert_eq!(doc["request"]["request_id"], "req_1");
        assert_eq!(doc["request"]["ip"], "127.0.0.1");
        assert_eq!(doc["request"]["user_agent"], "ua");
    }

    #[test]
    fn inline_context_is_detected() {
        let with = |v: Value| serde_json::from_value::<AuthzRequest>(v).unwrap().uses_inline_context();
        assert!(with(json!({"grants": [{"scope": "space"}]})));
        assert!(with(json!({"actor": {"user_email": "a@b"}})));
        assert!(with(json!({"resource": {"type": "invoice", "id": "x", "group_path": "finance"}})));
        // Any field given counts, as the extension's gate counts it: an empty list of grants makes the request
        // pure inline (an actor of the request's own, with no grants).
        assert!(with(json!({"grants": []})));
        assert!(with(json!({"resource": {"type": "invoice", "id": "x", "metadata": {}}})));
        assert!(!with(
            json!({"resource": {"type": "invoice", "id": "x"}, "actor": {"user_id": "u", "binding_id": "b"}})
        ));
    }

    #[test]
    fn the_extension_document_carries_the_inline_context() {
        let body: AuthzRequest = serde_json::from_value(json!({
            "actor": {"user_id": "u", "member_id": "m", "binding_id": "b", "space_id": "s", "user_email": "e"},
            "resource": {"type": "invoice", "id": "x", "group_path": "finance", "metadata": {"k": 1}},
            "grants": [{"resource": "invoice", "action": "read", "scope": "space"}], "action": "read"
        }))
        .unwrap();
        let doc = body.to_extension_request(&ctx());
        assert_eq!(
            doc["actor"],
            json!({"user_id": "u", "member_id": "m", "user_member_id": "b", "space_id": "s",
                                         "user_email": "e"})
        );
        assert_eq!(doc["resource"], json!({"group_path": "finance", "metadata": {"k": 1}}));
        assert_eq!((doc["resource_type"].as_str(), doc["resource_id"].as_str()), (Some("invoice"), Some("x")));
        assert_eq!(doc["grants"][0]["scope"], "space");
    }
}
