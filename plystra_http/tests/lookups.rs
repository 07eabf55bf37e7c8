//! The lookups over HTTP: who may act on a resource (with the grant that lets each binding), and what a binding
//! may act on, paginated; both need authz:read on the path's whole Space, answer 404 for an id outside it, and
//! write no audit row. (Their equality with check is proven in SQL: tests/sql/065_lookups.sql.)

mod common;

use common::*;
use serde_json::Value;

/// The `field` of each row of a page's data.
fn ids(data: &Value, field: &str) -> Vec<String> {
    data.as_array().unwrap().iter().map(|r| r[field].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn who_may_approve_invoice_001_with_the_grant_and_paged() {
    let a = get("/api/v1/spaces/space_acme/resources/invoice_001/subjects?action=approve").await;
    assert_eq!(ids(a.expect_ok(200), "user_member_id"), ["um_alice_finance_reviewer", "um_bob_finance_reviewer"]);
    let alice = &a.body["data"][0];
    assert_eq!(alice["user_id"], "user_alice");
    assert_eq!(alice["member_id"], "member_finance_reviewer");
    assert_eq!(alice["grants"][0]["member_role_id"], "mr_finance_reviewer_approver_finance");
    assert_eq!(alice["grants"][0]["anchor_group_path"], "finance");
    assert_eq!(alice["grants"][0]["scope"], "group_tree");
    assert_eq!(a.body["pagination"]["has_more"], false);

    let first = get("/api/v1/spaces/space_acme/resources/invoice_001/subjects?action=approve&limit=1").await;
    assert_eq!(ids(first.expect_ok(200), "user_member_id"), ["um_alice_finance_reviewer"]);
    assert_eq!(first.body["pagination"]["has_more"], true);
    let cursor = first.body["pagination"]["cursor"].as_str().unwrap().to_string();
    let next = get(&format!(
        "/api/v1/spaces/space_acme/resources/invoice_001/subjects?action=approve&limit=1&cursor={cursor}"
    ))
    .await;
    assert_eq!(ids(next.expect_ok(200), "user_member_id"), ["um_bob_finance_reviewer"]);
    assert_eq!(next.body["pagination"]["has_more"], false);

    // invoice_002 lies outside the only grant's anchor: nobody may approve it.
    let none = get("/api/v1/spaces/space_acme/resources/invoice_002/subjects?action=approve").await;
    assert!(ids(none.expect_ok(200), "user_member_id").is_empty());
}

#[tokio::test]
async fn what_a_binding_may_act_on() {
    let a = get("/api/v1/spaces/space_acme/user-members/um_alice_finance_reviewer/resources?resource_type=invoice&action=approve").await;
    assert_eq!(ids(a.expect_ok(200), "id"), ["invoice_001"]);
    assert_eq!(a.body["data"][0]["resource_type"], "invoice");
    // A revoked binding acts on nothing.
    let revoked = get("/api/v1/spaces/space_acme/user-members/um_alice_finance_reviewer_revoked/resources?resource_type=invoice&action=approve").await;
    assert!(ids(revoked.expect_ok(200), "id").is_empty());
}

#[tokio::test]
async fn lookups_need_their_fields_and_an_id_inside_the_path_space() {
    get("/api/v1/spaces/space_acme/resources/invoice_001/subjects").await.expect_error(400, "VALIDATION_FAILED");
    get("/api/v1/spaces/space_acme/user-members/um_alice_finance_reviewer/resources?action=approve")
        .await
        .expect_error(400, "VALIDATION_FAILED");
    get("/api/v1/spaces/space_acme/resources/invoice_001/subjects?action=approve&cursor=bogus")
        .await
        .expect_error(400, "VALIDATION_FAILED");
    // A cursor of the other lookup is refused, not misread.
    let page = get("/api/v1/spaces/space_acme/user-members/um_alice_finance_reviewer/resources?resource_type=invoice&action=read&limit=1").await;
    if let Some(cursor) = page.body["pagination"]["cursor"].as_str() {
        get(&format!("/api/v1/spaces/space_acme/resources/invoice_001/subjects?action=approve&cursor={cursor}"))
            .await
            .expect_error(400, "VALIDATION_FAILED");
    }
    let db = sql().await;
    db.batch_execute("INSERT INTO plystra.spaces (id, name, slug, type) VALUES ('space_lookup_other', 'Other', 'lookup-other', 'custom') ON CONFLICT DO NOTHING")
        .await
        .unwrap();
    get("/api/v1/spaces/space_lookup_other/resources/invoice_001/subjects?action=approve")
        .await
        .expect_error(404, "RESOURCE_NOT_FOUND");
    get("/api/v1/spaces/space_lookup_other/user-members/um_alice_finance_reviewer/resources?resource_type=invoice&action=approve")
        .await
        .expect_error(404, "USER_MEMBER_NOT_FOUND");
}

/// A GET as a new user (bound to the APAC Invoice Creator, who may approve nothing) holding one admin grant.
async fn get_as(prefix: &str, grant: GrantSpec<'_>, path: &str) -> Answer {
    let hash = plystra_http::auth::password::hash(DEMO_PASSWORD);
    let (_, email) = make_user(prefix, None, &hash, ("space_acme", "member_invoice_creator"), &[grant]).await;
    let token = session_token(&email).await;
    send_to(server(), "GET", path, None, &[("authorization", &bearer(&token))]).await
}

#[tokio::test]
async fn a_credential_of_another_space_or_of_a_group_is_refused() {
    sql()
        .await
        .batch_execute("INSERT INTO plystra.spaces (id, name, slug, type) VALUES ('space_lookup_scope', 'Scope', 'lookup-scope', 'custom') ON CONFLICT DO NOTHING")
        .await
        .unwrap();
    let subjects = "/api/v1/spaces/space_acme/resources/invoice_001/subjects?action=approve";
    let resources =
        "/api/v1/spaces/space_acme/user-members/um_alice_finance_reviewer/resources?resource_type=invoice&action=approve";
    let other_space = ("space_admin", "authz:read", Some("space_lookup_scope"), None);
    get_as("user_lookup_other", other_space, subjects).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    // A Group admin of finance may read there, but a lookup shows the whole Space: refused.
    let group = ("group_admin", "authz:read", Some("space_acme"), Some("group_finance"));
    get_as("user_lookup_group", group, resources).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    // So is a Space admin who may only check.
    let checker = ("space_admin", "authz:check", Some("space_acme"), None);
    get_as("user_lookup_checker", checker, subjects).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    let reader = ("space_admin", "authz:read", Some("space_acme"), None);
    let a = get_as("user_lookup_reader", reader, subjects).await;
    assert_eq!(ids(a.expect_ok(200), "user_member_id"), ["um_alice_finance_reviewer", "um_bob_finance_reviewer"]);
}

#[tokio::test]
async fn a_lookup_writes_no_audit_row() {
    let rid = unique("req_lookup");
    let headers = [("X-Request-ID", rid.as_str())];
    let path = "/api/v1/spaces/space_acme/resources/invoice_001/subjects?action=approve";
    send_to(server(), "GET", path, None, &headers).await.expect_ok(200);
    let path =
        "/api/v1/spaces/space_acme/user-members/um_bob_finance_reviewer/resources?resource_type=invoice&action=approve";
    send_to(server(), "GET", path, None, &headers).await.expect_ok(200);
    let rows: i64 = sql()
        .await
        .query_one("SELECT count(*) FROM plystra.audit_logs WHERE request_id = $1", &[&rid])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 0, "a lookup writes no audit row");
    // The same request id on a check does write one: the count above can see rows.
    let body = serde_json::json!({"actor": {"user_id": "user_bob", "member_id": "member_finance_reviewer",
        "user_member_id": "um_bob_finance_reviewer", "space_id": "space_acme"},
        "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"});
    send_to(server(), "POST", "/api/v1/authz/check", Some(body), &headers).await.expect_ok(200);
    let rows: i64 = sql()
        .await
        .query_one("SELECT count(*) FROM plystra.audit_logs WHERE request_id = $1", &[&rid])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
}
