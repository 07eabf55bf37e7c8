//! Users and Spaces: the lifecycle over HTTP, the audit rows the database writes for it with this request's
//! identity, and the error classes (validation, not found, conflict) changing nothing.

mod common;

use common::*;
use serde_json::json;

async fn audit_for(request_id: &str) -> Vec<tokio_postgres::Row> {
    sql()
        .await
        .query("SELECT * FROM plystra.audit_logs WHERE request_id = $1 ORDER BY seq", &[&request_id])
        .await
        .unwrap()
}

#[tokio::test]
async fn user_lifecycle_is_audited_with_the_request_context() {
    let id = unique("user_t");
    let email = format!("{id}@example.com");
    let rid = unique("req_user");
    let a = send_to(
        server(),
        "POST",
        "/api/v1/users",
        Some(json!({"id": id, "email": email, "username": "tess", "audit_space_id": "space_acme",
                    "actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer", "user_member_id": "um_alice_finance_reviewer"}})),
        &[("X-Request-ID", &rid)],
    )
    .await;
    let user = a.expect_ok(201).clone();
    assert_eq!(user["id"], id);
    assert_eq!(user["status"], "active");
    assert_eq!(user["phone"], "", "nil strings are empty strings");
    assert!(user.get("password_hash").is_none());
    let rows = audit_for(&rid).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>("action"), "user.created");
    assert_eq!(rows[0].get::<_, Option<String>>("space_id").as_deref(), Some("space_acme"));
    assert_eq!(rows[0].get::<_, Option<String>>("actor_user_id").as_deref(), Some("user_alice"));
    assert_eq!(rows[0].get::<_, Option<String>>("ip_address").as_deref(), Some("127.0.0.1"));
    assert_eq!(rows[0].get::<_, Option<String>>("user_agent").as_deref(), Some("plystra-http-tests/1.0"));
    // Without audit_space_id the same actor's new User is filed in the instance chain, not in the acting Space
    // (space_acme's audit readers would read the instance's users there: extension 1.11.0).
    let rid2 = unique("req_user");
    let a = send_to(
        server(),
        "POST",
        "/api/v1/users",
        Some(json!({"email": format!("{id}_2@example.com"),
                    "actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer", "user_member_id": "um_alice_finance_reviewer"}})),
        &[("X-Request-ID", &rid2)],
    )
    .await;
    a.expect_ok(201);
    let rows2 = audit_for(&rid2).await;
    assert_eq!(rows2.len(), 1);
    assert_eq!(rows2[0].get::<_, Option<String>>("space_id"), None);
    assert_eq!(rows2[0].get::<_, Option<String>>("actor_user_id").as_deref(), Some("user_alice"));

    let got = get(&format!("/api/v1/users/{id}")).await.expect_ok(200).clone();
    assert_eq!(got, user);
    let patched = patch(&format!("/api/v1/users/{id}"), json!({"phone": "+1 555", "metadata": {"team": "qa"}}))
        .await
        .expect_ok(200)
        .clone();
    assert_eq!(patched["phone"], "+1 555");
    assert_eq!(patched["metadata"], json!({"team": "qa"}));
    let rid2 = unique("req_disable");
    let disabled =
        send_to(server(), "POST", &format!("/api/v1/users/{id}/disable"), None, &[("X-Request-ID", &rid2)]).await;
    assert_eq!(disabled.expect_ok(200)["status"], "disabled");
    assert_eq!(audit_for(&rid2).await[0].get::<_, String>("action"), "user.disabled");
    let restored = post(&format!("/api/v1/users/{id}/restore"), json!({})).await;
    assert_eq!(restored.expect_ok(200)["status"], "active");

    let list = get(&format!("/api/v1/users?email={email}")).await;
    assert_eq!(list.expect_ok(200).as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn user_errors_are_classified_and_change_nothing() {
    let e = post("/api/v1/users", json!({"username": "no-email"})).await;
    assert_eq!(e.expect_error(400, "VALIDATION_FAILED")["details"]["field"], "email");
    let e = post("/api/v1/users", json!({"email": "x@example.com", "nickname": "?"})).await;
    assert_eq!(e.expect_error(400, "VALIDATION_FAILED")["details"]["field"], "nickname");
    let e = post("/api/v1/users", json!({"email": 12})).await;
    assert_eq!(e.expect_error(400, "VALIDATION_FAILED")["details"]["field"], "email");
    let e = post("/api/v1/users", json!({"email": "not-an-email"})).await;
    assert_eq!(e.expect_error(400, "VALIDATION_FAILED")["details"]["field"], "email");
    // API keys never set passwords (security review F1): a super admin's session is told what is wrong.
    let admin = bearer(&admin_session().await);
    let body = json!({"email": "p@example.com", "password_hash": "pbkdf2_sha256$1$x$y"});
    let e = send_to(server(), "POST", "/api/v1/users", Some(body.clone()), &[("authorization", &admin)]).await;
    assert_eq!(e.expect_error(400, "VALIDATION_FAILED")["details"]["field"], "password_hash");
    post("/api/v1/users", body).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    let e = post("/api/v1/users", json!({"email": "ALICE@example.com"})).await;
    let err = e.expect_error(409, "USER_CREATE_FAILED");
    assert!(!e.text.contains("duplicate key"), "database detail leaked: {}", e.text);
    assert!(err["message"].is_string());
    let written: i64 = sql()
        .await
        .query_one(
            "SELECT count(*) FROM plystra.users WHERE email IN ('x@example.com', 'not-an-email', 'p@example.com', 'ALICE@example.com')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(written, 0, "a refused request changed nothing");

    get("/api/v1/users/user_nobody").await.expect_error(404, "USER_NOT_FOUND");
    patch("/api/v1/users/user_nobody", json!({"phone": "1"})).await.expect_error(404, "USER_NOT_FOUND");
    post("/api/v1/users/user_nobody/disable", json!({})).await.expect_error(404, "USER_NOT_FOUND");
    patch("/api/v1/users/user_bob", json!({"email": "alice@example.com"}))
        .await
        .expect_error(409, "USER_UPDATE_FAILED");
}

#[tokio::test]
async fn user_lists_page_with_a_cursor() {
    for _ in 0..3 {
        let id = unique("user_page");
        post("/api/v1/users", json!({"id": id, "email": format!("{id}@example.com")})).await.expect_ok(201);
    }
    let first = get("/api/v1/users?limit=2").await;
    first.expect_ok(200);
    assert_eq!(first.body["pagination"]["has_more"], true);
    let cursor = first.body["pagination"]["cursor"].as_str().unwrap().to_string();
    let second = get(&format!("/api/v1/users?limit=2&cursor={cursor}")).await;
    let ids: Vec<String> =
        second.expect_ok(200).as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_string()).collect();
    let first_ids: Vec<String> =
        first.body["data"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_string()).collect();
    assert!(ids.iter().all(|i| !first_ids.contains(i)));
    assert!(ids.iter().all(|i| i.as_str() > first_ids[1].as_str()));
    // A cursor from another list is refused.
    get(&format!("/api/v1/spaces?cursor={cursor}")).await.expect_error(400, "VALIDATION_FAILED");
}
