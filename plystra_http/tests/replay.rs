//! Replay over HTTP (`POST /api/v1/audit/logs/{id}/replay`): an audited decision asked again against today's
//! data. A revoke turns an allow into a deny, a new grant a deny into an allow, an untouched decision stays
//! the same; a replay writes no decision row unless asked (and then needs authz:check too); another Space's
//! admin gets the answer a row that does not exist gets; bad ids are 400, never 500.

mod common;

use common::*;
use serde_json::{json, Value};

/// A fresh binding of a fresh User to `member` in the demo Space (the tests run side by side; each revokes or
/// grants only what it made).
async fn fresh_binding(member: &str) -> (String, String) {
    let user =
        post("/api/v1/users", json!({"email": format!("{}@example.com", unique("replay"))})).await.expect_ok(201)["id"]
            .as_str()
            .unwrap()
            .to_string();
    let um = post(
        "/api/v1/spaces/space_acme/user-members",
        json!({"user_id": user, "member_id": member, "relation_type": "login"}),
    )
    .await
    .expect_ok(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    (user, um)
}

/// Decides `approve` on `invoice` for the binding and returns the audit row id.
async fn decide(user: &str, member: &str, um: &str, invoice: &str) -> (String, Value) {
    let body = json!({
        "actor": {"user_id": user, "member_id": member, "user_member_id": um, "space_id": "space_acme"},
        "resource_type": "invoice", "resource_id": invoice, "action": "approve"
    });
    let data = post("/api/v1/authz/check", body).await.expect_ok(200).clone();
    (data["audit_log_id"].as_str().expect("an audited decision").to_string(), data)
}

async fn replay(id: &str, body: Option<Value>) -> Answer {
    send("POST", &format!("/api/v1/audit/logs/{id}/replay"), body).await
}

async fn rows_of_binding(um: &str) -> i64 {
    sql()
        .await
        .query_one("SELECT count(*) FROM plystra.audit_logs WHERE actor_user_member_id = $1", &[&um])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn an_allow_becomes_a_deny_after_the_binding_is_revoked() {
    let member = "member_finance_reviewer";
    let (user, um) = fresh_binding(member).await;
    let (id, data) = decide(&user, member, &um, "invoice_001").await;
    assert_eq!(data["decision"], "allow");
    post(&format!("/api/v1/spaces/space_acme/user-members/{um}/revoke"), json!({})).await.expect_ok(200);
    let before = rows_of_binding(&um).await;
    let r = replay(&id, None).await.expect_ok(200).clone();
    assert_eq!(r["audit_log_id"], id.as_str());
    assert_eq!(r["then"]["decision"], "allow");
    assert_eq!(r["now"]["decision"], "deny");
    assert_eq!(r["now"]["deny_code"], "USER_MEMBER_REVOKED");
    assert_eq!(r["decision_changed"], true);
    let binding = r["changes"].as_array().unwrap().iter().find(|c| c["kind"] == "binding").expect("binding changed");
    assert_eq!(binding["id"], um.as_str());
    assert_eq!(binding["then"]["status"], "active");
    assert_eq!(binding["now"]["status"], "revoked");
    assert_eq!(r["now"]["audit_log_id"], Value::Null, "a replay reads");
    assert_eq!(rows_of_binding(&um).await, before, "no decision row written");
    // Asked for, the replay's decision is audited like any decision (authz:check held by the harness key).
    let audited = replay(&id, Some(json!({"audit": true}))).await.expect_ok(200).clone();
    let written = audited["now"]["audit_log_id"].as_str().expect("a row was written");
    assert_eq!(rows_of_binding(&um).await, before + 1);
    let row = get(&format!("/api/v1/audit/logs/{written}")).await.expect_ok(200).clone();
    assert_eq!(row["deny_code"], "USER_MEMBER_REVOKED");
}

#[tokio::test]
async fn a_deny_becomes_an_allow_after_a_grant() {
    let member = post("/api/v1/spaces/space_acme/members", json!({"display_name": "Replay newcomer"}))
        .await
        .expect_ok(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (user, um) = fresh_binding(&member).await;
    let (id, data) = decide(&user, &member, &um, "invoice_001").await;
    assert_eq!(data["decision"], "deny");
    let mr = post(
        "/api/v1/spaces/space_acme/member-roles",
        json!({"member_id": member, "role_id": "role_finance_approver", "scope_anchor_group_id": "group_finance"}),
    )
    .await
    .expect_ok(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = replay(&id, None).await.expect_ok(200).clone();
    assert_eq!(r["then"]["decision"], "deny");
    assert_eq!(r["then"]["deny_code"], data["deny_code"]);
    assert_eq!(r["now"]["decision"], "allow");
    assert_eq!(r["now"]["deny_code"], Value::Null);
    let added = r["changes"].as_array().unwrap().iter().find(|c| c["kind"] == "grant").expect("a grant change");
    assert_eq!(added["change"], "added");
    assert!(added["id"].as_str().unwrap().starts_with(&format!("{mr}/")), "{added}");
    assert_eq!(added["now"]["scope_anchor"]["path"], "finance");
}

#[tokio::test]
async fn an_untouched_decision_replays_the_same() {
    let (id, _) = decide("user_alice", "member_finance_reviewer", "um_alice_finance_reviewer", "invoice_002").await;
    let r = replay(&id, None).await.expect_ok(200).clone();
    assert_eq!(r["then"]["decision"], "deny");
    assert_eq!(r["now"]["decision"], "deny");
    assert_eq!(r["now"]["deny_code"], r["then"]["deny_code"]);
    assert_eq!(r["decision_changed"], false);
    assert_eq!(r["deny_code_changed"], false);
    assert_eq!(r["changes"], json!([]), "nothing changed: {}", r["changes"]);
    assert_eq!(r["request"]["resource_id"], "invoice_002");
}

#[tokio::test]
async fn another_spaces_admin_gets_the_answer_of_a_row_that_does_not_exist() {
    let (id, _) = decide("user_alice", "member_finance_reviewer", "um_alice_finance_reviewer", "invoice_001").await;
    let space = unique("space_replay");
    post("/api/v1/spaces", json!({"id": space, "name": "Elsewhere", "slug": space.replace('_', "-")}))
        .await
        .expect_ok(201);
    let key = post(
        "/api/v1/api-keys",
        json!({"name": "other admin", "level": "space", "space_id": space, "permission_keys": ["*"]}),
    )
    .await
    .expect_ok(201)["key"]
        .as_str()
        .unwrap()
        .to_string();
    let as_other = |path: String| {
        let key = key.clone();
        async move { send_to(server(), "POST", &path, None, &[("X-Plystra-API-Key", &key)]).await }
    };
    let foreign = as_other(format!("/api/v1/audit/logs/{id}/replay")).await;
    let missing = as_other("/api/v1/audit/logs/audit_0000000000000000/replay".into()).await;
    foreign.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    missing.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    assert_eq!(foreign.body["error"]["message"], missing.body["error"]["message"]);
    // Its own Space's reads still work: the key is not simply broken.
    send_to(server(), "GET", &format!("/api/v1/spaces/{space}/audit-logs"), None, &[("X-Plystra-API-Key", &key)])
        .await
        .expect_ok(200);
}

#[tokio::test]
async fn a_row_that_does_not_exist_is_404_and_bad_ids_are_400() {
    replay("audit_0000000000000000", None).await.expect_error(404, "AUDIT_LOG_NOT_FOUND");
    let e = replay("bad%20id%27", None).await;
    assert_eq!(e.expect_error(400, "VALIDATION_FAILED")["details"]["field"], "audit_log_id");
    let long = "a".repeat(300);
    replay(&long, None).await.expect_error(400, "VALIDATION_FAILED");
    replay("audit_0000000000000000", Some(json!({"audit": "yes"}))).await.expect_error(400, "VALIDATION_FAILED");
    replay("audit_0000000000000000", Some(json!({"nope": 1}))).await.expect_error(400, "VALIDATION_FAILED");
    // A management row is not a decision: nothing to replay.
    let user = post("/api/v1/users", json!({"email": format!("{}@example.com", unique("mgmt"))})).await.expect_ok(201)
        ["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mgmt: String = sql()
        .await
        .query_one("SELECT id FROM plystra.audit_logs WHERE action = 'user.created' AND resource_id = $1", &[&user])
        .await
        .unwrap()
        .get(0);
    let e = replay(&mgmt, None).await;
    assert_eq!(e.expect_error(400, "VALIDATION_FAILED")["details"]["field"], "audit_log_id");
}

#[tokio::test]
async fn an_audited_replay_needs_authz_check_too() {
    let (id, _) = decide("user_alice", "member_finance_reviewer", "um_alice_finance_reviewer", "invoice_001").await;
    let key = post(
        "/api/v1/api-keys",
        json!({"name": "auditor", "level": "space", "space_id": "space_acme", "permission_keys": ["audit:read"]}),
    )
    .await
    .expect_ok(201)["key"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v1/audit/logs/{id}/replay");
    send_to(server(), "POST", &path, None, &[("X-Plystra-API-Key", &key)]).await.expect_ok(200);
    send_to(server(), "POST", &path, Some(json!({"audit": true})), &[("X-Plystra-API-Key", &key)])
        .await
        .expect_error(403, "ADMIN_PERMISSION_REQUIRED");
}

#[tokio::test]
async fn another_spaces_row_reads_as_missing_on_get_too() {
    let (id, _) = decide("user_alice", "member_finance_reviewer", "um_alice_finance_reviewer", "invoice_001").await;
    let space = unique("space_replay_get");
    post("/api/v1/spaces", json!({"id": space, "name": "Elsewhere", "slug": space.replace('_', "-")}))
        .await
        .expect_ok(201);
    let key = post(
        "/api/v1/api-keys",
        json!({"name": "other reader", "level": "space", "space_id": space, "permission_keys": ["audit:read"]}),
    )
    .await
    .expect_ok(201)["key"]
        .as_str()
        .unwrap()
        .to_string();
    let foreign =
        send_to(server(), "GET", &format!("/api/v1/audit/logs/{id}"), None, &[("X-Plystra-API-Key", &key)]).await;
    let missing =
        send_to(server(), "GET", "/api/v1/audit/logs/audit_ffffffffffffffff", None, &[("X-Plystra-API-Key", &key)])
            .await;
    foreign.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    missing.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    assert_eq!(
        foreign.body["error"],
        json!({"code": foreign.body["error"]["code"], "message": missing.body["error"]["message"],
        "details": missing.body["error"]["details"], "request_id": foreign.body["request_id"]})
    );
}

#[tokio::test]
async fn a_spaces_chain_is_verified_on_demand_by_its_own_admins_only() {
    decide("user_alice", "member_finance_reviewer", "um_alice_finance_reviewer", "invoice_001").await;
    let v = post("/api/v1/spaces/space_acme/audit-chain/verify", json!({})).await.expect_ok(200).clone();
    assert_eq!(v["space_id"], "space_acme");
    assert!(v["sealed_rows"].as_i64().unwrap() + v["unsealed_rows"].as_i64().unwrap() > 0, "{v}");
    assert!(v["status"] == "intact" || v["status"] == "problem", "{v}");
    let space = unique("space_chain");
    post("/api/v1/spaces", json!({"id": space, "name": "Chain", "slug": space.replace('_', "-")})).await.expect_ok(201);
    let key = post(
        "/api/v1/api-keys",
        json!({"name": "chain", "level": "space", "space_id": space, "permission_keys": ["audit:read"]}),
    )
    .await
    .expect_ok(201)["key"]
        .as_str()
        .unwrap()
        .to_string();
    send_to(server(), "POST", "/api/v1/spaces/space_acme/audit-chain/verify", None, &[("X-Plystra-API-Key", &key)])
        .await
        .expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    let own = send_to(
        server(),
        "POST",
        &format!("/api/v1/spaces/{space}/audit-chain/verify"),
        None,
        &[("X-Plystra-API-Key", &key)],
    )
    .await;
    assert_eq!(own.expect_ok(200)["status"], "intact", "a Space with no rows has nothing broken");
}
