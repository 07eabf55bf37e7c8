//! The REST front in production connects as a login role that is only a member of `plystra_admin`: no superuser,
//! no table privilege of its own. Every kind of work it does (login, refresh, management writes, decisions,
//! explain, API keys, audit reads, readiness) must work as that role, and the role must still be unable to do
//! what the trust model forbids (write the audit log, delete a Core row).

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn the_front_works_as_a_role_that_is_only_a_member_of_plystra_admin() {
    let role = format!("plystra_front_{}", std::process::id());
    let db = sql().await;
    db.batch_execute(&format!(
        "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE IN ROLE plystra_admin;"
    ))
    .await
    .unwrap();
    let url = common::db().url.replacen("://postgres@", &format!("://{role}@"), 1);
    assert_ne!(url, common::db().url, "the test database URL names the postgres user");
    let s = start_server(&[("DATABASE_URL", &url)]);

    let ready = send_to(&s, "GET", "/api/v1/ready", None, ANON).await;
    assert_eq!(ready.status, 200, "{}", ready.text);

    // Sessions: login, refresh (the harness made Alice a super admin).
    let login = login_on(&s, "alice@example.com", DEMO_PASSWORD).await;
    let data = login.expect_ok(200).clone();
    let refresh = data["refresh_token"].as_str().unwrap().to_string();
    let refreshed = send_to(&s, "POST", "/api/v1/auth/refresh", Some(json!({"refresh_token": refresh})), ANON).await;
    // The refresh rotates the pair: the new access token is the one that works.
    let token = refreshed.expect_ok(200)["access_token"].as_str().unwrap().to_string();
    let auth = bearer(&token);

    // A management write, audited with the credential.
    let group = unique("g_lp");
    let created = send_to(
        &s,
        "POST",
        "/api/v1/spaces/space_acme/groups",
        Some(json!({"id": group, "name": "Least privilege", "path": format!("lp_{}", &group[5..])})),
        &[("Authorization", &auth)],
    )
    .await;
    created.expect_ok(201);

    // Decisions and explain.
    let request = json!({
        "actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer",
                  "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
        "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"});
    let check = send_to(&s, "POST", "/api/v1/authz/check", Some(request.clone()), &[("Authorization", &auth)]).await;
    assert_eq!(check.expect_ok(200)["decision"], "allow");
    let explain = send_to(&s, "POST", "/api/v1/authz/explain", Some(request), &[("Authorization", &auth)]).await;
    assert_eq!(explain.expect_ok(200)["decision"], "allow");

    // API keys: created, used, revoked.
    let key = send_to(
        &s,
        "POST",
        "/api/v1/api-keys",
        Some(json!({"name": "least privilege", "level": "instance", "permission_keys": ["spaces:read"]})),
        &[("Authorization", &auth)],
    )
    .await;
    let key = key.expect_ok(201).clone();
    let plaintext = key["api_key"].as_str().unwrap().to_string();
    let listed = send_to(&s, "GET", "/api/v1/spaces", None, &[("X-Plystra-API-Key", &plaintext)]).await;
    listed.expect_ok(200);
    let key_id = key["id"].as_str().unwrap();
    let revoked =
        send_to(&s, "POST", &format!("/api/v1/api-keys/{key_id}/revoke"), Some(json!({})), &[("Authorization", &auth)])
            .await;
    revoked.expect_ok(200);

    // Audit reads.
    let audit =
        send_to(&s, "GET", "/api/v1/spaces/space_acme/audit-logs?limit=5", None, &[("Authorization", &auth)]).await;
    audit.expect_ok(200);

    // Logout.
    let out = send_to(&s, "POST", "/api/v1/auth/logout", Some(json!({})), &[("Authorization", &auth)]).await;
    assert!(out.status == 200 || out.status == 204, "{}", out.text);

    // And what the role may not do, straight in SQL.
    let as_role = common::connect(&url).await;
    for (stmt, what) in [
        (
            "INSERT INTO plystra.audit_logs (id, action, decision, trace) VALUES ('audit_lp', 'x.y', 'allow', '{}')",
            "write the audit log",
        ),
        ("DELETE FROM plystra.groups WHERE id = 'group_finance'", "delete a Core row"),
        ("UPDATE plystra.audit_chain_heads SET chain_position = 0", "move a chain head"),
        ("SELECT 1 FROM plystra.audit_sealer FOR UPDATE", "take the sealers' lock"),
    ] {
        let e = as_role.batch_execute(stmt).await.expect_err(what);
        assert_eq!(e.code(), Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE), "{what}: {e:?}");
    }
    db.batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role};")).await.ok();
}
