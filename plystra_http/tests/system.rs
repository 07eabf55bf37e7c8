//! System routes and the cross-cutting rules every route follows: envelope, request id, errors for unknown
//! routes, wrong methods, oversized bodies and panics, CORS, metrics and feature gates.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn health_answers_ok_in_the_envelope_with_a_generated_request_id() {
    let a = get("/api/v1/health").await;
    let data = a.expect_ok(200);
    assert_eq!(data, &json!({"status": "ok"}));
    let rid = a.body["request_id"].as_str().unwrap();
    assert!(rid.starts_with("req_") && rid.len() == 20, "{rid}");
    assert_eq!(a.body.as_object().unwrap().len(), 2, "only data and request_id: {}", a.text);
}

#[tokio::test]
async fn an_incoming_request_id_is_used_and_echoed() {
    let a = send_to(server(), "GET", "/api/v1/health", None, &[("X-Request-ID", "client-chosen-42")]).await;
    assert_eq!(a.body["request_id"], "client-chosen-42");
    assert_eq!(a.header("x-request-id").as_deref(), Some("client-chosen-42"));
}

#[tokio::test]
async fn the_request_id_header_name_is_configurable() {
    let s = start_server(&[("REQUEST_ID_HEADER", "X-Correlation-ID")]);
    let a = send_to(&s, "GET", "/api/v1/health", None, &[("X-Correlation-ID", "corr-1")]).await;
    assert_eq!(a.body["request_id"], "corr-1");
    assert_eq!(a.header("x-correlation-id").as_deref(), Some("corr-1"));
}

/// Every envelope carries the id of its own request (here the caller's X-Request-ID, so that an id made up on
/// the way, or another request's, shows), in its body, its error and its header, wherever it was built: a
/// handler's answer and error, the seam's refusal, an extractor's rejection, the replica router's, the URI check,
/// the 404 and 405 fallbacks, the body limit, the request deadline and a panic.
#[tokio::test]
async fn every_envelope_carries_the_id_of_its_own_request() {
    let extra = axum::Router::new()
        .route(
            "/__test/panic",
            axum::routing::get(|| async {
                panic!("boom");
                #[allow(unreachable_code)]
                ()
            }),
        )
        .route(
            "/__test/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                "late"
            }),
        );
    let s = start_server_with(&[("HTTP_WRITE_TIMEOUT", "300ms")], extra);
    let big = vec![b' '; 1024 * 1024 + 10];
    // (method, path, body, header instead of the admin key, status, code; "" for a success)
    type Case<'a> = (&'a str, &'a str, Option<Vec<u8>>, Option<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("GET", "/api/v1/health", None, None, 200, ""),
        ("GET", "/api/v1/users?limit=1", None, None, 200, ""),
        ("GET", "/api/v1/users/user_nobody", None, None, 404, "USER_NOT_FOUND"),
        ("GET", "/api/v1/users", None, Some(("X-Plystra-API-Key", "ply_ak_nobody.00")), 401, "AUTHENTICATION_REQUIRED"),
        ("POST", "/api/v1/users", Some(b"{\"email\":".to_vec()), None, 400, "VALIDATION_FAILED"),
        ("GET", "/api/v1/users", None, Some(("Plystra-Consistency-Token", "nope")), 400, "VALIDATION_FAILED"),
        ("GET", "/api/v1/users/%FF", None, None, 400, "VALIDATION_FAILED"),
        ("GET", "/api/v1/no-such-route", None, None, 404, "ROUTE_NOT_FOUND"),
        ("DELETE", "/api/v1/health", None, None, 405, "METHOD_NOT_ALLOWED"),
        ("POST", "/api/v1/authz/check", Some(big), None, 413, "PAYLOAD_TOO_LARGE"),
        ("GET", "/__test/slow", None, None, 503, "REQUEST_TIMEOUT"),
        ("GET", "/__test/panic", None, None, 500, "INTERNAL_ERROR"),
    ];
    for (i, (method, path, body, header, status, code)) in cases.into_iter().enumerate() {
        let rid = format!("rid-{i}-{}", unique("case"));
        let mut req = http()
            .request(method.parse().unwrap(), format!("{}{path}", s.base))
            .header("X-Request-ID", &rid)
            .header("Content-Type", "application/json");
        match header {
            Some((name, value)) => req = req.header(name, value),
            None => req = req.header("X-Plystra-API-Key", admin_key()),
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        let a = into_answer(req.send().await.unwrap()).await;
        if code.is_empty() {
            a.expect_ok(status);
        } else {
            a.expect_error(status, code);
            assert_eq!(a.body["error"]["request_id"], rid, "{method} {path}: {}", a.text);
        }
        assert_eq!(a.body["request_id"], rid, "{method} {path}: {}", a.text);
        assert_eq!(a.header("x-request-id").as_deref(), Some(rid.as_str()), "{method} {path}");
    }
}

#[tokio::test]
async fn ready_reports_the_schema_when_the_database_is_current() {
    let a = get("/api/v1/ready").await;
    let data = a.expect_ok(200);
    assert_eq!(data["status"], "ready");
    assert_eq!(data["schema_version"], data["expected_schema_version"]);
    assert_eq!(data["expected_schema_version"], plystra_http::ledger::expected_schema_version());
    assert_eq!(data["trace_version"], "1.0");
}

#[tokio::test]
async fn ready_is_503_not_ready_when_the_database_is_unreachable() {
    let s = start_server(&[("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nowhere")]);
    let a = send_to(&s, "GET", "/api/v1/ready", None, &[]).await;
    let e = a.expect_error(503, "NOT_READY");
    assert_eq!(e["details"]["reason"], "the database is not reachable");
    // Liveness does not depend on the database.
    send_to(&s, "GET", "/api/v1/health", None, &[]).await.expect_ok(200);
}

#[tokio::test]
async fn ready_is_503_not_ready_without_the_extension() {
    let name = format!("plystra_http_noext_{}", std::process::id());
    let admin = tokio_postgres::connect(&std::env::var(DB_ENV).unwrap(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(admin.1);
    admin.0.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await.unwrap();
    admin.0.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let url = with_database(&std::env::var(DB_ENV).unwrap(), &name);
    let s = start_server(&[("DATABASE_URL", &url)]);
    let a = send_to(&s, "GET", "/api/v1/ready", None, &[]).await;
    let e = a.expect_error(503, "NOT_READY");
    assert_eq!(e["details"]["reason"], "the plystra extension is not installed");
}

#[tokio::test]
async fn version_lists_every_reference_field() {
    let a = get("/api/v1/version").await;
    let data = a.expect_ok(200);
    for field in [
        "core_version",
        "api_version",
        "schema_version",
        "expected_schema_version",
        "trace_version",
        "plugin_api_version",
        "resource_registry_version",
        "build_time",
    ] {
        assert!(data.get(field).is_some(), "missing {field}: {}", a.text);
    }
    assert_eq!(data["api_version"], "v1");
    assert_eq!(data["plugin_api_version"], "1.0");
    assert_eq!(data["resource_registry_version"], "1.0");
    assert_eq!(data["schema_version"], data["expected_schema_version"]);
}

#[tokio::test]
async fn an_unknown_route_is_404_in_the_envelope() {
    get("/api/v1/no-such-thing").await.expect_error(404, "ROUTE_NOT_FOUND");
    get("/").await.expect_error(404, "ROUTE_NOT_FOUND");
}

#[tokio::test]
async fn a_wrong_method_is_405_method_not_allowed() {
    send("GET", "/api/v1/authz/check", None).await.expect_error(405, "METHOD_NOT_ALLOWED");
    send("DELETE", "/api/v1/health", None).await.expect_error(405, "METHOD_NOT_ALLOWED");
    send("PUT", "/api/v1/audit/logs", None).await.expect_error(405, "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_413() {
    let big = format!("{{\"action\":\"{}\"}}", "x".repeat(1024 * 1024 + 10));
    let a = send_raw("POST", "/api/v1/authz/check", big.into_bytes(), &[("content-type", "application/json")]).await;
    a.expect_error(413, "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn a_panic_is_500_internal_error_with_details_only_outside_production() {
    let panicking = || {
        axum::Router::new().route(
            "/__test/panic",
            axum::routing::get(|| async {
                panic!("secret internals");
                #[allow(unreachable_code)]
                ()
            }),
        )
    };
    let dev = start_server_with(&[], panicking());
    let a = send_to(&dev, "GET", "/__test/panic", None, &[]).await;
    let e = a.expect_error(500, "INTERNAL_ERROR");
    assert_eq!(e["message"], "Request handling failed.");
    assert!(a.text.contains("secret internals"));

    let prod = start_server_with(
        &[("SERVER_MODE", "production"), ("CORS_ALLOWED_ORIGINS", "https://app.example.com")],
        panicking(),
    );
    let a = send_to(&prod, "GET", "/__test/panic", None, &[]).await;
    a.expect_error(500, "INTERNAL_ERROR");
    assert!(!a.text.contains("secret internals"), "{}", a.text);
    // The server survives a panic.
    send_to(&prod, "GET", "/api/v1/health", None, &[]).await.expect_ok(200);
}

#[tokio::test]
async fn cors_allows_only_configured_origins_and_options_is_204() {
    let s = start_server(&[("CORS_ALLOWED_ORIGINS", "https://app.example.com")]);
    let a = send_to(
        &s,
        "OPTIONS",
        "/api/v1/authz/check",
        None,
        &[("Origin", "https://app.example.com"), ("Access-Control-Request-Method", "POST")],
    )
    .await;
    assert_eq!(a.status, 204);
    assert_eq!(a.header("access-control-allow-origin").as_deref(), Some("https://app.example.com"));
    let a = send_to(&s, "GET", "/api/v1/health", None, &[("Origin", "https://evil.example.com")]).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("access-control-allow-origin"), None);
    let a = send_to(&s, "GET", "/api/v1/health", None, &[("Origin", "https://app.example.com")]).await;
    assert_eq!(a.header("access-control-allow-origin").as_deref(), Some("https://app.example.com"));
}

#[tokio::test]
async fn metrics_are_feature_disabled_by_default() {
    get("/metrics").await.expect_error(404, "FEATURE_DISABLED");
}

#[tokio::test]
async fn metrics_need_the_token_and_report_routes_decisions_and_pool() {
    let s = start_server(&[("METRICS_ENABLED", "true"), ("METRICS_TOKEN", "metrics-secret")]);
    send_to(&s, "GET", "/api/v1/health", None, &[]).await.expect_ok(200);
    send_to(&s, "GET", "/metrics", None, ANON).await.expect_error(401, "METRICS_TOKEN_REQUIRED");
    send_to(&s, "GET", "/metrics", None, &[("X-Plystra-Metrics-Token", "wrong"), ("authorization", "")])
        .await
        .expect_error(401, "METRICS_TOKEN_REQUIRED");
    let a = send_to(&s, "GET", "/metrics", None, &[("Authorization", "Bearer metrics-secret")]).await;
    assert_eq!(a.status, 200);
    assert!(a.header("content-type").unwrap().starts_with("text/plain"));
    assert!(
        a.text.contains("plystra_http_requests_total{method=\"GET\",route=\"/api/v1/health\",status=\"200\"} 1"),
        "{}",
        a.text
    );
    assert!(a.text.contains(
        "plystra_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/health\",le=\"+Inf\"} 1"
    ));
    assert!(a.text.contains("plystra_db_pool_connections{state=\"max\"} 20"));
    assert!(a.text.contains("\nplystra_authz_denies_total "), "{}", a.text);
    // A row left unsealed for an hour (sealing held back or stopped) shows in the stale gauge.
    let db = sql().await;
    db.batch_execute(
        "INSERT INTO plystra.audit_logs (id, space_id, action, resource_type, resource_id, decision, trace, created_at) \
         VALUES ('audit_metrics_stale', 'space_acme', 'invoice.read', 'invoice', 'invoice_001', 'allow', '{}', \
                 now() - interval '1 hour')",
    )
    .await
    .unwrap();
    let a = send_to(&s, "GET", "/metrics", None, &[("Authorization", "Bearer metrics-secret")]).await;
    let stale: i64 = a
        .text
        .lines()
        .find_map(|l| l.strip_prefix("plystra_audit_unsealed_stale_rows "))
        .unwrap_or_else(|| panic!("no stale gauge:\n{}", a.text))
        .parse()
        .unwrap();
    assert!(stale >= 1, "{}", a.text);
    db.batch_execute("SELECT plystra.seal_audit()").await.unwrap();
    // The audit writer's queue, as the extension states it (plystra.audit_writer_stats): its lanes where the writer
    // serves this database; where it does not (the suite's database, unless the cluster's writer was pointed at it),
    // `up` 0 and no other database's counters.
    let up: bool = db.query_one("SELECT plystra.audit_writer_active()", &[]).await.unwrap().get(0);
    assert!(a.text.contains(&format!("\nplystra_audit_writer_up {}\n", u8::from(up))), "{}", a.text);
    for lane in ["single", "bulk"] {
        for family in [
            format!("plystra_audit_writer_queue_capacity_bytes{{lane=\"{lane}\"}} 4194304\n"),
            format!("plystra_audit_writer_queue_rows{{lane=\"{lane}\"}} "),
            format!("plystra_audit_writer_rows_committed_total{{lane=\"{lane}\"}} "),
        ] {
            assert_eq!(a.text.contains(&family), up, "{family} (writer up: {up}):\n{}", a.text);
        }
    }
}

#[tokio::test]
async fn metrics_enabled_without_a_token_stay_closed() {
    let s = start_server(&[("METRICS_ENABLED", "true")]);
    send_to(&s, "GET", "/metrics", None, &[("Authorization", "Bearer ")])
        .await
        .expect_error(401, "METRICS_TOKEN_REQUIRED");
    // Or an admin credential with metrics:read (docs/v1-reference.md §1.10); one without it is refused.
    let a = send_to(&s, "GET", "/metrics", None, &[("x-plystra-api-key", &admin_key())]).await;
    assert_eq!(a.status, 200, "{}", a.text);
    send_to(&s, "GET", "/metrics", None, &[("x-plystra-api-key", "ply_ak_nope.00")])
        .await
        .expect_error(401, "METRICS_TOKEN_REQUIRED");
    let db = sql().await;
    let hash = plystra_http::auth::secrets::hmac_hex(
        TEST_API_KEY_SECRET,
        &format!("ply_ak_ak_no_metrics.{}", "b2".repeat(32)),
    );
    db.execute(
        "INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, permission_keys) \
         VALUES ('ak_no_metrics', 'no metrics', 'ply_ak_ak_no_metrics', $1, 'instance', '[\"users:read\"]') ON CONFLICT DO NOTHING",
        &[&hash],
    )
    .await
    .unwrap();
    let weak = format!("ply_ak_ak_no_metrics.{}", "b2".repeat(32));
    let e = send_to(&s, "GET", "/metrics", None, &[("x-plystra-api-key", &weak)]).await;
    assert_eq!(e.expect_error(403, "ADMIN_PERMISSION_REQUIRED")["details"]["permission"], "metrics:read");
}

#[tokio::test]
async fn data_console_routes_are_feature_disabled() {
    let e = get("/api/v1/data/tables").await.expect_error(404, "FEATURE_DISABLED").clone();
    assert_eq!(e["details"]["feature"], "data_console");
    get("/api/v1/data/rows/invoice/invoice_001").await.expect_error(404, "FEATURE_DISABLED");
    get("/api/v1/spaces/space_acme/data/models").await.expect_error(404, "FEATURE_DISABLED");
}

#[tokio::test]
async fn console_overview_counts_core_entities() {
    let a = get("/api/v1/console/overview").await;
    let data = a.expect_ok(200);
    assert!(data["spaces"].as_i64().unwrap() >= 1);
    assert!(data["users"].as_i64().unwrap() >= 2);
    assert!(data["resource_types"].as_i64().unwrap() >= 1);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = start_server(&[("HTTP_READ_HEADER_TIMEOUT", "1s")]);
    let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    conn.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), conn.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "the connection stayed open past the header timeout");
}

#[tokio::test]
async fn a_request_over_the_write_timeout_is_503() {
    let slow = axum::Router::new().route(
        "/__test/slow",
        axum::routing::get(|| async {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            "late"
        }),
    );
    let s = start_server_with(&[("HTTP_WRITE_TIMEOUT", "1s")], slow);
    let a = send_to(&s, "GET", "/__test/slow", None, &[]).await;
    a.expect_error(503, "REQUEST_TIMEOUT");
}

#[tokio::test]
async fn an_enabled_data_console_is_not_implemented_here() {
    let s = start_server(&[("DATA_CONSOLE_ENABLED", "true")]);
    send_to(&s, "GET", "/api/v1/data/tables", None, &[]).await.expect_error(501, "NOT_IMPLEMENTED");
    // Unrelated unknown routes stay 404.
    send_to(&s, "GET", "/api/v1/database", None, &[]).await.expect_error(404, "ROUTE_NOT_FOUND");
}

#[tokio::test]
async fn ready_is_503_when_the_migration_ledger_differs_from_the_binary() {
    let name = format!("plystra_http_ledger_{}", std::process::id());
    let admin_url = std::env::var(DB_ENV).unwrap();
    let admin = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(admin.1);
    let _ = db();
    admin.0.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.unwrap();
    admin.0.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let url = with_database(&admin_url, &name);
    let client = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(client.1);
    client.0.batch_execute("CREATE EXTENSION plystra").await.unwrap();
    let s = start_server(&[("DATABASE_URL", &url)]);
    send_to(&s, "GET", "/api/v1/ready", None, &[]).await.expect_ok(200);
    client
        .0
        .batch_execute("UPDATE plystra.schema_migrations SET checksum = repeat('0', 64) WHERE version = '001'")
        .await
        .unwrap();
    let a = send_to(&s, "GET", "/api/v1/ready", None, &[]).await;
    assert_eq!(a.expect_error(503, "NOT_READY")["details"]["reason"], "migration 001 has a different checksum");
    client.0.batch_execute("DELETE FROM plystra.schema_migrations WHERE version = '001'").await.unwrap();
    let a = send_to(&s, "GET", "/api/v1/ready", None, &[]).await;
    assert_eq!(a.expect_error(503, "NOT_READY")["details"]["reason"], "migration 001 is not applied");
}
