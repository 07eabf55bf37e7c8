//! Assembles the service: state, router (from the route table), middleware stack, and the server loop with
//! graceful shutdown.

use std::any::Any;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderName, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use deadpool_postgres::Pool;
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::catch_panic::{CatchPanicLayer, ResponseForPanic};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::map_request_body::MapRequestBodyLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};

use crate::config::{Config, CorsOrigins};
use crate::db::{self, AuditModeStatus};
use crate::error::{code, ApiError, RETRY_AFTER_SECONDS};
use crate::extract::BODY_LIMIT_BYTES;
use crate::metrics::Metrics;
use crate::openapi::{self, ApiDoc};
use crate::protection;
use crate::request_context::{self, RequestContext, RouteLabel};
use crate::routes;
use crate::telemetry::Tracing;

/// The server's shared state, handed to every middleware and handler. One `Arc` around all of it: axum clones
/// the state for each extractor of each request, and a clone of a struct of many `Arc`s was as many atomic
/// increments (and decrements on drop) on cache lines every worker thread shares.
#[derive(Clone)]
pub struct AppState(Arc<AppStateParts>);

impl AppState {
    /// The state of serving lane `lane`: the same server, with that lane's share of the pool.
    pub fn lane(&self, lane: usize) -> AppState {
        let mut parts = (*self.0).clone();
        parts.pool = self.pools[lane % self.pools.len()].clone();
        parts.pipe = self.pipes[lane % self.pipes.len()].clone();
        AppState(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateParts;

    fn deref(&self) -> &AppStateParts {
        &self.0
    }
}

#[derive(Clone)]
pub struct AppStateParts {
    pub config: Arc<Config>,
    /// The primary's pool of the serving lane this state belongs to (see `lanes`).
    pub pool: Pool,
    /// Every lane's pool, `pool` among them: a lane whose own connections are all busy borrows from another's.
    pub pools: Arc<[Pool]>,
    /// The decision pipeline of the serving lane this state belongs to (see `pipeline`), and every lane's.
    pub pipe: Arc<crate::pipeline::Pipe>,
    pub pipes: Arc<[Arc<crate::pipeline::Pipe>]>,
    pub metrics: Arc<Metrics>,
    pub openapi_json: Arc<String>,
    /// When this server last recorded each API key's use (`protection::LastUse`).
    pub api_key_last_use: Arc<protection::LastUse>,
    /// Password hashing slots (PLYSTRA_AUTH_LOGIN_CONCURRENCY).
    pub login_permits: Arc<tokio::sync::Semaphore>,
    /// Requests of many decisions (a batch or AuthZEN evaluations of more than one item) in progress: at most
    /// half of DATABASE_MAX_OPEN_CONNS (at least one), so that they never hold every pooled connection
    /// (`db::bulk_permit`).
    pub bulk_permits: Arc<tokio::sync::Semaphore>,
    /// What this process knows of each client address's logins (`auth::LoginAddresses`).
    pub login_addresses: Arc<std::sync::Mutex<crate::api::auth::LoginAddresses>>,
    /// Request bodies being read (HTTP_BODY_BUFFER_BYTES, HTTP_BODY_BUFFER_BYTES_PER_CLIENT), all lanes together.
    pub body_budget: Arc<crate::body_budget::BodyBudget>,
    /// When this server last pruned expired `login_failures` rows.
    pub login_pruned_at: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    /// The read replicas (PLYSTRA_REPLICA_URLS; none by default) and their measured freshness.
    pub replicas: Arc<crate::replicas::Replicas>,
}

/// The router and the OpenAPI document, both from the route table. Each route gets the protection seam and a
/// label with its path template (for metrics).
pub fn api() -> (Router<AppState>, OpenApiDoc) {
    let mut router = OpenApiRouter::with_openapi(ApiDoc::openapi());
    for mut def in routes::table() {
        openapi::annotate_access(&mut def);
        openapi::document_errors(&mut def);
        openapi::document_consistency(&mut def);
        let access = def.access;
        let load = def.load;
        // Route templates live as long as the process; leaking the few dozen strings once per server is the
        // simplest way to label metrics without allocating per request.
        let label: &'static str =
            def.route.1.paths.keys().next().map(|p| &*Box::leak(p.clone().into_boxed_str())).unwrap_or("");
        let route = def.route.map(move |method_router| {
            method_router
                .route_layer(middleware::from_fn(move |request: Request, next: Next| async move {
                    let mut response = protection::guard(access, request, next).await;
                    response.extensions_mut().insert(RouteLabel(label));
                    response
                }))
                // Outside the seam: the database that answers is chosen before the credential is checked on it.
                .route_layer(middleware::from_fn(move |request: Request, next: Next| {
                    crate::replicas::route(load, request, next)
                }))
        });
        router = router.routes(route);
    }
    let (router, mut doc) = router.split_for_parts();
    openapi::state_decision_rules(&mut doc);
    (router, doc)
}

pub fn openapi_document() -> OpenApiDoc {
    api().1
}

/// Unknown paths answer 404 in the envelope; the Data Console (a later feature) answers FEATURE_DISABLED.
async fn fallback(State(state): State<AppState>, uri: Uri) -> ApiError {
    let path = uri.path();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let data_console = path == "/api/v1/data"
        || path.starts_with("/api/v1/data/")
        || (segments.len() >= 4 && segments[..3] == ["api", "v1", "spaces"] && segments.get(4) == Some(&"data"));
    if data_console {
        if !state.config.data_console_enabled {
            return ApiError::feature_disabled("data_console");
        }
        return ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            code::NOT_IMPLEMENTED,
            "The Data Console is not available in this server.",
        );
    }
    ApiError::route_not_found()
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// A request that runs longer than HTTP_WRITE_TIMEOUT is answered 503 instead of holding a connection forever.
async fn deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(state.config.http_write_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code::REQUEST_TIMEOUT, "Request handling took too long.")
                .into_response()
        }
    }
}

/// Reads the whole request body before anything else runs: a body announced over the limit is refused at once
/// (413), one that grows over it while arriving too, and one that has not arrived within HTTP_BODY_TIMEOUT is
/// answered 408 and the connection closed. Nothing behind this (authentication, the protection seam, the
/// handler) waits for the client's bytes, so no pooled database connection is held while a client trickles a
/// body (security review F5). Bodies are at most 1 MiB, and every handler reads its body in full anyway.
/// How much of a body announced over the limit is read (and discarded) before the 413.
const DRAIN_LIMIT_BYTES: usize = 4 * BODY_LIMIT_BYTES;
/// How long the server reads (and discards) a body announced over the limit before answering 413.
const DRAIN_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

async fn read_body_first(State(state): State<AppState>, request: Request, next: Next) -> Response {
    use http_body_util::{BodyExt, LengthLimitError, Limited};
    let (parts, body) = request.into_parts();
    let announced = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let too_large = || {
        let mut r = crate::extract::payload_too_large().into_response();
        r.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        r
    };
    if announced.is_some_and(|n| n > BODY_LIMIT_BYTES as u64) {
        // Read and discard what the client is already sending (at most DRAIN_LIMIT_BYTES, for at most
        // DRAIN_WAIT, nothing kept) so that a client sending at full speed reads the 413 instead of a connection
        // reset by unread data; a client that sends slowly or not at all gets it after DRAIN_WAIT. No database
        // work has started.
        let drain = async {
            let mut body = body;
            let mut seen = 0usize;
            while let Some(Ok(frame)) = body.frame().await {
                seen += frame.data_ref().map_or(0, |d| d.len());
                if seen > DRAIN_LIMIT_BYTES {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_WAIT.min(state.config.http_body_timeout), drain).await;
        return too_large();
    }
    // Held while the body is read and handled: what the server buffers of bodies stays within
    // HTTP_BODY_BUFFER_BYTES, and one client's within its share, whoever sends them (no credential is known before
    // the body is read: `body_budget`). A body announced as empty, or none, costs nothing; one of unknown length
    // is counted at the limit.
    // Without Content-Length an HTTP/1.1 request has a body only when chunked; an HTTP/2 one, unless its headers
    // ended the stream.
    let unannounced_body = parts.headers.contains_key(header::TRANSFER_ENCODING)
        || (parts.version >= axum::http::Version::HTTP_2 && !axum::body::HttpBody::is_end_stream(&body));
    let cost_kib = match announced {
        Some(n) => n.div_ceil(1024) as u32,
        None if unannounced_body => BODY_LIMIT_BYTES.div_ceil(1024) as u32,
        None => 0,
    };
    let _buffered = if cost_kib == 0 {
        None
    } else {
        let client = parts.extensions.get::<crate::request_context::RequestContext>().and_then(|c| c.ip);
        match state.body_budget.take(client, cost_kib) {
            Ok(permit) => Some(permit),
            Err(refusal) => {
                crate::metrics::body_refused();
                let (message, reason) = match refusal {
                    crate::body_budget::Refusal::AllClients => (
                        "The server is reading as many request bodies as it holds at once (HTTP_BODY_BUFFER_BYTES); \
                         retry shortly.",
                        "bodies_busy",
                    ),
                    crate::body_budget::Refusal::ThisClient => (
                        "The server is reading as many request bodies from this client as one client may have read \
                         at once (HTTP_BODY_BUFFER_BYTES_PER_CLIENT); retry shortly.",
                        "client_bodies_busy",
                    ),
                };
                let mut r = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code::SERVER_BUSY, message)
                    .with_details(serde_json::json!({ "reason": reason }))
                    .into_response();
                r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static(RETRY_AFTER_SECONDS));
                r.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
                return r;
            }
        }
    };
    let read = tokio::time::timeout(state.config.http_body_timeout, Limited::new(body, BODY_LIMIT_BYTES).collect());
    match read.await {
        Ok(Ok(collected)) => next.run(Request::from_parts(parts, Body::from(collected.to_bytes()))).await,
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => too_large(),
        Ok(Err(_)) => {
            ApiError::new(StatusCode::BAD_REQUEST, code::VALIDATION_FAILED, "Request body could not be read.")
                .into_response()
        }
        Err(_) => {
            let mut r = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                code::REQUEST_TIMEOUT,
                "The request body did not arrive in time (HTTP_BODY_TIMEOUT).",
            )
            .into_response();
            r.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
            r
        }
    }
}

/// The reference answers OPTIONS with 204 (CORS preflights included).
async fn options_no_content(request: Request, next: Next) -> Response {
    let is_options = request.method() == Method::OPTIONS;
    let mut response = next.run(request).await;
    if is_options && (response.status() == StatusCode::OK || response.status() == StatusCode::METHOD_NOT_ALLOWED) {
        *response.status_mut() = StatusCode::NO_CONTENT;
        response.headers_mut().remove(crate::error::ERROR_CODE_HEADER);
        // No envelope either (the request-id middleware would write it in).
        response.extensions_mut().remove::<crate::envelope::Unstamped>();
        *response.body_mut() = Body::empty();
        response.headers_mut().remove(header::CONTENT_LENGTH);
    }
    response
}

#[derive(Clone)]
struct PanicResponder {
    production: bool,
}

impl ResponseForPanic for PanicResponder {
    type ResponseBody = Body;

    fn response_for_panic(&mut self, err: Box<dyn Any + Send + 'static>) -> Response<Body> {
        let detail = err
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into());
        tracing::error!(panic = %detail, "request handler panicked");
        let mut error = ApiError::internal();
        if !self.production {
            error = error.with_details(json!({ "panic": detail }));
        }
        error.into_response()
    }
}

fn cors_layer(config: &Config) -> CorsLayer {
    let origins = match &config.cors_allowed_origins {
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) => AllowOrigin::list(list.iter().filter_map(|o| o.parse().ok())),
    };
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::PUT, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            config.request_id_header.clone(),
            HeaderName::from_static("x-plystra-metrics-token"),
            HeaderName::from_static(crate::auth::credential::API_KEY_HEADER),
            // W3C Trace Context: a browser client may continue its own trace here.
            HeaderName::from_static("traceparent"),
            HeaderName::from_static("tracestate"),
            HeaderName::from_static(crate::replicas::CONSISTENCY_TOKEN_HEADER),
        ])
        .expose_headers([
            config.request_id_header.clone(),
            HeaderName::from_static(request_context::TRACE_ID_HEADER),
            HeaderName::from_static(request_context::AUDIT_LOG_ID_HEADER),
            HeaderName::from_static(crate::error::ERROR_CODE_HEADER),
            HeaderName::from_static(crate::telemetry::TRACERESPONSE_HEADER),
            HeaderName::from_static(crate::replicas::CONSISTENCY_TOKEN_HEADER),
            HeaderName::from_static(crate::replicas::SERVED_BY_HEADER),
        ])
}

/// The full service: routes, fallbacks and the middleware stack (outermost first).
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The service with extra routes merged in before the fallbacks (tests use it to add a panicking route).
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let (api, _) = api();
    let api = api.merge(extra);
    let routes = if state.config.console_enabled {
        // The Console calls the API in process through the API's own router (every layer, no Console), so
        // what it may do is what the API allows the signed-in session.
        let api_only = layered(state.clone(), api.clone());
        api.merge(crate::console::router(api_only))
    } else {
        api
    };
    layered(state, routes)
}

/// The routes with the fallbacks and the middleware stack.
fn layered(state: AppState, api: Router<AppState>) -> Router {
    let config = state.config.clone();
    // Router::layer wraps what came before, so the list reads innermost first.
    api.fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone())
        // The protection seam reads the state from here (it is layered per route, before the state exists).
        .layer(axum::Extension(state.clone()))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        // The whole body, within HTTP_BODY_TIMEOUT and the size limit, before the protection seam takes a
        // pooled connection (security review F5).
        .layer(middleware::from_fn_with_state(state.clone(), read_body_first))
        // HTTP_READ_TIMEOUT bounds each read of the body; the router wants its own body type back.
        .layer(MapRequestBodyLayer::new(Body::new))
        .layer(RequestBodyTimeoutLayer::new(config.http_read_timeout))
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(CatchPanicLayer::custom(PanicResponder { production: config.is_production() }))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            let id = request.extensions().get::<RequestContext>().map(|c| c.request_id.clone()).unwrap_or_default();
            tracing::info_span!("request", request_id = %id)
        }))
        .layer(cors_layer(&config))
        .layer(middleware::from_fn(options_no_content))
        // A path or query that decodes to invalid UTF-8 or a NUL: 400 in the envelope, before routing.
        .layer(middleware::from_fn(crate::extract::reject_unusable_uri))
        // Request id, client IP, access log: outside everything so that every answer carries them.
        .layer(middleware::from_fn_with_state(state, request_context::middleware))
}

pub async fn build_state(config: Config) -> Result<AppState, String> {
    if !crate::config::AuditMode::is_known_write_mode(&config.audit_write_mode) {
        tracing::warn!(
            audit_write_mode = %config.audit_write_mode,
            "AUDIT_WRITE_MODE is not one of always, deny_only, manual, disabled_for_dev: every decision is audited (always)"
        );
    }
    let audit_status = Arc::new(AuditModeStatus::default());
    let pools: Arc<[Pool]> = crate::lanes::pool_shares(config.server_threads, config.database_pool_size)
        .into_iter()
        .map(|share| db::create_pool_of(&config, share, audit_status.clone()))
        .collect::<Result<_, _>>()?;
    // The server's own work (polling the replicas' freshness) has a connection of its own, outside the lanes.
    let background = db::create_pool_of(&config, 1, audit_status.clone())?;
    let replicas = Arc::new(crate::replicas::Replicas::new(&config, audit_status.clone())?);
    crate::replicas::start_polling(&replicas, background.clone(), config.replica_poll_interval);
    // One connection now, so that an audit mode the database refuses is reported once at startup (then closed:
    // the polling opens its own when there are replicas). A database that is down does not stop the server:
    // /api/v1/ready reports it until it comes back.
    match background.get().await.map(deadpool_postgres::Object::take) {
        Ok(_) if audit_status.not_permitted.load(Ordering::Relaxed) => tracing::warn!(
            audit_write_mode = %config.audit_write_mode,
            "the database role may not set plystra.audit_mode (not a superuser); keeping the database's own setting"
        ),
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "the database is not reachable at startup; /api/v1/ready will say so")
        }
    }
    let openapi_json = Arc::new(openapi::to_pretty_json(&openapi_document()));
    let piped = Arc::default();
    let pipes: Arc<[Arc<crate::pipeline::Pipe>]> = pools
        .iter()
        .map(|_| Arc::new(crate::pipeline::Pipe::new(&config, audit_status.clone(), Arc::clone(&piped))))
        .collect();
    Ok(AppState(Arc::new(AppStateParts {
        login_permits: Arc::new(tokio::sync::Semaphore::new(config.login_concurrency)),
        login_addresses: Arc::default(),
        bulk_permits: Arc::new(tokio::sync::Semaphore::new((config.database_pool_size / 2).max(1))),
        body_budget: crate::body_budget::BodyBudget::new(
            config.http_body_buffer_bytes,
            config.http_body_buffer_bytes_per_client,
        ),
        login_pruned_at: Arc::default(),
        config: Arc::new(config),
        pool: pools[0].clone(),
        pools,
        pipe: pipes[0].clone(),
        pipes,
        metrics: Arc::new(Metrics::default()),
        openapi_json,
        api_key_last_use: Arc::new(protection::LastUse::default()),
        replicas,
    })))
}

/// A running server (used by `main` and by the integration tests).
pub struct RunningServer {
    pub local_addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
    trace_export: Option<Tracing>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish, then exports the spans still buffered.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let result = self.handle.await.unwrap_or(Ok(()));
        if let Some(trace_export) = self.trace_export.take() {
            trace_export.shutdown().await;
        }
        result
    }
}

/// Binds SERVER_HOST:SERVER_PORT and serves until `stop` is called.
pub async fn start(config: Config) -> Result<RunningServer, String> {
    start_with(config, Router::new()).await
}

/// [`start`] with extra routes (see [`router_with`]).
pub async fn start_with(config: Config, extra: Router<AppState>) -> Result<RunningServer, String> {
    let addr = SocketAddr::new(config.host, config.port);
    let connection_rules = crate::lanes::ConnectionRules {
        header: config.http_read_header_timeout,
        idle: config.http_idle_timeout,
        max_open: config.server_max_connections,
    };
    let trace_export = config.otel.as_ref().map(Tracing::start).transpose()?;
    if let Some(otel) = &config.otel {
        tracing::info!(endpoint = %otel.traces_endpoint, service_name = %otel.service_name, "exporting traces over OTLP");
    }
    let state = build_state(config).await?;
    let listener = TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local_addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    // Without tracing, the process's own dispatcher: what an unwrapped task would use anyway.
    let dispatch = trace_export
        .as_ref()
        .map(|t| t.dispatch().clone())
        .unwrap_or_else(|| tracing::dispatcher::get_default(Clone::clone));
    let routers = (0..state.pools.len()).map(|lane| router_with(state.lane(lane), extra.clone())).collect();
    let lanes = crate::lanes::Lanes::start(routers, connection_rules, dispatch)
        .map_err(|e| format!("cannot start the serving threads: {e}"))?;
    let handle = tokio::spawn(accept(listener, lanes, rx));
    Ok(RunningServer { local_addr, shutdown: Some(tx), handle, trace_export })
}

/// The accept loop: hands each connection to a serving lane (`lanes`), which serves it with axum's router on
/// hyper, with a deadline for reading request headers (HTTP_READ_HEADER_TIMEOUT, which also bounds how long an
/// idle keep-alive connection waits for its next request); then graceful shutdown: stop accepting, let
/// in-flight requests finish.
async fn accept(
    listener: TcpListener,
    mut lanes: crate::lanes::Lanes,
    shutdown: tokio::sync::oneshot::Receiver<()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                lanes.hand(stream, peer);
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    lanes.finish().await;
    Ok(())
}

/// Resolves on SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

/// Serves until SIGTERM or ctrl-c, then drains in-flight requests (bounded, so a stuck client cannot hold
/// the process forever).
pub async fn run(config: Config) -> Result<(), String> {
    if !config.production_problems().is_empty() {
        return Err(config.production_problems().join("; "));
    }
    if config.schema_auto_apply {
        // Development convenience (PLYSTRA_SCHEMA_AUTO_APPLY=true; production refuses it): what
        // `plystractl migrate up` does, before serving.
        let client = crate::migrate::connect(&config.database_url).await.map_err(|e| e.to_string())?;
        crate::migrate::up(&client).await.map_err(|e| format!("schema auto-apply failed: {e}"))?;
        tracing::info!("schema auto-apply: migrations current");
    }
    let server = start(config).await?;
    tracing::info!(address = %server.local_addr, "plystra_http listening");
    shutdown_signal().await;
    match tokio::time::timeout(Duration::from_secs(30), server.stop()).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err("in-flight requests did not finish within 30s".into()),
    }
}
