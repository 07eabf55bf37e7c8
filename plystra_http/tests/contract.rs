//! The published contract, held against data a caller may write: numbers PostgreSQL keeps exactly but a
//! float cannot hold, statuses outside their closed set, references to rows that do not exist, and the shape
//! of every error answer (`error.details` is always an object, as the OpenAPI document says).

mod common;

use common::*;
use serde_json::{json, Value};

/// 1.7976931348623157e308: PostgreSQL stores it as a 309-digit numeric.
const HUGE: f64 = f64::MAX;

/// Write routes that take `metadata`, each with a body that is otherwise valid (unique keys per call).
async fn metadata_writes(space: &str) -> Vec<(&'static str, String, Value)> {
    let member = post(&format!("/api/v1/spaces/{space}/members"), json!({"display_name": "Big"})).await;
    let member = member.expect_ok(201)["id"].as_str().unwrap().to_string();
    vec![
        ("POST", "/api/v1/users".into(), json!({"email": format!("{}@example.com", unique("big"))})),
        ("POST", "/api/v1/spaces".into(), json!({"name": "Big", "slug": unique("big")})),
        ("POST", format!("/api/v1/spaces/{space}/groups"), json!({"path": unique("big")})),
        ("POST", format!("/api/v1/spaces/{space}/members"), json!({"display_name": "Big"})),
        ("POST", format!("/api/v1/spaces/{space}/roles"), json!({"key": unique("big")})),
        ("POST", "/api/v1/permissions".into(), json!({"resource": unique("big"), "action": "read", "scope": "space"})),
        ("POST", "/api/v1/resource-types".into(), json!({"key": unique("big"), "display_name": "Big"})),
        ("POST", format!("/api/v1/spaces/{space}/resources"), json!({"resource_type": "invoice"})),
        (
            "POST",
            format!("/api/v1/spaces/{space}/user-members"),
            json!({"user_id": "user_bob", "member_id": member, "relation_type": "login"}),
        ),
        ("PATCH", "/api/v1/users/user_bob".into(), json!({})),
        ("PATCH", format!("/api/v1/spaces/{space}"), json!({})),
    ]
}

#[tokio::test]
async fn huge_numbers_in_metadata_are_refused_on_write_and_read_back_when_already_stored() {
    let space = post("/api/v1/spaces", json!({"name": "Huge", "slug": unique("huge")})).await;
    let space = space.expect_ok(201)["id"].as_str().unwrap().to_string();
    for (method, path, mut body) in metadata_writes(&space).await {
        body["metadata"] = json!({"ok": 1.5, "nested": {"list": [1, -HUGE]}});
        let a = send(method, &path, Some(body)).await;
        assert!(!a.text.contains("panicked"), "{method} {path}: {}", a.text);
        let error = a.expect_error(400, "VALIDATION_FAILED");
        assert_eq!(error["details"]["field"], "metadata", "{method} {path}: {}", a.text);
        assert_eq!(error["details"]["path"], "metadata.nested.list[1]", "{method} {path}: {}", a.text);
    }
    // A row that already holds such a number (written in SQL) is read as PostgreSQL prints it, in the entity,
    // in its list and in the audit row that recorded the write: never a panic or a 500.
    let digits = format!("17976931348623157{}", "0".repeat(292));
    sql()
        .await
        .batch_execute(r#"UPDATE plystra.users SET metadata = '{"max": 1.7976931348623157e308}' WHERE id = 'user_bob'"#)
        .await
        .unwrap();
    for path in ["/api/v1/users/user_bob", "/api/v1/users?limit=200"] {
        let a = get(path).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text);
        assert!(a.text.contains(&digits), "{path}: {}", a.text);
    }
    let audit: String = sql()
        .await
        .query_one(
            &format!("SELECT id FROM plystra.audit_logs WHERE trace::text LIKE '%{digits}%' ORDER BY seq DESC LIMIT 1"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let a = get(&format!("/api/v1/audit/logs/{audit}")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.text.contains(&digits), "{}", a.text);
    // The server is still serving.
    get("/api/v1/health").await.expect_ok(200);
}

#[tokio::test]
async fn a_status_outside_its_closed_set_is_a_validation_error_naming_the_allowed_values() {
    let space = post("/api/v1/spaces", json!({"name": "Banana", "slug": unique("banana")})).await;
    let space = space.expect_ok(201)["id"].as_str().unwrap().to_string();
    let member = post(&format!("/api/v1/spaces/{space}/members"), json!({"display_name": "B"})).await;
    let member = member.expect_ok(201)["id"].as_str().unwrap().to_string();
    let role = post(&format!("/api/v1/spaces/{space}/roles"), json!({"key": unique("r")})).await;
    let role = role.expect_ok(201)["id"].as_str().unwrap().to_string();
    let creates: Vec<(&str, String, Value)> = vec![
        ("POST", "/api/v1/users".into(), json!({"email": format!("{}@example.com", unique("b"))})),
        ("POST", "/api/v1/spaces".into(), json!({"name": "B", "slug": unique("b")})),
        ("POST", format!("/api/v1/spaces/{space}/groups"), json!({"path": unique("b")})),
        ("POST", format!("/api/v1/spaces/{space}/members"), json!({"display_name": "B"})),
        ("POST", format!("/api/v1/spaces/{space}/roles"), json!({"key": unique("b")})),
        ("POST", "/api/v1/permissions".into(), json!({"resource": unique("b"), "action": "read", "scope": "space"})),
        ("POST", "/api/v1/resource-types".into(), json!({"key": unique("b"), "display_name": "B"})),
        ("POST", format!("/api/v1/spaces/{space}/resources"), json!({"resource_type": "invoice"})),
        (
            "POST",
            format!("/api/v1/spaces/{space}/user-members"),
            json!({"user_id": "user_bob", "member_id": member, "relation_type": "login"}),
        ),
        ("POST", format!("/api/v1/spaces/{space}/member-roles"), json!({"member_id": member, "role_id": role})),
        ("POST", "/api/v1/resource-types/invoice/mapping".into(), json!({"storage_kind": "inline"})),
        ("PATCH", "/api/v1/users/user_bob".into(), json!({})),
        ("PATCH", format!("/api/v1/spaces/{space}"), json!({})),
        ("PATCH", format!("/api/v1/spaces/{space}/members/{member}"), json!({})),
        ("PATCH", format!("/api/v1/spaces/{space}/roles/{role}"), json!({})),
    ];
    for (method, path, mut body) in creates {
        body["status"] = json!("banana");
        let a = send(method, &path, Some(body)).await;
        let error = a.expect_error(400, "VALIDATION_FAILED");
        assert_eq!(error["details"]["field"], "status", "{method} {path}: {}", a.text);
        let allowed = error["details"]["allowed"].as_array().unwrap_or_else(|| panic!("{method} {path}: {}", a.text));
        assert!(allowed.contains(&json!("active")), "{method} {path}: {}", a.text);
        assert!(error["message"].as_str().unwrap().contains("active"), "{method} {path}: {}", a.text);
    }
    let banana: i64 = sql()
        .await
        .query_one(
            "SELECT (SELECT count(*) FROM plystra.users WHERE status = 'banana')
                  + (SELECT count(*) FROM plystra.spaces WHERE status = 'banana')
                  + (SELECT count(*) FROM plystra.groups WHERE status = 'banana')
                  + (SELECT count(*) FROM plystra.members WHERE status = 'banana')
                  + (SELECT count(*) FROM plystra.roles WHERE status = 'banana')
                  + (SELECT count(*) FROM plystra.permissions WHERE status = 'banana')
                  + (SELECT count(*) FROM plystra.resource_types WHERE status = 'banana')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(banana, 0);
    // A status in the set is still accepted.
    let a = post("/api/v1/users", json!({"email": format!("{}@example.com", unique("d")), "status": "disabled"})).await;
    assert_eq!(a.expect_ok(201)["status"], "disabled");
}

#[tokio::test]
async fn a_reference_to_a_missing_row_names_the_field_not_the_constraint() {
    let space = post("/api/v1/spaces", json!({"name": "Refs", "slug": unique("refs")})).await;
    let space = space.expect_ok(201)["id"].as_str().unwrap().to_string();
    let member = post(&format!("/api/v1/spaces/{space}/members"), json!({"display_name": "R"})).await;
    let member = member.expect_ok(201)["id"].as_str().unwrap().to_string();
    let role = post(&format!("/api/v1/spaces/{space}/roles"), json!({"key": unique("r")})).await;
    let role = role.expect_ok(201)["id"].as_str().unwrap().to_string();
    for (path, body, code, field) in [
        (
            format!("/api/v1/spaces/{space}/user-members"),
            json!({"user_id": "user_nobody", "member_id": member, "relation_type": "login"}),
            "USER_NOT_FOUND",
            "user_id",
        ),
        (
            "/api/v1/role-permissions".to_string(),
            json!({"role_id": role, "permission_id": "perm_missing"}),
            "PERMISSION_NOT_FOUND",
            "permission_id",
        ),
        (
            format!("/api/v1/spaces/{space}/resources"),
            json!({"resource_type": "unregistered"}),
            "RESOURCE_TYPE_NOT_FOUND",
            "resource_type",
        ),
    ] {
        let a = post(&path, body).await;
        let error = a.expect_error(404, code);
        assert_eq!(error["details"]["field"], field, "{path}: {}", a.text);
        assert!(!a.text.contains("fkey"), "{path}: the constraint's name leaked: {}", a.text);
        assert!(error["message"].as_str().unwrap().contains(field), "{path}: {}", a.text);
    }
}

#[tokio::test]
async fn error_details_is_always_an_object() {
    let answers = vec![
        get("/api/v1/no-such-route").await,
        get("/api/v1/users/user_nobody").await,
        send("DELETE", "/api/v1/users", None).await,
        send_to(server(), "GET", "/api/v1/users", None, &[("authorization", "Bearer nonsense")]).await,
        send_raw("POST", "/api/v1/users", b"{".to_vec(), &[]).await,
        send_raw("POST", "/api/v1/users", Vec::new(), &[]).await,
        post("/api/v1/users", json!({"email": "x@example.com", "unknown": 1})).await,
        post("/api/v1/users", json!({"email": "ALICE@example.com"})).await,
    ];
    for a in answers {
        assert!(a.status >= 400, "{}", a.text);
        assert!(a.body["error"]["details"].is_object(), "{} {}", a.status, a.text);
    }
}
