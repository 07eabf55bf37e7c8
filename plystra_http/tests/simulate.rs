//! POST /api/v1/spaces/{space_id}/authz/simulate: what /authz/explain would answer for any binding of the Space
//! on any of its resources, asked by a credential that holds authz:read on the whole Space, with no audit row.
//! The binding and the resource must be the path's Space's: one of another Space is refused exactly as one that
//! does not exist. /authz/check's session rule (a session decides only as its own binding) is unchanged.

mod common;

use common::*;
use serde_json::{json, Value};

const SIMULATE: &str = "/api/v1/spaces/space_acme/authz/simulate";

fn ask(binding: &str, resource: &str) -> Value {
    json!({"actor": {"user_member_id": binding}, "resource_type": "invoice", "resource_id": resource, "action": "approve"})
}

/// A new user bound to the APAC Invoice Creator (who may approve nothing) holding `grants`; its session token.
async fn session_with(prefix: &str, grants: &[GrantSpec<'_>]) -> String {
    let hash = plystra_http::auth::password::hash(DEMO_PASSWORD);
    let (_, email) = make_user(prefix, None, &hash, ("space_acme", "member_invoice_creator"), grants).await;
    bearer(&session_token(&email).await)
}

async fn simulate_as(auth: &str, path: &str, body: Value, request_id: &str) -> Answer {
    send_to(server(), "POST", path, Some(body), &[("authorization", auth), ("X-Request-ID", request_id)]).await
}

async fn rows_with_request_id(rid: &str) -> i64 {
    sql()
        .await
        .query_one("SELECT count(*) FROM plystra.audit_logs WHERE request_id = $1", &[&rid])
        .await
        .unwrap()
        .get(0)
}

/// A Space, a binding and a resource outside space_acme, to be refused as missing ones are.
async fn other_space() {
    sql()
        .await
        .batch_execute(
            "INSERT INTO plystra.spaces (id, name, slug, type) VALUES ('space_sim_other', 'Other', 'sim-other', 'custom') ON CONFLICT DO NOTHING;
             INSERT INTO plystra.members (id, space_id, display_name) VALUES ('member_sim_other', 'space_sim_other', 'Other') ON CONFLICT DO NOTHING;
             INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type)
                 VALUES ('um_sim_other', 'user_bob', 'member_sim_other', 'space_sim_other', 'login') ON CONFLICT DO NOTHING;
             INSERT INTO plystra.resources (id, resource_type, space_id, display_name)
                 VALUES ('invoice_sim_other', 'invoice', 'space_sim_other', 'Other') ON CONFLICT DO NOTHING;",
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_space_reader_sees_bobs_allow_and_anothers_deny_with_no_audit_row() {
    let reader = session_with("user_sim_reader", &[("space_admin", "authz:read", Some("space_acme"), None)]).await;
    let rid = unique("req_simulate");
    let a = simulate_as(&reader, SIMULATE, ask("um_bob_finance_reviewer", "invoice_001"), &rid).await;
    let d = a.expect_ok(200);
    assert_eq!((d["decision"].as_str(), d["simulated"].as_bool()), (Some("allow"), Some(true)), "{}", a.text);
    assert_eq!(d["actor"]["user_member"]["id"], "um_bob_finance_reviewer");
    assert_eq!(d["actor"]["user"]["id"], "user_bob");
    assert!(d["audit"]["audit_log_id"].is_null());
    assert!(d["matched_candidates"].as_array().is_some_and(|c| !c.is_empty()), "the trace lists the grant");
    // Another binding's deny, with its deny code: the same answer /authz/explain gives (asked with the admin key).
    let b = simulate_as(&reader, SIMULATE, ask("um_bob_finance_reviewer", "invoice_002"), &rid).await;
    assert_eq!(b.expect_ok(200)["deny_code"], "SCOPE_OUT_OF_BOUNDS", "{}", b.text);
    let revoked = simulate_as(&reader, SIMULATE, ask("um_alice_finance_reviewer_revoked", "invoice_001"), &rid).await;
    let r = revoked.expect_ok(200);
    assert_eq!((r["decision"].as_str(), r["deny_code"].as_str()), (Some("deny"), Some("USER_MEMBER_REVOKED")));
    let mut explain_body = ask("um_alice_finance_reviewer_revoked", "invoice_001");
    explain_body["actor"] = json!({"user_id": "user_alice", "member_id": "member_finance_reviewer",
        "user_member_id": "um_alice_finance_reviewer_revoked", "space_id": "space_acme"});
    let e = send("POST", "/api/v1/authz/explain", Some(explain_body)).await;
    let e = e.expect_ok(200);
    let strip = |v: &Value| {
        let mut v = v.clone();
        for k in ["trace_id", "audit", "simulated", "request"] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    };
    assert_eq!(strip(r), strip(e), "the same decision and trace as explain");
    // The user_id + member_id form names the same binding.
    let by_user = json!({"actor": {"user_id": "user_bob", "member_id": "member_finance_reviewer"},
        "resource": {"type": "invoice", "id": "invoice_001"}, "action": "approve"});
    let u = simulate_as(&reader, SIMULATE, by_user, &rid).await;
    assert_eq!(u.expect_ok(200)["actor"]["user_member"]["id"], "um_bob_finance_reviewer");
    // Alice holds three bindings to the Finance Reviewer: which one would act is not guessed.
    let ambiguous = json!({"actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer"},
        "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"});
    let a = simulate_as(&reader, SIMULATE, ambiguous, &rid).await;
    assert_eq!(a.expect_error(400, "VALIDATION_FAILED")["details"]["field"], "actor.user_member_id");
    // No audit row for any of them, though every decision is audited (plystra.audit_mode always, the default);
    // the same request id on a check writes one, so the count can see rows.
    assert_eq!(rows_with_request_id(&rid).await, 0, "a simulation writes no audit row");
    let check = json!({"actor": {"user_id": "user_bob", "member_id": "member_finance_reviewer",
        "user_member_id": "um_bob_finance_reviewer", "space_id": "space_acme"},
        "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"});
    send_to(server(), "POST", "/api/v1/authz/check", Some(check), &[("X-Request-ID", &rid)]).await.expect_ok(200);
    assert_eq!(rows_with_request_id(&rid).await, 1);
}

#[tokio::test]
async fn less_standing_and_other_spaces_are_refused() {
    other_space().await;
    let rid = unique("req_simulate_refused");
    let body = ask("um_bob_finance_reviewer", "invoice_001");
    let other_admin =
        session_with("user_sim_other_admin", &[("space_admin", "authz:read", Some("space_sim_other"), None)]).await;
    simulate_as(&other_admin, SIMULATE, body.clone(), &rid).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    let none = session_with("user_sim_none", &[]).await;
    simulate_as(&none, SIMULATE, body.clone(), &rid).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    // May ask for decisions (authz:check) but not review the Space's access.
    let checker = session_with("user_sim_checker", &[("space_admin", "authz:check", Some("space_acme"), None)]).await;
    simulate_as(&checker, SIMULATE, body.clone(), &rid).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    // A Group admin reads part of the Space only: refused.
    let group =
        session_with("user_sim_group", &[("group_admin", "authz:read", Some("space_acme"), Some("group_finance"))])
            .await;
    simulate_as(&group, SIMULATE, body.clone(), &rid).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    let anonymous = send_to(server(), "POST", SIMULATE, Some(body), &[("authorization", "")]).await;
    anonymous.expect_error(401, "AUTHENTICATION_REQUIRED");
    assert_eq!(rows_with_request_id(&rid).await, 0);
}

#[tokio::test]
async fn a_binding_or_resource_of_another_space_is_refused_as_a_missing_one() {
    other_space().await;
    let reader = session_with("user_sim_oracle", &[("space_admin", "authz:read", Some("space_acme"), None)]).await;
    let refused = |body: Value| {
        let reader = reader.clone();
        async move {
            let a = simulate_as(&reader, SIMULATE, body, "req_sim_oracle").await;
            (a.status, a.body["error"]["code"].clone(), a.body["error"]["message"].clone())
        }
    };
    let elsewhere = refused(ask("um_sim_other", "invoice_001")).await;
    let nowhere = refused(ask("um_sim_does_not_exist", "invoice_001")).await;
    assert_eq!(elsewhere, nowhere, "a binding of another Space is answered as a missing one");
    assert_eq!(elsewhere.0, 404);
    assert_eq!(elsewhere.1, "USER_MEMBER_NOT_FOUND");
    let by_user = |member: &str| {
        json!({"actor": {"user_id": "user_bob", "member_id": member},
        "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"})
    };
    assert_eq!(refused(by_user("member_sim_other")).await, nowhere, "so is one named by its User and Member");
    // The path's Space named in the actor must be the path's.
    let mut wrong_space = ask("um_bob_finance_reviewer", "invoice_001");
    wrong_space["actor"]["space_id"] = json!("space_sim_other");
    assert_eq!(refused(wrong_space).await, nowhere);
    let elsewhere = refused(ask("um_bob_finance_reviewer", "invoice_sim_other")).await;
    let nowhere = refused(ask("um_bob_finance_reviewer", "invoice_sim_does_not_exist")).await;
    assert_eq!(elsewhere, nowhere, "a resource of another Space is answered as a missing one");
    assert_eq!((elsewhere.0, elsewhere.1.as_str()), (404, Some("RESOURCE_NOT_FOUND")));
    // A resource of the right id under another type is not this one either.
    let mut other_type = ask("um_bob_finance_reviewer", "invoice_001");
    other_type["resource_type"] = json!("contract");
    assert_eq!(refused(other_type).await, nowhere);
}

#[tokio::test]
async fn bad_bodies_and_inline_context_are_refused() {
    let reader = session_with("user_sim_bad", &[("space_admin", "authz:read", Some("space_acme"), None)]).await;
    let post = |body: Value| {
        let reader = reader.clone();
        async move { simulate_as(&reader, SIMULATE, body, "req_sim_bad").await }
    };
    post(json!({"resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"}))
        .await
        .expect_error(400, "VALIDATION_FAILED");
    post(json!({"actor": {"user_member_id": "um_bob_finance_reviewer"}, "resource_type": "invoice", "resource_id": "invoice_001"}))
        .await
        .expect_error(400, "VALIDATION_FAILED");
    post(json!({"actor": {"user_id": "user_bob"}, "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"}))
        .await
        .expect_error(400, "VALIDATION_FAILED");
    let mut grants = ask("um_bob_finance_reviewer", "invoice_002");
    grants["grants"] = json!([{"resource": "invoice", "action": "approve", "scope": "space"}]);
    let g = post(grants).await;
    assert_eq!(g.expect_error(400, "VALIDATION_FAILED")["details"]["field"], "grants");
    let mut inline = ask("um_bob_finance_reviewer", "invoice_002");
    inline["resource"] = json!({"type": "invoice", "id": "invoice_002", "group_path": "finance"});
    let i = post(inline).await;
    assert_eq!(i.expect_error(400, "VALIDATION_FAILED")["details"]["field"], "resource");
    let mut actor_meta = ask("um_bob_finance_reviewer", "invoice_002");
    actor_meta["actor"]["user_email"] = json!("bob@example.com");
    post(actor_meta).await.expect_error(400, "VALIDATION_FAILED");
    post(json!({"actor": {"user_member_id": "um_bob_finance_reviewer"}, "unknown": 1}))
        .await
        .expect_error(400, "VALIDATION_FAILED");
    let raw = send_raw("POST", SIMULATE, b"{not json".to_vec(), &[("authorization", &reader)]).await;
    raw.expect_error(400, "VALIDATION_FAILED");
}

#[tokio::test]
async fn a_space_api_key_simulates_in_its_space_only() {
    other_space().await;
    let created = post(
        "/api/v1/api-keys",
        json!({"name": "sim reader", "level": "space", "space_id": "space_acme", "permission_keys": ["authz:read"]}),
    )
    .await;
    let key = created.expect_ok(201)["api_key"].as_str().unwrap().to_string();
    let with_key = |path: &'static str| {
        let key = key.clone();
        async move {
            send_to(
                server(),
                "POST",
                path,
                Some(ask("um_bob_finance_reviewer", "invoice_001")),
                &[("x-plystra-api-key", &key)],
            )
            .await
        }
    };
    let a = with_key(SIMULATE).await;
    assert_eq!(a.expect_ok(200)["decision"], "allow", "{}", a.text);
    with_key("/api/v1/spaces/space_sim_other/authz/simulate").await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
}

#[tokio::test]
async fn a_session_still_checks_only_as_its_own_binding() {
    // Even a session that may simulate as Bob may not decide as Bob on /authz/check or /authz/explain.
    let reader = session_with(
        "user_sim_own",
        &[
            ("space_admin", "authz:read", Some("space_acme"), None),
            ("space_admin", "authz:check", Some("space_acme"), None),
        ],
    )
    .await;
    let bob = json!({"actor": {"user_id": "user_bob", "member_id": "member_finance_reviewer",
        "user_member_id": "um_bob_finance_reviewer", "space_id": "space_acme"},
        "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"});
    for path in ["/api/v1/authz/check", "/api/v1/authz/explain"] {
        let a = send_to(server(), "POST", path, Some(bob.clone()), &[("authorization", &reader)]).await;
        a.expect_error(403, "ACTIVE_MEMBER_REQUIRED");
    }
    let admin = bearer(&admin_session().await);
    send_to(server(), "POST", "/api/v1/authz/check", Some(bob), &[("authorization", &admin)])
        .await
        .expect_error(403, "ACTIVE_MEMBER_REQUIRED");
}
