//! The REST front in production connects as a login role that is only a member of `plystra_admin`: no superuser,
//! no table privilege of its own. Every kind of work it does (login, refresh, management writes, decisions,
//! explain, API keys, audit reads, readiness) must work as that role, and the role must still be unable to do
//! what the trust model forbids (write the audit log, delete a Core row, lock a table that decisions read). Its
//! UPDATE is granted by column (1.23.0), so every kind of write is exercised here: an update, an upsert that
//! updates, a soft delete, an admin-grant revocation (which locks the super-admin grants' rows), a failed login.

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
    let h = [("Authorization", auth.as_str())];
    let patched = send_to(
        &s,
        "PATCH",
        &format!("/api/v1/spaces/space_acme/groups/{group}"),
        Some(json!({"display_name": "Least privilege, renamed", "metadata": {"k": 1}})),
        &h,
    )
    .await;
    assert_eq!(patched.expect_ok(200)["display_name"], "Least privilege, renamed");
    let disabled =
        send_to(&s, "POST", &format!("/api/v1/spaces/space_acme/groups/{group}/disable"), Some(json!({})), &h).await;
    assert_eq!(disabled.expect_ok(200)["status"], "disabled");
    // Upserts: the second write of a resource type's key updates the row.
    let type_key = unique("lp_type");
    for name in ["First", "Second"] {
        let t = send_to(&s, "POST", "/api/v1/resource-types", Some(json!({"key": type_key, "display_name": name})), &h)
            .await;
        assert_eq!(t.expect_ok(201)["display_name"], name);
    }
    // A RolePermission granted, soft-deleted, and granted again (an upsert that brings the row back).
    let made_role =
        send_to(&s, "POST", "/api/v1/spaces/space_acme/roles", Some(json!({"key": unique("lp_role")})), &h).await;
    let role_id = made_role.expect_ok(201)["id"].as_str().unwrap().to_string();
    let pair = json!({"role_id": role_id, "permission_id": "perm_invoice_read_self"});
    let rp = send_to(&s, "POST", "/api/v1/role-permissions", Some(pair.clone()), &h).await;
    let rp_id = rp.expect_ok(201)["id"].as_str().unwrap().to_string();
    let deleted = send_to(&s, "DELETE", &format!("/api/v1/role-permissions/{rp_id}"), None, &h).await;
    assert!(deleted.status == 200 || deleted.status == 204, "{}", deleted.text);
    let again = send_to(&s, "POST", "/api/v1/role-permissions", Some(pair), &h).await;
    assert!(again.expect_ok(201)["deleted_at"].is_null());
    // An admin grant made and revoked: the revocation locks the super-admin grants' rows.
    let grant = send_to(
        &s,
        "POST",
        "/api/v1/admin/grants",
        Some(json!({"user_id": "user_bob", "level": "space_admin", "space_id": "space_acme", "permission_key": "members:read"})),
        &h,
    )
    .await;
    let grant_id = grant.expect_ok(201)["id"].as_str().unwrap().to_string();
    let revoked_grant =
        send_to(&s, "POST", &format!("/api/v1/admin/grants/{grant_id}/revoke"), Some(json!({})), &h).await;
    assert_eq!(revoked_grant.expect_ok(200)["status"], "revoked");
    // A failed login counts against its address (login_failures), and is answered 401, not 500.
    let failed = send_to(
        &s,
        "POST",
        "/api/v1/auth/login",
        Some(json!({"email": "bob@example.com", "password": "not the password"})),
        ANON,
    )
    .await;
    assert_eq!(failed.status, 401, "{}", failed.text);

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
        ("BEGIN; LOCK TABLE plystra.roles IN ACCESS EXCLUSIVE MODE", "hold a table every decision reads"),
        ("ROLLBACK; BEGIN; SELECT plystra.seal_audit(0)", "hold the sealer"),
        ("ROLLBACK; UPDATE plystra.groups SET id = 'group_renamed' WHERE id = 'group_finance'", "change a row's id"),
    ] {
        let e = as_role.batch_execute(stmt).await.expect_err(what);
        assert_eq!(e.code(), Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE), "{what}: {e:?}");
    }
    db.batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role};")).await.ok();
}
