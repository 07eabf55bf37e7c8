//! Context Mode over HTTP (docs/v1-reference.md §1.7): an API key may describe the target inline (a resource Plystra does not
//! hold), and its actor and grants; a session may not. Every Space and Group the inline context names must be
//! inside the key's scope. An actor may also be named by its User alone, the binding then resolved (in a scoped
//! key's Space when the request names none). Bad inline input is a 400 naming the field, never a 500.

mod common;

use common::*;
use serde_json::{json, Value};

fn alice() -> Value {
    json!({"user_id": "user_alice", "member_id": "member_finance_reviewer",
           "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"})
}

fn proposal(group_path: &str) -> Value {
    json!({"actor": alice(), "resource": {"type": "invoice", "id": unique("invoice_draft"), "group_path": group_path},
           "action": "approve"})
}

async fn check(body: Value) -> Answer {
    send("POST", "/api/v1/authz/check", Some(body)).await
}

async fn key(level: &str, scope: Value) -> String {
    let mut body = json!({"name": unique("ctx"), "level": level, "permission_keys": ["authz:check"]});
    body.as_object_mut().unwrap().extend(scope.as_object().unwrap().clone());
    post("/api/v1/api-keys", body).await.expect_ok(201)["api_key"].as_str().expect("api_key").to_string()
}

async fn check_with(key: &str, body: Value) -> Answer {
    send_to(server(), "POST", "/api/v1/authz/check", Some(body), &[("x-plystra-api-key", key)]).await
}

#[tokio::test]
async fn an_api_key_asks_about_a_proposed_resource_and_the_audit_row_records_it() {
    let a = check(proposal("finance.apac")).await;
    let answer = a.expect_ok(200).clone();
    assert_eq!(answer["decision"], "allow");
    let b = check(proposal("legal.emea")).await;
    assert_eq!(b.expect_ok(200)["deny_code"], "SCOPE_OUT_OF_BOUNDS");

    let id = answer["audit_log_id"].as_str().expect("audited").to_string();
    let row = sql()
        .await
        .query_one("SELECT trace FROM plystra.audit_logs WHERE id = $1", &[&id])
        .await
        .expect("the decision's audit row");
    let trace: Value = row.get(0);
    assert_eq!(trace["context_mode"], json!({"actor": "core", "target": "inline", "grants": "core"}));
    assert_eq!(trace["target"]["group"]["path"], "finance.apac");

    let e = send("POST", "/api/v1/authz/explain", Some(proposal("finance.apac.new_team"))).await;
    let trace = e.expect_ok(200).clone();
    assert_eq!(trace["decision"], "allow");
    assert!(trace["target"]["group"]["id"].as_str().unwrap().starts_with("group_inline_"));
}

#[tokio::test]
async fn a_registered_resource_is_plystras_whatever_the_request_says() {
    let body = json!({"actor": alice(), "resource": {"type": "invoice", "id": "invoice_002", "group_path": "finance"},
                      "action": "approve"});
    assert_eq!(check(body.clone()).await.expect_ok(200)["deny_code"], "SCOPE_OUT_OF_BOUNDS");
    let e = send("POST", "/api/v1/authz/explain", Some(body)).await;
    assert_eq!(e.expect_ok(200)["context_mode"]["ignored_inline_fields"], json!(["resource.group_path"]));
}

#[tokio::test]
async fn an_api_key_may_supply_the_actor_and_its_grants() {
    let body = json!({
        "actor": {"user_id": "u_partner", "member_id": "m_partner", "user_member_id": "b_partner",
                  "space_id": "space_acme", "user_email": "partner@example.com"},
        "resource": {"type": "invoice", "id": "invoice_draft_partner", "group_path": "finance.apac"},
        "grants": [{"resource": "invoice", "action": "approve", "scope": "group_tree",
                    "scope_anchor_group_path": "finance"}],
        "action": "approve"
    });
    assert_eq!(check(body.clone()).await.expect_ok(200)["decision"], "allow");
    let trace = send("POST", "/api/v1/authz/explain", Some(body.clone())).await.expect_ok(200).clone();
    assert_eq!(trace["context_mode"], json!({"actor": "inline", "target": "inline", "grants": "inline"}));
    assert_eq!(trace["actor"]["user"]["email"], "partner@example.com");
    assert_eq!(trace["matched_candidates"][0]["role"]["key"], "inline");
    // The same actor with a grant on another action has nothing for this one.
    let mut other = body;
    other["grants"][0]["action"] = json!("read");
    assert_eq!(check(other).await.expect_ok(200)["deny_code"], "NO_MATCHING_PERMISSION");
}

#[tokio::test]
async fn a_scoped_key_describes_only_what_lies_inside_its_scope() {
    let apac = key("group", json!({"group_id": "group_finance_apac"})).await;
    assert_eq!(check_with(&apac, proposal("finance.apac")).await.expect_ok(200)["decision"], "allow");
    check_with(&apac, proposal("legal.emea")).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    // A path no group has yet is placed at its Space, which a Group key does not hold.
    check_with(&apac, proposal("finance.apac.new")).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    // Inline grants anchored above its group are outside it too.
    let mut pure = proposal("finance.apac");
    pure["grants"] = json!([{"resource": "invoice", "action": "approve", "scope": "group_tree",
                             "scope_anchor_group_path": "finance"}]);
    check_with(&apac, pure).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    // Another Space's key cannot place a description in this Space.
    sql()
        .await
        .batch_execute(
            "INSERT INTO plystra.spaces (id, name, slug, type, status) VALUES ('space_ctx_b', 'B', 'ctx-b', 'custom', 'active')
             ON CONFLICT DO NOTHING",
        )
        .await
        .unwrap();
    let other = key("space", json!({"space_id": "space_ctx_b"})).await;
    check_with(&other, proposal("finance.apac")).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
}

#[tokio::test]
async fn an_actor_named_by_its_user_alone_is_resolved() {
    let body = json!({"actor": {"user_id": "user_alice"}, "resource_type": "invoice", "resource_id": "invoice_001",
                      "action": "approve"});
    let a = check(body.clone()).await;
    let answer = a.expect_ok(200);
    assert_eq!(answer["decision"], "allow");
    assert_eq!(answer["audit"]["actor_user_member_id"], "um_alice_finance_reviewer");
    // A Space key resolves in its own Space; another Space's key finds no binding of hers to ask about.
    let acme = key("space", json!({"space_id": "space_acme"})).await;
    assert_eq!(check_with(&acme, body.clone()).await.expect_ok(200)["decision"], "allow");
    // A proposal with no Space of its own lies in the resolved binding's Space, and is placed there by the gate.
    let proposal_by_user = json!({"actor": {"user_id": "user_alice"},
                                  "resource": {"type": "invoice", "id": unique("draft"), "group_path": "finance.apac"},
                                  "action": "approve"});
    assert_eq!(check_with(&acme, proposal_by_user.clone()).await.expect_ok(200)["decision"], "allow");
    let apac = key("group", json!({"group_id": "group_finance_apac"})).await;
    assert_eq!(check_with(&apac, proposal_by_user).await.expect_ok(200)["decision"], "allow");
    sql()
        .await
        .batch_execute(
            "INSERT INTO plystra.spaces (id, name, slug, type, status) VALUES ('space_ctx_c', 'C', 'ctx-c', 'custom', 'active')
             ON CONFLICT DO NOTHING",
        )
        .await
        .unwrap();
    let other = key("space", json!({"space_id": "space_ctx_c"})).await;
    check_with(&other, body).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    let nobody = json!({"actor": {"user_id": "user_nobody"}, "resource_type": "invoice", "resource_id": "invoice_001",
                        "action": "approve"});
    // The instance key may ask about anyone: an unknown User is a deny, not an error.
    let d = check(nobody).await;
    assert_eq!(d.expect_ok(200)["deny_code"], "ACTOR_NOT_FOUND");
}

#[tokio::test]
async fn bad_inline_input_is_a_400_naming_the_field() {
    for (patch, field) in [
        (json!({"grants": {"resource": "invoice"}}), "grants"),
        (json!({"grants": [{"resource": "invoice", "action": "approve"}]}), "grants[0].scope"),
        (
            json!({"grants": [{"resource": "invoice", "action": "approve", "scope": "space", "bogus": 1}]}),
            "grants[0].bogus",
        ),
        (json!({"resource": {"type": "invoice", "id": "x", "metadata": "owner"}}), "resource.metadata"),
        (json!({"resource": {"type": "invoice", "id": "x", "group_path": "p".repeat(2000)}}), "resource.group_path"),
    ] {
        let mut body = json!({"actor": alice(), "resource_type": "invoice", "resource_id": "x", "action": "approve"});
        body.as_object_mut().unwrap().extend(patch.as_object().unwrap().clone());
        body.as_object_mut().unwrap().remove("resource_type");
        body.as_object_mut().unwrap().remove("resource_id");
        if body.get("resource").is_none() {
            body["resource"] = json!({"type": "invoice", "id": "x"});
        }
        let a = check(body).await;
        let text = a.text.clone();
        let e = a.expect_error(400, "VALIDATION_FAILED");
        assert!(text.contains(field), "{field} not named in {e}");
    }
}
