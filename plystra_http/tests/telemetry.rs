//! OpenTelemetry: a collector stand-in on 127.0.0.1 receives what the real server exports over OTLP/HTTP
//! (protobuf, decoded with the OTLP's own message types), and the spans are checked: the caller's W3C
//! `traceparent` is the request span's parent, the decision span carries the decision's ids, the database call
//! is its child, nothing of a request's parameters or credential is exported, a malformed `traceparent` starts
//! a new trace instead of failing the request, a server without an endpoint exports nothing, and shutdown
//! exports what is still buffered.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{json, Value};

/// One span as received, with its resource's attributes.
#[derive(Clone, Debug)]
struct Received {
    resource: Vec<KeyValue>,
    span: Span,
}

impl Received {
    fn trace_id(&self) -> String {
        hex::encode(&self.span.trace_id)
    }
    fn span_id(&self) -> String {
        hex::encode(&self.span.span_id)
    }
    fn parent_id(&self) -> String {
        hex::encode(&self.span.parent_span_id)
    }
    fn attr(&self, key: &str) -> Option<AnyValue> {
        attribute(&self.span.attributes, key)
    }
    fn text(&self, key: &str) -> Option<String> {
        match self.attr(key) {
            Some(AnyValue::StringValue(s)) => Some(s),
            _ => None,
        }
    }
    fn int(&self, key: &str) -> Option<i64> {
        match self.attr(key) {
            Some(AnyValue::IntValue(n)) => Some(n),
            _ => None,
        }
    }
    fn strings(&self, key: &str) -> Option<Vec<String>> {
        match self.attr(key) {
            Some(AnyValue::ArrayValue(a)) => Some(
                a.values
                    .into_iter()
                    .map(|v| match v.value {
                        Some(AnyValue::StringValue(s)) => s,
                        other => panic!("{key}: not a string array ({other:?})"),
                    })
                    .collect(),
            ),
            _ => None,
        }
    }
}

fn attribute(attributes: &[KeyValue], key: &str) -> Option<AnyValue> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()).and_then(|v| v.value)
}

/// The collector stand-in: accepts `POST /v1/traces` in OTLP/HTTP protobuf and keeps every span.
struct Collector {
    endpoint: String,
    spans: Arc<Mutex<Vec<Received>>>,
}

async fn receive(
    State(spans): State<Arc<Mutex<Vec<Received>>>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    if headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) != Some("application/x-protobuf") {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Vec::new()).into_response();
    }
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, Vec::new()).into_response();
    };
    let mut kept = spans.lock().unwrap();
    for resource_spans in request.resource_spans {
        let resource = resource_spans.resource.map(|r| r.attributes).unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                kept.push(Received { resource: resource.clone(), span });
            }
        }
    }
    ([(header::CONTENT_TYPE, "application/x-protobuf")], ExportTraceServiceResponse::default().encode_to_vec())
        .into_response()
}

async fn start_collector() -> Collector {
    let spans = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new().route("/v1/traces", axum::routing::post(receive)).with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Collector { endpoint, spans }
}

impl Collector {
    fn of_trace(&self, trace_id: &str) -> Vec<Received> {
        self.spans.lock().unwrap().iter().filter(|r| r.trace_id() == trace_id).cloned().collect()
    }

    /// The spans of a trace once `done` holds for them (polled; the exporter batches every 50 ms in these
    /// tests), or a failure after 10 s naming what arrived.
    async fn wait_for(&self, trace_id: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let spans = self.of_trace(trace_id);
            if done(&spans) {
                return spans;
            }
            let got: Vec<_> = spans.iter().map(|r| (r.span.name.clone(), r.span_id(), r.parent_id())).collect();
            assert!(
                Instant::now() < deadline,
                "trace {trace_id}: spans did not arrive; got (name, id, parent) {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A fresh W3C `traceparent` (sampled) and its trace and span ids.
fn traceparent() -> (String, String, String) {
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let span_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
    (format!("00-{trace_id}-{span_id}-01"), trace_id, span_id)
}

fn traced_server(collector: &Collector, extra: &[(&str, &str)]) -> TestServer {
    let mut vars =
        vec![("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint.as_str()), ("OTEL_BSP_SCHEDULE_DELAY", "50")];
    vars.extend_from_slice(extra);
    start_server(&vars)
}

fn check_body(resource: &str) -> Value {
    json!({
        "actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer",
                  "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
        "resource_type": "invoice", "resource_id": resource, "action": "approve"
    })
}

fn named<'a>(spans: &'a [Received], name: &str) -> Option<&'a Received> {
    spans.iter().find(|r| r.span.name == name)
}

#[tokio::test]
async fn a_decision_is_traced_under_the_callers_traceparent_with_its_ids_and_its_database_call() {
    let collector = start_collector().await;
    let server = traced_server(&collector, &[("OTEL_SERVICE_NAME", "plystra-under-test")]);
    let (parent, trace_id, parent_span_id) = traceparent();
    let a = send_to(
        &server,
        "POST",
        "/api/v1/authz/check",
        Some(check_body("invoice_002")),
        &[("traceparent", &parent), ("tracestate", "vendor=opaque")],
    )
    .await;
    let data = a.expect_ok(200).clone();
    assert_eq!(data["decision"], "deny");
    let decision_trace_id = data["trace_id"].as_str().unwrap().to_string();
    let audit_log_id = data["audit_log_id"].as_str().expect("audited (AUDIT_WRITE_MODE=always)").to_string();

    // The answer names the request's span in the caller's trace.
    let traceresponse = a.header("traceresponse").expect("traceresponse header");
    let parts: Vec<&str> = traceresponse.split('-').collect();
    assert_eq!((parts[0], parts[1], parts[3]), ("00", trace_id.as_str(), "01"), "{traceresponse}");

    let spans = collector
        .wait_for(&trace_id, |s| ["POST /api/v1/authz/check", "authz.check"].iter().all(|n| named(s, n).is_some()))
        .await;
    let request = named(&spans, "POST /api/v1/authz/check").unwrap();
    assert_eq!(request.parent_id(), parent_span_id, "the request span's parent is the caller's span");
    assert_eq!(request.span_id(), parts[2], "traceresponse names the request span");
    assert_eq!(request.span.kind, SpanKind::Server as i32);
    assert_eq!(request.span.trace_state, "vendor=opaque", "tracestate is carried");
    assert_eq!(request.text("http.request.method").as_deref(), Some("POST"));
    assert_eq!(request.text("http.route").as_deref(), Some("/api/v1/authz/check"));
    assert_eq!(request.int("http.response.status_code"), Some(200));
    assert_eq!(request.text("plystra.request_id"), a.header("x-request-id"));
    assert_eq!(
        attribute(&request.resource, "service.name"),
        Some(AnyValue::StringValue("plystra-under-test".into())),
        "OTEL_SERVICE_NAME names the service"
    );

    let decision = named(&spans, "authz.check").unwrap();
    assert_eq!(decision.parent_id(), request.span_id(), "the decision is a child of the request");
    assert_eq!(decision.text("plystra.trace_id"), Some(decision_trace_id));
    assert_eq!(decision.text("plystra.audit_log_id"), Some(audit_log_id));
    assert_eq!(decision.text("plystra.decision").as_deref(), Some("deny"));
    assert_eq!(decision.text("plystra.deny_code").as_deref(), Some("SCOPE_OUT_OF_BOUNDS"));

    let statement = spans
        .iter()
        .find(|r| r.parent_id() == decision.span_id() && r.span.name == "SELECT plystra.decide_with_credential")
        .unwrap_or_else(|| panic!("no database span under the decision: {spans:#?}"));
    assert_eq!(statement.span.kind, SpanKind::Client as i32);
    assert_eq!(statement.text("db.system").as_deref(), Some("postgresql"));
    assert_eq!(statement.text("db.system.name").as_deref(), Some("postgresql"));
    assert_eq!(statement.text("db.query.summary").as_deref(), Some("SELECT plystra.decide_with_credential"));
    assert_eq!(statement.text("db.operation.name").as_deref(), Some("SELECT"));

    // The credential, the request document and the resource id never reach the collector.
    let exported = format!("{spans:?}");
    for secret in [admin_key().as_str(), "invoice_002", "member_finance_reviewer"] {
        assert!(!exported.contains(secret), "{secret:?} was exported: {exported}");
    }
}

#[tokio::test]
async fn a_batch_span_lists_every_decisions_ids_and_other_routes_trace_their_statements() {
    let collector = start_collector().await;
    let server = traced_server(&collector, &[]);
    let (parent, trace_id, _) = traceparent();
    let body = json!({
        "actor": check_body("x")["actor"],
        "items": [
            {"resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"},
            {"resource_type": "invoice", "resource_id": "invoice_002", "action": "approve"}
        ]
    });
    let a = send_to(&server, "POST", "/api/v1/authz/check-batch", Some(body), &[("traceparent", &parent)]).await;
    let results = a.expect_ok(200)["results"].as_array().unwrap().clone();
    let spans = collector.wait_for(&trace_id, |s| named(s, "authz.check_batch").is_some()).await;
    let batch = named(&spans, "authz.check_batch").unwrap();
    let ids = |field: &str| results.iter().map(|r| r[field].as_str().unwrap_or("").to_string()).collect::<Vec<_>>();
    assert_eq!(batch.strings("plystra.trace_ids"), Some(ids("trace_id")));
    assert_eq!(batch.strings("plystra.audit_log_ids"), Some(ids("audit_log_id")));
    assert_eq!(batch.int("plystra.batch.size"), Some(2));
    assert_eq!(batch.int("plystra.batch.denied"), Some(1));
    assert!(spans.iter().any(|r| r.parent_id() == batch.span_id() && r.text("db.system").is_some()), "{spans:#?}");

    // A management read: its statement is a child of its request span, which is named by the route template, not
    // the path with the id.
    let (parent, trace_id, _) = traceparent();
    send_to(&server, "GET", "/api/v1/users/user_alice", None, &[("traceparent", &parent)]).await.expect_ok(200);
    let spans = collector.wait_for(&trace_id, |s| named(s, "GET /api/v1/users/{id}").is_some()).await;
    let request = named(&spans, "GET /api/v1/users/{id}").unwrap();
    assert_eq!(request.text("http.route").as_deref(), Some("/api/v1/users/{id}"));
    assert!(!format!("{spans:?}").contains("user_alice"), "the id in the path is not exported");
    let read =
        named(&spans, "SELECT plystra.users").unwrap_or_else(|| panic!("no span for the row's read: {spans:#?}"));
    assert_eq!(read.text("db.system.name").as_deref(), Some("postgresql"));
    assert_eq!(read.parent_id(), request.span_id());
}

#[tokio::test]
async fn a_malformed_traceparent_is_ignored_and_starts_a_new_trace() {
    let collector = start_collector().await;
    let server = traced_server(&collector, &[]);
    let (_, valid_trace, valid_span) = traceparent();
    for bad in [
        "garbage".to_string(),
        format!("00-{}-{valid_span}-01", "0".repeat(32)),
        format!("00-{}-{valid_span}-01", valid_trace.to_uppercase()),
        format!("00-{valid_trace}-{valid_span}"),
        format!("ff-{valid_trace}-{valid_span}-01"),
    ] {
        let a =
            send_to(&server, "POST", "/api/v1/authz/check", Some(check_body("invoice_001")), &[("traceparent", &bad)])
                .await;
        assert_eq!(a.expect_ok(200)["decision"], "allow", "{bad}");
        let traceresponse = a.header("traceresponse").unwrap_or_else(|| panic!("{bad}: no traceresponse"));
        let new_trace = traceresponse.split('-').nth(1).unwrap().to_string();
        assert_ne!(new_trace, valid_trace, "{bad}");
        assert_ne!(new_trace, "0".repeat(32), "{bad}");
        let spans = collector.wait_for(&new_trace, |s| named(s, "POST /api/v1/authz/check").is_some()).await;
        assert!(
            named(&spans, "POST /api/v1/authz/check").unwrap().span.parent_span_id.is_empty(),
            "{bad}: a root span"
        );
    }
}

#[tokio::test]
async fn without_an_endpoint_or_when_disabled_nothing_is_exported_and_nothing_changes() {
    let collector = start_collector().await;
    // Not configured (the OTEL_* settings that only tune an exporter change nothing), and configured but disabled.
    let plain = start_server(&[("OTEL_BSP_SCHEDULE_DELAY", "50"), ("OTEL_SERVICE_NAME", "quiet")]);
    let disabled = traced_server(&collector, &[("OTEL_SDK_DISABLED", "true")]);
    let none = traced_server(&collector, &[("OTEL_TRACES_EXPORTER", "none")]);
    let mut quiet_traces = Vec::new();
    for server in [&plain, &disabled, &none] {
        let (parent, trace_id, _) = traceparent();
        let a = send_to(
            server,
            "POST",
            "/api/v1/authz/check",
            Some(check_body("invoice_001")),
            &[("traceparent", &parent)],
        )
        .await;
        assert_eq!(a.expect_ok(200)["decision"], "allow");
        assert_eq!(a.header("traceresponse"), None, "no span, no traceresponse");
        quiet_traces.push(trace_id);
    }
    // A traced server in the same process, asked afterwards: once its spans have arrived, the quiet servers'
    // would have too (each server exports only its own requests).
    let traced = traced_server(&collector, &[]);
    let (parent, trace_id, _) = traceparent();
    send_to(&traced, "GET", "/api/v1/health", None, &[("traceparent", &parent)]).await.expect_ok(200);
    collector.wait_for(&trace_id, |s| named(s, "GET /api/v1/health").is_some()).await;
    for quiet in &quiet_traces {
        assert!(collector.of_trace(quiet).is_empty(), "trace {quiet} was exported");
    }
}

/// The server as `main` runs it, started and stopped in this test: spans still buffered (a batch delay of ten
/// minutes) are exported by the graceful shutdown, before `stop` returns.
#[tokio::test]
async fn shutdown_exports_the_spans_still_buffered() {
    let collector = start_collector().await;
    let vars: std::collections::HashMap<String, String> = [
        ("SERVER_HOST", "127.0.0.1"),
        ("SERVER_PORT", "0"),
        ("DATABASE_URL", db().url.as_str()),
        ("PLYSTRA_SESSION_SECRET", TEST_SESSION_SECRET),
        ("PLYSTRA_API_KEY_SECRET", TEST_API_KEY_SECRET),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &format!("{}/v1/traces", collector.endpoint)),
        ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = plystra_http::config::Config::from_vars(&vars).unwrap();
    let server = plystra_http::app::start(config).await.unwrap();
    let (parent, trace_id, _) = traceparent();
    let a = http()
        .get(format!("http://{}/api/v1/health", server.local_addr))
        .header("traceparent", &parent)
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(collector.of_trace(&trace_id).is_empty(), "exported before the batch delay");
    server.stop().await.unwrap();
    let spans = collector.of_trace(&trace_id);
    assert!(named(&spans, "GET /api/v1/health").is_some(), "not flushed at shutdown: {spans:#?}");
}

/// The binary as an operator runs it (JSON logs on stdout, tracing on): the access-log line names the request's
/// span (`otel_trace_id`, `otel_span_id`), and SIGTERM exports the spans still buffered before the process exits.
/// Multi-threaded: the collector answers while this test blocks on the child's output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_logs_the_span_ids_and_exports_its_spans_when_stopped() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let collector = start_collector().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_plystra_http"))
        .env_clear()
        .env("DATABASE_URL", &db().url)
        .env("SERVER_HOST", "127.0.0.1")
        .env("SERVER_PORT", "0")
        .env("PLYSTRA_SESSION_SECRET", TEST_SESSION_SECRET)
        .env("PLYSTRA_API_KEY_SECRET", TEST_API_KEY_SECRET)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint)
        .env("OTEL_BSP_SCHEDULE_DELAY", "600000")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server binary starts");
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let wait_for = |what: &str, pred: &dyn Fn(&Value) -> bool| -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) {
                let log: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("not a JSON line: {line}"));
                if pred(&log) {
                    return log;
                }
            }
        }
        panic!("no log line {what} within 20s");
    };
    let started = wait_for("announcing the address", &|l| l["message"] == "plystra_http listening");
    let addr = started["address"].as_str().unwrap().to_string();

    let (parent, trace_id, _) = traceparent();
    let rid = unique("req_otel");
    let a = http()
        .post(format!("http://{addr}/api/v1/authz/check"))
        .header("X-Request-ID", &rid)
        .header("X-Plystra-API-Key", admin_key())
        .header("traceparent", &parent)
        .json(&check_body("invoice_001"))
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 200);
    let span_id = a.headers()["traceresponse"].to_str().unwrap().split('-').nth(2).unwrap().to_string();
    let access = wait_for("for the request", &|l| l["request_id"] == rid.as_str());
    assert_eq!(access["otel_trace_id"], trace_id.as_str(), "{access}");
    assert_eq!(access["otel_span_id"], span_id.as_str(), "{access}");
    assert!(collector.of_trace(&trace_id).is_empty(), "exported before the batch delay or the shutdown");

    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let spans = collector.of_trace(&trace_id);
    for name in ["POST /api/v1/authz/check", "authz.check", "SELECT plystra.decide_with_credential"] {
        assert!(named(&spans, name).is_some(), "{name} not exported at shutdown: {spans:#?}");
    }
}
