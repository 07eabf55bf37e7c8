//! Security review F3 (issue 12 item 3): a scoped credential asks `/authz/check` and `/authz/explain` only
//! about actors, resources and groups inside its scope. Every id in the request is checked (the resource's
//! Space and Group, `actor.space_id`, the binding's and the Member's Space); an id outside the scope and an
//! id that does not exist get the same 403, so answers neither leak other Spaces' data nor enumerate their ids.

mod common;

use common::*;
use serde_json::{json, Value};

const SPACE_B: &str = "space_scope_b";

/// Space B with its own user, Member, binding and invoice, and a Space-B API key holding `authz:check`.
async fn setup() -> &'static str {
    static KEY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    KEY.get_or_init(|| async {
        second_space(SPACE_B, "Evil", "bea", "evil_invoice_1").await;
        let a = post(
            "/api/v1/api-keys",
            json!({"name": "space b", "level": "space", "space_id": SPACE_B, "permission_keys": ["authz:check"]}),
        )
        .await;
        a.expect_ok(201)["api_key"].as_str().expect("api_key").to_string()
    })
    .await
}

async fn as_b(path: &str, body: Value) -> Answer {
    let key = setup().await;
    send_to(server(), "POST", path, Some(body), &[("x-plystra-api-key", key)]).await
}

fn alice() -> Value {
    json!({"user_id": "user_alice", "member_id": "member_finance_reviewer",
           "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"})
}

async fn audit_rows_about(resource_id: &str, space: &str) -> i64 {
    sql()
        .await
        .query_one(
            "SELECT count(*) FROM plystra.audit_logs WHERE resource_id = $1 AND space_id = $2",
            &[&resource_id, &space],
        )
        .await
        .unwrap()
        .get(0)
}

/// The review's reproduction: a Space-B key asks about Alice (Space A) on B's own invoice.
#[tokio::test]
async fn a_space_b_key_cannot_explain_or_check_space_a_actors_on_its_own_resource() {
    let before = audit_rows_about("evil_invoice_1", "space_acme").await;
    for path in ["/api/v1/authz/explain", "/api/v1/authz/check"] {
        let body =
            json!({"actor": alice(), "resource_type": "invoice", "resource_id": "evil_invoice_1", "action": "approve"});
        let a = as_b(path, body).await;
        a.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
        assert!(!a.text.contains("alice@example.com"), "{path} leaked Alice's e-mail: {}", a.text);
        assert!(!a.text.contains("group_finance"), "{path} leaked A's groups: {}", a.text);
    }
    assert_eq!(audit_rows_about("evil_invoice_1", "space_acme").await, before, "B wrote into A's audit chain");
}

/// Lying about the actor's Space does not help: the binding's and the Member's own Space count.
#[tokio::test]
async fn a_space_b_key_cannot_name_space_a_bindings_under_its_own_space_id() {
    let mut actor = alice();
    actor["space_id"] = json!(SPACE_B);
    for resource in ["evil_invoice_1", "no_such_invoice_anywhere"] {
        let body = json!({"actor": actor, "resource_type": "invoice", "resource_id": resource, "action": "approve"});
        let a = as_b("/api/v1/authz/explain", body).await;
        a.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
        assert!(!a.text.contains("alice@example.com"), "leaked Alice's e-mail: {}", a.text);
    }
    // The member alone (no binding) is checked too.
    let body = json!({"actor": {"user_id": "user_bea", "member_id": "member_finance_reviewer", "space_id": SPACE_B},
                      "resource_type": "invoice", "resource_id": "evil_invoice_1", "action": "approve"});
    as_b("/api/v1/authz/check", body).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
}

/// A resource of Space A is out of scope whatever actor the B key names.
#[tokio::test]
async fn a_space_b_key_cannot_ask_about_space_a_resources() {
    let body = json!({"actor": {"user_id": "user_bea", "member_id": "member_bea", "user_member_id": "um_bea", "space_id": SPACE_B},
                      "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"});
    as_b("/api/v1/authz/explain", body).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
}

/// "Exists in another Space" and "does not exist" get the same answer: ids of other Spaces cannot be
/// enumerated through the error.
#[tokio::test]
async fn unknown_ids_and_other_spaces_ids_get_the_same_answer() {
    let pairs = [
        // (an id of Space A, an id that does not exist), in each position of the request.
        (
            json!({"user_id": "user_bea", "member_id": "member_bea", "user_member_id": "um_alice_finance_reviewer", "space_id": SPACE_B}),
            json!({"user_id": "user_bea", "member_id": "member_bea", "user_member_id": "um_nobody_anywhere", "space_id": SPACE_B}),
        ),
        (
            json!({"user_id": "user_bea", "member_id": "member_finance_reviewer", "user_member_id": "um_bea", "space_id": SPACE_B}),
            json!({"user_id": "user_bea", "member_id": "member_nobody_anywhere", "user_member_id": "um_bea", "space_id": SPACE_B}),
        ),
        (
            json!({"user_id": "user_bea", "member_id": "member_bea", "user_member_id": "um_bea", "space_id": "space_acme"}),
            json!({"user_id": "user_bea", "member_id": "member_bea", "user_member_id": "um_bea", "space_id": "space_nowhere"}),
        ),
    ];
    for (elsewhere, nowhere) in pairs {
        let ask = |actor: &Value| json!({"actor": actor, "resource_type": "invoice", "resource_id": "evil_invoice_1", "action": "approve"});
        let a = as_b("/api/v1/authz/check", ask(&elsewhere)).await;
        let b = as_b("/api/v1/authz/check", ask(&nowhere)).await;
        a.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
        b.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
        assert_eq!(a.body["error"]["message"], b.body["error"]["message"], "{elsewhere} vs {nowhere}");
        assert_eq!(a.body["error"]["details"], b.body["error"]["details"]);
    }
    // A resource of Space A and a resource that does not exist, asked with B's own actor.
    let bea =
        json!({"user_id": "user_bea", "member_id": "member_bea", "user_member_id": "um_bea", "space_id": SPACE_B});
    let a = as_b(
        "/api/v1/authz/check",
        json!({"actor": bea, "resource_type": "invoice", "resource_id": "invoice_002", "action": "approve"}),
    )
    .await;
    let b = as_b(
        "/api/v1/authz/check",
        json!({"actor": bea, "resource_type": "invoice", "resource_id": "invoice_nowhere", "action": "approve"}),
    )
    .await;
    a.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    b.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    assert_eq!(a.body["error"]["message"], b.body["error"]["message"]);
    assert_eq!(a.body["error"]["details"], b.body["error"]["details"]);
}

/// Inside its scope the B key still decides (and explains) as before.
#[tokio::test]
async fn a_space_b_key_still_decides_inside_space_b() {
    let bea =
        json!({"user_id": "user_bea", "member_id": "member_bea", "user_member_id": "um_bea", "space_id": SPACE_B});
    let a = as_b(
        "/api/v1/authz/explain",
        json!({"actor": bea, "resource_type": "invoice", "resource_id": "evil_invoice_1", "action": "approve"}),
    )
    .await;
    let trace = a.expect_ok(200);
    assert_eq!(trace["decision"], "deny");
    let a = as_b(
        "/api/v1/authz/check",
        json!({"actor": bea, "resource_type": "invoice", "resource_id": "evil_invoice_1", "action": "approve"}),
    )
    .await;
    a.expect_ok(200);
}

/// A Group-level key decides about its Group's resources (actors of the Group's Space), but an explanation,
/// whose trace lists the actor's candidate grants anchored anywhere in the Space, needs the whole Space.
#[tokio::test]
async fn a_group_key_checks_inside_its_group_but_does_not_explain() {
    let a = post(
        "/api/v1/api-keys",
        json!({"name": "finance", "level": "group", "group_id": "group_finance", "permission_keys": ["authz:check"]}),
    )
    .await;
    let key = a.expect_ok(201)["api_key"].as_str().expect("api_key").to_string();
    let ask = |resource: &str| json!({"actor": alice(), "resource_type": "invoice", "resource_id": resource, "action": "approve"});
    let as_group = |path: &'static str, body: Value| {
        let key = key.clone();
        async move { send_to(server(), "POST", path, Some(body), &[("x-plystra-api-key", &key)]).await }
    };
    // invoice_001 lies in group_finance_apac, inside the key's Group.
    assert_eq!(as_group("/api/v1/authz/check", ask("invoice_001")).await.expect_ok(200)["decision"], "allow");
    let e = as_group("/api/v1/authz/explain", ask("invoice_001")).await;
    e.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    assert!(!e.text.contains("alice@example.com"));
    let mut explain_flag = ask("invoice_001");
    explain_flag["explain"] = json!(true);
    as_group("/api/v1/authz/check", explain_flag).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    // invoice_002 lies in group_legal_emea, outside it.
    as_group("/api/v1/authz/check", ask("invoice_002")).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
}
