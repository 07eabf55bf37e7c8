//! System routes: liveness, readiness (database, extension, migration ledger), version, metrics, console.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::db::{self, Db};
use crate::envelope::Data;
use crate::error::{code, ApiError, ApiResult};
use crate::ledger::{self, LedgerState};
use crate::metrics::PoolUsage;
use crate::store;

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    pub status: String,
    pub schema_version: String,
    pub expected_schema_version: String,
    pub trace_version: String,
}

#[derive(Serialize, ToSchema)]
pub struct Version {
    pub core_version: String,
    pub api_version: String,
    pub schema_version: String,
    pub expected_schema_version: String,
    pub trace_version: String,
    pub plugin_api_version: String,
    pub resource_registry_version: String,
    pub build_time: String,
}

#[utoipa::path(get, operation_id = "health", path = "/api/v1/health", tag = "System",
    responses((status = 200, description = "The process is alive", body = crate::envelope::Envelope<Health>)))]
pub async fn health() -> Data<Health> {
    Data::ok(Health { status: "ok".into() })
}

/// Why the server is not ready, or the schema version it found.
async fn readiness(state: &AppState) -> Result<String, String> {
    let client = Db::of_lane(state).connection().await.map_err(|_| "the database is not reachable".to_string())?;
    store::system::ping(&**client).await.map_err(|_| "the database is not answering".to_string())?;
    let applied = ledger::read_applied(&client).await?;
    match ledger::compare(&applied, ledger::EXPECTED_MIGRATIONS) {
        LedgerState::Current { schema_version } => Ok(schema_version),
        LedgerState::NotCurrent { problem, .. } => Err(problem),
    }
}

#[utoipa::path(get, operation_id = "ready", path = "/api/v1/ready", tag = "System",
    responses((status = 200, description = "Database reachable, extension installed, migrations current", body = crate::envelope::Envelope<Readiness>),
              (status = 503, description = "NOT_READY", body = crate::error::ErrorEnvelope)))]
pub async fn ready(State(state): State<AppState>) -> ApiResult<Data<Readiness>> {
    match readiness(&state).await {
        Ok(schema_version) => Ok(Data::ok(Readiness {
            status: "ready".into(),
            schema_version,
            expected_schema_version: ledger::expected_schema_version().into(),
            trace_version: state.config.trace_version.clone(),
        })),
        Err(reason) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code::NOT_READY, "Service is not ready.")
            .with_details(json!({
                "reason": reason,
                "expected_schema_version": ledger::expected_schema_version(),
            }))),
    }
}

#[utoipa::path(get, operation_id = "version", path = "/api/v1/version", tag = "System",
    responses((status = 200, description = "Versions of the server, API, schema and trace format", body = crate::envelope::Envelope<Version>)))]
pub async fn version(State(state): State<AppState>) -> Data<Version> {
    // The schema version is what the database holds; an unreachable database leaves it empty rather than
    // failing a route that monitoring uses to identify the build.
    let schema_version = match Db::of_lane(&state).connection().await {
        Ok(client) => ledger::read_applied(&client)
            .await
            .ok()
            .and_then(|rows| rows.into_iter().map(|r| r.version).max())
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    Data::ok(Version {
        core_version: state.config.core_version.clone(),
        api_version: "v1".into(),
        schema_version,
        expected_schema_version: ledger::expected_schema_version().into(),
        trace_version: state.config.trace_version.clone(),
        plugin_api_version: "1.0".into(),
        resource_registry_version: "1.0".into(),
        build_time: ledger::build_time(),
    })
}

fn presented_metrics_token(headers: &HeaderMap) -> Option<String> {
    let header_value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(|s| s.trim().to_string());
    header_value("x-plystra-metrics-token").or_else(|| header_value("x-metrics-token")).or_else(|| {
        header_value(header::AUTHORIZATION.as_str())
            .and_then(|v| v.strip_prefix("Bearer ").map(|t| t.trim().to_string()))
    })
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from response times.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[utoipa::path(get, operation_id = "metrics", path = "/metrics", tag = "System",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
              (status = 401, description = "METRICS_TOKEN_REQUIRED", body = crate::error::ErrorEnvelope),
              (status = 404, description = "FEATURE_DISABLED", body = crate::error::ErrorEnvelope)))]
pub async fn metrics(State(state): State<AppState>, mut db: Db, headers: HeaderMap) -> ApiResult<Response> {
    if !state.config.metrics_enabled {
        return Err(ApiError::feature_disabled("metrics"));
    }
    // The metrics token, or else an admin credential holding metrics:read (docs/v1-reference.md §1.10).
    let mut authorized = match (&state.config.metrics_token, presented_metrics_token(&headers)) {
        (Some(expected), Some(given)) => same_token(expected, &given),
        _ => false,
    };
    if !authorized
        && (crate::auth::credential::bearer(&headers).is_some()
            || headers.contains_key(crate::auth::credential::API_KEY_HEADER))
    {
        let client = db.connection().await?;
        if let Ok(credential) = crate::auth::credential::authenticate(&client, &state.config, &headers).await {
            let scope = crate::protection::RequestScope::default();
            if !crate::protection::permission_on(&client, &credential, "metrics:read", &scope).await? {
                return Err(ApiError::admin_permission_required(
                    "metrics:read",
                    "The credential does not hold the admin permission this route requires.",
                ));
            }
            authorized = true;
        }
    }
    if !authorized {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            code::METRICS_TOKEN_REQUIRED,
            "A valid metrics token is required.",
        ));
    }
    // The whole pool: every serving lane's share.
    let usage = state.pools.iter().map(|p| p.status()).fold(PoolUsage::default(), |sum, s| PoolUsage {
        size: sum.size + s.size,
        available: sum.available + s.available,
        max_size: sum.max_size + s.max_size,
        waiting: sum.waiting + s.waiting,
    });
    let mut body = state.metrics.render(usage);
    body.push_str(&crate::metrics::render_pipelined(state.pipe.piped()));
    body.push_str(&crate::metrics::render_refusals());
    body.push_str(&audit_gauges(&mut db).await);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response())
}

/// Rows not yet in their hash chain, and those left so longer than `plystra.audit_unsealed_alarm`: a sealer that
/// is held back or stopped shows here (alert on the second being above zero); read through the partial index of
/// unsealed rows, so a scrape costs little. And the audit writer's queue: rows waiting for the writer, by lane,
/// against each lane's size, and whether a writer serves the database. One statement; nothing is reported when the
/// database cannot answer.
async fn audit_gauges(db: &mut Db) -> String {
    let Ok(client) = db.connection().await else {
        return String::new();
    };
    match store::system::audit_gauges(&**client).await {
        Ok((unsealed, overdue, writer)) => {
            crate::metrics::render_sealing(unsealed, overdue) + &crate::metrics::render_audit_writer(&writer)
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: could not read the audit gauges");
            String::new()
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ConsoleOverview {
    pub spaces: i64,
    pub users: i64,
    pub members: i64,
    pub groups: i64,
    pub roles: i64,
    pub permissions: i64,
    pub resources: i64,
    pub resource_types: i64,
    pub audit_logs: i64,
}

#[utoipa::path(get, operation_id = "get_console_overview", path = "/api/v1/console/overview", tag = "System",
    responses((status = 200, description = "Counts of Core entities (soft-deleted rows excluded)", body = crate::envelope::Envelope<ConsoleOverview>)))]
pub async fn console_overview(mut db: Db) -> ApiResult<Data<ConsoleOverview>> {
    let client = db.connection().await?;
    let row = store::system::overview(&**client).await.map_err(db::internal)?;
    Ok(Data::ok(ConsoleOverview {
        spaces: row.get(0),
        users: row.get(1),
        members: row.get(2),
        groups: row.get(3),
        roles: row.get(4),
        permissions: row.get(5),
        resources: row.get(6),
        resource_types: row.get(7),
        audit_logs: row.get(8),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_tokens_are_read_from_each_accepted_header() {
        for (name, value) in [("x-plystra-metrics-token", "t"), ("x-metrics-token", "t"), ("authorization", "Bearer t")]
        {
            let mut h = HeaderMap::new();
            h.insert(name, value.parse().unwrap());
            assert_eq!(presented_metrics_token(&h).as_deref(), Some("t"), "{name}");
        }
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "ab"));
    }
}

#[utoipa::path(get, operation_id = "get_openapi_document", path = "/api/v1/openapi.json", tag = "System",
    responses((status = 200, description = "This OpenAPI 3.1 document", body = Object, content_type = "application/json")))]
pub async fn openapi_document(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], state.openapi_json.as_str().to_owned()).into_response()
}
