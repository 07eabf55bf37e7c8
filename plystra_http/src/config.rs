//! The server's configuration: every setting read from the environment in one place, with v1.0's
//! names and defaults (docs/v1-reference.md §1.15). An invalid value stops startup with a message naming the variable,
//! so a typo never silently falls back to a default in production.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use axum::http::HeaderName;

use crate::client_ip::{ProxyHeader, TrustedProxies};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerMode {
    Development,
    Test,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// The extension's audit mode (`plystra.audit_mode`), mapped from v1.0's AUDIT_WRITE_MODE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditMode {
    Always,
    DenyOnly,
    Off,
}

impl AuditMode {
    /// v1.0's mapping (docs/v1-reference.md §1.9): `manual` and `disabled_for_dev` write nothing, unknown values behave like
    /// `always` (so a typo audits more, never less).
    pub fn from_write_mode(value: &str) -> Self {
        match value.trim() {
            "deny_only" => AuditMode::DenyOnly,
            "manual" | "disabled_for_dev" => AuditMode::Off,
            _ => AuditMode::Always,
        }
    }

    /// Whether `value` is one of v1.0's AUDIT_WRITE_MODE values (an unknown one audits every decision).
    pub fn is_known_write_mode(value: &str) -> bool {
        matches!(value.trim(), "always" | "deny_only" | "manual" | "disabled_for_dev")
    }

    pub fn as_guc(self) -> &'static str {
        match self {
            AuditMode::Always => "always",
            AuditMode::DenyOnly => "deny_only",
            AuditMode::Off => "off",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    Any,
    List(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    pub mode: ServerMode,
    pub database_url: String,
    pub database_pool_size: usize,
    /// SERVER_THREADS: serving threads, each with its own share of the pool (unset: one a CPU). See `lanes`.
    pub server_threads: usize,
    /// A pooled connection older than this is closed instead of reused (DATABASE_CONN_MAX_LIFETIME).
    pub database_conn_max_lifetime: Duration,
    /// How long a request waits for a free pooled connection before it is answered 503 with Retry-After
    /// (DATABASE_POOL_WAIT_TIMEOUT): an exhausted pool fails fast instead of queueing requests without bound.
    pub database_pool_wait_timeout: Duration,
    /// DATABASE_PIPELINE_DEPTH: how many single decisions a serving lane sends at once over its one shared
    /// connection while decisions write no audit row (0: none; each takes a pooled connection). See `pipeline`.
    pub database_pipeline_depth: usize,
    pub log_format: LogFormat,
    pub log_level: String,
    pub request_id_header: HeaderName,
    pub cors_allowed_origins: CorsOrigins,
    pub trusted_proxies: TrustedProxies,
    /// TRUSTED_PROXY_HEADER: the header those proxies write the client's address in (`x-forwarded-for`, the
    /// default, or `x-real-ip`); the other is never read (`client_ip::resolve`).
    pub trusted_proxy_header: ProxyHeader,
    pub audit_write_mode: String,
    pub audit_mode: AuditMode,
    pub trace_version: String,
    pub data_console_enabled: bool,
    /// CONSOLE_ENABLED: the Plystra Console under /console. Unset: on in development and test, off in
    /// production (an operator turns it on there explicitly).
    pub console_enabled: bool,
    pub metrics_enabled: bool,
    pub metrics_token: Option<String>,
    pub http_read_header_timeout: Duration,
    pub http_read_timeout: Duration,
    /// HTTP_BODY_TIMEOUT: the whole request body must arrive within this (a total deadline, unlike
    /// HTTP_READ_TIMEOUT, which bounds each read); the body is read before any database work.
    pub http_body_timeout: Duration,
    pub http_write_timeout: Duration,
    pub http_idle_timeout: Duration,
    /// SERVER_MAX_CONNECTIONS: connections open at once; past it a new one is closed unread (`lanes`). Unset:
    /// the process's open-file limit less what the pools and the process need (at most 65,536).
    pub server_max_connections: usize,
    /// HTTP_BODY_BUFFER_BYTES: request bodies being read at once, all requests together (each counted at its
    /// announced length, or at the 1 MiB limit when not announced); past it a request is answered 503
    /// SERVER_BUSY with Retry-After before its body is read (`app::read_body_first`).
    pub http_body_buffer_bytes: usize,
    /// HTTP_BODY_BUFFER_BYTES_PER_CLIENT: how much of that one client (an address, an IPv6 /64) may have read at
    /// once (at most HTTP_BODY_BUFFER_BYTES); past it its request is answered 503 SERVER_BUSY with Retry-After,
    /// `details.reason` `client_bodies_busy` (`body_budget`).
    pub http_body_buffer_bytes_per_client: usize,
    pub core_version: String,
    /// SERVER_PUBLIC_URL: where clients reach this server (production refuses localhost).
    pub public_url: String,
    /// Whether DATABASE_URL / CORS_ALLOWED_ORIGINS / SERVER_PUBLIC_URL were set, not defaulted.
    pub database_url_explicit: bool,
    pub cors_explicit: bool,
    pub public_url_explicit: bool,
    /// The key of session-token HMACs (PLYSTRA_SESSION_SECRET or an alias); `None` when unset, in which case
    /// [`DEFAULT_SESSION_SECRET`] is used outside production.
    pub session_secret: Option<String>,
    /// Earlier secrets whose tokens are still accepted (comma list).
    pub session_secret_previous: Vec<String>,
    /// The key of API-key HMACs; without it no API key can be created.
    pub api_key_secret: Option<String>,
    pub api_key_secret_previous: Vec<String>,
    pub password_min_length: usize,
    pub login_max_failures: u32,
    pub login_window: Duration,
    pub login_lockout: Duration,
    /// PLYSTRA_AUTH_LOGIN_CONCURRENCY: logins hashing a password at once (Argon2id, 64 MiB each); more are
    /// answered 429 LOGIN_THROTTLED with Retry-After.
    pub login_concurrency: usize,
    /// PLYSTRA_AUTH_LOGIN_MAX_FAILURES_PER_IP: new addresses one client address may add to the failed-login
    /// table per PLYSTRA_AUTH_LOGIN_WINDOW before its logins are answered 429 LOGIN_THROTTLED.
    pub login_max_failures_per_ip: u32,
    /// PLYSTRA_SCHEMA_AUTO_APPLY: install or update the extension at startup (development convenience).
    pub schema_auto_apply: bool,
    /// OpenTelemetry trace export (the standard OTEL_* variables); `None` (off) unless an OTLP endpoint is set.
    pub otel: Option<OtelConfig>,
    /// PLYSTRA_REPLICA_URLS: hot standbys of DATABASE_URL (streaming replicas) that answer reads, each a
    /// connection URL; empty = every request goes to DATABASE_URL (see `replicas`).
    pub replica_urls: Vec<String>,
    /// PLYSTRA_REPLICA_MAX_LAG_MS: a replica answers a read only while it is measured to hold every change the
    /// primary had this long ago (bounded staleness).
    pub replica_max_lag: Duration,
    /// PLYSTRA_REPLICA_POLL_MS: how often each replica's replay position is measured against the primary's.
    pub replica_poll_interval: Duration,
    /// PLYSTRA_REPLICA_SERVED_BY_HEADER: answers name the database that answered (`Plystra-Served-By: primary`
    /// or `replica-<n>`), for diagnosis and tests.
    pub replica_served_by_header: bool,
}

/// Where and how the front exports its traces (OTLP over HTTP with protobuf), read from the standard OTEL_*
/// variables. Only traces: logs stay JSON lines on stdout and metrics stay Prometheus text on /metrics.
#[derive(Clone, PartialEq)]
pub struct OtelConfig {
    /// The full URL spans are POSTed to: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given, else
    /// OTEL_EXPORTER_OTLP_ENDPOINT with `/v1/traces` appended.
    pub traces_endpoint: String,
    /// OTEL_SERVICE_NAME, else `service.name` from OTEL_RESOURCE_ATTRIBUTES, else `plystra_http`.
    pub service_name: String,
    /// OTEL_RESOURCE_ATTRIBUTES (`key=value,...`, values percent-decoded), `service.name` left out.
    pub resource_attributes: Vec<(String, String)>,
    /// OTEL_EXPORTER_OTLP_HEADERS / _TRACES_HEADERS (`key=value,...`): sent with every export, e.g. a
    /// collector's API key; never logged.
    pub headers: Vec<(String, String)>,
    /// OTEL_EXPORTER_OTLP_TIMEOUT / _TRACES_TIMEOUT (milliseconds): one export's deadline.
    pub timeout: Duration,
    /// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG.
    pub sampler: OtelSampler,
    /// OTEL_BSP_SCHEDULE_DELAY (milliseconds): how long finished spans wait to be exported in a batch.
    pub batch_delay: Duration,
}

impl std::fmt::Debug for OtelConfig {
    // Export headers often carry a collector's credential: their names are shown, never their values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtelConfig")
            .field("traces_endpoint", &self.traces_endpoint)
            .field("service_name", &self.service_name)
            .field("resource_attributes", &self.resource_attributes)
            .field("headers", &self.headers.iter().map(|(k, _)| format!("{k}=<redacted>")).collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("sampler", &self.sampler)
            .field("batch_delay", &self.batch_delay)
            .finish()
    }
}

/// The standard OTEL_TRACES_SAMPLER values (the ratio samplers take OTEL_TRACES_SAMPLER_ARG, default 1.0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OtelSampler {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio(f64),
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedTraceIdRatio(f64),
}

/// v1.0's `.env.example` session secret: accepted outside production, with a doctor warning.
pub const DEFAULT_SESSION_SECRET: &str = "change-me-session-secret-at-least-32-characters";
/// Secrets an operator must replace (v1.0's examples).
pub const DEFAULT_SECRETS: &[&str] = &[DEFAULT_SESSION_SECRET, "change-me-to-at-least-32-characters"];

/// Every variable the configuration reads, with its default ("" = unset). `.env.example` lists exactly these
/// (a test compares them), and reading a variable missing here fails in debug builds.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("SERVER_HOST", "0.0.0.0"),
    ("PLYSTRA_SERVER_HOST", ""),
    ("SERVER_PORT", "8080"),
    ("PLYSTRA_SERVER_PORT", ""),
    ("SERVER_MODE", "development"),
    ("PLYSTRA_ENV", ""),
    ("SERVER_PUBLIC_URL", "http://localhost:8080"),
    ("PLYSTRA_SERVER_PUBLIC_URL", ""),
    ("DATABASE_URL", DEFAULT_DATABASE_URL),
    ("PLYSTRA_DATABASE_URL", ""),
    ("DATABASE_MAX_OPEN_CONNS", "20"),
    // Empty: one a CPU.
    ("SERVER_THREADS", ""),
    ("DATABASE_MAX_IDLE_CONNS", "10"),
    ("DATABASE_CONN_MAX_LIFETIME", "30m"),
    ("DATABASE_POOL_WAIT_TIMEOUT", "2s"),
    ("DATABASE_PIPELINE_DEPTH", "8"),
    ("PLYSTRA_SCHEMA_AUTO_APPLY", "false"),
    ("LOG_LEVEL", "info"),
    ("LOG_FORMAT", "json"),
    ("REQUEST_ID_HEADER", "X-Request-ID"),
    ("CORS_ALLOWED_ORIGINS", "http://localhost:5173,http://localhost:8080"),
    ("TRUSTED_PROXIES", ""),
    ("TRUSTED_PROXY_HEADER", "x-forwarded-for"),
    ("AUDIT_WRITE_MODE", "always"),
    ("TRACE_VERSION", "1.0"),
    ("DATA_CONSOLE_ENABLED", "false"),
    // Empty: on unless SERVER_MODE is production.
    ("CONSOLE_ENABLED", ""),
    ("METRICS_ENABLED", "false"),
    ("METRICS_TOKEN", ""),
    ("PLYSTRA_METRICS_TOKEN", ""),
    ("HTTP_READ_HEADER_TIMEOUT", "5s"),
    ("HTTP_READ_TIMEOUT", "30s"),
    ("HTTP_BODY_TIMEOUT", "10s"),
    ("HTTP_WRITE_TIMEOUT", "60s"),
    ("HTTP_IDLE_TIMEOUT", "120s"),
    // Empty: from the process's open-file limit.
    ("SERVER_MAX_CONNECTIONS", ""),
    ("HTTP_BODY_BUFFER_BYTES", "268435456"),
    ("HTTP_BODY_BUFFER_BYTES_PER_CLIENT", "16777216"),
    ("PLYSTRA_CORE_VERSION", ""),
    ("CORE_VERSION", ""),
    ("PLYSTRA_SESSION_SECRET", DEFAULT_SESSION_SECRET),
    ("SESSION_SECRET", ""),
    ("JWT_SECRET", ""),
    ("PLYSTRA_JWT_SECRET", ""),
    ("PLYSTRA_SESSION_SECRET_PREVIOUS", ""),
    ("PLYSTRA_API_KEY_SECRET", ""),
    ("PLYSTRA_API_KEY_SECRET_PREVIOUS", ""),
    ("PLYSTRA_PASSWORD_MIN_LENGTH", "12"),
    ("PLYSTRA_AUTH_LOGIN_MAX_FAILURES", "8"),
    ("PLYSTRA_AUTH_LOGIN_WINDOW", "15m"),
    ("PLYSTRA_AUTH_LOGIN_LOCKOUT", "15m"),
    ("PLYSTRA_AUTH_LOGIN_CONCURRENCY", "4"),
    ("PLYSTRA_AUTH_LOGIN_MAX_FAILURES_PER_IP", "100"),
    // Read replicas (off unless PLYSTRA_REPLICA_URLS names one).
    ("PLYSTRA_REPLICA_URLS", ""),
    ("PLYSTRA_REPLICA_MAX_LAG_MS", "1000"),
    ("PLYSTRA_REPLICA_POLL_MS", "100"),
    ("PLYSTRA_REPLICA_SERVED_BY_HEADER", "false"),
    // OpenTelemetry's standard variables (traces only; off unless an endpoint is set).
    ("OTEL_SDK_DISABLED", "false"),
    ("OTEL_TRACES_EXPORTER", "otlp"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ""),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", ""),
    ("OTEL_EXPORTER_OTLP_HEADERS", ""),
    ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", ""),
    ("OTEL_EXPORTER_OTLP_TIMEOUT", "10000"),
    ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", ""),
    ("OTEL_SERVICE_NAME", "plystra_http"),
    ("OTEL_RESOURCE_ATTRIBUTES", ""),
    ("OTEL_TRACES_SAMPLER", "parentbased_always_on"),
    ("OTEL_TRACES_SAMPLER_ARG", "1.0"),
    ("OTEL_BSP_SCHEDULE_DELAY", "5000"),
];

/// The default of a variable ENV_VARS lists; `None` when it has none (unset). Every default is written there
/// and only there: what the server reads, `.env.example` shows and `plystractl doctor` checks.
pub fn default_of(name: &str) -> Option<&'static str> {
    let default = ENV_VARS.iter().find(|(n, _)| *n == name).map(|(_, d)| *d);
    debug_assert!(default.is_some(), "{name} is read but not listed in ENV_VARS");
    default.filter(|d| !d.is_empty())
}

/// A configuration error always names the variable, so the operator knows what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid configuration: {}: {}", self.variable, self.problem)
    }
}

impl std::error::Error for ConfigError {}

pub const DEFAULT_DATABASE_URL: &str = "postgres://plystra:plystra@localhost:5432/plystra?sslmode=disable";

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&std::env::vars().collect())
    }

    /// Reads the configuration from a map of variables (the process environment in production, a literal
    /// map in tests). Empty values count as unset, as with v1.0's `os.Getenv(...) != ""`.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            debug_assert!(ENV_VARS.iter().any(|(n, _)| *n == name), "{name} is read but not listed in ENV_VARS");
            vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
        };
        let first = |names: &[&'static str]| names.iter().find_map(|n| get(n).map(|v| (*n, v)));
        // The value set, else ENV_VARS' default.
        let value = |name: &'static str| get(name).or_else(|| default_of(name));
        // The first of `names` set, else the first name with its default.
        let first_or_default =
            |names: &[&'static str]| first(names).unwrap_or((names[0], default_of(names[0]).unwrap_or("")));

        let (host_var, host) = first_or_default(&["SERVER_HOST", "PLYSTRA_SERVER_HOST"]);
        let host = parse_host(host).map_err(|problem| ConfigError { variable: host_var, problem })?;

        let (port_var, port) = first_or_default(&["SERVER_PORT", "PLYSTRA_SERVER_PORT"]);
        let port = port.parse::<u16>().map_err(|_| ConfigError {
            variable: port_var,
            problem: format!("{port:?} is not a TCP port (0-65535)"),
        })?;

        let (mode_var, mode) = first_or_default(&["SERVER_MODE", "PLYSTRA_ENV"]);
        let mode = match mode.to_ascii_lowercase().as_str() {
            "development" | "dev" | "local" => ServerMode::Development,
            "test" => ServerMode::Test,
            "production" | "prod" => ServerMode::Production,
            other => {
                return Err(ConfigError {
                    variable: mode_var,
                    problem: format!("{other:?} is not one of development, test, production"),
                })
            }
        };

        let database_url_explicit = first(&["DATABASE_URL", "PLYSTRA_DATABASE_URL"]).is_some();
        let (url_var, database_url) = first_or_default(&["DATABASE_URL", "PLYSTRA_DATABASE_URL"]);
        let database_url = database_url.to_string();
        database_url.parse::<tokio_postgres::Config>().map_err(|e| ConfigError {
            variable: url_var,
            problem: format!("not a PostgreSQL connection URL ({e})"),
        })?;

        let database_pool_size = match value("DATABASE_MAX_OPEN_CONNS").unwrap_or("").parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return Err(ConfigError {
                    variable: "DATABASE_MAX_OPEN_CONNS",
                    problem: format!(
                        "{:?} is not a pool size between 1 and 1000",
                        value("DATABASE_MAX_OPEN_CONNS").unwrap_or("")
                    ),
                })
            }
        };

        // A duration above zero such as 30s, 5m, 1h, 500ms.
        let duration = |name: &'static str| -> Result<Duration, ConfigError> {
            let v = value(name).unwrap_or("");
            parse_duration(v).filter(|d| !d.is_zero()).ok_or_else(|| ConfigError {
                variable: name,
                problem: format!("{v:?} is not a duration such as 30s, 5m, 1h or 500ms"),
            })
        };
        let database_conn_max_lifetime = duration("DATABASE_CONN_MAX_LIFETIME")?;
        let database_pool_wait_timeout = duration("DATABASE_POOL_WAIT_TIMEOUT")?;

        let log_format = match value("LOG_FORMAT").unwrap_or("").to_ascii_lowercase().as_str() {
            "json" => LogFormat::Json,
            "text" => LogFormat::Text,
            other => {
                return Err(ConfigError {
                    variable: "LOG_FORMAT",
                    problem: format!("{other:?} is not one of json, text"),
                })
            }
        };

        let log_level = value("LOG_LEVEL").unwrap_or("").to_ascii_lowercase();
        if !["trace", "debug", "info", "warn", "error"].contains(&log_level.as_str()) {
            return Err(ConfigError {
                variable: "LOG_LEVEL",
                problem: format!("{log_level:?} is not one of trace, debug, info, warn, error"),
            });
        }

        let request_id_header = value("REQUEST_ID_HEADER").unwrap_or("");
        let request_id_header = HeaderName::try_from(request_id_header).map_err(|_| ConfigError {
            variable: "REQUEST_ID_HEADER",
            problem: format!("{request_id_header:?} is not a valid HTTP header name"),
        })?;

        let cors_explicit = get("CORS_ALLOWED_ORIGINS").is_some();
        let cors_allowed_origins = parse_cors(value("CORS_ALLOWED_ORIGINS").unwrap_or(""))?;

        let trusted_proxies = TrustedProxies::parse(value("TRUSTED_PROXIES").unwrap_or(""))
            .map_err(|problem| ConfigError { variable: "TRUSTED_PROXIES", problem })?;
        let trusted_proxy_header = ProxyHeader::parse(value("TRUSTED_PROXY_HEADER").unwrap_or(""))
            .map_err(|problem| ConfigError { variable: "TRUSTED_PROXY_HEADER", problem })?;

        let audit_write_mode = value("AUDIT_WRITE_MODE").unwrap_or("").to_string();
        let audit_mode = AuditMode::from_write_mode(&audit_write_mode);

        let trace_version = value("TRACE_VERSION").unwrap_or("").to_string();
        if trace_version != "1.0" {
            // The extension writes trace documents of version 1.0 only; announcing another would lie to clients.
            return Err(ConfigError {
                variable: "TRACE_VERSION",
                problem: format!("{trace_version:?} is not a supported trace version (1.0)"),
            });
        }

        let data_console_enabled = parse_bool("DATA_CONSOLE_ENABLED", value("DATA_CONSOLE_ENABLED"))?;
        let console_enabled = match get("CONSOLE_ENABLED") {
            None => mode != ServerMode::Production,
            value => parse_bool("CONSOLE_ENABLED", value)?,
        };
        let metrics_enabled = parse_bool("METRICS_ENABLED", value("METRICS_ENABLED"))?;
        let metrics_token = first(&["METRICS_TOKEN", "PLYSTRA_METRICS_TOKEN"]).map(|(_, v)| v.to_string());

        let http_read_header_timeout = duration("HTTP_READ_HEADER_TIMEOUT")?;
        let http_read_timeout = duration("HTTP_READ_TIMEOUT")?;
        let http_body_timeout = duration("HTTP_BODY_TIMEOUT")?;
        let http_write_timeout = duration("HTTP_WRITE_TIMEOUT")?;
        let http_idle_timeout = duration("HTTP_IDLE_TIMEOUT")?;

        let core_version = first(&["PLYSTRA_CORE_VERSION", "CORE_VERSION"])
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_string());

        let public_url_explicit = first(&["SERVER_PUBLIC_URL", "PLYSTRA_SERVER_PUBLIC_URL"]).is_some();
        let public_url = first_or_default(&["SERVER_PUBLIC_URL", "PLYSTRA_SERVER_PUBLIC_URL"]).1.to_string();
        // Read for compatibility with v1.0's .env; the pool keeps idle connections up to its size.
        let _ = get("DATABASE_MAX_IDLE_CONNS");

        let list = |name: &str| -> Vec<String> {
            get(name)
                .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
                .unwrap_or_default()
        };
        let session_secret = first(&["PLYSTRA_SESSION_SECRET", "SESSION_SECRET", "JWT_SECRET", "PLYSTRA_JWT_SECRET"])
            .map(|(_, v)| v.to_string());
        let session_secret_previous = list("PLYSTRA_SESSION_SECRET_PREVIOUS");
        let api_key_secret = get("PLYSTRA_API_KEY_SECRET").map(str::to_string);
        let api_key_secret_previous = list("PLYSTRA_API_KEY_SECRET_PREVIOUS");

        let number = |name: &'static str, min: u64, max: u64| -> Result<u64, ConfigError> {
            let v = value(name).unwrap_or("");
            v.parse::<u64>().ok().filter(|n| (min..=max).contains(n)).ok_or_else(|| ConfigError {
                variable: name,
                problem: format!("{v:?} is not a number between {min} and {max}"),
            })
        };
        let password_min_length = number("PLYSTRA_PASSWORD_MIN_LENGTH", 8, 1024)? as usize;
        let login_max_failures = number("PLYSTRA_AUTH_LOGIN_MAX_FAILURES", 1, 1_000_000)? as u32;
        let login_window = duration("PLYSTRA_AUTH_LOGIN_WINDOW")?;
        let login_lockout = duration("PLYSTRA_AUTH_LOGIN_LOCKOUT")?;
        let login_concurrency = number("PLYSTRA_AUTH_LOGIN_CONCURRENCY", 1, 1024)? as usize;
        let server_max_connections = match get("SERVER_MAX_CONNECTIONS") {
            None => default_max_connections(database_pool_size),
            Some(_) => number("SERVER_MAX_CONNECTIONS", 1, 10_000_000)? as usize,
        };
        let http_body_buffer_bytes = number("HTTP_BODY_BUFFER_BYTES", 1 << 20, 1 << 40)? as usize;
        let http_body_buffer_bytes_per_client =
            (number("HTTP_BODY_BUFFER_BYTES_PER_CLIENT", 1 << 20, 1 << 40)? as usize).min(http_body_buffer_bytes);
        let server_threads = match get("SERVER_THREADS") {
            None => std::thread::available_parallelism().map_or(1, usize::from),
            Some(_) => number("SERVER_THREADS", 1, 1024)? as usize,
        };
        let login_max_failures_per_ip = number("PLYSTRA_AUTH_LOGIN_MAX_FAILURES_PER_IP", 1, 1_000_000)? as u32;
        let database_pipeline_depth = number("DATABASE_PIPELINE_DEPTH", 0, 1024)? as usize;
        let schema_auto_apply = parse_bool("PLYSTRA_SCHEMA_AUTO_APPLY", value("PLYSTRA_SCHEMA_AUTO_APPLY"))?;
        let otel = parse_otel(&get)?;

        let replica_urls = list("PLYSTRA_REPLICA_URLS");
        for url in &replica_urls {
            if let Err(e) = url.parse::<tokio_postgres::Config>() {
                return Err(ConfigError {
                    variable: "PLYSTRA_REPLICA_URLS",
                    problem: format!("an entry is not a PostgreSQL connection URL: {e}"),
                });
            }
        }
        let replica_max_lag = Duration::from_millis(number("PLYSTRA_REPLICA_MAX_LAG_MS", 1, 86_400_000)?);
        let replica_poll_interval = Duration::from_millis(number("PLYSTRA_REPLICA_POLL_MS", 10, 60_000)?);
        // A replica is measured as fresh only as of its last poll: a poll interval at or over the bound would
        // make every replica look stale between polls.
        if replica_poll_interval >= replica_max_lag {
            return Err(ConfigError {
                variable: "PLYSTRA_REPLICA_POLL_MS",
                problem: format!(
                    "{} ms must be less than PLYSTRA_REPLICA_MAX_LAG_MS ({} ms)",
                    replica_poll_interval.as_millis(),
                    replica_max_lag.as_millis()
                ),
            });
        }
        let replica_served_by_header =
            parse_bool("PLYSTRA_REPLICA_SERVED_BY_HEADER", value("PLYSTRA_REPLICA_SERVED_BY_HEADER"))?;

        Ok(Config {
            replica_urls,
            replica_max_lag,
            replica_poll_interval,
            replica_served_by_header,
            otel,
            public_url,
            database_url_explicit,
            cors_explicit,
            public_url_explicit,
            session_secret,
            session_secret_previous,
            api_key_secret,
            api_key_secret_previous,
            password_min_length,
            login_max_failures,
            login_window,
            login_lockout,
            login_concurrency,
            login_max_failures_per_ip,
            schema_auto_apply,
            host,
            port,
            mode,
            database_url,
            database_pool_size,
            server_threads,
            database_conn_max_lifetime,
            database_pool_wait_timeout,
            database_pipeline_depth,
            log_format,
            log_level,
            request_id_header,
            cors_allowed_origins,
            trusted_proxies,
            trusted_proxy_header,
            audit_write_mode,
            audit_mode,
            trace_version,
            data_console_enabled,
            console_enabled,
            metrics_enabled,
            metrics_token,
            http_read_header_timeout,
            http_read_timeout,
            http_body_timeout,
            http_write_timeout,
            http_idle_timeout,
            server_max_connections,
            http_body_buffer_bytes,
            http_body_buffer_bytes_per_client,
            core_version,
        })
    }

    /// The connection limit as the process's open-file limit allows it (SERVER_MAX_CONNECTIONS unset).
    pub fn max_connections_default(&self) -> usize {
        default_max_connections(self.database_pool_size)
    }

    pub fn is_production(&self) -> bool {
        self.mode == ServerMode::Production
    }

    /// The secret new session tokens are hashed with.
    pub fn session_secret(&self) -> &str {
        self.session_secret.as_deref().unwrap_or(DEFAULT_SESSION_SECRET)
    }

    /// Why this configuration must not run in production: one message per cause. The ONE place the server
    /// (at startup) and `plystractl doctor` ask; empty outside production.
    pub fn production_problems(&self) -> Vec<String> {
        if !self.is_production() {
            return Vec::new();
        }
        let mut problems = Vec::new();
        if self.schema_auto_apply {
            problems.push(
                "PLYSTRA_SCHEMA_AUTO_APPLY must be false in production: apply versioned migrations with \
                 `plystractl migrate up` instead"
                    .to_string(),
            );
        }
        if !self.database_url_explicit {
            problems.push("DATABASE_URL must be set in production (the default points at localhost)".to_string());
        } else if uses_default_credentials(&self.database_url) {
            problems
                .push("DATABASE_URL must not use the default plystra:plystra credentials in production".to_string());
        }
        if self.replica_urls.iter().any(|url| uses_default_credentials(url)) {
            problems.push(
                "PLYSTRA_REPLICA_URLS must not use the default plystra:plystra credentials in production".to_string(),
            );
        }
        match self.session_secret.as_deref() {
            None => problems.push("PLYSTRA_SESSION_SECRET must be set in production".to_string()),
            Some(s) if DEFAULT_SECRETS.contains(&s) => {
                problems.push("PLYSTRA_SESSION_SECRET must not be a default value in production".to_string())
            }
            Some(s) if s.chars().count() < 32 => {
                problems.push("PLYSTRA_SESSION_SECRET must be at least 32 characters in production".to_string())
            }
            Some(_) => {}
        }
        if !self.cors_explicit {
            problems.push("CORS_ALLOWED_ORIGINS must list the allowed origins explicitly in production".to_string());
        } else if self.cors_allowed_origins == CorsOrigins::Any {
            problems.push("CORS_ALLOWED_ORIGINS must not contain the wildcard * in production".to_string());
        }
        if !self.public_url_explicit || is_localhost_url(&self.public_url) {
            problems.push("SERVER_PUBLIC_URL must be set to the public URL, not localhost, in production".to_string());
        }
        problems
    }

    /// Weak-secret warnings (doctor prints them in every mode).
    pub fn secret_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        match self.session_secret.as_deref() {
            None => out.push(format!(
                "PLYSTRA_SESSION_SECRET is not set; the built-in default {DEFAULT_SESSION_SECRET:?} is used"
            )),
            Some(s) if DEFAULT_SECRETS.contains(&s) => out.push("PLYSTRA_SESSION_SECRET is a default value".into()),
            Some(s) if s.chars().count() < 32 => {
                out.push("PLYSTRA_SESSION_SECRET is shorter than 32 characters".into())
            }
            Some(_) => {}
        }
        match self.api_key_secret.as_deref() {
            None => out.push("PLYSTRA_API_KEY_SECRET is not set; API keys cannot be created".into()),
            Some(s) if s.chars().count() < 32 => {
                out.push("PLYSTRA_API_KEY_SECRET is shorter than 32 characters".into())
            }
            Some(_) => {}
        }
        out
    }
}

fn uses_default_credentials(url: &str) -> bool {
    match url.parse::<tokio_postgres::Config>() {
        Ok(c) => c.get_user() == Some("plystra") && c.get_password() == Some(b"plystra".as_slice()),
        Err(_) => false,
    }
}

fn is_localhost_url(url: &str) -> bool {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    let host = if let Some(stripped) = host_port.strip_prefix('[') {
        stripped.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    let host = host.to_ascii_lowercase();
    host.is_empty()
        || host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

fn parse_host(value: &str) -> Result<IpAddr, String> {
    if value.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::from([127, 0, 0, 1]));
    }
    value.parse::<IpAddr>().map_err(|_| format!("{value:?} is not an IP address to listen on"))
}

fn parse_bool(variable: &'static str, value: Option<&str>) -> Result<bool, ConfigError> {
    match value.map(|v| v.to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) => match v.as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(ConfigError { variable, problem: format!("{v:?} is not a boolean (true or false)") }),
        },
    }
}

/// The OTEL_* variables. Traces are exported only when an OTLP endpoint is set (and neither OTEL_SDK_DISABLED
/// nor OTEL_TRACES_EXPORTER=none says otherwise); every other variable is still validated, so a typo is caught
/// before the day tracing is switched on.
fn parse_otel<'a>(get: &dyn Fn(&str) -> Option<&'a str>) -> Result<Option<OtelConfig>, ConfigError> {
    let value = |name: &'static str| get(name).or_else(|| default_of(name));
    let disabled = parse_bool("OTEL_SDK_DISABLED", value("OTEL_SDK_DISABLED"))?;
    let exporter = value("OTEL_TRACES_EXPORTER").unwrap_or("").to_ascii_lowercase();
    if !["otlp", "none"].contains(&exporter.as_str()) {
        return Err(ConfigError {
            variable: "OTEL_TRACES_EXPORTER",
            problem: format!("{exporter:?} is not one of otlp, none (this build exports OTLP only)"),
        });
    }
    for variable in ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"] {
        if let Some(protocol) = get(variable).filter(|p| *p != "http/protobuf") {
            return Err(ConfigError {
                variable,
                problem: format!("{protocol:?} is not supported: this build exports http/protobuf only"),
            });
        }
    }
    let endpoint = match (get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), get("OTEL_EXPORTER_OTLP_ENDPOINT")) {
        (Some(url), _) => Some(("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url.to_string())),
        // The base endpoint names the collector; each signal has its own path under it.
        (None, Some(base)) => {
            Some(("OTEL_EXPORTER_OTLP_ENDPOINT", format!("{}/v1/traces", base.trim_end_matches('/'))))
        }
        (None, None) => None,
    };
    if let Some((variable, url)) = &endpoint {
        check_otlp_endpoint(url).map_err(|problem| ConfigError { variable, problem })?;
    }
    let (headers_var, headers) = match get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") {
        Some(h) => ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", h),
        None => ("OTEL_EXPORTER_OTLP_HEADERS", value("OTEL_EXPORTER_OTLP_HEADERS").unwrap_or("")),
    };
    let headers = parse_key_values(headers).map_err(|problem| ConfigError { variable: headers_var, problem })?;
    for (name, value) in &headers {
        if HeaderName::try_from(name.as_str()).is_err() || axum::http::HeaderValue::from_str(value).is_err() {
            return Err(ConfigError {
                variable: headers_var,
                problem: format!("{name:?} is not a usable HTTP header (name or value)"),
            });
        }
    }
    let (timeout_var, timeout) = match get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") {
        Some(t) => ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", Some(t)),
        None => ("OTEL_EXPORTER_OTLP_TIMEOUT", value("OTEL_EXPORTER_OTLP_TIMEOUT")),
    };
    let timeout = milliseconds(timeout_var, timeout)?;
    let batch_delay = milliseconds("OTEL_BSP_SCHEDULE_DELAY", value("OTEL_BSP_SCHEDULE_DELAY"))?;

    let ratio = || -> Result<f64, ConfigError> {
        let v = value("OTEL_TRACES_SAMPLER_ARG").unwrap_or("");
        v.parse::<f64>().ok().filter(|r| (0.0..=1.0).contains(r)).ok_or_else(|| ConfigError {
            variable: "OTEL_TRACES_SAMPLER_ARG",
            problem: format!("{v:?} is not a sampling ratio between 0 and 1"),
        })
    };
    let sampler = match value("OTEL_TRACES_SAMPLER").unwrap_or("").to_ascii_lowercase().as_str() {
        "always_on" => OtelSampler::AlwaysOn,
        "always_off" => OtelSampler::AlwaysOff,
        "traceidratio" => OtelSampler::TraceIdRatio(ratio()?),
        "parentbased_always_on" => OtelSampler::ParentBasedAlwaysOn,
        "parentbased_always_off" => OtelSampler::ParentBasedAlwaysOff,
        "parentbased_traceidratio" => OtelSampler::ParentBasedTraceIdRatio(ratio()?),
        other => {
            return Err(ConfigError {
                variable: "OTEL_TRACES_SAMPLER",
                problem: format!(
                    "{other:?} is not one of always_on, always_off, traceidratio, parentbased_always_on, \
                     parentbased_always_off, parentbased_traceidratio"
                ),
            })
        }
    };

    let mut resource_attributes = parse_key_values(get("OTEL_RESOURCE_ATTRIBUTES").unwrap_or(""))
        .map_err(|problem| ConfigError { variable: "OTEL_RESOURCE_ATTRIBUTES", problem })?;
    let attribute_service_name = resource_attributes.iter().find(|(k, _)| k == "service.name").map(|(_, v)| v.clone());
    resource_attributes.retain(|(k, _)| k != "service.name");
    let service_name = get("OTEL_SERVICE_NAME")
        .map(str::to_string)
        .or(attribute_service_name)
        .unwrap_or_else(|| default_of("OTEL_SERVICE_NAME").unwrap_or("").to_string());

    let Some((_, traces_endpoint)) = endpoint.filter(|_| !disabled && exporter == "otlp") else {
        return Ok(None);
    };
    Ok(Some(OtelConfig { traces_endpoint, service_name, resource_attributes, headers, timeout, sampler, batch_delay }))
}

/// The exporter speaks plain HTTP: this build carries no TLS stack, so an https endpoint would fail on every
/// export, silently; it is refused at startup instead (point it at a local collector or agent).
fn check_otlp_endpoint(url: &str) -> Result<(), String> {
    let uri: axum::http::Uri =
        url.parse().map_err(|_| format!("{url:?} is not a URL such as http://127.0.0.1:4318"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http"), Some(host)) if !host.is_empty() => Ok(()),
        (Some("https"), _) => Err(format!(
            "{url:?}: https is not supported by this build; send traces over http to a collector or agent nearby"
        )),
        _ => Err(format!("{url:?} is not a URL such as http://127.0.0.1:4318")),
    }
}

/// A whole number of milliseconds above zero (the OTEL_* timeouts and delays).
fn milliseconds(variable: &'static str, value: Option<&str>) -> Result<Duration, ConfigError> {
    let v = value.unwrap_or("");
    v.parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .map(Duration::from_millis)
        .ok_or_else(|| ConfigError { variable, problem: format!("{v:?} is not a number of milliseconds above zero") })
}

/// `key=value,key2=value2` as the OTEL_* lists write them (values may be percent-encoded).
fn parse_key_values(value: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (key, val) = item.split_once('=').ok_or_else(|| format!("{item:?} is not key=value"))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("{item:?} has no key"));
        }
        out.push((key.to_string(), percent_decode(val.trim()).ok_or_else(|| format!("{item:?}: bad %-escape"))?));
    }
    Ok(out)
}

fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn parse_cors(value: &str) -> Result<CorsOrigins, ConfigError> {
    let origins: Vec<String> = value.split(',').map(|o| o.trim().to_string()).filter(|o| !o.is_empty()).collect();
    if origins.iter().any(|o| o == "*") {
        // Production refuses it (Config::production_problems).
        return Ok(CorsOrigins::Any);
    }
    for origin in &origins {
        if axum::http::HeaderValue::from_str(origin).is_err()
            || !(origin.starts_with("http://") || origin.starts_with("https://"))
        {
            return Err(ConfigError {
                variable: "CORS_ALLOWED_ORIGINS",
                problem: format!("{origin:?} is not an origin such as https://app.example.com"),
            });
        }
    }
    Ok(CorsOrigins::List(origins))
}

/// Go-style durations as v1.0's `.env` writes them: `500ms`, `5s`, `30m`, `1h`, `1h30m`, or bare seconds.
pub fn parse_duration(value: &str) -> Option<Duration> {
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = value;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number * 60),
            "h" => Duration::from_secs(number * 3600),
            _ => return None,
        };
        total += unit;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// SERVER_MAX_CONNECTIONS unset: the soft open-file limit (raised to the hard one at start, `raise_open_files`)
/// less two descriptors a pooled database connection (the primary's pool and a replica's) and 256 for the
/// process itself (logs, the listener, telemetry), at least 64 and at most 65,536.
fn default_max_connections(pool_size: usize) -> usize {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct it is given.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 { limit.rlim_cur } else { 1024 };
    let soft = usize::try_from(soft).unwrap_or(usize::MAX);
    soft.saturating_sub(2 * pool_size + 256).clamp(64, 65_536)
}

/// Raises the process's soft open-file limit to its hard limit (best effort), as servers do: every connection is
/// a descriptor, and Debian's default soft limit (1,024) would cap the server near a thousand clients.
pub fn raise_open_files() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit read and write the struct they are given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_console_is_off_in_production_unless_set() {
        let on = |pairs: &[(&str, &str)]| Config::from_vars(&vars(pairs)).unwrap().console_enabled;
        assert!(!on(&[("SERVER_MODE", "production")]));
        assert!(on(&[("SERVER_MODE", "production"), ("CONSOLE_ENABLED", "true")]));
        assert!(on(&[("SERVER_MODE", "test")]));
        assert!(!on(&[("CONSOLE_ENABLED", "false")]));
        assert!(Config::from_vars(&vars(&[("CONSOLE_ENABLED", "maybe")])).is_err());
    }

    #[test]
    fn defaults_follow_the_reference() {
        let c = Config::from_vars(&HashMap::new()).unwrap();
        assert_eq!(c.port, 8080);
        assert_eq!(c.host.to_string(), "0.0.0.0");
        assert_eq!(c.mode, ServerMode::Development);
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(c.database_pool_size, 20);
        assert_eq!(c.database_conn_max_lifetime, Duration::from_secs(1800));
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.request_id_header.as_str(), "x-request-id");
        assert_eq!(c.audit_mode, AuditMode::Always);
        assert!(!c.data_console_enabled);
        assert!(c.console_enabled, "the Console is on in development");
        assert!(!c.metrics_enabled);
        assert_eq!(c.http_read_header_timeout, Duration::from_secs(5));
        assert_eq!(c.http_idle_timeout, Duration::from_secs(120));
        assert_eq!(c.http_body_timeout, Duration::from_secs(10));
        assert_eq!(
            c.cors_allowed_origins,
            CorsOrigins::List(vec!["http://localhost:5173".into(), "http://localhost:8080".into()])
        );
    }

    #[test]
    fn database_url_alias_is_used_when_database_url_is_unset() {
        let c = Config::from_vars(&vars(&[("PLYSTRA_DATABASE_URL", "postgres://a@h:1/d")])).unwrap();
        assert_eq!(c.database_url, "postgres://a@h:1/d");
        let c = Config::from_vars(&vars(&[
            ("PLYSTRA_DATABASE_URL", "postgres://a@h:1/d"),
            ("DATABASE_URL", "postgres://b@h:1/d"),
        ]))
        .unwrap();
        assert_eq!(c.database_url, "postgres://b@h:1/d");
    }

    #[test]
    fn invalid_values_name_their_variable() {
        for (name, value) in [
            ("SERVER_PORT", "eighty"),
            ("SERVER_HOST", "not a host"),
            ("SERVER_MODE", "staging"),
            ("LOG_FORMAT", "xml"),
            ("LOG_LEVEL", "loud"),
            ("REQUEST_ID_HEADER", "bad header"),
            ("TRUSTED_PROXIES", "10.0.0.0/99"),
            ("TRUSTED_PROXY_HEADER", "forwarded"),
            ("METRICS_ENABLED", "maybe"),
            ("DATA_CONSOLE_ENABLED", "2"),
            ("HTTP_READ_TIMEOUT", "soon"),
            ("DATABASE_MAX_OPEN_CONNS", "0"),
            ("DATABASE_CONN_MAX_LIFETIME", "forever"),
            ("CORS_ALLOWED_ORIGINS", "localhost"),
            ("TRACE_VERSION", "2.0"),
            ("DATABASE_URL", "mysql:://x"),
        ] {
            let err = Config::from_vars(&vars(&[(name, value)])).unwrap_err();
            assert_eq!(err.variable, name, "{value}");
            assert!(err.to_string().contains(name));
        }
    }

    const GOOD_PRODUCTION: &[(&str, &str)] = &[
        ("SERVER_MODE", "production"),
        ("DATABASE_URL", "postgres://app:s3cret@db.internal:5432/plystra"),
        ("PLYSTRA_SESSION_SECRET", "0123456789abcdef0123456789abcdef-prod"),
        ("CORS_ALLOWED_ORIGINS", "https://app.example.com"),
        ("SERVER_PUBLIC_URL", "https://plystra.example.com"),
    ];

    fn production_with(overrides: &[(&str, &str)]) -> Vec<String> {
        let mut v = vars(GOOD_PRODUCTION);
        for (k, val) in overrides {
            v.insert(k.to_string(), val.to_string());
        }
        Config::from_vars(&v).unwrap().production_problems()
    }

    #[test]
    fn production_refuses_each_unsafe_setting_with_its_own_message() {
        assert!(production_with(&[]).is_empty(), "{:?}", production_with(&[]));
        for (overrides, expected) in [
            (&[("PLYSTRA_SCHEMA_AUTO_APPLY", "true")][..], "PLYSTRA_SCHEMA_AUTO_APPLY"),
            (&[("DATABASE_URL", "postgres://plystra:plystra@db:5432/plystra")][..], "default plystra:plystra"),
            (&[("DATABASE_URL", "")][..], "DATABASE_URL must be set"),
            (&[("PLYSTRA_SESSION_SECRET", "")][..], "PLYSTRA_SESSION_SECRET must be set"),
            (&[("PLYSTRA_SESSION_SECRET", "short")][..], "at least 32 characters"),
            (&[("PLYSTRA_SESSION_SECRET", DEFAULT_SESSION_SECRET)][..], "default value"),
            (&[("CORS_ALLOWED_ORIGINS", "")][..], "explicitly"),
            (&[("CORS_ALLOWED_ORIGINS", "https://a.example.com,*")][..], "wildcard"),
            (&[("SERVER_PUBLIC_URL", "")][..], "SERVER_PUBLIC_URL"),
            (&[("SERVER_PUBLIC_URL", "http://localhost:8080")][..], "SERVER_PUBLIC_URL"),
            (&[("SERVER_PUBLIC_URL", "http://127.0.0.1:8080/x")][..], "SERVER_PUBLIC_URL"),
            (
                &[("PLYSTRA_REPLICA_URLS", "postgres://plystra:plystra@replica:5432/plystra")][..],
                "PLYSTRA_REPLICA_URLS",
            ),
        ] {
            let problems = production_with(overrides);
            assert_eq!(problems.len(), 1, "{overrides:?}: {problems:?}");
            assert!(problems[0].contains(expected), "{overrides:?}: {problems:?}");
        }
        // Several causes, several messages; development mode refuses nothing.
        let all = Config::from_vars(&vars(&[("SERVER_MODE", "production"), ("CORS_ALLOWED_ORIGINS", "*")]))
            .unwrap()
            .production_problems();
        assert_eq!(all.len(), 4, "{all:?}");
        assert!(Config::from_vars(&vars(&[("CORS_ALLOWED_ORIGINS", "*")])).unwrap().production_problems().is_empty());
        assert_eq!(
            Config::from_vars(&vars(&[("CORS_ALLOWED_ORIGINS", "*")])).unwrap().cors_allowed_origins,
            CorsOrigins::Any
        );
    }

    #[test]
    fn every_variable_read_is_listed_with_its_default() {
        // from_vars reads every variable when none is set; a debug assertion fails on an unlisted one.
        let c = Config::from_vars(&HashMap::new()).unwrap();
        let defaults: HashMap<String, String> = ENV_VARS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let d = Config::from_vars(&defaults).unwrap();
        assert_eq!(c.port, d.port);
        assert_eq!(c.database_url, d.database_url);
        assert_eq!(c.session_secret(), d.session_secret());
        assert_eq!(c.password_min_length, 12);
        assert_eq!(c.login_max_failures, 8);
        assert_eq!(c.login_window, Duration::from_secs(900));
        assert_eq!(d.login_lockout, Duration::from_secs(900));
        assert_eq!(c.login_concurrency, 4);
        assert_eq!(c.login_max_failures_per_ip, 100);
    }

    #[test]
    fn defaults_are_written_only_in_env_vars() {
        // The reading code names no default of its own: every fallback is `default_of`, so ENV_VARS (and the
        // .env.example a test compares with it) is the one place a default is written.
        let source = include_str!("config.rs");
        let code = &source[..source.find("#[cfg(test)]").unwrap()];
        let between = |from: &str, to: &str| {
            let start = code.find(from).unwrap();
            &code[start..start + code[start..].find(to).unwrap()]
        };
        let reading =
            [between("pub fn from_vars", "pub fn is_production"), between("fn parse_otel", "fn check_otlp")].concat();
        for pattern in
            ["Duration::from_secs(", "Duration::from_millis(1", ".unwrap_or(\"h", ".unwrap_or(\"p", ".unwrap_or(\"j"]
        {
            assert!(!reading.contains(pattern), "a default written in the reading code: {pattern}");
        }
        let literal_default = reading
            .match_indices(".unwrap_or(\"")
            .map(|(i, _)| &reading[i + 12..])
            .find(|rest| !rest.starts_with('"'))
            .map(|rest| rest.chars().take(40).collect::<String>());
        assert!(literal_default.is_none(), "a default written in the reading code: {literal_default:?}");
    }

    #[test]
    fn server_threads_default_to_one_a_cpu_and_are_validated() {
        let with = |vars: &[(&str, &str)]| {
            Config::from_vars(&vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<HashMap<_, _>>())
        };
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(with(&[]).unwrap().server_threads, cpus);
        assert_eq!(with(&[("SERVER_THREADS", "")]).unwrap().server_threads, cpus);
        assert_eq!(with(&[("SERVER_THREADS", "3")]).unwrap().server_threads, 3);
        for bad in ["0", "-1", "two", "1025"] {
            assert_eq!(with(&[("SERVER_THREADS", bad)]).unwrap_err().variable, "SERVER_THREADS", "{bad}");
        }
    }

    #[test]
    fn login_budgets_and_the_body_deadline_are_validated() {
        let with = |k: &str, v: &str| {
            Config::from_vars(&[(k.to_string(), v.to_string())].into_iter().collect::<HashMap<_, _>>())
        };
        assert_eq!(with("HTTP_BODY_TIMEOUT", "3s").unwrap().http_body_timeout, Duration::from_secs(3));
        assert_eq!(with("HTTP_BODY_TIMEOUT", "soon").unwrap_err().variable, "HTTP_BODY_TIMEOUT");
        assert_eq!(with("PLYSTRA_AUTH_LOGIN_CONCURRENCY", "0").unwrap_err().variable, "PLYSTRA_AUTH_LOGIN_CONCURRENCY");
        assert_eq!(with("PLYSTRA_AUTH_LOGIN_CONCURRENCY", "16").unwrap().login_concurrency, 16);
        let per_ip = "PLYSTRA_AUTH_LOGIN_MAX_FAILURES_PER_IP";
        assert_eq!(with(per_ip, "-1").unwrap_err().variable, per_ip);
        assert_eq!(with(per_ip, "5").unwrap().login_max_failures_per_ip, 5);
    }

    #[test]
    fn replica_settings_are_validated() {
        let with = |pairs: &[(&str, &str)]| {
            Config::from_vars(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<HashMap<_, _>>())
        };
        let none = with(&[]).unwrap();
        assert!(none.replica_urls.is_empty(), "no replica unless named");
        assert_eq!(
            (none.replica_max_lag, none.replica_poll_interval),
            (Duration::from_secs(1), Duration::from_millis(100))
        );
        assert!(!none.replica_served_by_header);
        let two = with(&[
            ("PLYSTRA_REPLICA_URLS", " postgres://r@a:5432/p , postgres://r@b:5432/p,"),
            ("PLYSTRA_REPLICA_MAX_LAG_MS", "250"),
            ("PLYSTRA_REPLICA_POLL_MS", "50"),
            ("PLYSTRA_REPLICA_SERVED_BY_HEADER", "true"),
        ])
        .unwrap();
        assert_eq!(two.replica_urls, ["postgres://r@a:5432/p", "postgres://r@b:5432/p"]);
        assert_eq!(two.replica_max_lag, Duration::from_millis(250));
        assert!(two.replica_served_by_header);
        for (pairs, variable) in [
            (&[("PLYSTRA_REPLICA_URLS", "postgres://a:5432/p,postgres://b:notaport/p")][..], "PLYSTRA_REPLICA_URLS"),
            (&[("PLYSTRA_REPLICA_MAX_LAG_MS", "0")][..], "PLYSTRA_REPLICA_MAX_LAG_MS"),
            (&[("PLYSTRA_REPLICA_MAX_LAG_MS", "1s")][..], "PLYSTRA_REPLICA_MAX_LAG_MS"),
            (&[("PLYSTRA_REPLICA_POLL_MS", "5")][..], "PLYSTRA_REPLICA_POLL_MS"),
            // The poll must come more often than the bound, or every replica would look stale between polls.
            (
                &[("PLYSTRA_REPLICA_MAX_LAG_MS", "100"), ("PLYSTRA_REPLICA_POLL_MS", "100")][..],
                "PLYSTRA_REPLICA_POLL_MS",
            ),
            (&[("PLYSTRA_REPLICA_SERVED_BY_HEADER", "perhaps")][..], "PLYSTRA_REPLICA_SERVED_BY_HEADER"),
        ] {
            assert_eq!(with(pairs).unwrap_err().variable, variable, "{pairs:?}");
        }
        // A bad entry is named without echoing the URL (it may hold a password).
        let e = with(&[("PLYSTRA_REPLICA_URLS", "postgres://u:secret-pw@b:notaport/p")]).unwrap_err();
        assert!(!e.problem.contains("secret-pw"), "{e}");
    }

    #[test]
    fn audit_write_mode_maps_to_the_extension_setting() {
        assert_eq!(AuditMode::from_write_mode("always"), AuditMode::Always);
        assert_eq!(AuditMode::from_write_mode("deny_only"), AuditMode::DenyOnly);
        assert_eq!(AuditMode::from_write_mode("manual"), AuditMode::Off);
        assert_eq!(AuditMode::from_write_mode("disabled_for_dev"), AuditMode::Off);
        assert_eq!(AuditMode::from_write_mode("bogus"), AuditMode::Always);
        assert!(AuditMode::is_known_write_mode("disabled_for_dev") && AuditMode::is_known_write_mode(" manual "));
        // `off` is the extension's setting, not an AUDIT_WRITE_MODE value: it audits everything (and says so).
        assert!(!AuditMode::is_known_write_mode("off") && !AuditMode::is_known_write_mode("bogus"));
    }

    #[test]
    fn tracing_is_off_unless_an_otlp_endpoint_is_set() {
        let otel = |pairs: &[(&str, &str)]| Config::from_vars(&vars(pairs)).unwrap().otel;
        assert_eq!(otel(&[]), None);
        // Settings that only tune an exporter do not start one.
        assert_eq!(otel(&[("OTEL_SERVICE_NAME", "x"), ("OTEL_BSP_SCHEDULE_DELAY", "10")]), None);
        let on = otel(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]).unwrap();
        assert_eq!(on.traces_endpoint, "http://collector:4318/v1/traces");
        assert_eq!(on.service_name, "plystra_http");
        assert_eq!(on.sampler, OtelSampler::ParentBasedAlwaysOn);
        assert_eq!(on.timeout, Duration::from_secs(10));
        assert_eq!(on.batch_delay, Duration::from_secs(5));
        // The signal's own endpoint is used as given, and wins over the base.
        let on = otel(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9999/custom"),
        ])
        .unwrap();
        assert_eq!(on.traces_endpoint, "http://127.0.0.1:9999/custom");
        for off in [("OTEL_SDK_DISABLED", "true"), ("OTEL_TRACES_EXPORTER", "none")] {
            assert_eq!(otel(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), off]), None, "{off:?}");
        }
    }

    #[test]
    fn the_standard_otel_variables_are_honoured() {
        let on = Config::from_vars(&vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes,deployment.environment.name=prod%2Ceu"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=secret%20value,x-other=1"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2500"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ]))
        .unwrap()
        .otel
        .unwrap();
        assert_eq!(on.service_name, "from-attributes", "service.name from the resource attributes");
        assert_eq!(on.resource_attributes, vec![("deployment.environment.name".into(), "prod,eu".into())]);
        assert_eq!(on.headers[0], ("x-api-key".into(), "secret value".into()));
        assert_eq!(on.timeout, Duration::from_millis(2500));
        assert_eq!(on.sampler, OtelSampler::ParentBasedTraceIdRatio(0.25));
        assert_eq!(on.batch_delay, Duration::from_millis(100));
        assert!(!format!("{on:?}").contains("secret"), "header values never reach a debug print");
        // OTEL_SERVICE_NAME wins over the attribute.
        let named = Config::from_vars(&vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=a"),
            ("OTEL_SERVICE_NAME", "b"),
        ]))
        .unwrap();
        assert_eq!(named.otel.unwrap().service_name, "b");
    }

    #[test]
    fn bad_otel_values_name_their_variable_even_while_tracing_is_off() {
        for (name, value) in [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector.example.com"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "not a url"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "no-equals-sign"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s"),
            ("OTEL_BSP_SCHEDULE_DELAY", "0"),
            ("OTEL_TRACES_SAMPLER", "sometimes"),
            ("OTEL_TRACES_EXPORTER", "zipkin"),
            ("OTEL_SDK_DISABLED", "maybe"),
            ("OTEL_RESOURCE_ATTRIBUTES", "a=%zz"),
        ] {
            let err = Config::from_vars(&vars(&[(name, value)])).unwrap_err();
            assert_eq!(err.variable, name, "{value}");
        }
        let err =
            Config::from_vars(&vars(&[("OTEL_TRACES_SAMPLER", "traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "1.5")]))
                .unwrap_err();
        assert_eq!(err.variable, "OTEL_TRACES_SAMPLER_ARG");
    }

    #[test]
    fn durations_read_like_go() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("12"), Some(Duration::from_secs(12)));
        assert_eq!(parse_duration("1d"), None);
        assert_eq!(parse_duration("s"), None);
    }
}
