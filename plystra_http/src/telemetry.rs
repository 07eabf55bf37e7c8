//! Logging and tracing.
//!
//! Logging: JSON lines for machines (default) or readable text for people (LOG_FORMAT=text), at LOG_LEVEL.
//!
//! Tracing (off unless an OTLP endpoint is configured, see [`crate::config::OtelConfig`]): OpenTelemetry spans
//! exported over OTLP/HTTP with protobuf. Each server owns its tracer: its requests run under a `tracing`
//! dispatcher holding the OpenTelemetry layer (and the log layer, when the process logs), so two servers in one
//! process (the tests start many) never export each other's spans, and a server without tracing pays nothing.
//! The spans this crate exports use the target [`SPAN_TARGET`]: the log layer's filter never matches it, so the
//! log lines keep the shape they have always had whatever tracing adds.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_http::{Bytes, HeaderExtractor, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::resource::{Resource, TelemetryResourceDetector};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider};
use tracing::{Dispatch, Level};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{Config, LogFormat, OtelConfig, OtelSampler};

/// The `tracing` target of every span meant for OpenTelemetry (the request, the decision, the database call).
/// Not under `plystra_http`, so LOG_LEVEL's filter (`plystra_http=<level>`) never turns them into log context.
pub const SPAN_TARGET: &str = "plystra::otel";

/// The response header naming the request's span (W3C Trace Context's `traceresponse`: the `traceparent`
/// format, for the server's side of the call), sent only while traces are exported.
pub const TRACERESPONSE_HEADER: &str = "traceresponse";

/// The log settings `init` installed, so that each server's tracing dispatcher logs the same way.
static LOGGING: OnceLock<(LogFormat, String)> = OnceLock::new();

fn log_layer<S>(format: LogFormat, level: &str) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    // Libraries below us (hyper, tokio-postgres) stay at warn unless LOG_LEVEL asks for more detail.
    let filter = EnvFilter::new(format!("warn,plystra_http={level},access={level},tower_http=warn"));
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stdout).with_target(false);
    match format {
        LogFormat::Json => {
            layer.json().flatten_event(true).with_current_span(true).with_span_list(false).with_filter(filter).boxed()
        }
        // Colours only on a terminal: escape codes in a log file help nobody.
        LogFormat::Text => layer.with_ansi(std::io::stdout().is_terminal()).with_filter(filter).boxed(),
    }
}

/// Installs the process's logging (the server binary calls it once, before serving).
pub fn init(config: &Config) {
    let _ = LOGGING.set((config.log_format, config.log_level.clone()));
    let _ = tracing_subscriber::registry().with(log_layer(config.log_format, &config.log_level)).try_init();
}

/// A server's trace export: the tracer provider (its batch processor and OTLP exporter) and the dispatcher its
/// requests run under.
pub struct Tracing {
    provider: SdkTracerProvider,
    dispatch: Dispatch,
}

impl Tracing {
    /// Builds the export pipeline. Must run inside the tokio runtime that serves: the exporter's HTTP requests
    /// are spawned on it.
    pub fn start(otel: &OtelConfig) -> Result<Tracing, String> {
        let client = ExportClient::new(otel.timeout)?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(otel.traces_endpoint.clone())
            .with_timeout(otel.timeout)
            .with_headers(otel.headers.iter().cloned().collect())
            .build()
            .map_err(|e| format!("OpenTelemetry exporter: {e}"))?;
        let batches = BatchConfigBuilder::default().with_scheduled_delay(otel.batch_delay).build();
        let resource = Resource::builder_empty()
            .with_detector(Box::new(TelemetryResourceDetector))
            .with_service_name(otel.service_name.clone())
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .with_attributes(otel.resource_attributes.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BatchSpanProcessor::builder(exporter).with_batch_config(batches).build())
            .with_sampler(sampler(otel.sampler))
            .with_resource(resource)
            .build();
        let tracer = provider.tracer_with_scope(
            InstrumentationScope::builder("plystra_http").with_version(env!("CARGO_PKG_VERSION")).build(),
        );
        let otel_layer = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_target(false)
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                if meta.is_span() {
                    meta.target() == SPAN_TARGET
                } else {
                    // Warnings and errors logged while a request is handled become events on its span.
                    *meta.level() <= Level::WARN && meta.target().starts_with("plystra_http")
                }
            }));
        let logs = LOGGING.get().map(|(format, level)| log_layer(*format, level));
        let dispatch = Dispatch::new(tracing_subscriber::registry().with(logs).with(otel_layer));
        Ok(Tracing { provider, dispatch })
    }

    pub fn dispatch(&self) -> &Dispatch {
        &self.dispatch
    }

    /// Exports what is still buffered and stops the exporter (graceful shutdown). The SDK's shutdown blocks
    /// until the last batch is sent, and that send runs on this runtime, so it waits on a blocking thread.
    pub async fn shutdown(self) {
        let provider = self.provider;
        match tokio::task::spawn_blocking(move || provider.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "exporting the last spans at shutdown failed"),
            Err(e) => tracing::warn!(error = %e, "exporting the last spans at shutdown failed"),
        }
    }
}

fn sampler(s: OtelSampler) -> Sampler {
    match s {
        OtelSampler::AlwaysOn => Sampler::AlwaysOn,
        OtelSampler::AlwaysOff => Sampler::AlwaysOff,
        OtelSampler::TraceIdRatio(r) => Sampler::TraceIdRatioBased(r),
        OtelSampler::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        OtelSampler::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        OtelSampler::ParentBasedTraceIdRatio(r) => Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r))),
    }
}

/// The exporter's HTTP client: hyper (already the server's HTTP engine) on the server's tokio runtime. The SDK
/// exports from its own thread, which has no runtime, so each request is spawned on the runtime captured when
/// the server started and awaited from there.
#[derive(Debug)]
struct ExportClient {
    runtime: tokio::runtime::Handle,
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<Bytes>,
    >,
    timeout: Duration,
}

/// A collector's answer is a small protobuf message; anything larger is not one.
const MAX_EXPORT_RESPONSE_BYTES: usize = 64 * 1024;

impl ExportClient {
    fn new(timeout: Duration) -> Result<Self, String> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "OpenTelemetry export needs the server's tokio runtime".to_string())?;
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build_http();
        Ok(ExportClient { runtime, client, timeout })
    }
}

#[async_trait::async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        use http_body_util::BodyExt;
        let client = self.client.clone();
        let timeout = self.timeout;
        let (parts, body) = request.into_parts();
        let request = Request::from_parts(parts, http_body_util::Full::new(body));
        let send = async move {
            let response = client.request(request).await?;
            let (parts, body) = response.into_parts();
            let body = http_body_util::Limited::new(body, MAX_EXPORT_RESPONSE_BYTES).collect().await?.to_bytes();
            Ok::<_, HttpError>(Response::from_parts(parts, body))
        };
        let task = self.runtime.spawn(async move {
            tokio::time::timeout(timeout, send).await.map_err(|_| HttpError::from("OTLP export timed out"))?
        });
        task.await?
    }
}

/// The OpenTelemetry ids of a request's span, once it is started.
#[derive(Debug, Clone)]
pub struct SpanIds {
    pub trace_id: String,
    pub span_id: String,
    sampled: bool,
}

impl SpanIds {
    /// `00-<trace id>-<span id>-<flags>`, the `traceparent` format.
    pub fn header_value(&self) -> Option<HeaderValue> {
        let flags = if self.sampled { "01" } else { "00" };
        HeaderValue::from_str(&format!("00-{}-{}-{flags}", self.trace_id, self.span_id)).ok()
    }
}

/// Starts the server span of a request: its parent is the caller's W3C `traceparent` (and `tracestate`) when
/// it sent a well-formed one; a malformed or missing one starts a new trace (it is the caller's header, never
/// a reason to refuse the request). `None` when the span is not exported (tracing off).
pub fn start_server_span(span: &tracing::Span, headers: &HeaderMap) -> Option<SpanIds> {
    if span.is_disabled() {
        return None;
    }
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let _ = span.set_parent(parent);
    let context = span.context();
    let otel_span = context.span();
    let span_context = otel_span.span_context();
    span_context.is_valid().then(|| SpanIds {
        trace_id: span_context.trace_id().to_string(),
        span_id: span_context.span_id().to_string(),
        sampled: span_context.is_sampled(),
    })
}

/// A query's name for its span: the statement's verb and the `plystra.` object it reads or writes (the table
/// after FROM, INTO or UPDATE, else the first one named, such as a function), e.g.
/// `SELECT plystra.decide_with_credential` or `SELECT plystra.users`; never its parameters, which may hold
/// credentials.
pub fn statement_summary(sql: &str) -> String {
    let text = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let upper = text.to_ascii_uppercase();
    let verb = upper.split(' ').next().unwrap_or("");
    let object_at = ["FROM PLYSTRA.", "INTO PLYSTRA.", "UPDATE PLYSTRA."]
        .iter()
        .filter_map(|k| upper.find(k).map(|i| i + k.len() - "PLYSTRA.".len()))
        .min()
        .or_else(|| upper.find("PLYSTRA."));
    let object = object_at.map(|at| {
        let rest = &text[at..];
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')).unwrap_or(rest.len());
        rest[..end].trim_end_matches('.')
    });
    match object {
        Some(object) => format!("{verb} {object}"),
        None => verb.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_named_by_verb_and_object() {
        assert_eq!(
            statement_summary("SELECT plystra.decide_with_credential($1, $2, $3, $4, $5)"),
            "SELECT plystra.decide_with_credential"
        );
        assert_eq!(statement_summary("  insert INTO plystra.users (id) VALUES ($1)"), "INSERT plystra.users");
        assert_eq!(statement_summary("SELECT 1"), "SELECT");
        assert_eq!(
            statement_summary("SELECT t.id, plystra.mask(t.email)\n  FROM plystra.users t WHERE t.id = $1"),
            "SELECT plystra.users"
        );
        assert_eq!(statement_summary("update plystra.api_keys SET last_used_at = now()"), "UPDATE plystra.api_keys");
    }

    #[test]
    fn the_response_header_uses_the_traceparent_format() {
        let ids = SpanIds {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: "00f067aa0ba902b7".into(),
            sampled: true,
        };
        assert_eq!(ids.header_value().unwrap(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    }
}
