//! Who is calling and under which request id: the outermost middleware. It picks the request id (the caller's
//! `X-Request-ID`, or `req_<16 hex>`), resolves the client IP and user agent, makes them available to every
//! handler (and to the audit rows the database writes for them), echoes the id, and writes the one access-log
//! line per request. It sits outside tracing, panic catching and routing so that every answer, even a 404, a
//! 405 or a panic, carries the same request id in its body, its header and its log line: an envelope built
//! below it is left without its request_id ([`crate::envelope::Unstamped`]), which it writes in.
//!
//! It also opens the request's OpenTelemetry server span (exported only while tracing is on, see
//! [`crate::telemetry`]): named by method and route template (never the raw path, which holds ids), parented
//! on the caller's W3C `traceparent`, closed with the status; the answer then names it in `traceresponse`
//! and the access-log line carries its trace and span ids.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::body::HttpBody;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::field::Empty;
use tracing::Instrument;

use crate::app::AppState;
use crate::auth::Credential;
use crate::client_ip;
use crate::error::{ApiError, ERROR_CODE_HEADER};
use crate::telemetry::{self, SPAN_TARGET};

pub const TRACE_ID_HEADER: &str = "x-plystra-trace-id";
pub const AUDIT_LOG_ID_HEADER: &str = "x-plystra-audit-log-id";

/// The request's identity as recorded on audit rows: request id, client IP, user agent.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The caller's `X-Request-ID` when it gave a usable one (its own correlation id, not evidence: any caller can
    /// reuse any id), else [`RequestContext::server_request_id`].
    pub request_id: String,
    /// This server's own id of the request (`req_` + 16 random hex), unique whatever the caller sent; logged and
    /// recorded beside `request_id` on management audit rows (`plystra.server_request_id`).
    pub server_request_id: String,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    /// The credential the protection seam accepted for an admin route (`None` before it, and on routes that
    /// check their own credential or none). Recorded on the audit rows of the request's writes.
    pub credential: Option<Credential>,
}

impl RequestContext {
    pub fn ip_string(&self) -> Option<String> {
        self.ip.map(|ip| ip.to_string())
    }

    /// The accepted credential, or 401 AUTHENTICATION_REQUIRED (a route the seam did not authenticate).
    pub fn credential(&self) -> Result<&Credential, ApiError> {
        self.credential.as_ref().ok_or_else(crate::auth::credential::authentication_required)
    }
}

/// `req_` + 16 hex characters (8 random bytes), as in v1.0.
pub fn new_request_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("req_{}", &hex[..16])
}

/// A caller's request id is used verbatim when it is a reasonable token; anything else (too long, control
/// characters) is replaced, since it would end up in audit rows and log lines.
fn accept_incoming_id(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?.trim();
    if s.is_empty() || s.len() > 128 || !s.chars().all(|c| c.is_ascii_graphic()) {
        return None;
    }
    Some(s.to_string())
}

/// Labels a response with the route template that produced it (set by the per-route layer), so that metrics
/// group `/api/v1/users/{id}` rather than every user id.
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);

pub async fn middleware(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let header_name = &state.config.request_id_header;
    let server_request_id = new_request_id();
    let incoming = request.headers().get(header_name).cloned();
    let request_id = incoming.as_ref().and_then(accept_incoming_id).unwrap_or_else(|| server_request_id.clone());
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let ip =
        client_ip::resolve(peer, request.headers(), &state.config.trusted_proxies, state.config.trusted_proxy_header);
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(512).collect::<String>());
    let context =
        RequestContext { request_id: request_id.clone(), server_request_id, ip, user_agent, credential: None };
    request.extensions_mut().insert(context.clone());

    let method = request.method().clone();
    let path = request.uri().path().to_string();

    // The route template, as the router matched it (the fallback of an unknown path has none).
    let template = request.extensions().get::<MatchedPath>().cloned();
    let span = tracing::info_span!(
        target: SPAN_TARGET,
        "request",
        otel.name = %match &template { Some(t) => format!("{method} {}", t.as_str()), None => method.to_string() },
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        http.route = template.as_ref().map(MatchedPath::as_str),
        http.response.status_code = Empty,
        plystra.request_id = %request_id,
    );
    let span_ids = telemetry::start_server_span(&span, request.headers());

    let mut response = next.run(request).instrument(span.clone()).await;
    // Envelopes built anywhere below (handlers, extractor rejections, the 404/405 fallbacks, the panic handler,
    // the body and time limits) leave their request_id to be written here, where the id is known.
    crate::envelope::stamp(&mut response, &request_id);

    // The AuthZEN API promises the caller's request identifier back unchanged, whatever the string; elsewhere an
    // id this server would not record is replaced by its own (and the body's request_id says which).
    let authzen = crate::api::authzen::is_authzen_path(&path);
    if authzen && response.status() == axum::http::StatusCode::UNAUTHORIZED {
        // The AuthZEN API asks a PDP to name the scheme it expects on a 401.
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    match incoming.filter(|_| authzen) {
        Some(value) => {
            response.headers_mut().insert(header_name.clone(), value);
        }
        None => {
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                response.headers_mut().insert(header_name.clone(), value);
            }
        }
    }
    // As i64: the OpenTelemetry layer exports unsigned numbers as text.
    span.record("http.response.status_code", i64::from(response.status().as_u16()));
    if response.status().is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    if let Some(value) = span_ids.as_ref().and_then(telemetry::SpanIds::header_value) {
        response.headers_mut().insert(telemetry::TRACERESPONSE_HEADER, value);
    }

    let latency = started.elapsed();
    let status = response.status().as_u16();
    let header_str = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let error_code = header_str(ERROR_CODE_HEADER);
    let trace_id = header_str(TRACE_ID_HEADER);
    let audit_log_id = header_str(AUDIT_LOG_ID_HEADER);
    // The body's exact size when known (every envelope is); hyper adds Content-Length only when writing.
    let bytes = response.body().size_hint().exact().unwrap_or(0);
    let route = response.extensions().get::<RouteLabel>().map(|r| r.0).unwrap_or("unmatched");
    state.metrics.record_request(method.as_str(), route, status, latency);

    tracing::info!(
        target: "access",
        request_id = %request_id,
        server_request_id = %context.server_request_id,
        method = %method,
        path = %without_credentials(&path),
        status = status,
        status_code = status,
        latency_ms = latency.as_secs_f64() * 1000.0,
        remote_ip = %context.ip_string().unwrap_or_default(),
        user_agent = %context.user_agent.as_deref().unwrap_or(""),
        bytes = bytes,
        error_code = %error_code,
        trace_id = %trace_id,
        audit_log_id = %audit_log_id,
        otel_trace_id = %span_ids.as_ref().map_or("", |s| s.trace_id.as_str()),
        otel_span_id = %span_ids.as_ref().map_or("", |s| s.span_id.as_str()),
        "request"
    );
    response
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<RequestContext>().cloned().ok_or_else(ApiError::internal)
    }
}

/// The path as the access log writes it: a credential a client put in the URL (an API key, an access or refresh
/// token: `ply_ak_`, `ply_at_`, `ply_rt_` and what follows in token characters) replaced by `[redacted]`, so that
/// a misplaced secret never reaches the log files.
fn without_credentials(path: &str) -> std::borrow::Cow<'_, str> {
    const PREFIXES: [&str; 3] = ["ply_ak_", "ply_at_", "ply_rt_"];
    if !PREFIXES.iter().any(|p| path.contains(p)) {
        return std::borrow::Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some((at, prefix)) = PREFIXES.iter().filter_map(|p| rest.find(p).map(|at| (at, *p))).min() {
        out.push_str(&rest[..at + prefix.len()]);
        rest = &rest[at + prefix.len()..];
        let token =
            rest.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))).unwrap_or(rest.len());
        if token > 0 {
            out.push_str("[redacted]");
        }
        rest = &rest[token..];
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_in_a_path_are_redacted_for_the_log() {
        use super::without_credentials as w;
        let key = format!("ply_ak_0.{}", "ab".repeat(32));
        assert_eq!(
            w(&format!("/api/v1/resource-types/{key}/actions")),
            "/api/v1/resource-types/ply_ak_[redacted]/actions"
        );
        assert_eq!(w(&format!("/x/ply_at_{}", "0".repeat(64))), "/x/ply_at_[redacted]");
        assert_eq!(
            w(&format!("/a/ply_rt_{0}/b/ply_ak_k.{0}", "f".repeat(64))),
            "/a/ply_rt_[redacted]/b/ply_ak_[redacted]"
        );
        assert_eq!(w("/api/v1/users/user_alice"), "/api/v1/users/user_alice");
        assert!(matches!(w("/api/v1/users/user_alice"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(w("/ply_ak_"), "/ply_ak_");
        assert_eq!(w("/ply_ak_%20x"), "/ply_ak_%20x");
    }

    use super::*;

    #[test]
    fn generated_ids_look_like_the_reference() {
        let id = new_request_id();
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("req_"));
        assert!(id[4..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn incoming_ids_are_used_verbatim_when_sane() {
        assert_eq!(accept_incoming_id(&HeaderValue::from_static("abc-123")), Some("abc-123".into()));
        assert_eq!(accept_incoming_id(&HeaderValue::from_static("has space")), None);
        assert_eq!(accept_incoming_id(&HeaderValue::from_str(&"x".repeat(200)).unwrap()), None);
    }
}
