//! A credential that expires while in use is refused on its very next request (revocation is covered by
//! tests/credentials.rs: logout, refresh rotation, key revoke). The expiry is moved into the past in the
//! database, as the clock would, and the next request must not be served from anything cached; and an API key's
//! expiry passes by the clock alone, with nothing written, while the backends keep the key's reading (extension
//! 1.10.0 keeps it under the catalog version, which only a write moves).

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn an_expired_session_is_refused_on_the_next_request() {
    let token = session_token("bob@example.com").await;
    let headers = [("authorization", bearer(&token))];
    let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    send_to(server(), "GET", "/api/v1/auth/me", None, &h).await.expect_ok(200);
    let hash = plystra_http::auth::secrets::hmac_hex(TEST_SESSION_SECRET, &token);
    let n = sql()
        .await
        .execute(
            "UPDATE plystra.sessions SET expires_at = now() - interval '1 second' WHERE access_token_hash = $1",
            &[&hash],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    send_to(server(), "GET", "/api/v1/auth/me", None, &h).await.expect_error(401, "AUTHENTICATION_REQUIRED");
}

#[tokio::test]
async fn an_expired_api_key_is_refused_on_the_next_request() {
    let a =
        post("/api/v1/api-keys", json!({"name": "expiring", "level": "instance", "permission_keys": ["users:read"]}))
            .await;
    let created = a.expect_ok(201).clone();
    let key = created["api_key"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    let h = [("x-plystra-api-key", key.as_str())];
    send_to(server(), "GET", "/api/v1/users", None, &h).await.expect_ok(200);
    let n = sql()
        .await
        .execute("UPDATE plystra.api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", &[&id])
        .await
        .unwrap();
    assert_eq!(n, 1);
    send_to(server(), "GET", "/api/v1/users", None, &h).await.expect_error(401, "AUTHENTICATION_REQUIRED");
}

#[tokio::test]
async fn an_api_key_expiring_by_the_clock_alone_is_refused_by_every_backend_that_kept_it() {
    let (_, token) = instance_key("ak_clock", "expires_at", "clock_timestamp() + interval '2 seconds'").await;
    for a in concurrent_checks(&token, 8).await {
        assert_eq!(a.expect_ok(200)["decision"], "allow");
    }
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    for a in concurrent_checks(&token, 8).await {
        a.expect_error(401, "AUTHENTICATION_REQUIRED");
    }
}
