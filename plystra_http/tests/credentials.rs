//! Credentials against the real extension: protection of every route in the route table, password sessions
//! (login, refresh, logout, lockout, secret rotation, password change), admin grants at each level, and API
//! keys (scope, delegation, rotation, last use).

mod common;

use common::*;
use serde_json::{json, Value};

const FRESH_PASSWORD: &str = "correct horse battery staple";

/// A demo-password hash, computed once (Argon2id is not free).
fn password_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| plystra_http::auth::password::hash(FRESH_PASSWORD))
}

/// A user bound to member_finance_reviewer in space_acme, with the given admin grants
/// (level, permission, space, group). Returns (user_id, email).
async fn make_user(prefix: &str, grants: &[GrantSpec<'_>]) -> (String, String) {
    common::make_user(prefix, None, password_hash(), ACME, grants).await
}

async fn login_token(email: &str) -> String {
    let a = login_on(server(), email, FRESH_PASSWORD).await;
    a.expect_ok(200)["access_token"].as_str().unwrap().to_string()
}

/// Every (METHOD, concrete path) of the route table with its access.
fn endpoints() -> Vec<(plystra_http::protection::Access, String, String)> {
    let mut out = Vec::new();
    for def in plystra_http::routes::table() {
        for (method, path) in def.endpoints() {
            let concrete =
                path.split('/').map(|s| if s.starts_with('{') { "probe_x" } else { s }).collect::<Vec<_>>().join("/");
            out.push((def.access, method, concrete));
        }
    }
    out
}

#[tokio::test]
async fn no_route_outside_health_ready_version_answers_without_a_credential() {
    use plystra_http::protection::Access;
    let (_, weak_email) = make_user("user_weak", &[("instance_admin", "nothing:read", None, None)]).await;
    let weak = login_token(&weak_email).await;
    let weak_key = create_key(json!({"name": "weak", "level": "instance", "permission_keys": ["instance:read"]})).await;
    let mut admin_routes = 0;
    for (access, method, path) in endpoints() {
        let body = if method == "GET" { None } else { Some(json!({})) };
        match access {
            Access::Public => {
                let a = send_to(server(), &method, &path, None, ANON).await;
                if path == "/metrics" {
                    a.expect_error(404, "FEATURE_DISABLED"); // its own token, and off by default
                } else if path == "/.well-known/authzen-configuration" {
                    // The AuthZEN metadata, in the standard's shape (no envelope).
                    assert_eq!(a.status, 200, "{}", a.text);
                    assert!(a.body["policy_decision_point"].is_string(), "{}", a.text);
                } else {
                    a.expect_ok(200);
                }
            }
            Access::Own => {
                let a = send_to(server(), &method, &path, body.clone(), ANON).await;
                if path == "/api/v1/auth/login" {
                    a.expect_error(400, "VALIDATION_FAILED");
                    let wrong = json!({"email": "nobody@example.com", "password": "wrong"});
                    send_to(server(), &method, &path, Some(wrong), ANON)
                        .await
                        .expect_error(401, "AUTHENTICATION_REQUIRED");
                } else if path == "/api/v1/auth/refresh" {
                    a.expect_error(400, "VALIDATION_FAILED");
                    let stale = json!({"refresh_token": format!("ply_rt_{}", "0".repeat(64))});
                    send_to(server(), &method, &path, Some(stale), ANON).await.expect_error(401, "SESSION_EXPIRED");
                } else {
                    assert_eq!(a.status, 401, "{method} {path} answered without a credential: {}", a.text);
                }
            }
            Access::Admin(permission, _) | Access::Decision(permission) => {
                admin_routes += 1;
                for headers in [
                    ANON,
                    &[(
                        "authorization",
                        "Bearer ply_at_0000000000000000000000000000000000000000000000000000000000000000",
                    )][..],
                    &[("authorization", "Basic dXNlcjpwYXNz")][..],
                    &[(
                        "x-plystra-api-key",
                        "ply_ak_ak_harness_admin.00000000000000000000000000000000000000000000000000000000000000ff",
                    )][..],
                ] {
                    let a = send_to(server(), &method, &path, body.clone(), headers).await;
                    let e = a.expect_error(401, "AUTHENTICATION_REQUIRED");
                    assert_eq!(e["message"], "A valid access token is required.", "{method} {path}");
                }
                let a = as_bearer(&weak, &method, &path, body.clone()).await;
                let e = a.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
                assert_eq!(e["details"]["permission"], permission, "{method} {path}");
                if permission != "instance:read" {
                    let a = as_key(&weak_key, &method, &path, body.clone()).await;
                    assert_eq!(a.expect_error(403, "ADMIN_PERMISSION_REQUIRED")["details"]["permission"], permission);
                }
            }
        }
    }
    assert!(admin_routes > 90, "{admin_routes}");
}

#[tokio::test]
async fn login_refresh_logout() {
    let a = login_on(server(), "Alice@Example.com", DEMO_PASSWORD).await;
    let d = a.expect_ok(200).clone();
    let access = d["access_token"].as_str().unwrap().to_string();
    let refresh = d["refresh_token"].as_str().unwrap().to_string();
    assert!(access.starts_with("ply_at_") && access.len() == 7 + 64, "{access}");
    assert!(refresh.starts_with("ply_rt_") && refresh.len() == 7 + 64);
    assert_eq!(d["token_type"], "Bearer");
    assert_eq!(d["user"], json!({"id": "user_alice", "email": "alice@example.com", "status": "active"}));
    assert_eq!(
        d["actor"],
        json!({"user_id": "user_alice", "member_id": "member_finance_reviewer",
               "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"})
    );
    let members = d["available_members"].as_array().unwrap();
    assert!(members.iter().all(|m| m["user_member_id"] != "um_alice_finance_reviewer_revoked"
        && m["user_member_id"] != "um_alice_finance_reviewer_expired"));
    assert_eq!(members[0]["space_name"], "Acme");
    let expires =
        time::OffsetDateTime::parse(d["expires_at"].as_str().unwrap(), &time::format_description::well_known::Rfc3339)
            .unwrap();
    let left = expires - time::OffsetDateTime::now_utc();
    assert!(left.whole_minutes() >= 14 && left.whole_minutes() <= 15, "access tokens live 15 minutes: {left}");
    let refresh_expires = time::OffsetDateTime::parse(
        d["refresh_expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!((refresh_expires - time::OffsetDateTime::now_utc()).whole_days(), 29);

    // Stored only as HMAC-SHA256 under the session secret.
    let db = sql().await;
    let row = db
        .query_one(
            "SELECT access_token_hash, refresh_token_hash FROM plystra.sessions WHERE access_token_hash = $1",
            &[&plystra_http::auth::secrets::hmac_hex(TEST_SESSION_SECRET, &access)],
        )
        .await
        .unwrap();
    let (ah, rh): (String, String) = (row.get(0), row.get(1));
    assert_ne!(ah, access);
    assert_ne!(rh, refresh);
    assert_eq!(rh, plystra_http::auth::secrets::hmac_hex(TEST_SESSION_SECRET, &refresh));
    let plaintext_anywhere: i64 = db
        .query_one(
            "SELECT count(*) FROM plystra.sessions s WHERE to_jsonb(s)::text LIKE '%' || $1 || '%'",
            &[&&access[7..]],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(plaintext_anywhere, 0);

    let me = as_bearer(&access, "GET", "/api/v1/auth/me", None).await;
    assert_eq!(me.expect_ok(200)["user"]["id"], "user_alice");
    let ctx = as_bearer(&access, "GET", "/api/v1/actor/context", None).await;
    assert_eq!(ctx.expect_ok(200)["actor"]["user_member_id"], "um_alice_finance_reviewer");

    // Refresh rotates both tokens; the old ones stop working.
    let r = send_to(server(), "POST", "/api/v1/auth/refresh", Some(json!({"refresh_token": refresh})), ANON).await;
    let r = r.expect_ok(200).clone();
    let (access2, refresh2) =
        (r["access_token"].as_str().unwrap().to_string(), r["refresh_token"].as_str().unwrap().to_string());
    assert_ne!(access2, access);
    assert_ne!(refresh2, refresh);
    // (The old refresh token is tried after logout below: presenting it now would end the whole session,
    // standing.rs f17_a_reused_refresh_token_ends_the_whole_session.)
    as_bearer(&access, "GET", "/api/v1/auth/me", None).await.expect_error(401, "AUTHENTICATION_REQUIRED");
    as_bearer(&access2, "GET", "/api/v1/auth/me", None).await.expect_ok(200);
    // The super admin session passes the guard.
    as_bearer(&access2, "GET", "/api/v1/users", None).await.expect_ok(200);

    // Logout revokes.
    let out = as_bearer(&access2, "POST", "/api/v1/auth/logout", None).await;
    assert_eq!(out.expect_ok(200)["logged_out"], true);
    as_bearer(&access2, "GET", "/api/v1/users", None).await.expect_error(401, "AUTHENTICATION_REQUIRED");
    for old in [&refresh, &refresh2] {
        send_to(server(), "POST", "/api/v1/auth/refresh", Some(json!({"refresh_token": old})), ANON)
            .await
            .expect_error(401, "SESSION_EXPIRED");
    }
    as_bearer(&access2, "POST", "/api/v1/auth/logout", None).await.expect_error(401, "AUTHENTICATION_REQUIRED");

    // Logout by refresh token.
    let d = login_on(server(), "bob@example.com", DEMO_PASSWORD).await.expect_ok(200).clone();
    send_to(server(), "POST", "/api/v1/auth/logout", Some(json!({"refresh_token": d["refresh_token"]})), ANON)
        .await
        .expect_ok(200);
    as_bearer(d["access_token"].as_str().unwrap(), "GET", "/api/v1/auth/me", None)
        .await
        .expect_error(401, "AUTHENTICATION_REQUIRED");

    // Wrong password.
    let e = login_on(server(), "bob@example.com", "not-the-password").await;
    assert_eq!(e.expect_error(401, "AUTHENTICATION_REQUIRED")["message"], "Email or password is incorrect.");
}

#[tokio::test]
async fn failed_logins_lock_known_and_unknown_emails_alike() {
    let s = start_server(&[
        ("PLYSTRA_AUTH_LOGIN_MAX_FAILURES", "3"),
        ("PLYSTRA_AUTH_LOGIN_WINDOW", "15m"),
        ("PLYSTRA_AUTH_LOGIN_LOCKOUT", "2s"),
    ]);
    let (_, known) = make_user("user_lock", &[]).await;
    let unknown = format!("{}@example.com", unique("nobody"));
    let mut answers = Vec::new();
    for email in [&known, &unknown] {
        let mut seen = Vec::new();
        for _ in 0..3 {
            let a = login_on(&s, email, "wrong password!").await;
            a.expect_error(401, "AUTHENTICATION_REQUIRED");
            seen.push((a.status, a.body["error"]["message"].clone()));
        }
        let a = login_on(&s, email, FRESH_PASSWORD).await;
        a.expect_error(429, "LOGIN_LOCKED");
        assert!(a.header("retry-after").is_some());
        seen.push((a.status, a.body["error"]["message"].clone()));
        answers.push(seen);
    }
    assert_eq!(answers[0], answers[1], "a known and an unknown e-mail get the same answers");
    // The lockout ends; a success clears the count.
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    login_on(&s, &known, FRESH_PASSWORD).await.expect_ok(200);
    let left: i64 = sql()
        .await
        .query_one("SELECT count(*) FROM plystra.login_failures WHERE email_key = lower($1)", &[&known])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    // Counted per address, case-insensitively.
    for _ in 0..3 {
        login_on(&s, &unknown.to_uppercase(), "x").await;
    }
    login_on(&s, &unknown, "x").await.expect_error(429, "LOGIN_LOCKED");
}

#[tokio::test]
async fn a_rotated_session_secret_keeps_old_sessions_and_signs_new_ones_with_the_new_secret() {
    let new_secret = "rotated-session-secret-0123456789abcdef-0002";
    let old = session_token("bob@example.com").await;
    let rotated = start_server(&[
        ("PLYSTRA_SESSION_SECRET", new_secret),
        ("PLYSTRA_SESSION_SECRET_PREVIOUS", &format!("unrelated-0123456789abcdef0123456789,{TEST_SESSION_SECRET}")),
    ]);
    send_to(&rotated, "GET", "/api/v1/auth/me", None, &[("authorization", &bearer(&old))]).await.expect_ok(200);
    let fresh = login_on(&rotated, "bob@example.com", DEMO_PASSWORD).await.expect_ok(200)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let stored: i64 = sql()
        .await
        .query_one(
            "SELECT count(*) FROM plystra.sessions WHERE access_token_hash = $1",
            &[&plystra_http::auth::secrets::hmac_hex(new_secret, &fresh)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1, "new tokens are hashed with the new secret");
    // Without the previous secret, the old session is unknown.
    let only_new = start_server(&[("PLYSTRA_SESSION_SECRET", new_secret)]);
    send_to(&only_new, "GET", "/api/v1/auth/me", None, &[("authorization", &bearer(&old))])
        .await
        .expect_error(401, "AUTHENTICATION_REQUIRED");
    send_to(&only_new, "GET", "/api/v1/auth/me", None, &[("authorization", &bearer(&fresh))]).await.expect_ok(200);
}

#[tokio::test]
async fn passwords_are_argon2id_with_a_minimum_length_and_a_change_revokes_sessions() {
    let id = unique("user_pw");
    let email = format!("{id}@example.com");
    // API keys never set passwords (security review F1): a super admin's session does.
    let admin = admin_session().await;
    let a =
        as_bearer(&admin, "POST", "/api/v1/users", Some(json!({"id": id, "email": email, "password": "short"}))).await;
    assert_eq!(a.expect_error(400, "VALIDATION_FAILED")["details"]["field"], "password");
    as_bearer(&admin, "POST", "/api/v1/users", Some(json!({"id": id, "email": email, "password": FRESH_PASSWORD})))
        .await
        .expect_ok(201);
    let hash: String =
        sql().await.query_one("SELECT password_hash FROM plystra.users WHERE id = $1", &[&id]).await.unwrap().get(0);
    assert!(hash.starts_with("argon2id$v=19$m=65536,t=3,p=2$"), "{hash}");
    post(
        "/api/v1/spaces/space_acme/user-members",
        json!({"user_id": id, "member_id": "member_invoice_creator", "relation_type": "login"}),
    )
    .await
    .expect_ok(201);
    let token = login_token(&email).await;
    as_bearer(&token, "GET", "/api/v1/auth/me", None).await.expect_ok(200);
    let changed =
        as_bearer(&admin, "PATCH", &format!("/api/v1/users/{id}"), Some(json!({"password": "another long password"})))
            .await;
    assert!(changed.expect_ok(200)["password_changed_at"].is_string());
    as_bearer(&token, "GET", "/api/v1/auth/me", None).await.expect_error(401, "AUTHENTICATION_REQUIRED");
    login_on(server(), &email, FRESH_PASSWORD).await.expect_error(401, "AUTHENTICATION_REQUIRED");
    login_on(server(), &email, "another long password").await.expect_ok(200);
    // Only v1.0's encoding is accepted as a hash.
    let phc = format!("${hash}");
    as_bearer(&admin, "PATCH", &format!("/api/v1/users/{id}"), Some(json!({"password_hash": phc})))
        .await
        .expect_error(400, "VALIDATION_FAILED");
}

#[tokio::test]
async fn switch_member_and_the_session_actor_in_authz() {
    let token = session_token("alice@example.com").await;
    let a = as_bearer(
        &token,
        "POST",
        "/api/v1/actor/switch-member",
        Some(json!({"user_member_id": "um_alice_finance_reviewer_revoked"})),
    )
    .await;
    a.expect_error(403, "ACTIVE_MEMBER_REQUIRED");
    let a = as_bearer(
        &token,
        "POST",
        "/api/v1/actor/switch-member",
        Some(json!({"member_id": "member_finance_reviewer", "user_member_id": "um_alice_finance_reviewer"})),
    )
    .await;
    assert_eq!(a.expect_ok(200)["actor"]["member_id"], "member_finance_reviewer");
    // A session without an actor decides as its binding; another user's binding is refused.
    let check = json!({"resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"});
    let d = as_bearer(&token, "POST", "/api/v1/authz/check", Some(check.clone())).await;
    let d = d.expect_ok(200);
    assert_eq!(d["decision"], "allow");
    assert_eq!(d["audit"]["actor_user_id"], "user_alice");
    let mut bob = check.clone();
    bob["actor"] = json!({"user_id": "user_bob", "member_id": "member_finance_reviewer", "user_member_id": "um_bob_finance_reviewer", "space_id": "space_acme"});
    as_bearer(&token, "POST", "/api/v1/authz/check", Some(bob.clone()))
        .await
        .expect_error(403, "ACTIVE_MEMBER_REQUIRED");
    // An API key must name the actor, and may name anyone's.
    as_key(&admin_key(), "POST", "/api/v1/authz/check", Some(check)).await.expect_error(400, "VALIDATION_FAILED");
    assert_eq!(
        as_key(&admin_key(), "POST", "/api/v1/authz/check", Some(bob)).await.expect_ok(200)["decision"],
        "allow"
    );
}

#[tokio::test]
async fn admin_grant_levels_cover_their_scope_only() {
    let (_, inst) = make_user("user_inst", &[("instance_admin", "users:read", None, None)]).await;
    let (_, space) = make_user("user_space", &[("space_admin", "groups:manage", Some("space_acme"), None)]).await;
    let (_, group) = make_user("user_group", &[("group_admin", "groups:read", None, Some("group_finance"))]).await;
    let (inst, space, group) = (login_token(&inst).await, login_token(&space).await, login_token(&group).await);

    as_bearer(&inst, "GET", "/api/v1/users", None).await.expect_ok(200);
    as_bearer(&inst, "GET", "/api/v1/users/user_bob", None).await.expect_ok(200);
    let e = as_bearer(&inst, "POST", "/api/v1/users", Some(json!({"email": "x@example.com"}))).await;
    assert_eq!(e.expect_error(403, "ADMIN_PERMISSION_REQUIRED")["details"]["permission"], "users:manage");
    as_bearer(&inst, "GET", "/api/v1/spaces/space_acme/groups", None)
        .await
        .expect_error(403, "ADMIN_PERMISSION_REQUIRED");

    as_bearer(&space, "GET", "/api/v1/spaces/space_acme/groups", None).await.expect_ok(200);
    as_bearer(&space, "GET", "/api/v1/groups/group_legal", None).await.expect_ok(200);
    as_bearer(&space, "GET", "/api/v1/spaces/space_other/groups", None)
        .await
        .expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    as_bearer(&space, "GET", "/api/v1/users", None).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    as_bearer(&space, "GET", "/api/v1/spaces/space_acme/members", None)
        .await
        .expect_error(403, "ADMIN_PERMISSION_REQUIRED");

    let old = post("/api/v1/spaces/space_acme/groups", json!({"path": "finance_old"})).await;
    let old_id = old.expect_ok(201)["id"].as_str().unwrap().to_string();
    as_bearer(&group, "GET", "/api/v1/spaces/space_acme/groups/group_finance", None).await.expect_ok(200);
    as_bearer(&group, "GET", "/api/v1/spaces/space_acme/groups/group_finance_apac", None).await.expect_ok(200);
    as_bearer(&group, "GET", "/api/v1/groups/group_finance_emea", None).await.expect_ok(200);
    for denied in ["/api/v1/spaces/space_acme/groups/group_legal".to_string(), format!("/api/v1/groups/{old_id}")] {
        as_bearer(&group, "GET", &denied, None).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    }
    // A group admin does not cover its Space.
    as_bearer(&group, "GET", "/api/v1/spaces/space_acme/groups", None)
        .await
        .expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    // A revoked or expired grant counts for nothing.
    sql().await.execute("UPDATE plystra.admin_grants SET expires_at = now() - interval '1 second' WHERE user_id IN (SELECT user_id FROM plystra.sessions WHERE access_token_hash = $1)",
        &[&plystra_http::auth::secrets::hmac_hex(TEST_SESSION_SECRET, &inst)]).await.unwrap();
    as_bearer(&inst, "GET", "/api/v1/users", None).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
}

#[tokio::test]
async fn admin_grants_api_and_the_last_super_admin() {
    let admin = admin_session().await;
    let (weak_id, weak_email) =
        make_user("user_ga", &[("space_admin", "admin_grants:manage", Some("space_acme"), None)]).await;
    let weak = login_token(&weak_email).await;
    let (target, _) = make_user("user_gt", &[]).await;

    // Only a super admin creates instance-level grants (an instance admin of grants may not); API keys manage
    // no grants; a space admin of grants does not even reach the instance.
    let (_, inst_email) = make_user("user_gi", &[("instance_admin", "admin_grants:manage", None, None)]).await;
    let inst_admin = login_token(&inst_email).await;
    let body = json!({"user_id": target, "level": "instance_admin", "permission_key": "users:read"});
    as_bearer(&weak, "POST", "/api/v1/admin/grants", Some(body.clone()))
        .await
        .expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    let e = as_bearer(&inst_admin, "POST", "/api/v1/admin/grants", Some(body.clone())).await;
    assert_eq!(
        e.expect_error(403, "ADMIN_PERMISSION_REQUIRED")["message"],
        "Only an instance super admin can create instance-level admin grants."
    );
    as_key(&admin_key(), "POST", "/api/v1/admin/grants", Some(body.clone()))
        .await
        .expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    let rid = unique("req_grant");
    let g = send_to(
        server(),
        "POST",
        "/api/v1/admin/grants",
        Some(body),
        &[("authorization", &bearer(&admin)), ("X-Request-ID", &rid)],
    )
    .await;
    let g = g.expect_ok(201).clone();
    assert_eq!(g["level"], "instance_admin");
    assert_eq!(g["granted_by_user_id"], "user_alice");
    let audit: Vec<(String, Option<String>)> = sql()
        .await
        .query("SELECT action, actor_user_id FROM plystra.audit_logs WHERE request_id = $1", &[&rid])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(audit, vec![("admin_grant.created".to_string(), Some("user_alice".to_string()))]);

    // A space admin grants within its Space, only what it holds.
    let ok = json!({"user_id": target, "level": "space_admin", "space_id": "space_acme", "permission_key": "admin_grants:read"});
    let created = as_bearer(&weak, "POST", "/api/v1/admin/grants", Some(ok)).await.expect_ok(201).clone();
    let beyond =
        json!({"user_id": target, "level": "space_admin", "space_id": "space_acme", "permission_key": "users:manage"});
    as_bearer(&weak, "POST", "/api/v1/admin/grants", Some(beyond)).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    let other = json!({"user_id": target, "level": "space_admin", "space_id": "space_other", "permission_key": "admin_grants:read"});
    as_bearer(&weak, "POST", "/api/v1/admin/grants", Some(other)).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    let bad = json!({"user_id": target, "level": "galaxy_admin", "permission_key": "*"});
    as_bearer(&admin, "POST", "/api/v1/admin/grants", Some(bad)).await.expect_error(400, "VALIDATION_FAILED");
    let bad = json!({"user_id": target, "level": "instance_admin", "permission_key": "Users:Read"});
    as_bearer(&admin, "POST", "/api/v1/admin/grants", Some(bad)).await.expect_error(400, "VALIDATION_FAILED");

    // List, get, revoke.
    let list = as_bearer(&admin, "GET", &format!("/api/v1/admin/grants?user_id={target}"), None).await;
    assert_eq!(list.expect_ok(200).as_array().unwrap().len(), 2);
    let id = created["id"].as_str().unwrap();
    // A grant's row names its scope: the space admin reads its Space's grants, not instance ones.
    as_bearer(&weak, "GET", &format!("/api/v1/admin/grants/{id}"), None).await.expect_ok(200);
    let inst_id = g["id"].as_str().unwrap();
    as_bearer(&weak, "GET", &format!("/api/v1/admin/grants/{inst_id}"), None)
        .await
        .expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    as_bearer(&admin, "GET", &format!("/api/v1/admin/grants/{id}"), None).await.expect_ok(200);
    as_bearer(&admin, "GET", "/api/v1/admin/grants/ag_missing", None).await.expect_error(404, "ADMIN_GRANT_NOT_FOUND");
    let r =
        as_bearer(&weak, "POST", &format!("/api/v1/admin/grants/{id}/revoke"), Some(json!({"revoked_reason": "done"})))
            .await;
    let r = r.expect_ok(200);
    assert_eq!(r["status"], "revoked");
    assert_eq!(r["revoked_reason"], "done");
    let inst = g["id"].as_str().unwrap();
    let e = as_bearer(&weak, "POST", &format!("/api/v1/admin/grants/{inst}/revoke"), None).await;
    e.expect_error(403, "ADMIN_PERMISSION_REQUIRED");

    let e = as_bearer(&inst_admin, "POST", &format!("/api/v1/admin/grants/{inst}/revoke"), None).await;
    assert_eq!(
        e.expect_error(403, "ADMIN_PERMISSION_REQUIRED")["message"],
        "Only an instance super admin can revoke instance-level admin grants."
    );

    // The last active super admin stays.
    let second = as_bearer(
        &admin,
        "POST",
        "/api/v1/admin/grants",
        Some(json!({"user_id": weak_id, "level": "instance_super_admin"})),
    )
    .await;
    let second = second.expect_ok(201)["id"].as_str().unwrap().to_string();
    as_bearer(&admin, "POST", &format!("/api/v1/admin/grants/{second}/revoke"), None).await.expect_ok(200);
    let e = as_bearer(&admin, "POST", &format!("/api/v1/admin/grants/{ADMIN_GRANT_ID}/revoke"), None).await;
    e.expect_error(409, "LAST_SUPER_ADMIN");

    let me = as_bearer(&admin, "GET", "/api/v1/admin/me", None).await;
    let me = me.expect_ok(200);
    assert_eq!(me["capabilities"]["*"], true);
    assert_eq!(me["credential_type"], "session");
    assert_eq!(me["active_space"]["id"], "space_acme");
}

/// Creates a key with the harness's admin session (alice, super admin) and returns the plaintext.
async fn create_key(body: Value) -> String {
    let a = as_bearer(&admin_session().await, "POST", "/api/v1/api-keys", Some(body)).await;
    a.expect_ok(201)["api_key"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn api_keys_are_shown_once_hashed_at_rest_and_scoped() {
    let admin = admin_session().await;
    let rid = unique("req_key");
    let a = send_to(
        server(),
        "POST",
        "/api/v1/api-keys",
        Some(json!({"name": "reader", "level": "instance", "permission_keys": ["users:read"]})),
        &[("authorization", &bearer(&admin)), ("X-Request-ID", &rid)],
    )
    .await;
    let created = a.expect_ok(201).clone();
    let key = created["api_key"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["key"], key.as_str());
    assert!(key.starts_with(&format!("ply_ak_{id}.")), "{key}");
    assert_eq!(key.len(), format!("ply_ak_{id}.").len() + 64);
    assert_eq!(created["key_prefix"], format!("ply_ak_{id}"));
    assert!(created.get("key_hash").is_none());
    let got = as_bearer(&admin, "GET", &format!("/api/v1/api-keys/{id}"), None).await;
    let got = got.expect_ok(200);
    assert!(
        got.get("api_key").is_none()
            && got.get("key_hash").is_none()
            && !got.to_string().contains(&key[key.len() - 64..])
    );
    assert!(got["last_used_at"].is_null());
    let db = sql().await;
    let stored: String =
        db.query_one("SELECT key_hash FROM plystra.api_keys WHERE id = $1", &[&id]).await.unwrap().get(0);
    assert_ne!(stored, key);
    assert_eq!(stored, plystra_http::auth::secrets::hmac_hex(TEST_API_KEY_SECRET, &key));
    // Audited without the secret or its hash.
    let trace: String = db
        .query_one(
            "SELECT trace::text FROM plystra.audit_logs WHERE request_id = $1 AND action = 'api_key.created'",
            &[&rid],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!trace.contains(&key[key.len() - 64..]) && !trace.contains(&stored), "{trace}");

    // Both presentations work; the permission is the key's, no more.
    as_key(&key, "GET", "/api/v1/users", None).await.expect_ok(200);
    as_bearer(&key, "GET", "/api/v1/users", None).await.expect_ok(200);
    as_key(&key, "POST", "/api/v1/users", Some(json!({"email": "k@example.com"})))
        .await
        .expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    let used = as_bearer(&admin, "GET", &format!("/api/v1/api-keys/{id}"), None).await;
    assert!(used.expect_ok(200)["last_used_at"].is_string(), "last_used_at is kept");

    // A space key works in its Space only, and a scoped key on an unscoped route is refused.
    let space_key = create_key(json!({"name": "acme", "level": "space", "space_id": "space_acme", "permission_keys": ["groups:read", "authz:check"]})).await;
    as_key(&space_key, "GET", "/api/v1/spaces/space_acme/groups", None).await.expect_ok(200);
    as_key(&space_key, "GET", "/api/v1/spaces/space_other/groups", None)
        .await
        .expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    let e = as_key(&space_key, "GET", "/api/v1/users", None).await;
    assert!(e.expect_error(403, "ADMIN_PERMISSION_REQUIRED")["message"]
        .as_str()
        .unwrap()
        .contains("Scoped credentials"));
    // Service-to-service checks: a space key with authz:check decides in its Space.
    let check = json!({"actor": {"user_id": "user_bob", "member_id": "member_finance_reviewer", "user_member_id": "um_bob_finance_reviewer", "space_id": "space_acme"},
                       "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"});
    assert_eq!(
        as_key(&space_key, "POST", "/api/v1/authz/check", Some(check)).await.expect_ok(200)["decision"],
        "allow"
    );
    // A group key covers its group tree.
    let group_key = create_key(
        json!({"name": "fin", "level": "group", "group_id": "group_finance", "permission_keys": ["groups:read"]}),
    )
    .await;
    as_key(&group_key, "GET", "/api/v1/groups/group_finance_apac", None).await.expect_ok(200);
    as_key(&group_key, "GET", "/api/v1/groups/group_legal", None).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");

    // Revoked keys stop working.
    let r =
        as_bearer(&admin, "POST", &format!("/api/v1/api-keys/{id}/revoke"), Some(json!({"revoked_reason": "rotated"})))
            .await;
    let r = r.expect_ok(200);
    assert_eq!(r["status"], "revoked");
    assert_eq!(r["revoked_by_user_id"], "user_alice");
    as_key(&key, "GET", "/api/v1/users", None).await.expect_error(401, "AUTHENTICATION_REQUIRED");
    let list = as_bearer(&admin, "GET", "/api/v1/api-keys?status=revoked", None).await;
    assert!(list.expect_ok(200).as_array().unwrap().iter().any(|k| k["id"] == id.as_str()));

    // Validation.
    for body in [
        json!({"name": "x", "level": "instance", "permission_keys": []}),
        json!({"name": "x", "level": "planet", "permission_keys": ["users:read"]}),
        json!({"name": "x", "level": "instance", "permission_keys": ["Users"]}),
        json!({"name": "x", "level": "space", "permission_keys": ["users:read"]}),
        json!({"name": "x", "level": "instance", "permission_keys": ["users:read"], "expires_at": "2020-01-01T00:00:00Z"}),
    ] {
        as_bearer(&admin, "POST", "/api/v1/api-keys", Some(body)).await.expect_error(400, "VALIDATION_FAILED");
    }
}

/// `last_used_at` of an API key: (set, more than a minute old).
async fn last_use(db: &tokio_postgres::Client, id: &str) -> (bool, bool) {
    let row = db
        .query_one(
            "SELECT last_used_at IS NOT NULL, coalesce(last_used_at < now() - interval '1 minute', false) \
             FROM plystra.api_keys WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn a_server_writes_a_keys_last_use_at_most_once_a_minute_and_still_checks_the_key_every_time() {
    let key = create_key(json!({"name": "last use", "level": "instance", "permission_keys": ["users:read"]})).await;
    let id = key.strip_prefix("ply_ak_").and_then(|k| k.split_once('.')).unwrap().0.to_string();
    let db = sql().await;
    assert_eq!(last_use(&db, &id).await, (false, false));
    as_key(&key, "GET", "/api/v1/users", None).await.expect_ok(200);
    assert_eq!(last_use(&db, &id).await, (true, false), "the first use is written");

    // Moved two minutes back behind the server's back: the UPDATE would write again, but this server wrote it
    // less than a minute ago, so it does not send the UPDATE at all.
    db.execute("UPDATE plystra.api_keys SET last_used_at = now() - interval '2 minutes' WHERE id = $1", &[&id])
        .await
        .unwrap();
    as_key(&key, "GET", "/api/v1/users", None).await.expect_ok(200);
    assert_eq!(last_use(&db, &id).await, (true, true), "within a minute of its own write the server skips it");
    // Another server has no such memory: it writes.
    let other = start_server(&[]);
    send_to(&other, "GET", "/api/v1/users", None, &[("x-plystra-api-key", &key)]).await.expect_ok(200);
    assert_eq!(last_use(&db, &id).await, (true, false));

    // The memory is about bookkeeping only: the key is looked up on every request, so an expired key is
    // refused on the very next one.
    db.execute("UPDATE plystra.api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", &[&id])
        .await
        .unwrap();
    as_key(&key, "GET", "/api/v1/users", None).await.expect_error(401, "AUTHENTICATION_REQUIRED");
}

#[tokio::test]
async fn a_read_only_database_still_serves_api_keys_without_recording_their_use() {
    let key = create_key(json!({"name": "read only", "level": "instance", "permission_keys": ["users:read"]})).await;
    let id = key.strip_prefix("ply_ak_").and_then(|k| k.split_once('.')).unwrap().0.to_string();
    let url = &db().url;
    let sep = if url.contains('?') { '&' } else { '?' };
    let read_only = format!("{url}{sep}options=-c%20default_transaction_read_only%3Don");
    let s = start_server(&[("DATABASE_URL", &read_only)]);
    for _ in 0..2 {
        send_to(&s, "GET", "/api/v1/users", None, &[("x-plystra-api-key", &key)]).await.expect_ok(200);
    }
    assert_eq!(last_use(&sql().await, &id).await, (false, false), "the UPDATE failed (only logged)");
}

#[tokio::test]
async fn a_key_carries_only_permissions_its_creator_holds_on_that_scope() {
    let (_, email) = make_user(
        "user_delegate",
        &[
            ("space_admin", "groups:read", Some("space_acme"), None),
            ("space_admin", "api_keys:create", Some("space_acme"), None),
        ],
    )
    .await;
    let creator = login_token(&email).await;
    let ok = json!({"name": "d", "level": "space", "space_id": "space_acme", "permission_keys": ["groups:read"]});
    let key = as_bearer(&creator, "POST", "/api/v1/api-keys", Some(ok)).await.expect_ok(201)["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    as_key(&key, "GET", "/api/v1/spaces/space_acme/groups", None).await.expect_ok(200);
    for (level, keys, space) in [
        ("space", json!(["groups:manage"]), Some("space_acme")),
        ("space", json!(["groups:read", "users:read"]), Some("space_acme")),
        ("space", json!(["groups:read"]), Some("space_other")),
        ("instance", json!(["groups:read"]), None),
    ] {
        let mut body = json!({"name": "d", "level": level, "permission_keys": keys});
        if let Some(s) = space {
            body["space_id"] = json!(s);
        }
        as_bearer(&creator, "POST", "/api/v1/api-keys", Some(body))
            .await
            .expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    }
    // A group key within the creator's Space is a narrowing, so it is allowed.
    let g = json!({"name": "g", "level": "group", "group_id": "group_finance", "permission_keys": ["groups:read"]});
    as_bearer(&creator, "POST", "/api/v1/api-keys", Some(g)).await.expect_ok(201);
}

#[tokio::test]
async fn a_rotated_api_key_secret_still_accepts_old_keys() {
    let rotated = start_server(&[
        ("PLYSTRA_API_KEY_SECRET", "rotated-api-key-secret-0123456789abcdef-0002"),
        ("PLYSTRA_API_KEY_SECRET_PREVIOUS", TEST_API_KEY_SECRET),
    ]);
    send_to(&rotated, "GET", "/api/v1/users", None, &[("x-plystra-api-key", &admin_key())]).await.expect_ok(200);
    let only_new = start_server(&[("PLYSTRA_API_KEY_SECRET", "rotated-api-key-secret-0123456789abcdef-0002")]);
    send_to(&only_new, "GET", "/api/v1/users", None, &[("x-plystra-api-key", &admin_key())])
        .await
        .expect_error(401, "AUTHENTICATION_REQUIRED");
    // Without a secret no key can be created.
    let none = start_server(&[("PLYSTRA_API_KEY_SECRET", "")]);
    let token = session_token("alice@example.com").await;
    let a = send_to(
        &none,
        "POST",
        "/api/v1/api-keys",
        Some(json!({"name": "x", "level": "instance", "permission_keys": ["users:read"]})),
        &[("authorization", &bearer(&token))],
    )
    .await;
    assert!(a.expect_error(409, "API_KEY_CREATE_FAILED")["message"]
        .as_str()
        .unwrap()
        .contains("PLYSTRA_API_KEY_SECRET"));
}

#[tokio::test]
async fn inactive_users_and_users_without_a_binding_cannot_use_sessions() {
    let (id, email) = make_user("user_inactive", &[("instance_admin", "users:read", None, None)]).await;
    let token = login_token(&email).await;
    as_bearer(&token, "GET", "/api/v1/users", None).await.expect_ok(200);
    let db = sql().await;
    db.execute("UPDATE plystra.users SET status = 'disabled' WHERE id = $1", &[&id]).await.unwrap();
    as_bearer(&token, "GET", "/api/v1/users", None).await.expect_error(401, "AUTHENTICATION_REQUIRED");
    as_bearer(&token, "GET", "/api/v1/auth/me", None).await.expect_error(401, "AUTHENTICATION_REQUIRED");
    // The wrong password's answer, not 403 ACTOR_USER_INACTIVE: no password oracle (security review F17).
    login_on(server(), &email, FRESH_PASSWORD).await.expect_error(401, "AUTHENTICATION_REQUIRED");
    // A wrong password never reveals the status.
    login_on(server(), &email, "wrong password").await.expect_error(401, "AUTHENTICATION_REQUIRED");

    let (id, email) = make_user("user_unbound", &[]).await;
    db.execute("UPDATE plystra.user_members SET status = 'revoked', revoked_at = now() WHERE user_id = $1", &[&id])
        .await
        .unwrap();
    login_on(server(), &email, FRESH_PASSWORD).await.expect_error(403, "ACTIVE_MEMBER_REQUIRED");
}

#[tokio::test]
async fn a_scoped_key_must_name_its_scope_for_authz_checks() {
    let key = create_key(
        json!({"name": "s", "level": "space", "space_id": "space_acme", "permission_keys": ["authz:check"]}),
    )
    .await;
    let unscoped = json!({"actor": {"user_id": "u", "member_id": "m", "user_member_id": "b"},
                          "resource_type": "invoice", "resource_id": "nothing_here", "action": "approve"});
    let e = as_key(&key, "POST", "/api/v1/authz/check", Some(unscoped)).await;
    let e = e.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    assert_eq!(e["message"], "Scoped credentials may ask only about actors, resources and groups inside their scope.");
    assert_eq!(e["details"]["permission"], "authz:check");
    // Every id counts, not only the resource's Space: an actor claiming another Space is outside the key's
    // scope (security review F3).
    let elsewhere = json!({"actor": {"user_id": "user_bob", "member_id": "member_finance_reviewer", "user_member_id": "um_bob_finance_reviewer", "space_id": "space_other"},
                           "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"});
    let d = as_key(&key, "POST", "/api/v1/authz/check", Some(elsewhere)).await;
    d.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
}

#[tokio::test]
async fn cross_space_lists_are_scoped_by_their_space_id_parameter() {
    let key = create_key(json!({"name": "a", "level": "space", "space_id": "space_acme", "permission_keys": ["audit:read", "resources:read"]})).await;
    let a = as_key(&key, "GET", "/api/v1/audit/logs?space_id=space_acme&limit=5", None).await;
    assert!(a.expect_ok(200).as_array().unwrap().iter().all(|r| r["space_id"] == "space_acme"));
    as_key(&key, "GET", "/api/v1/audit/logs?space_id=space%5Facme", None).await.expect_ok(200);
    as_key(&key, "GET", "/api/v1/resources?space_id=space_acme", None).await.expect_ok(200);
    for denied in [
        "/api/v1/audit/logs",
        "/api/v1/audit/logs?space_id=space_other",
        "/api/v1/audit/logs?space_id=space_acme&space_id=space_other",
        "/api/v1/resources",
    ] {
        as_key(&key, "GET", denied, None).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    }
    // An audit row by id resolves its Space from the row.
    let id: String = sql()
        .await
        .query_one("SELECT id FROM plystra.audit_logs WHERE space_id = 'space_acme' LIMIT 1", &[])
        .await
        .unwrap()
        .get(0);
    as_key(&key, "GET", &format!("/api/v1/audit/logs/{id}"), None).await.expect_ok(200);
}

#[tokio::test]
async fn a_scoped_key_gets_one_refusal_for_another_spaces_row_and_for_no_row() {
    // The key's own Space holds none of the rows asked about: each is in space_acme, or nowhere.
    sql()
        .await
        .execute(
            "INSERT INTO plystra.spaces (id, name, slug, type, status) \
             VALUES ('space_row_probe', 'Row probe', 'row-probe', 'custom', 'active') ON CONFLICT (id) DO NOTHING",
            &[],
        )
        .await
        .unwrap();
    let key = create_key(json!({"name": "probe", "level": "space", "space_id": "space_row_probe",
        "permission_keys": ["resources:read", "groups:read", "members:read", "roles:read", "audit:read"]}))
    .await;
    let audit_id: String = sql()
        .await
        .query_one("SELECT id FROM plystra.audit_logs WHERE space_id = 'space_acme' LIMIT 1", &[])
        .await
        .unwrap()
        .get(0);
    for (elsewhere, nowhere) in [
        ("/api/v1/resources/invoice/invoice_001".to_string(), "/api/v1/resources/invoice/invoice_nowhere".to_string()),
        ("/api/v1/groups/group_finance".into(), "/api/v1/groups/group_nowhere".into()),
        ("/api/v1/members/member_finance_reviewer".into(), "/api/v1/members/member_nowhere".into()),
        (format!("/api/v1/audit/logs/{audit_id}"), "/api/v1/audit/logs/audit_nowhere".into()),
    ] {
        let a = as_key(&key, "GET", &elsewhere, None).await;
        let b = as_key(&key, "GET", &nowhere, None).await;
        let (a, b) = (
            a.expect_error(403, "ADMIN_PERMISSION_REQUIRED").clone(),
            b.expect_error(403, "ADMIN_PERMISSION_REQUIRED").clone(),
        );
        assert_eq!(a["message"], b["message"], "{elsewhere} and {nowhere} must read alike");
        assert_eq!(a["details"], b["details"], "{elsewhere} and {nowhere} must read alike");
    }
}
