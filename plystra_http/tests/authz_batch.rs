//! POST /api/v1/authz/check-batch: many (resource, action) items of one actor in one request and one database
//! round trip. Each result is what /authz/check answers for its item, audited as its own decision with the HTTP
//! request's id; a scoped credential is refused if any item lies outside its scope; bad bodies are 400.

mod common;

use std::sync::atomic::Ordering;

use common::proxy::proxied_server;
use common::*;
use serde_json::{json, Value};

fn actor(user: &str, binding: &str) -> Value {
    json!({"user_id": user, "member_id": "member_finance_reviewer", "user_member_id": binding, "space_id": "space_acme"})
}

fn alice() -> Value {
    actor("user_alice", "um_alice_finance_reviewer")
}

/// The items: the demo invoices with several actions, a resource that does not exist, an unknown action, and
/// the nested `resource` form.
fn items() -> Vec<Value> {
    let mut items = Vec::new();
    for resource in ["invoice_001", "invoice_002", "invoice_missing"] {
        for action in ["approve", "read", "delete", "fly"] {
            items.push(json!({"resource_type": "invoice", "resource_id": resource, "action": action}));
        }
    }
    items.push(json!({"resource": {"type": "invoice", "id": "invoice_001"}, "action": "reject"}));
    items
}

/// The single request an item stands for.
fn single(actor: &Value, item: &Value) -> Value {
    let resource_type = item.get("resource_type").unwrap_or(&item["resource"]["type"]);
    let resource_id = item.get("resource_id").unwrap_or(&item["resource"]["id"]);
    json!({"actor": actor, "resource_type": resource_type, "resource_id": resource_id, "action": item["action"]})
}

/// An answer without what differs between two decisions of the same question.
fn strip(answer: &Value) -> Value {
    let mut a = answer.clone();
    let o = a.as_object_mut().unwrap();
    o.remove("trace_id");
    o.remove("audit_log_id");
    let audit = o["audit"].as_object_mut().unwrap();
    audit.remove("audit_log_id");
    audit.remove("request_id");
    a
}

async fn batch_as(headers: &[(&str, &str)], body: Value) -> Answer {
    send_to(server(), "POST", "/api/v1/authz/check-batch", Some(body), headers).await
}

#[tokio::test]
async fn the_demo_decisions_in_one_batch_equal_single_checks() {
    for actor in [
        alice(),
        actor("user_bob", "um_bob_finance_reviewer"),
        actor("user_alice", "um_alice_finance_reviewer_revoked"),
        actor("user_alice", "um_alice_finance_reviewer_expired"),
    ] {
        let a = batch_as(&[], json!({"actor": actor, "items": items()})).await;
        let results = a.expect_ok(200)["results"].as_array().expect("results").clone();
        assert_eq!(results.len(), items().len());
        for (item, result) in items().iter().zip(&results) {
            let one = send("POST", "/api/v1/authz/check", Some(single(&actor, item))).await;
            assert_eq!(strip(result), strip(one.expect_ok(200)), "{actor} {item}");
        }
    }
    // The demo's four decisions, spot-checked.
    let a = batch_as(&[], json!({"actor": alice(), "items": items()})).await;
    let results = &a.expect_ok(200)["results"];
    assert_eq!(results[0]["decision"], "allow");
    assert_eq!(results[4]["deny_code"], "SCOPE_OUT_OF_BOUNDS");
    assert_eq!(results[8]["deny_code"], "RESOURCE_NOT_FOUND");
    assert_eq!(results[3]["deny_code"], "INVALID_RESOURCE_ACTION");
}

#[tokio::test]
async fn a_session_without_an_actor_acts_through_its_active_binding() {
    let session = bearer(&admin_session().await);
    let a = batch_as(&[("authorization", &session)], json!({"items": items()})).await;
    let own = a.expect_ok(200)["results"].as_array().unwrap().clone();
    let b = batch_as(&[], json!({"actor": alice(), "items": items()})).await;
    let named = b.expect_ok(200)["results"].as_array().unwrap().clone();
    assert_eq!(own.iter().map(strip).collect::<Vec<_>>(), named.iter().map(strip).collect::<Vec<_>>());
    // A session may name only its own user's bindings.
    let c = batch_as(
        &[("authorization", &session)],
        json!({"actor": actor("user_bob", "um_bob_finance_reviewer"), "items": items()}),
    )
    .await;
    c.expect_error(403, "ACTIVE_MEMBER_REQUIRED");
    // Inline context is refused to a session as for a check; an API key's description of a registered resource
    // changes nothing (Plystra's row wins).
    let mut inline = json!({"actor": alice(), "items": items()});
    inline["items"][1] =
        json!({"resource": {"type": "invoice", "id": "invoice_002", "group_path": "finance"}, "action": "approve"});
    batch_as(&[("authorization", &session)], inline.clone()).await.expect_error(403, "INLINE_CONTEXT_REQUIRES_API_KEY");
    let e = batch_as(&[], inline).await;
    assert_eq!(e.expect_ok(200)["results"][1]["deny_code"], "SCOPE_OUT_OF_BOUNDS");
}

#[tokio::test]
async fn each_item_is_audited_as_its_own_decision_with_the_http_request_id() {
    let request_id = unique("req_batch");
    let a = batch_as(&[("x-request-id", &request_id)], json!({"actor": alice(), "items": items()})).await;
    assert_eq!(a.body["request_id"], request_id.as_str());
    let results = a.expect_ok(200)["results"].as_array().unwrap().clone();
    let db = sql().await;
    let rows = db
        .query(
            "SELECT id, resource_id, action, decision, deny_code, trace->>'trace_id' FROM plystra.audit_logs \
             WHERE request_id = $1",
            &[&request_id],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), items().len(), "one audit row per item");
    for (item, result) in items().iter().zip(&results) {
        assert_eq!(result["audit"]["request_id"], request_id.as_str());
        let id = result["audit_log_id"].as_str().expect("audit_mode always: every item has a row");
        let row = rows.iter().find(|r| r.get::<_, String>(0) == id).expect("the result's audit row");
        let single = single(&alice(), item);
        assert_eq!(row.get::<_, String>(1), single["resource_id"].as_str().unwrap());
        assert_eq!(format!("invoice.{}", single["action"].as_str().unwrap()), row.get::<_, String>(2));
        assert_eq!(row.get::<_, String>(3), result["decision"].as_str().unwrap());
        assert_eq!(row.get::<_, Option<String>>(4).as_deref(), result["deny_code"].as_str());
        assert_eq!(row.get::<_, String>(5), result["trace_id"].as_str().unwrap());
    }
}

#[tokio::test]
async fn a_scoped_key_is_refused_if_any_item_lies_outside_its_scope() {
    sql()
        .await
        .batch_execute(
            "INSERT INTO plystra.spaces (id, name, slug, type, status) VALUES ('space_batch_b', 'B', 'batch-b', 'custom', 'active');
             INSERT INTO plystra.resources (id, resource_type, space_id, display_name)
               VALUES ('batch_b_invoice', 'invoice', 'space_batch_b', 'B invoice');",
        )
        .await
        .unwrap();
    let key = |body: Value| async move {
        let a = post("/api/v1/api-keys", body).await;
        a.expect_ok(201)["api_key"].as_str().expect("api_key").to_string()
    };
    let group_key =
        key(json!({"name": "fin", "level": "group", "group_id": "group_finance", "permission_keys": ["authz:check"]}))
            .await;
    let space_key =
        key(json!({"name": "acme", "level": "space", "space_id": "space_acme", "permission_keys": ["authz:check"]}))
            .await;
    let item = |resource: &str| json!({"resource_type": "invoice", "resource_id": resource, "action": "approve"});
    let ask = |key: String, resources: Vec<&'static str>| async move {
        let items: Vec<Value> = resources.into_iter().map(item).collect();
        batch_as(&[("x-plystra-api-key", &key)], json!({"actor": alice(), "items": items})).await
    };
    // invoice_001 lies in group_finance_apac, inside the group key's Group; invoice_002 in group_legal_emea.
    let a = ask(group_key.clone(), vec!["invoice_001", "invoice_001"]).await;
    assert_eq!(a.expect_ok(200)["results"][1]["decision"], "allow");
    for resources in [
        vec!["invoice_001", "invoice_002"],
        vec!["invoice_002", "invoice_001"],
        vec!["invoice_001", "invoice_does_not_exist"],
        vec!["invoice_001", "batch_b_invoice"],
    ] {
        let refused = ask(group_key.clone(), resources.clone()).await;
        refused.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
        assert!(!refused.text.contains("decision"), "{resources:?}: nothing is decided: {}", refused.text);
    }
    // A Space key: anything in its Space, nothing in another or nowhere.
    let a = ask(space_key.clone(), vec!["invoice_001", "invoice_002"]).await;
    assert_eq!(a.expect_ok(200)["results"][1]["deny_code"], "SCOPE_OUT_OF_BOUNDS");
    let before: i64 = sql()
        .await
        .query_one("SELECT count(*) FROM plystra.audit_logs WHERE resource_id = 'invoice_001'", &[])
        .await
        .unwrap()
        .get(0);
    for resources in [vec!["invoice_001", "batch_b_invoice"], vec!["invoice_001", "invoice_does_not_exist"]] {
        ask(space_key.clone(), resources).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    }
    let after: i64 = sql()
        .await
        .query_one("SELECT count(*) FROM plystra.audit_logs WHERE resource_id = 'invoice_001'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(before, after, "a refused batch decides and audits nothing");
}

#[tokio::test]
async fn bad_bodies_are_400_naming_the_field() {
    let ok_item = json!({"resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"});
    let many: Vec<Value> = (0..1001).map(|_| ok_item.clone()).collect();
    let cases = [
        (json!({"actor": alice()}), "items"),
        (json!({"actor": alice(), "items": []}), "items"),
        (json!({"actor": alice(), "items": many}), "items"),
        (json!({"actor": alice(), "items": {"resource_type": "invoice"}}), "items"),
        (json!({"actor": alice(), "items": [ok_item, "invoice_002"]}), "items[1]"),
        (
            json!({"actor": alice(), "items": [{"resource_type": "invoice", "resource_id": "i", "action": 7}]}),
            "items[0].action",
        ),
        (json!({"actor": alice(), "items": [{"resource_type": "invoice", "resource_id": "i"}]}), "items[0].action"),
        (json!({"actor": alice(), "items": [{"resource_type": "invoice", "action": "read"}]}), "items[0].resource_id"),
        (
            json!({"actor": alice(), "items": [{"resource_type": "invoice", "resource_id": "", "action": "read"}]}),
            "items[0].resource_id",
        ),
        (
            json!({"actor": alice(), "items": [{"resource_type": "invoice", "resource_id": "i", "action": "read", "explain": true}]}),
            "items[0].explain",
        ),
        (json!({"actor": alice(), "items": [ok_item], "resource_type": "invoice"}), "resource_type"),
        (json!({"items": [ok_item]}), "actor"),
        (
            json!({"actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer"}, "items": [ok_item]}),
            "actor.user_member_id",
        ),
    ];
    for (body, field) in cases {
        let a = batch_as(&[], body.clone()).await;
        let e = a.expect_error(400, "VALIDATION_FAILED");
        let named = e["details"]["field"].as_str().unwrap_or_default().to_string();
        assert!(
            named == field || named.ends_with(&format!(".{field}")) || named.starts_with(field),
            "{body}: {}",
            a.text
        );
    }
    let a = send_raw(
        "POST",
        "/api/v1/authz/check-batch",
        b"{\"actor\": ".to_vec(),
        &[("content-type", "application/json")],
    )
    .await;
    a.expect_error(400, "VALIDATION_FAILED");
    let a = send_to(server(), "POST", "/api/v1/authz/check-batch", Some(json!({"items": [ok_item]})), ANON).await;
    a.expect_error(401, "AUTHENTICATION_REQUIRED");
}

#[tokio::test]
async fn a_batch_is_one_round_trip() {
    let (server, count) = proxied_server();
    let items: Vec<Value> = (0..100)
        .map(|i| json!({"resource_type": "invoice", "resource_id": format!("invoice_00{}", 1 + i % 2), "action": "approve"}))
        .collect();
    // A key of its own: the harness's admin key is used by the other tests at the same time, and a last use
    // recorded by another server makes this one ask again (one more round trip, outside the decision).
    let id = unique("ak_batch_rt");
    let key = format!("ply_ak_{id}.{}", "c3".repeat(32));
    let hash = plystra_http::auth::secrets::hmac_hex(TEST_API_KEY_SECRET, &key);
    sql()
        .await
        .execute(
            "INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, permission_keys, created_by_user_id) \
             VALUES ($1, 'batch round trips', $2, $3, 'instance', '[\"authz:check\"]', 'user_alice')",
            &[&id, &format!("ply_ak_{id}"), &hash],
        )
        .await
        .unwrap();
    let session = bearer(&admin_session().await);
    for (headers, body) in [
        ([("x-plystra-api-key", key.as_str())], json!({"actor": alice(), "items": items})),
        ([("authorization", session.as_str())], json!({"items": items})),
    ] {
        // A warm-up call prepares the statement on the pooled connection and records the key's last use.
        let a = send_to(&server, "POST", "/api/v1/authz/check-batch", Some(body.clone()), &headers).await;
        assert_eq!(a.expect_ok(200)["results"].as_array().unwrap().len(), 100);
        let before = count.load(Ordering::SeqCst);
        let a = send_to(&server, "POST", "/api/v1/authz/check-batch", Some(body), &headers).await;
        let results = a.expect_ok(200)["results"].as_array().unwrap().clone();
        assert_eq!((results[0]["decision"].as_str(), results[1]["decision"].as_str()), (Some("allow"), Some("deny")));
        assert_eq!(count.load(Ordering::SeqCst) - before, 1, "100 decisions in one round trip ({headers:?})");
    }
}
