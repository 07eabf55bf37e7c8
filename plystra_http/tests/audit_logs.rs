//! AuditLog reads: every filter of docs/v1-reference.md §1.9, opaque cursors, detail with trace, the Space-scoped form,
//! and no way to change a row over HTTP.

mod common;

use common::*;
use serde_json::{json, Value};

/// Makes `n` decisions under one request id and returns it.
async fn decisions(n: usize, resource: &str) -> String {
    let rid = unique("req_audit");
    for _ in 0..n {
        let body = json!({
            "actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer", "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
            "resource_type": "invoice", "resource_id": resource, "action": "approve"
        });
        send_to(server(), "POST", "/api/v1/authz/check", Some(body), &[("X-Request-ID", &rid)]).await.expect_ok(200);
    }
    rid
}

#[tokio::test]
async fn list_items_carry_the_reference_fields_newest_first() {
    let rid = decisions(2, "invoice_001").await;
    let a = get(&format!("/api/v1/audit/logs?request_id={rid}")).await;
    let data = a.expect_ok(200).as_array().unwrap().clone();
    assert_eq!(data.len(), 2);
    let mut keys: Vec<String> = data[0].as_object().unwrap().keys().cloned().collect();
    keys.sort();
    let mut expected = vec![
        "id",
        "space_id",
        "actor_user_id",
        "actor_member_id",
        "actor_user_member_id",
        "action",
        "resource_type",
        "resource_id",
        "decision",
        "deny_code",
        "request_id",
        "ip_address",
        "user_agent",
        "created_at",
    ];
    expected.sort();
    assert_eq!(keys, expected);
    assert_eq!(data[0]["deny_code"], "", "nil strings are empty strings");
    assert_eq!(data[0]["ip_address"], "127.0.0.1");
    assert!(data[0]["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(data[0]["created_at"].as_str() >= data[1]["created_at"].as_str());
    assert_eq!(a.body["pagination"], json!({"limit": 50, "cursor": null, "has_more": false}));
}

#[tokio::test]
async fn every_filter_narrows_the_list() {
    let allow = decisions(1, "invoice_001").await;
    let deny = decisions(1, "invoice_002").await;
    let row = &get(&format!("/api/v1/audit/logs?request_id={deny}")).await.body["data"][0].clone();
    assert_eq!(row["decision"], "deny");
    let now = time::OffsetDateTime::now_utc();
    let fmt = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap();
    let from = fmt(now - time::Duration::minutes(5));
    let to = fmt(now + time::Duration::minutes(5));
    for (filter, value) in [
        ("space_id", "space_acme"),
        ("actor_user_id", "user_alice"),
        ("actor_member_id", "member_finance_reviewer"),
        ("actor_user_member_id", "um_alice_finance_reviewer"),
        ("resource_type", "invoice"),
        ("resource_id", "invoice_002"),
        ("decision", "deny"),
        ("deny_code", "SCOPE_OUT_OF_BOUNDS"),
        ("created_at_from", from.as_str()),
        ("created_at_to", to.as_str()),
    ] {
        let url = format!("/api/v1/audit/logs?request_id={deny}&{filter}={}", urlencode(value));
        let data = get(&url).await.expect_ok(200).as_array().unwrap().clone();
        assert_eq!(data.len(), 1, "{filter}={value} should keep the row");
        let other = if filter.starts_with("created_at_from") {
            fmt(now + time::Duration::minutes(5))
        } else if filter == "created_at_to" {
            fmt(now - time::Duration::minutes(5))
        } else {
            "nothing_like_it".into()
        };
        let url = format!("/api/v1/audit/logs?request_id={deny}&{filter}={}", urlencode(&other));
        let data = get(&url).await.expect_ok(200).as_array().unwrap().clone();
        assert!(data.is_empty(), "{filter}={other} should drop the row");
    }
    let data = get(&format!("/api/v1/audit/logs?request_id={allow}&decision=allow")).await.body["data"].clone();
    assert_eq!(data.as_array().unwrap().len(), 1);
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn a_bad_date_is_400_naming_the_filter() {
    let e = get("/api/v1/audit/logs?created_at_from=yesterday").await;
    let err = e.expect_error(400, "VALIDATION_FAILED");
    assert_eq!(err["message"], "created_at_from must be RFC3339.");
    assert_eq!(err["details"]["field"], "created_at_from");
    get("/api/v1/audit/logs?created_at_to=2026-13-01").await.expect_error(400, "VALIDATION_FAILED");
}

#[tokio::test]
async fn cursors_walk_the_list_without_gaps_or_repeats() {
    let rid = decisions(5, "invoice_001").await;
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("/api/v1/audit/logs?request_id={rid}&limit=2&cursor={c}"),
            None => format!("/api/v1/audit/logs?request_id={rid}&limit=2"),
        };
        let a = get(&url).await;
        let data = a.expect_ok(200).as_array().unwrap().clone();
        assert_eq!(a.body["pagination"]["limit"], 2);
        seen.extend(data.iter().map(|r| r["id"].as_str().unwrap().to_string()));
        if a.body["pagination"]["has_more"] == json!(true) {
            cursor = Some(a.body["pagination"]["cursor"].as_str().unwrap().to_string());
        } else {
            assert!(a.body["pagination"]["cursor"].is_null());
            break;
        }
    }
    assert_eq!(seen.len(), 5);
    let mut unique_ids = seen.clone();
    unique_ids.sort();
    unique_ids.dedup();
    assert_eq!(unique_ids.len(), 5);
    get("/api/v1/audit/logs?cursor=not-a-cursor").await.expect_error(400, "VALIDATION_FAILED");
    // A limit outside 1..200 falls back to the default.
    assert_eq!(get("/api/v1/audit/logs?limit=500").await.body["pagination"]["limit"], 50);
}

#[tokio::test]
async fn detail_adds_the_trace_and_a_missing_id_is_404() {
    let rid = decisions(1, "invoice_002").await;
    let item = get(&format!("/api/v1/audit/logs?request_id={rid}")).await.body["data"][0].clone();
    let id = item["id"].as_str().unwrap();
    let a = get(&format!("/api/v1/audit/logs/{id}")).await;
    let detail = a.expect_ok(200);
    assert_eq!(detail["trace"]["deny_code"], "SCOPE_OUT_OF_BOUNDS");
    let mut without_trace = detail.clone();
    without_trace.as_object_mut().unwrap().remove("trace");
    assert_eq!(without_trace, item);
    get("/api/v1/audit/logs/audit_does_not_exist").await.expect_error(404, "AUDIT_LOG_NOT_FOUND");
}

#[tokio::test]
async fn the_space_scoped_form_sees_only_its_space() {
    let rid = decisions(1, "invoice_001").await;
    let data = get(&format!("/api/v1/spaces/space_acme/audit-logs?request_id={rid}")).await.expect_ok(200).clone();
    let id = data[0]["id"].as_str().unwrap().to_string();
    let other: Value =
        get(&format!("/api/v1/spaces/space_other/audit-logs?request_id={rid}")).await.expect_ok(200).clone();
    assert_eq!(other, json!([]));
    // A space_id query cannot widen the Space-scoped route.
    let other = get(&format!("/api/v1/spaces/space_other/audit-logs?request_id={rid}&space_id=space_acme")).await.body
        ["data"]
        .clone();
    assert_eq!(other, json!([]));
    get(&format!("/api/v1/spaces/space_acme/audit-logs/{id}")).await.expect_ok(200);
    get(&format!("/api/v1/spaces/space_other/audit-logs/{id}")).await.expect_error(404, "AUDIT_LOG_NOT_FOUND");
}

#[tokio::test]
async fn audit_rows_cannot_be_changed_over_http() {
    let rid = decisions(1, "invoice_001").await;
    let id =
        get(&format!("/api/v1/audit/logs?request_id={rid}")).await.body["data"][0]["id"].as_str().unwrap().to_string();
    send("DELETE", &format!("/api/v1/audit/logs/{id}"), None).await.expect_error(405, "METHOD_NOT_ALLOWED");
    send("PATCH", &format!("/api/v1/audit/logs/{id}"), Some(json!({"decision": "allow"})))
        .await
        .expect_error(405, "METHOD_NOT_ALLOWED");
    send("POST", "/api/v1/audit/logs", Some(json!({}))).await.expect_error(405, "METHOD_NOT_ALLOWED");
    assert_eq!(get(&format!("/api/v1/audit/logs/{id}")).await.body["data"]["decision"], "allow");
}
