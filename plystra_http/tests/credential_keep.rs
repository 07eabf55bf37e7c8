//! What the backends keep of an API key between requests (extension 1.10.0: the key, its creator's User row and
//! the creator's admin grants, kept under the catalog version) is given up by every administration write that
//! changes it, made through this server's own routes: the creator disabled and restored, the creator's grant
//! revoked and a new one made, the key revoked. Each step is followed by eight checks at once, so that several
//! pooled backends have kept the key before it and answer after it.

mod common;

use common::*;
use serde_json::{json, Value};

async fn as_admin(method: &str, path: &str, body: Option<Value>) -> Answer {
    let token = admin_session().await;
    send_to(server(), method, path, body, &[("authorization", &bearer(&token))]).await
}

async fn all_answer(token: &str, status: u16, what: &str) {
    for a in concurrent_checks(token, 8).await {
        if status == 200 {
            assert_eq!(a.expect_ok(200)["decision"], "allow", "{what}");
        } else {
            assert_eq!(a.status, status, "{what}: {}", a.text);
        }
    }
}

#[tokio::test]
async fn administration_through_the_api_reaches_every_backend_that_kept_the_key() {
    let user = post("/api/v1/users", json!({"email": format!("{}@example.com", unique("keep"))})).await;
    let user = user.expect_ok(201)["id"].as_str().unwrap().to_string();
    let grant = json!({"user_id": user, "level": "instance_admin", "permission_key": "authz:check"});
    let grant = as_admin("POST", "/api/v1/admin/grants", Some(grant)).await;
    let grant = grant.expect_ok(201)["id"].as_str().unwrap().to_string();
    let (key_id, token) = instance_key("ak_keep", "created_by_user_id", &format!("'{user}'")).await;
    all_answer(&token, 200, "the key, its creator holding authz:check").await;

    as_admin("POST", &format!("/api/v1/users/{user}/disable"), Some(json!({}))).await.expect_ok(200);
    all_answer(&token, 403, "the creator disabled").await;
    as_admin("POST", &format!("/api/v1/users/{user}/restore"), Some(json!({}))).await.expect_ok(200);
    all_answer(&token, 200, "the creator restored").await;

    as_admin("POST", &format!("/api/v1/admin/grants/{grant}/revoke"), Some(json!({}))).await.expect_ok(200);
    all_answer(&token, 403, "the creator's grant revoked").await;
    let again = json!({"user_id": user, "level": "instance_admin", "permission_key": "authz:check"});
    as_admin("POST", "/api/v1/admin/grants", Some(again)).await.expect_ok(201);
    all_answer(&token, 200, "a new grant to the creator").await;

    as_admin("POST", &format!("/api/v1/api-keys/{key_id}/revoke"), Some(json!({}))).await.expect_ok(200);
    all_answer(&token, 401, "the key revoked").await;
}
