//! The server's configuration: every setting read from the environment in one place, with the reference's
//! names and defaults (reference 1.15). An invalid value stops startup with a message naming the variable,
//! so a typo never silently falls back to a default in production.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use axum::http::HeaderName;

use crate::client_ip::TrustedProxies;

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

/// The extension's audit mode (`plystra.audit_mode`), mapped from the reference's AUDIT_WRITE_MODE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditMode {
    Always,
    DenyOnly,
    Off,
}

impl AuditMode {
    /// The reference's mapping (1.9): `manual` and `disabled_for_dev` write nothing, unknown values behave like
    /// `always` (so a typo audits more, never less).
    pub fn from_write_mode(value: &str) -> Self {
        match value.trim() {
            "deny_only" => AuditMode::DenyOnly,
            "manual" | "disabled_for_dev" => AuditMode::Off,
            _ => AuditMode::Always,
        }
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
    /// A pooled connection older than this is closed instead of reused (DATABASE_CONN_MAX_LIFETIME).
    pub database_conn_max_lifetime: Duration,
    pub log_format: LogFormat,
    pub log_level: String,
    pub request_id_header: HeaderName,
    pub cors_allowed_origins: CorsOrigins,
    pub trusted_proxies: TrustedProxies,
    pub audit_write_mode: String,
    pub audit_mode: AuditMode,
    pub trace_version: String,
    pub data_console_enabled: bool,
    pub metrics_enabled: bool,
    pub metrics_token: Option<String>,
    pub http_read_header_timeout: Duration,
    pub http_read_timeout: Duration,
    pub http_write_timeout: Duration,
    pub http_idle_timeout: Duration,
    pub core_version: String,
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
    /// map in tests). Empty values count as unset, as with the reference's `os.Getenv(...) != ""`.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let first = |names: &[&'static str]| names.iter().find_map(|n| get(n).map(|v| (*n, v)));

        let (host_var, host) = first(&["SERVER_HOST", "PLYSTRA_SERVER_HOST"]).unwrap_or(("SERVER_HOST", "0.0.0.0"));
        let host = parse_host(host).map_err(|problem| ConfigError { variable: host_var, problem })?;

        let (port_var, port) = first(&["SERVER_PORT", "PLYSTRA_SERVER_PORT"]).unwrap_or(("SERVER_PORT", "8080"));
        let port = port.parse::<u16>().map_err(|_| ConfigError {
            variable: port_var,
            problem: format!("{port:?} is not a TCP port (0-65535)"),
        })?;

        let (mode_var, mode) = first(&["SERVER_MODE", "PLYSTRA_ENV"]).unwrap_or(("SERVER_MODE", "development"));
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

        let database_url = first(&["DATABASE_URL", "PLYSTRA_DATABASE_URL"])
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string());
        let url_var = first(&["DATABASE_URL", "PLYSTRA_DATABASE_URL"]).map(|(n, _)| n).unwrap_or("DATABASE_URL");
        database_url.parse::<tokio_postgres::Config>().map_err(|e| ConfigError {
            variable: url_var,
            problem: format!("not a PostgreSQL connection URL ({e})"),
        })?;

        let database_pool_size = match get("DATABASE_MAX_OPEN_CONNS") {
            None => 20,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=1000).contains(&n) => n,
                _ => {
                    return Err(ConfigError {
                        variable: "DATABASE_MAX_OPEN_CONNS",
                        problem: format!("{v:?} is not a pool size between 1 and 1000"),
                    })
                }
            },
        };

        let database_conn_max_lifetime = match get("DATABASE_CONN_MAX_LIFETIME") {
            None => Duration::from_secs(30 * 60),
            Some(v) => parse_duration(v).filter(|d| !d.is_zero()).ok_or_else(|| ConfigError {
                variable: "DATABASE_CONN_MAX_LIFETIME",
                problem: format!("{v:?} is not a duration such as 30m"),
            })?,
        };

        let log_format = match get("LOG_FORMAT").unwrap_or("json").to_ascii_lowercase().as_str() {
            "json" => LogFormat::Json,
            "text" => LogFormat::Text,
            other => {
                return Err(ConfigError {
                    variable: "LOG_FORMAT",
                    problem: format!("{other:?} is not one of json, text"),
                })
            }
        };

        let log_level = get("LOG_LEVEL").unwrap_or("info").to_ascii_lowercase();
        if !["trace", "debug", "info", "warn", "error"].contains(&log_level.as_str()) {
            return Err(ConfigError {
                variable: "LOG_LEVEL",
                problem: format!("{log_level:?} is not one of trace, debug, info, warn, error"),
            });
        }

        let request_id_header = get("REQUEST_ID_HEADER").unwrap_or("X-Request-ID");
        let request_id_header = HeaderName::try_from(request_id_header).map_err(|_| ConfigError {
            variable: "REQUEST_ID_HEADER",
            problem: format!("{request_id_header:?} is not a valid HTTP header name"),
        })?;

        let cors_allowed_origins = parse_cors(get("CORS_ALLOWED_ORIGINS"), mode)?;

        let trusted_proxies = TrustedProxies::parse(get("TRUSTED_PROXIES").unwrap_or(""))
            .map_err(|problem| ConfigError { variable: "TRUSTED_PROXIES", problem })?;

        let audit_write_mode = get("AUDIT_WRITE_MODE").unwrap_or("always").to_string();
        let audit_mode = AuditMode::from_write_mode(&audit_write_mode);

        let trace_version = get("TRACE_VERSION").unwrap_or("1.0").to_string();
        if trace_version != "1.0" {
            // The extension writes trace documents of version 1.0 only; announcing another would lie to clients.
            return Err(ConfigError {
                variable: "TRACE_VERSION",
                problem: format!("{trace_version:?} is not a supported trace version (1.0)"),
            });
        }

        let data_console_enabled = parse_bool("DATA_CONSOLE_ENABLED", get("DATA_CONSOLE_ENABLED"))?;
        let metrics_enabled = parse_bool("METRICS_ENABLED", get("METRICS_ENABLED"))?;
        let metrics_token = first(&["METRICS_TOKEN", "PLYSTRA_METRICS_TOKEN"]).map(|(_, v)| v.to_string());

        let timeout = |name: &'static str, default: Duration| -> Result<Duration, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) => parse_duration(v).filter(|d| !d.is_zero()).ok_or_else(|| ConfigError {
                    variable: name,
                    problem: format!("{v:?} is not a duration such as 30s, 5m, 1h"),
                }),
            }
        };
        let http_read_header_timeout = timeout("HTTP_READ_HEADER_TIMEOUT", Duration::from_secs(5))?;
        let http_read_timeout = timeout("HTTP_READ_TIMEOUT", Duration::from_secs(30))?;
        let http_write_timeout = timeout("HTTP_WRITE_TIMEOUT", Duration::from_secs(60))?;
        let http_idle_timeout = timeout("HTTP_IDLE_TIMEOUT", Duration::from_secs(120))?;

        let core_version = first(&["PLYSTRA_CORE_VERSION", "CORE_VERSION"])
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_string());

        Ok(Config {
            host,
            port,
            mode,
            database_url,
            database_pool_size,
            database_conn_max_lifetime,
            log_format,
            log_level,
            request_id_header,
            cors_allowed_origins,
            trusted_proxies,
            audit_write_mode,
            audit_mode,
            trace_version,
            data_console_enabled,
            metrics_enabled,
            metrics_token,
            http_read_header_timeout,
            http_read_timeout,
            http_write_timeout,
            http_idle_timeout,
            core_version,
        })
    }

    pub fn is_production(&self) -> bool {
        self.mode == ServerMode::Production
    }
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

fn parse_cors(value: Option<&str>, mode: ServerMode) -> Result<CorsOrigins, ConfigError> {
    let value = value.unwrap_or("http://localhost:5173,http://localhost:8080");
    let origins: Vec<String> = value.split(',').map(|o| o.trim().to_string()).filter(|o| !o.is_empty()).collect();
    if origins.iter().any(|o| o == "*") {
        // The seed documents: production mode rejects wildcard CORS.
        if mode == ServerMode::Production {
            return Err(ConfigError {
                variable: "CORS_ALLOWED_ORIGINS",
                problem: "a wildcard origin is not allowed in production mode".into(),
            });
        }
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

/// Go-style durations as the reference's `.env` writes them: `500ms`, `5s`, `30m`, `1h`, `1h30m`, or bare seconds.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
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
        assert!(!c.metrics_enabled);
        assert_eq!(c.http_read_header_timeout, Duration::from_secs(5));
        assert_eq!(c.http_idle_timeout, Duration::from_secs(120));
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

    #[test]
    fn production_rejects_wildcard_cors() {
        let err =
            Config::from_vars(&vars(&[("SERVER_MODE", "production"), ("CORS_ALLOWED_ORIGINS", "*")])).unwrap_err();
        assert_eq!(err.variable, "CORS_ALLOWED_ORIGINS");
        let c = Config::from_vars(&vars(&[("CORS_ALLOWED_ORIGINS", "*")])).unwrap();
        assert_eq!(c.cors_allowed_origins, CorsOrigins::Any);
    }

    #[test]
    fn audit_write_mode_maps_to_the_extension_setting() {
        assert_eq!(AuditMode::from_write_mode("always"), AuditMode::Always);
        assert_eq!(AuditMode::from_write_mode("deny_only"), AuditMode::DenyOnly);
        assert_eq!(AuditMode::from_write_mode("manual"), AuditMode::Off);
        assert_eq!(AuditMode::from_write_mode("disabled_for_dev"), AuditMode::Off);
        assert_eq!(AuditMode::from_write_mode("bogus"), AuditMode::Always);
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
