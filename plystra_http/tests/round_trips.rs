//! A decision over HTTP is one database round trip, for an API key and for a session: the server is started
//! against a proxy that counts the round trips its connections make (each extended-protocol exchange ends with
//! a Sync message, each simple query is one Query message). What a backend keeps of an API key between requests
//! is given up by the revocation's own commit (the catalog version, migration 015): a key revoked in the database
//! is refused on the very next request.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::proxy::proxied_server;
use common::*;
use serde_json::{json, Value};

fn demo(resource: &str) -> Value {
    json!({
        "actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer",
                  "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
        "resource_type": "invoice", "resource_id": resource, "action": "approve"
    })
}

/// Round trips taken by `requests` sequential calls, after one warm-up call of each (which prepares the
/// statement on the pooled connection and records the API key's last use).
async fn round_trips_of(
    server: &TestServer,
    count: &AtomicUsize,
    headers: &[(&str, &str)],
    requests: &[(&str, Value, &str)],
) -> usize {
    for (path, body, expected) in requests {
        let a = send_to(server, "POST", path, Some(body.clone()), headers).await;
        assert_eq!(a.expect_ok(200)["decision"], *expected, "{path}: {}", a.text);
    }
    let before = count.load(Ordering::SeqCst);
    for (path, body, expected) in requests {
        let a = send_to(server, "POST", path, Some(body.clone()), headers).await;
        assert_eq!(a.expect_ok(200)["decision"], *expected, "{path}: {}", a.text);
    }
    count.load(Ordering::SeqCst) - before
}

#[tokio::test]
async fn a_decision_is_one_round_trip_for_an_api_key_and_for_a_session() {
    let (server, count) = proxied_server();
    let requests = [
        ("/api/v1/authz/check", demo("invoice_001"), "allow"),
        ("/api/v1/authz/check", demo("invoice_002"), "deny"),
        ("/api/v1/authz/explain", demo("invoice_001"), "allow"),
    ];
    let key = admin_key();
    let by_key = round_trips_of(&server, &count, &[("x-plystra-api-key", &key)], &requests).await;
    assert_eq!(by_key, requests.len(), "an API key's decisions: one round trip each");

    // A session without an actor acts through its active binding; with one, the binding is checked too.
    let session = bearer(&admin_session().await);
    let mut own = demo("invoice_001");
    own.as_object_mut().unwrap().remove("actor");
    let by_session = round_trips_of(
        &server,
        &count,
        &[("authorization", &session)],
        &[("/api/v1/authz/check", own, "allow"), ("/api/v1/authz/check", demo("invoice_001"), "allow")],
    )
    .await;
    assert_eq!(by_session, 2, "a session's decisions: one round trip each");
}

#[tokio::test]
async fn a_revoked_key_is_refused_on_its_very_next_request() {
    let (server, _) = proxied_server();
    let (id, token) = instance_key("ak_rt", "created_by_user_id", "'user_alice'").await;
    let db = sql().await;
    let headers = [("x-plystra-api-key", token.as_str())];
    let a = send_to(&server, "POST", "/api/v1/authz/check", Some(demo("invoice_001")), &headers).await;
    assert_eq!(a.expect_ok(200)["decision"], "allow");
    db.execute("UPDATE plystra.api_keys SET status = 'revoked', revoked_at = now() WHERE id = $1", &[&id])
        .await
        .unwrap();
    let a = send_to(&server, "POST", "/api/v1/authz/check", Some(demo("invoice_001")), &headers).await;
    a.expect_error(401, "AUTHENTICATION_REQUIRED");
}

/// A key whose use another front (or this one before a restart) recorded within the minute: the UPDATE of its
/// `last_used_at` writes nothing, and this server does not send it again for a minute, so a decision stays one
/// round trip. (Several fronts behind one balancer: every front but the last writer would otherwise pay a second
/// round trip on every request.)
#[tokio::test]
async fn a_key_recorded_elsewhere_within_the_minute_costs_one_round_trip() {
    let (server, count) = proxied_server();
    // Used a moment ago, as another front records it.
    let (_, token) = instance_key("ak_rt_elsewhere", "last_used_at", "now()").await;
    let requests =
        [("/api/v1/authz/check", demo("invoice_001"), "allow"), ("/api/v1/authz/check", demo("invoice_002"), "deny")];
    let trips = round_trips_of(&server, &count, &[("x-plystra-api-key", &token)], &requests).await;
    assert_eq!(trips, requests.len(), "one round trip a decision, not a second for an UPDATE that cannot write");
}
