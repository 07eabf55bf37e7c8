//! POST /api/v1/authz/check and /api/v1/authz/explain (docs/v1-reference.md §1.7). The decision is the extension's, and so
//! is the access rule: one statement (`plystra.decide_with_credential`) checks the presented credential, its
//! admin permission on every scope the request touches and the session's actor, then decides. The body and the
//! answer are the decision contract's types (`plystra_core::contract`): this module reads the body as its
//! request, has it written as the extension's request document with the HTTP request's id, client IP and user
//! agent (so they reach the audit row), and reads the answer as its answer into the envelope. A deny is an HTTP
//! 200 with `decision: "deny"`.
//! POST /api/v1/authz/check-batch asks many (resource, action) items of one actor in the same one statement
//! (`plystra.check_batch`'s document); the credential must hold `authz:check` on every scope any item touches.
//!
//! While tracing is on, each route's work is a `decision` span (child of the request's server span) carrying
//! the decision's ids from the extension's answer (`plystra.trace_id`, `plystra.audit_log_id`) and its outcome;
//! the statement is a child of it (see `db::statement_span`).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Extension;
use plystra_core::contract::{
    BatchAnswer, BatchRequest, CheckAnswer, Decision, DecisionRequest, ExplainTrace, MAX_BATCH_ITEMS,
};
use plystra_core::DenyCode;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::app::AppState;
use crate::auth::credential::Proof;
use crate::db::Db;
use crate::db_errors;
use crate::error::{code, ApiError, ApiResult};
use crate::extract::BodyBytes;
use crate::protection::DecisionPermission;
use crate::request_context::{RequestContext, AUDIT_LOG_ID_HEADER, TRACE_ID_HEADER};
use crate::telemetry::SPAN_TARGET;

/// The request's identity as the extension's request document carries it to the audit row.
pub(crate) fn decision_context(ctx: &RequestContext) -> plystra_core::model::RequestContext {
    plystra_core::model::RequestContext {
        request_id: Some(ctx.request_id.clone()),
        ip: ctx.ip_string(),
        user_agent: ctx.user_agent.clone(),
    }
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

/// The credential rules of docs/v1-reference.md §1.7 that need no database: inline context (Context Mode) needs an API key,
/// and an API key must name the actor. (A session's actor, and the key's scope over everything the request names,
/// are checked by the extension.)
fn credential_problem(kind: &str, body: &DecisionRequest) -> Option<ApiError> {
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
    let (problem, mut raw) = *problem;
    // An explanation needs the permission on the actor's whole Space (see the extension's gate).
    let explain = explain || raw["explain"] == Value::Bool(true);
    // A session's inline description is refused whatever it describes: placed, a described resource or group of
    // another Space would be refused for its scope and one that lies nowhere for the description, which would tell
    // the two apart. Only the credential is asked about.
    if matches!(&problem, Problem::Request(e) if e.code == code::INLINE_CONTEXT_REQUIRES_API_KEY) {
        raw = Value::Null;
    }
    match (ask(state, db, client, proof, permission, &raw, explain, true).await, problem) {
        (Err(e), Problem::Request(_)) => Err(e),
        (Err(e), Problem::Body(_)) if e.status == StatusCode::UNAUTHORIZED => Err(e),
        (_, Problem::Body(e) | Problem::Request(e)) => Err(e),
    }
}

/// What `plystra.decide_with_credential` answered (sql/front.sql): the outcome, the credential it found, and
/// the decision, kept as the extension wrote it so that a route passes it through rather than rebuilding it.
#[derive(Deserialize)]
pub(crate) struct Outcome {
    outcome: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    /// Who the credential is, with its stored token HMAC (confirmed here in constant time).
    #[serde(default)]
    credential: Value,
    #[serde(default)]
    decision: Option<Box<RawValue>>,
}

impl Outcome {
    /// The decision as the extension wrote it (an answer without one is a 500, logged).
    pub(crate) fn decision(self) -> ApiResult<Box<RawValue>> {
        self.decision.ok_or_else(|| {
            tracing::error!(outcome = %self.outcome, "the extension's gate decided without a decision");
            ApiError::internal()
        })
    }
}

/// What a route reads of one decision for its metrics, span and headers; the rest is passed through.
#[derive(Deserialize)]
pub(crate) struct Head<'a> {
    pub decision: Decision,
    pub deny_code: Option<DenyCode>,
    #[serde(borrow)]
    pub trace_id: Cow<'a, str>,
    /// A check's (an explanation names its row only in `audit`).
    #[serde(borrow, default)]
    audit_log_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    audit: Option<AuditHead<'a>>,
}

#[derive(Deserialize)]
struct AuditHead<'a> {
    #[serde(borrow, default)]
    audit_log_id: Option<Cow<'a, str>>,
}

impl<'a> Head<'a> {
    /// The audit row written for the decision, if one was.
    pub fn audit_log_id(&self) -> Option<&str> {
        self.audit_log_id.as_deref().or_else(|| self.audit.as_ref().and_then(|a| a.audit_log_id.as_deref()))
    }
}

/// What a batch route reads of its answer: each item's [`Head`].
#[derive(Deserialize)]
struct BatchHead<'a> {
    #[serde(borrow)]
    results: Vec<Head<'a>>,
}

/// `plystra.decide_with_credential`'s outcome, as an error when it is not a decision.
fn refusal(outcome: &Outcome, permission: &str) -> ApiError {
    let message = outcome.message.clone().unwrap_or_default();
    match (outcome.outcome.as_str(), outcome.code.as_deref()) {
        ("unauthenticated", _) => crate::auth::credential::authentication_required(),
        ("forbidden", Some(code::ADMIN_PERMISSION_REQUIRED)) => {
            ApiError::admin_permission_required(permission, message)
        }
        ("forbidden", Some(code::ACTIVE_MEMBER_REQUIRED)) => active_member_required(message),
        (other, code) => {
            tracing::error!(outcome = %other, code = ?code, "the extension's gate answered an unknown outcome");
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
) -> ApiResult<Outcome> {
    let answer = crate::store::decisions::decide_with_credential(
        client,
        &proof.document,
        permission,
        request,
        explain,
        authorize_only,
    )
    .await
    .map_err(db_errors::read_error)?;
    let outcome: Outcome = serde_json::from_str(answer.as_str()).map_err(contract_mismatch)?;
    if outcome.outcome != "unauthenticated" && !proof.confirms(&outcome.credential) {
        return Err(crate::auth::credential::authentication_required());
    }
    let kind = outcome.credential["kind"].as_str();
    let decided = matches!(outcome.outcome.as_str(), "decided" | "authorized");
    if let (true, Some("api_key"), Some(id)) = (decided, kind, outcome.credential["api_key_id"].as_str()) {
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
    let client = db.decision_connection(&state.pipe).await?;
    let body = match read_body(body, proof.kind, credential_problem) {
        Ok(body) => body,
        Err(problem) => return answer_problem(state, &db, &client, &proof, permission, problem, explain_route).await,
    };
    let explain = explain_route || body.explain == Some(true);
    let request = body.document(&decision_context(ctx));
    let answer = ask(state, &db, &client, &proof, permission, &request, explain, false).await?.decision()?;
    // The answer (a CheckAnswer, or an ExplainTrace, as the extension wrote it: plystra_core::contract's tests
    // tie the extension's answers to those types) is sent as it is; only what the metrics, the span and the
    // headers need is read from it. A document that does not read is a 500, never a panic.
    let head: Head<'_> = serde_json::from_str(answer.get()).map_err(contract_mismatch)?;
    let (trace_id, audit_log_id) = (head.trace_id.to_string(), head.audit_log_id().map(str::to_string));
    state.metrics.record_decision(head.decision, head.deny_code, audit_log_id.is_some());
    span.record("plystra.decision", head.decision.as_str());
    span.record("plystra.deny_code", head.deny_code.map(DenyCode::as_str));
    span.record("plystra.trace_id", trace_id.as_str());
    span.record("plystra.audit_log_id", audit_log_id.as_deref());
    let mut response = crate::envelope::raw_ok(answer);
    if let Ok(v) = HeaderValue::from_str(&trace_id) {
        response.headers_mut().insert(TRACE_ID_HEADER, v);
    }
    if let Some(v) = audit_log_id.as_deref().and_then(|id| HeaderValue::from_str(id).ok()) {
        response.headers_mut().insert(AUDIT_LOG_ID_HEADER, v);
    }
    Ok(response)
}

/// The extension's answer did not read as the contract's type: a 500, logged, never a panic or a guess.
pub(crate) fn contract_mismatch(e: serde_json::Error) -> ApiError {
    tracing::error!(error = %e, "the extension's decision does not match the documented shape");
    ApiError::internal()
}

/// A batch's span: its size, how many were denied, and every decision's ids in item order (array attributes
/// `plystra.trace_ids` and `plystra.audit_log_ids`, the latter "" where no row was written).
fn record_batch(span: &Span, results: &[Head<'_>]) {
    use opentelemetry::{Array, StringValue, Value as OtelValue};
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if span.is_disabled() {
        return;
    }
    // As i64: the OpenTelemetry layer exports unsigned numbers as text.
    span.record("plystra.batch.size", results.len() as i64);
    span.record("plystra.batch.denied", results.iter().filter(|d| d.decision == Decision::Deny).count() as i64);
    let strings = |f: &dyn Fn(&Head<'_>) -> String| {
        OtelValue::Array(Array::String(results.iter().map(|d| StringValue::from(f(d))).collect()))
    };
    span.set_attribute("plystra.trace_ids", strings(&|d| d.trace_id.to_string()));
    span.set_attribute("plystra.audit_log_ids", strings(&|d| d.audit_log_id().unwrap_or_default().to_string()));
}

/// A problem a check would answer before the database decides (inline context, an API key without an actor),
/// or a list of items that is missing, empty or too long.
fn batch_problem(kind: &str, batch: &BatchRequest) -> Option<ApiError> {
    let as_check = DecisionRequest {
        actor: batch.actor.clone(),
        resource: batch.inline_resource().cloned(),
        ..DecisionRequest::default()
    };
    if let Some(problem) = credential_problem(kind, &as_check) {
        return Some(problem);
    }
    match batch.items.as_ref().map(Vec::len) {
        None => Some(ApiError::required("items")),
        Some(0) => Some(ApiError::validation("items", "items must not be empty.")),
        Some(n) if n > MAX_BATCH_ITEMS => {
            Some(ApiError::validation("items", format!("items holds more than {MAX_BATCH_ITEMS} items.")))
        }
        _ => None,
    }
}

#[utoipa::path(post, operation_id = "authz_check_batch", path = "/api/v1/authz/check-batch", tag = "Authz",
    request_body = BatchRequest,
    responses((status = 200, description = "One decision per item, in order, each as /authz/check answers it and audited as its own decision", body = crate::envelope::Envelope<BatchAnswer>),
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
    let read = read_body(body, proof.kind, batch_problem);
    let _bulk = match &read {
        Ok(batch) if batch.items.as_ref().is_some_and(|items| items.len() > 1) => {
            Some(Db::bulk_permit(&state.bulk_permits, state.config.database_pool_wait_timeout).await?)
        }
        _ => None,
    };
    let client = db.connection().await?;
    let batch = match read {
        Ok(batch) => batch,
        Err(problem) => return answer_problem(&state, &db, &client, &proof, permission, problem, false).await,
    };
    let request = batch.document(&decision_context(&ctx));
    let answer = ask(&state, &db, &client, &proof, permission, &request, false, false).await?.decision()?;
    // Passed through as the extension wrote it (a BatchAnswer); each item's head is read for the metrics.
    let head: BatchHead<'_> = serde_json::from_str(answer.get()).map_err(contract_mismatch)?;
    for d in &head.results {
        state.metrics.record_decision(d.decision, d.deny_code, d.audit_log_id().is_some());
    }
    record_batch(&span, &head.results);
    Ok(crate::envelope::raw_ok(answer))
}

#[utoipa::path(post, operation_id = "authz_check", path = "/api/v1/authz/check", tag = "Authz", request_body = DecisionRequest,
    responses((status = 200, description = "The decision (a deny is HTTP 200 with decision deny)", body = crate::envelope::Envelope<CheckAnswer>,
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

#[utoipa::path(post, operation_id = "authz_explain", path = "/api/v1/authz/explain", tag = "Authz", request_body = DecisionRequest,
    responses((status = 200, description = "The full decision-time trace", body = crate::envelope::Envelope<ExplainTrace>,
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
