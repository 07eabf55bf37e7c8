//! POST /api/v1/authz/check and /explain against the real extension: the four demo decisions give exactly the
//! SQL answers, the HTTP answer agrees with the audit row it wrote, and bad input is refused without a decision.

mod common;

use common::*;
use serde_json::{json, Value};

fn demo_request(user: &str, binding: &str, resource: &str) -> Value {
    json!({
        "actor": {"user_id": user, "member_id": "member_finance_reviewer", "user_member_id": binding, "space_id": "space_acme"},
        "resource_type": "invoice",
        "resource_id": resource,
        "action": "approve"
    })
}

const DEMO_CASES: &[(&str, &str, &str, &str, Option<&str>)] = &[
    ("user_alice", "um_alice_finance_reviewer", "invoice_001", "allow", None),
    ("user_alice", "um_alice_finance_reviewer", "invoice_002", "deny", Some("SCOPE_OUT_OF_BOUNDS")),
    ("user_bob", "um_bob_finance_reviewer", "invoice_001", "allow", None),
    ("user_alice", "um_alice_finance_reviewer_revoked", "invoice_001", "deny", Some("USER_MEMBER_REVOKED")),
];

async fn audit_row(id: &str) -> tokio_postgres::Row {
    sql().await.query_one("SELECT * FROM plystra.audit_logs WHERE id = $1", &[&id]).await.expect("audit row exists")
}

async fn audit_rows_for_request(request_id: &str) -> i64 {
    sql()
        .await
        .query_one("SELECT count(*) FROM plystra.audit_logs WHERE request_id = $1", &[&request_id])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn the_four_demo_decisions_over_http_equal_the_sql_answers() {
    let db = sql().await;
    for (user, binding, resource, decision, deny_code) in DEMO_CASES {
        let body = demo_request(user, binding, resource);
        let a = post("/api/v1/authz/check", body.clone()).await;
        let data = a.expect_ok(200).clone();
        assert_eq!(data["decision"], *decision, "{user} {binding} {resource}: {}", a.text);
        assert_eq!(data["deny_code"], json!(deny_code));
        assert_eq!(data["allow"], json!(*decision == "allow"));

        let sql_answer: Value = db.query_one("SELECT plystra.check($1::jsonb)", &[&body]).await.unwrap().get(0);
        for field in ["allow", "decision", "deny_code", "reason"] {
            assert_eq!(data[field], sql_answer[field], "{field} differs between HTTP and SQL");
        }
        for field in [
            "actor_user_id",
            "actor_member_id",
            "actor_user_member_id",
            "space_id",
            "action",
            "resource_type",
            "resource_id",
            "decision",
            "deny_code",
        ] {
            assert_eq!(data["audit"][field], sql_answer["audit"][field], "audit.{field} differs between HTTP and SQL");
        }
        assert_eq!(data["audit"]["action"], "invoice.approve");

        let e = post("/api/v1/authz/explain", body.clone()).await;
        let trace = e.expect_ok(200);
        assert_eq!(trace["decision"], *decision);
        assert_eq!(trace["deny_code"], json!(deny_code));
        assert_eq!(trace["trace_version"], "1.0");
        assert_eq!(trace["matched_candidates"].as_array().map(|c| c.len()), Some(1), "{}", e.text);
    }
}

#[tokio::test]
async fn a_deny_is_http_200_with_trace_and_audit_headers() {
    let a = post("/api/v1/authz/check", demo_request("user_alice", "um_alice_finance_reviewer", "invoice_002")).await;
    let data = a.expect_ok(200);
    assert_eq!(data["decision"], "deny");
    let trace_id = data["trace_id"].as_str().unwrap();
    assert!(trace_id.starts_with("trc_"));
    assert_eq!(a.header("x-plystra-trace-id").as_deref(), Some(trace_id));
    assert_eq!(a.header("x-plystra-audit-log-id").as_deref(), data["audit_log_id"].as_str());
    assert_eq!(data["audit"]["audit_log_id"], data["audit_log_id"]);
    let keys: Vec<&String> = data.as_object().unwrap().keys().collect();
    assert_eq!(
        keys.len(),
        7,
        "check answers exactly allow, decision, deny_code, reason, trace_id, audit_log_id, audit: {keys:?}"
    );
}

#[tokio::test]
async fn the_http_answer_agrees_with_the_audit_row_it_wrote() {
    let a = send_to(
        server(),
        "POST",
        "/api/v1/authz/check",
        Some(demo_request("user_bob", "um_bob_finance_reviewer", "invoice_001")),
        &[("X-Request-ID", &unique("req_agree"))],
    )
    .await;
    let data = a.expect_ok(200).clone();
    let row = audit_row(data["audit_log_id"].as_str().unwrap()).await;
    let text = |c: &str| row.get::<_, Option<String>>(c);
    assert_eq!(text("decision").as_deref(), data["decision"].as_str());
    assert_eq!(text("deny_code"), data["deny_code"].as_str().map(str::to_string));
    assert_eq!(text("actor_user_id").as_deref(), Some("user_bob"));
    assert_eq!(text("actor_member_id").as_deref(), Some("member_finance_reviewer"));
    assert_eq!(text("actor_user_member_id").as_deref(), Some("um_bob_finance_reviewer"));
    assert_eq!(text("space_id").as_deref(), Some("space_acme"));
    assert_eq!(text("action").as_deref(), Some("invoice.approve"));
    assert_eq!(text("resource_type").as_deref(), Some("invoice"));
    assert_eq!(text("resource_id").as_deref(), Some("invoice_001"));
    // The HTTP request's identity reached the row.
    assert_eq!(text("request_id").as_deref(), a.body["request_id"].as_str());
    assert_eq!(data["audit"]["request_id"], a.body["request_id"]);
    assert_eq!(text("ip_address").as_deref(), Some("127.0.0.1"));
    assert_eq!(text("user_agent").as_deref(), Some("plystra-http-tests/1.0"));
    let trace: Value = row.get("trace");
    assert_eq!(trace["trace_id"], data["trace_id"]);
}

#[tokio::test]
async fn explain_returns_the_trace_the_audit_row_keeps() {
    let a = post("/api/v1/authz/explain", demo_request("user_alice", "um_alice_finance_reviewer", "invoice_001")).await;
    let trace = a.expect_ok(200).clone();
    for field in [
        "trace_version",
        "trace_id",
        "decision",
        "deny_code",
        "actor",
        "space",
        "target",
        "resource_registry",
        "matched_candidates",
        "request",
        "reason",
        "audit",
    ] {
        assert!(trace.get(field).is_some(), "explain lacks {field}");
    }
    assert_eq!(trace["request"]["request_id"], a.body["request_id"]);
    let id = trace["audit"]["audit_log_id"].as_str().unwrap();
    assert_eq!(a.header("x-plystra-audit-log-id").as_deref(), Some(id));
    let stored: Value = audit_row(id).await.get("trace");
    assert_eq!(stored, trace, "the HTTP trace and the audit row's trace differ");
}

#[tokio::test]
async fn explain_true_on_check_returns_the_trace() {
    let mut body = demo_request("user_alice", "um_alice_finance_reviewer", "invoice_001");
    body["explain"] = json!(true);
    let data = post("/api/v1/authz/check", body).await.expect_ok(200).clone();
    assert_eq!(data["trace_version"], "1.0");
    assert!(data.get("matched_candidates").is_some());
}

#[tokio::test]
async fn binding_id_and_the_resource_object_are_accepted() {
    let body = json!({
        "actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer", "binding_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
        "resource": {"type": "invoice", "id": "invoice_001"},
        "action": "approve"
    });
    let data = post("/api/v1/authz/check", body).await.expect_ok(200).clone();
    assert_eq!(data["decision"], "allow");
    assert_eq!(data["audit"]["actor_user_member_id"], "um_alice_finance_reviewer");
}

#[tokio::test]
async fn unknown_actors_and_resources_are_audited_denies() {
    let data = post("/api/v1/authz/check", demo_request("user_nobody", "um_nobody", "invoice_001"))
        .await
        .expect_ok(200)
        .clone();
    assert_eq!(data["decision"], "deny");
    assert_eq!(data["deny_code"], "ACTOR_NOT_FOUND");
    let data = post("/api/v1/authz/check", demo_request("user_alice", "um_alice_finance_reviewer", "invoice_missing"))
        .await
        .expect_ok(200)
        .clone();
    assert_eq!(data["deny_code"], "RESOURCE_NOT_FOUND");
    assert!(data["audit_log_id"].is_string());
}

#[tokio::test]
async fn a_missing_field_is_400_naming_it_and_decides_nothing() {
    let rid = unique("req_missing");
    let mut body = demo_request("user_alice", "um_alice_finance_reviewer", "invoice_001");
    body["actor"].as_object_mut().unwrap().remove("user_id");
    let a = send_to(server(), "POST", "/api/v1/authz/check", Some(body), &[("X-Request-ID", &rid)]).await;
    let e = a.expect_error(400, "VALIDATION_FAILED");
    assert_eq!(e["details"]["field"], "actor.user_id");
    assert!(e["message"].as_str().unwrap().contains("actor.user_id"));
    let mut body = demo_request("user_alice", "um_alice_finance_reviewer", "invoice_001");
    body.as_object_mut().unwrap().remove("action");
    let e = send_to(server(), "POST", "/api/v1/authz/explain", Some(body), &[("X-Request-ID", &rid)]).await;
    assert_eq!(e.expect_error(400, "VALIDATION_FAILED")["details"]["field"], "action");
    assert_eq!(audit_rows_for_request(&rid).await, 0);
}

/// A decision's audit action is `<resource_type>.<action>`: a target whose action would read as one Plystra writes
/// itself (an authentication event, a management mutation) is refused, so no caller files a row that reads as one.
#[tokio::test]
async fn a_target_named_like_plystras_own_events_is_400_and_files_no_row() {
    let rid = unique("req_reserved");
    for (resource_type, action, field) in [
        ("auth", "login_failed", "resource_type"),
        ("user_member", "revoked", "action"),
        ("space", "created", "action"),
    ] {
        let mut body = demo_request("user_alice", "um_alice_finance_reviewer", "invoice_001");
        body["resource_type"] = json!(resource_type);
        body["action"] = json!(action);
        for path in ["/api/v1/authz/check", "/api/v1/authz/explain"] {
            let a = send_to(server(), "POST", path, Some(body.clone()), &[("X-Request-ID", &rid)]).await;
            let e = a.expect_error(400, "VALIDATION_FAILED");
            assert_eq!(e["details"]["field"], field, "{path} {resource_type}.{action}");
            assert!(e["message"].as_str().unwrap().contains("reserved"), "{e}");
        }
    }
    assert_eq!(audit_rows_for_request(&rid).await, 0);
    // The registry refuses the reserved types as keys: no decision about them can ever be allowed.
    for key in ["auth", "audit_partition"] {
        let e = post("/api/v1/resource-types", json!({"key": key, "display_name": "Reserved"}))
            .await
            .expect_error(400, "VALIDATION_FAILED")
            .clone();
        assert_eq!(e["details"]["rule"], "resource_types_key_reserved", "{key}");
    }
}

/// A decision whose audit row the log refuses (here a constraint the test adds; input cannot cause it, every field is
/// bounded) is not given: a 500 that names neither the constraint nor the database's message, and nothing else
/// stops (with the audit writer the refused row fails only its own decision: tests/sql/041).
#[tokio::test]
async fn a_decision_whose_audit_row_is_refused_is_a_500_that_names_nothing() {
    let constraint = unique("t_refused");
    let refused = unique("invoice_refused");
    let db = sql().await;
    db.batch_execute(&format!(
        "ALTER TABLE plystra.audit_logs ADD CONSTRAINT {constraint} CHECK (resource_id IS DISTINCT FROM '{refused}')"
    ))
    .await
    .unwrap();
    let a = send_to(
        server(),
        "POST",
        "/api/v1/authz/check",
        Some(demo_request("user_alice", "um_alice_finance_reviewer", &refused)),
        &[],
    )
    .await;
    let status = a.status;
    let text = a.text.clone();
    db.batch_execute(&format!("ALTER TABLE plystra.audit_logs DROP CONSTRAINT {constraint}")).await.unwrap();
    assert_eq!(status, 500, "{text}");
    assert!(text.contains("INTERNAL_ERROR"), "{text}");
    assert!(
        !text.contains(&constraint) && !text.contains("violates"),
        "the database's message reached the client: {text}"
    );
    let next = send_to(
        server(),
        "POST",
        "/api/v1/authz/check",
        Some(demo_request("user_alice", "um_alice_finance_reviewer", "invoice_001")),
        &[],
    )
    .await;
    assert_eq!(next.expect_ok(200)["decision"], "allow");
}

#[tokio::test]
async fn unknown_fields_wrong_types_and_malformed_json_are_400() {
    let rid = unique("req_bad");
    let hdr = [("X-Request-ID", rid.as_str())];
    let mut body = demo_request("user_alice", "um_alice_finance_reviewer", "invoice_001");
    body["surprise"] = json!(1);
    let a = send_to(server(), "POST", "/api/v1/authz/check", Some(body), &hdr).await;
    assert_eq!(a.expect_error(400, "VALIDATION_FAILED")["details"]["field"], "surprise");

    // The flat actor form of older clients is not accepted: only the nested actor.
    let flat = json!({"actor_user_id": "user_alice", "actor_member_id": "member_finance_reviewer", "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"});
    let a = send_to(server(), "POST", "/api/v1/authz/check", Some(flat), &hdr).await;
    let field = a.expect_error(400, "VALIDATION_FAILED")["details"]["field"].as_str().unwrap().to_string();
    assert!(field == "actor_user_id" || field == "actor_member_id", "{field}");

    let mut body = demo_request("user_alice", "um_alice_finance_reviewer", "invoice_001");
    body["actor"]["member_id"] = json!(42);
    let a = send_to(server(), "POST", "/api/v1/authz/check", Some(body), &hdr).await;
    assert_eq!(a.expect_error(400, "VALIDATION_FAILED")["details"]["field"], "actor.member_id");

    let a = send_raw(
        "POST",
        "/api/v1/authz/check",
        b"{\"actor\": {".to_vec(),
        &[("content-type", "application/json"), ("X-Request-ID", &rid)],
    )
    .await;
    assert_eq!(a.expect_error(400, "VALIDATION_FAILED")["message"], "Request body is invalid JSON.");
    let a = send_raw("POST", "/api/v1/authz/check", Vec::new(), &[("X-Request-ID", &rid)]).await;
    a.expect_error(400, "VALIDATION_FAILED");
    assert_eq!(audit_rows_for_request(&rid).await, 0);
}

#[tokio::test]
async fn inline_context_requires_an_api_key() {
    // With a session (v1.0's rule); the harness's default credential is an API key.
    let auth = bearer(&admin_session().await);
    let as_session = [("authorization", auth.as_str())];
    let mut body = demo_request("user_alice", "um_alice_finance_reviewer", "invoice_001");
    body["grants"] = json!([{"resource": "invoice", "action": "approve", "scope": "space"}]);
    send_to(server(), "POST", "/api/v1/authz/check", Some(body), &as_session)
        .await
        .expect_error(403, "INLINE_CONTEXT_REQUIRES_API_KEY");
    let body = json!({
        "actor": {"user_id": "u", "member_id": "m", "user_member_id": "b", "space_id": "s"},
        "resource": {"type": "invoice", "id": "invoice_draft_001", "group_path": "finance.apac"},
        "action": "approve"
    });
    send_to(server(), "POST", "/api/v1/authz/explain", Some(body), &as_session)
        .await
        .expect_error(403, "INLINE_CONTEXT_REQUIRES_API_KEY");
}

#[tokio::test]
async fn forwarded_for_reaches_the_audit_row_only_from_a_trusted_proxy() {
    let body = demo_request("user_alice", "um_alice_finance_reviewer", "invoice_001");
    let untrusted =
        send_to(server(), "POST", "/api/v1/authz/check", Some(body.clone()), &[("X-Forwarded-For", "203.0.113.5")])
            .await;
    let id = untrusted.expect_ok(200)["audit_log_id"].as_str().unwrap().to_string();
    assert_eq!(audit_row(&id).await.get::<_, Option<String>>("ip_address").as_deref(), Some("127.0.0.1"));

    let proxied = start_server(&[("TRUSTED_PROXIES", "127.0.0.1/32")]);
    let trusted =
        send_to(&proxied, "POST", "/api/v1/authz/check", Some(body), &[("X-Forwarded-For", "203.0.113.5")]).await;
    let id = trusted.expect_ok(200)["audit_log_id"].as_str().unwrap().to_string();
    assert_eq!(audit_row(&id).await.get::<_, Option<String>>("ip_address").as_deref(), Some("203.0.113.5"));
}

/// Behind a trusted proxy a client writes whatever it likes into the forwarding headers; only what the proxy wrote
/// may name it (an attack on the running front held 40 body shares from one client and would have put a made-up
/// address on its audit rows): an entry the proxy appends with its port, a second X-Forwarded-For line, an entry
/// that is no address, and X-Real-IP beside a passed-through X-Forwarded-For.
#[tokio::test]
async fn a_client_behind_a_trusted_proxy_cannot_name_its_own_address() {
    let body = demo_request("user_alice", "um_alice_finance_reviewer", "invoice_001");
    let ip_of = |answer: Answer| async move {
        let id = answer.expect_ok(200)["audit_log_id"].as_str().unwrap().to_string();
        audit_row(&id).await.get::<_, Option<String>>("ip_address")
    };
    let proxied = start_server(&[("TRUSTED_PROXIES", "127.0.0.1/32")]);
    for (headers, expected) in [
        (vec![("X-Forwarded-For", "198.51.100.66, 203.0.113.5:4431")], "203.0.113.5"),
        (vec![("X-Forwarded-For", "198.51.100.66"), ("X-Forwarded-For", "203.0.113.6")], "203.0.113.6"),
        (vec![("X-Forwarded-For", "198.51.100.66, unknown")], "127.0.0.1"),
        (vec![("X-Real-IP", "198.51.100.66")], "127.0.0.1"),
    ] {
        let answer = send_to(&proxied, "POST", "/api/v1/authz/check", Some(body.clone()), &headers).await;
        assert_eq!(ip_of(answer).await.as_deref(), Some(expected), "{headers:?}");
    }
    let real_ip = start_server(&[("TRUSTED_PROXIES", "127.0.0.1/32"), ("TRUSTED_PROXY_HEADER", "x-real-ip")]);
    let headers = [("X-Forwarded-For", "198.51.100.66"), ("X-Real-IP", "203.0.113.7")];
    let answer = send_to(&real_ip, "POST", "/api/v1/authz/check", Some(body), &headers).await;
    assert_eq!(ip_of(answer).await.as_deref(), Some("203.0.113.7"));
}

#[tokio::test]
async fn audit_write_mode_deny_only_audits_denies_and_manual_audits_nothing() {
    let deny_only = start_server(&[("AUDIT_WRITE_MODE", "deny_only")]);
    let allow = send_to(
        &deny_only,
        "POST",
        "/api/v1/authz/check",
        Some(demo_request("user_alice", "um_alice_finance_reviewer", "invoice_001")),
        &[],
    )
    .await;
    let data = allow.expect_ok(200);
    assert_eq!(data["decision"], "allow");
    assert!(data["audit_log_id"].is_null(), "{}", allow.text);
    assert_eq!(allow.header("x-plystra-audit-log-id"), None);
    let deny = send_to(
        &deny_only,
        "POST",
        "/api/v1/authz/check",
        Some(demo_request("user_alice", "um_alice_finance_reviewer", "invoice_002")),
        &[],
    )
    .await;
    let id = deny.expect_ok(200)["audit_log_id"].as_str().unwrap().to_string();
    audit_row(&id).await;

    let manual = start_server(&[("AUDIT_WRITE_MODE", "manual")]);
    let rid = unique("req_manual");
    let deny = send_to(
        &manual,
        "POST",
        "/api/v1/authz/check",
        Some(demo_request("user_alice", "um_alice_finance_reviewer", "invoice_002")),
        &[("X-Request-ID", &rid)],
    )
    .await;
    assert!(deny.expect_ok(200)["audit_log_id"].is_null());
    assert_eq!(audit_rows_for_request(&rid).await, 0);
}

#[tokio::test]
async fn a_role_that_may_not_set_the_audit_mode_keeps_the_database_setting() {
    let role = format!("plystra_app_{}", std::process::id());
    let db = sql().await;
    db.batch_execute(&format!(
        "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN; GRANT plystra_admin TO {role}; \
         GRANT SELECT ON ALL TABLES IN SCHEMA plystra TO {role};"
    ))
    .await
    .unwrap();
    let url = common::db().url.replacen("://postgres@", &format!("://{role}@"), 1);
    assert_ne!(url, common::db().url, "the test database URL names the postgres user");
    // AUDIT_WRITE_MODE=manual would turn decision audit off, but this role may not change plystra.audit_mode:
    // the server starts anyway and the database's own setting (always) stays in force.
    let s = start_server(&[("DATABASE_URL", &url), ("AUDIT_WRITE_MODE", "manual")]);
    let a = send_to(
        &s,
        "POST",
        "/api/v1/authz/check",
        Some(demo_request("user_alice", "um_alice_finance_reviewer", "invoice_002")),
        &[],
    )
    .await;
    let id = a.expect_ok(200)["audit_log_id"].as_str().expect("still audited").to_string();
    audit_row(&id).await;
}
