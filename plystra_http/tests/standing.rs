//! Standing and attribution (security review F1, F2, F10, F11, F17): nobody changes an account of equal or
//! higher standing, audit rows name the authenticated credential whatever the body says, API keys are bounded
//! by their creator and never outlive their parent, a Space admin cannot bind outside users or choose anyone's
//! default, and re-revoking or reusing a refresh token changes nothing it should not.

mod common;

use common::*;
use serde_json::{json, Value};

const PW: &str = "standing test password 1";

fn password_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| plystra_http::auth::password::hash(PW))
}

/// A user bound to `member` in `space` (binding `um_<id>`), with admin grants (level, permission, space).
/// Returns (user_id, email).
async fn make_user(prefix: &str, space: &str, member: &str, grants: &[(&str, &str, Option<&str>)]) -> (String, String) {
    let grants: Vec<GrantSpec<'_>> = grants.iter().map(|&(level, key, space)| (level, key, space, None)).collect();
    common::make_user(prefix, None, password_hash(), (space, member), &grants).await
}

/// A user bound to member_finance_reviewer in space_acme.
async fn acme_user(prefix: &str, grants: &[(&str, &str, Option<&str>)]) -> (String, String) {
    make_user(prefix, "space_acme", "member_finance_reviewer", grants).await
}

async fn login(email: &str) -> Value {
    login_on(server(), email, PW).await.expect_ok(200).clone()
}

async fn token(email: &str) -> String {
    login(email).await["access_token"].as_str().unwrap().to_string()
}

async fn stored_hash(user: &str) -> Option<String> {
    sql().await.query_one("SELECT password_hash FROM plystra.users WHERE id = $1", &[&user]).await.unwrap().get(0)
}

/// The management audit rows of one resource, oldest first: (actor_user_id, actor_member_id, trace).
async fn audit_of(resource_id: &str) -> Vec<(Option<String>, Option<String>, Value)> {
    sql()
        .await
        .query(
            "SELECT actor_user_id, actor_member_id, trace FROM plystra.audit_logs WHERE resource_id = $1 ORDER BY created_at, seq",
            &[&resource_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// `actor_claimed` of a row's credential (in `trace.credential` or beside it).
fn actor_claimed(trace: &Value) -> Option<bool> {
    trace["credential"]["actor_claimed"].as_bool().or_else(|| trace["actor_claimed"].as_bool())
}

// ---------------------------------------------------------------------------------------------------------------
// F1: user management is bounded by standing.
// ---------------------------------------------------------------------------------------------------------------

/// The review's reproduction: an instance key holding only users:manage tries to take over a super admin.
#[tokio::test]
async fn f1_a_users_manage_key_cannot_take_over_a_super_admin() {
    let (victim, victim_email) = acme_user("user_victim_sa", &[("instance_super_admin", "*", None)]).await;
    let created = post(
        "/api/v1/api-keys",
        json!({"name": "provisioning service", "level": "instance", "permission_keys": ["users:manage"]}),
    )
    .await;
    let key = created.expect_ok(201)["api_key"].as_str().unwrap().to_string();
    let before = stored_hash(&victim).await;
    let path = format!("/api/v1/users/{victim}");
    let forged = json!({"password": "attacker-chosen-pw-1", "actor": {"user_id": victim}});
    as_key(&key, "PATCH", &path, Some(forged)).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    let hash = plystra_http::auth::password::hash("attacker-chosen-pw-1");
    as_key(&key, "PATCH", &path, Some(json!({"password_hash": hash})))
        .await
        .expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    as_key(&key, "PATCH", &path, Some(json!({"email": "attacker@example.com"})))
        .await
        .expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    as_key(&key, "PATCH", &path, Some(json!({"status": "disabled"})))
        .await
        .expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    as_key(&key, "POST", &format!("{path}/disable"), None).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    as_key(&key, "POST", &format!("{path}/restore"), None).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    assert_eq!(stored_hash(&victim).await, before, "the super admin's password is unchanged");
    login_on(server(), &victim_email, "attacker-chosen-pw-1").await.expect_error(401, "AUTHENTICATION_REQUIRED");
    login(&victim_email).await;
}

#[tokio::test]
async fn f1_nobody_changes_an_account_of_equal_or_higher_standing() {
    let (ia, ia_email) = acme_user("user_ia", &[("instance_admin", "users:manage", None)]).await;
    let (other_ia, _) = acme_user("user_ia2", &[("instance_admin", "users:read", None)]).await;
    let (sa, sa_email) = acme_user("user_sa", &[("instance_super_admin", "*", None)]).await;
    let (sp, sp_email) = acme_user("user_sp", &[("space_admin", "*", Some("space_acme"))]).await;
    let (plain, _) = acme_user("user_plain", &[]).await;
    let t = token(&ia_email).await;
    let user = |id: &str| format!("/api/v1/users/{id}");
    // Above or equal: refused, whatever the field.
    as_bearer(&t, "PATCH", &user(&sa), Some(json!({"password": "new password for sa 1"})))
        .await
        .expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    let e = as_bearer(&t, "PATCH", &user(&other_ia), Some(json!({"email": "moved@example.com"}))).await;
    let details = e.expect_error(403, "ADMIN_PERMISSION_REQUIRED")["details"].clone();
    assert_eq!(details["caller_standing"], "instance_admin");
    assert_eq!(details["target_standing"], "instance_admin");
    as_bearer(&t, "POST", &format!("{}/disable", user(&other_ia)), None)
        .await
        .expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    as_bearer(&t, "PATCH", &user(&other_ia), Some(json!({"username": "renamed"})))
        .await
        .expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    // Below: allowed.
    as_bearer(&t, "PATCH", &user(&sp), Some(json!({"password": "new password for sp 1"}))).await.expect_ok(200);
    login_on(server(), &sp_email, "new password for sp 1").await.expect_ok(200);
    as_bearer(&t, "POST", &format!("{}/disable", user(&plain)), None).await.expect_ok(200);
    as_bearer(&t, "POST", &format!("{}/restore", user(&plain)), None).await.expect_ok(200);
    // A super admin changes another super admin.
    let alice = admin_session().await;
    as_bearer(&alice, "PATCH", &user(&sa), Some(json!({"password": "new password for sa 2"}))).await.expect_ok(200);
    login_on(server(), &sa_email, "new password for sa 2").await.expect_ok(200);
    // A disabled super admin is still a super admin's account: an instance admin cannot restore it.
    sql().await.execute("UPDATE plystra.users SET status = 'disabled' WHERE id = $1", &[&sa]).await.unwrap();
    as_bearer(&t, "POST", &format!("{}/restore", user(&sa)), None).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    as_bearer(&alice, "POST", &format!("{}/restore", user(&sa)), None).await.expect_ok(200);
    // A user changes their own account (last: a password change ends the caller's sessions).
    as_bearer(&t, "PATCH", &user(&ia), Some(json!({"password": "my own new password 1"}))).await.expect_ok(200);
}

#[tokio::test]
async fn f1_api_keys_never_set_passwords() {
    let (plain, _) = acme_user("user_plain_k", &[]).await;
    let created = post(
        "/api/v1/api-keys",
        json!({"name": "provisioning", "level": "instance", "permission_keys": ["users:manage"]}),
    )
    .await;
    let key = created.expect_ok(201)["api_key"].as_str().unwrap().to_string();
    let path = format!("/api/v1/users/{plain}");
    as_key(&key, "PATCH", &path, Some(json!({"password": "key chosen password 1"})))
        .await
        .expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    as_key(&key, "PATCH", &path, Some(json!({"username": "fine"}))).await.expect_ok(200);
    let id = unique("user_by_key");
    as_key(
        &key,
        "POST",
        "/api/v1/users",
        Some(json!({"id": id, "email": format!("{id}@example.com"), "password": "key chosen password 1"})),
    )
    .await
    .expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    as_key(&key, "POST", "/api/v1/users", Some(json!({"id": id, "email": format!("{id}@example.com")})))
        .await
        .expect_ok(201);
}

// ---------------------------------------------------------------------------------------------------------------
// F2: audit rows name the authenticated credential.
// ---------------------------------------------------------------------------------------------------------------

const ALICE_IN_ACME: &str = r#"{"user_id":"user_alice","member_id":"member_finance_reviewer","user_member_id":"um_alice_finance_reviewer","space_id":"space_acme"}"#;

/// The review's reproduction: a Space-B admin names tenant A's super admin as the actor.
#[tokio::test]
async fn f2_a_space_admin_cannot_write_as_another_tenants_super_admin() {
    let (space, member) = space_with_member("space_f2").await;
    let (mal, mal_email) = make_user("user_mal", &space, &member, &[("space_admin", "*", Some(&space))]).await;
    let t = token(&mal_email).await;
    let me = as_bearer(&t, "GET", "/api/v1/auth/me", None).await;
    let session_id = me.expect_ok(200)["session_id"].as_str().unwrap().to_string();
    let alice: Value = serde_json::from_str(ALICE_IN_ACME).unwrap();
    let groups = format!("/api/v1/spaces/{space}/groups");
    let forged = unique("g_forged");
    as_bearer(&t, "POST", &groups, Some(json!({"id": forged, "name": "forged", "path": "forged", "actor": alice})))
        .await
        .expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    assert!(audit_of(&forged).await.is_empty(), "nothing was written");
    get(&format!("{groups}/{forged}")).await.expect_error(404, "GROUP_NOT_FOUND");

    // Without an actor, and with "actor": {}, the credential acts.
    let g = unique("g_real");
    as_bearer(&t, "POST", &groups, Some(json!({"id": g, "name": "real", "path": "real"}))).await.expect_ok(201);
    as_bearer(&t, "PATCH", &format!("{groups}/{g}"), Some(json!({"name": "renamed", "actor": {}})))
        .await
        .expect_ok(200);
    let rows = audit_of(&g).await;
    assert_eq!(rows.len(), 2);
    for (user, member_id, trace) in &rows {
        assert_eq!(user.as_deref(), Some(mal.as_str()));
        assert_eq!(member_id.as_deref(), Some(member.as_str()));
        assert_eq!(trace["credential"]["type"], "session", "{trace}");
        assert_eq!(trace["credential"]["user_id"], mal.as_str());
        assert_eq!(trace["credential"]["session_id"], session_id.as_str());
        assert!(trace["credential"]["api_key_id"].is_null());
        assert_eq!(actor_claimed(trace), Some(false));
    }

    // A binding of another user in the same Space is not the session's to claim; its own binding is.
    let (bob_b, _) = make_user("user_bob_b", &space, &member, &[]).await;
    let other = json!({"user_id": bob_b, "user_member_id": format!("um_{bob_b}"), "space_id": space});
    let g2 = unique("g_other");
    as_bearer(&t, "POST", &groups, Some(json!({"id": g2, "path": "other", "actor": other})))
        .await
        .expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    let own = json!({"user_id": mal, "user_member_id": format!("um_{mal}")});
    let g3 = unique("g_own");
    as_bearer(&t, "POST", &groups, Some(json!({"id": g3, "path": "own", "actor": own}))).await.expect_ok(201);
    let rows = audit_of(&g3).await;
    assert_eq!(rows[0].0.as_deref(), Some(mal.as_str()));
    assert_eq!(rows[0].2["actor"]["space_id"], space.as_str(), "completed from the binding");
    assert_eq!(actor_claimed(&rows[0].2), Some(true));
}

#[tokio::test]
async fn f2_an_api_key_names_only_bindings_inside_its_scope() {
    let (space, member) = space_with_member("space_f2k").await;
    let (mal, mal_email) = make_user("user_malk", &space, &member, &[("space_admin", "*", Some(&space))]).await;
    let t = token(&mal_email).await;
    let created = as_bearer(
        &t,
        "POST",
        "/api/v1/api-keys",
        Some(json!({"name": "evil key", "level": "space", "space_id": space, "permission_keys": ["*"]})),
    )
    .await;
    let created = created.expect_ok(201).clone();
    let key = created["api_key"].as_str().unwrap().to_string();
    let key_id = created["id"].as_str().unwrap().to_string();
    let members = format!("/api/v1/spaces/{space}/members");
    let alice: Value = serde_json::from_str(ALICE_IN_ACME).unwrap();
    let framed = unique("member_framed");
    as_key(&key, "POST", &members, Some(json!({"id": framed, "display_name": "x", "actor": alice})))
        .await
        .expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    assert!(audit_of(&framed).await.is_empty());
    // A binding inside the key's Space: kept, recorded as claimed, beside the key.
    let named = unique("member_named");
    let actor = json!({"user_member_id": format!("um_{mal}")});
    as_key(&key, "POST", &members, Some(json!({"id": named, "display_name": "y", "actor": actor})))
        .await
        .expect_ok(201);
    let rows = audit_of(&named).await;
    assert_eq!(rows[0].0.as_deref(), Some(mal.as_str()));
    assert_eq!(rows[0].2["credential"]["type"], "api_key", "{}", rows[0].2);
    assert_eq!(rows[0].2["credential"]["api_key_id"], key_id.as_str());
    assert_eq!(actor_claimed(&rows[0].2), Some(true));
    // Without an actor the key acts as itself (its creator, in its Space).
    let plain = unique("member_plain");
    as_key(&key, "POST", &members, Some(json!({"id": plain, "display_name": "z", "actor": {}}))).await.expect_ok(201);
    let rows = audit_of(&plain).await;
    assert_eq!(rows[0].0.as_deref(), Some(mal.as_str()));
    assert_eq!(rows[0].2["credential"]["api_key_id"], key_id.as_str());
    assert_eq!(actor_claimed(&rows[0].2), Some(false));
}

// ---------------------------------------------------------------------------------------------------------------
// F11: bindings.
// ---------------------------------------------------------------------------------------------------------------

/// The review's reproduction: a Space admin binds the super admin with is_primary and renames its Space "AAA".
#[tokio::test]
async fn f11_a_space_admin_cannot_bind_an_outside_user_or_become_their_default() {
    let (space, member) = space_with_member("space_f11").await;
    let (_, mal_email) = make_user("user_mal11", &space, &member, &[("space_admin", "*", Some(&space))]).await;
    let (victim, victim_email) = acme_user("user_victim11", &[("instance_super_admin", "*", None)]).await;
    let t = token(&mal_email).await;
    let bindings = format!("/api/v1/spaces/{space}/user-members");
    for is_primary in [true, false] {
        let body = json!({"user_id": victim, "member_id": member, "relation_type": "x", "is_primary": is_primary});
        let e = as_bearer(&t, "POST", &bindings, Some(body)).await;
        e.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
        assert!(!e.text.contains(&victim_email), "no e-mail in the refusal");
    }
    as_bearer(&t, "PATCH", &format!("/api/v1/spaces/{space}"), Some(json!({"name": "AAA"}))).await.expect_ok(200);
    let n: i64 = sql()
        .await
        .query_one("SELECT count(*) FROM plystra.user_members WHERE user_id = $1 AND space_id = $2", &[&victim, &space])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    let session = login(&victim_email).await;
    assert_eq!(session["actor"]["space_id"], "space_acme", "the victim's default actor is her own binding");

    // A user already in the Space: a second binding is fine, but not primary, and the answer hides the e-mail.
    let (carol, carol_email) = make_user("user_carol11", &space, &member, &[]).await;
    let second = json!({"user_id": carol, "member_id": member, "relation_type": "second", "is_primary": true});
    as_bearer(&t, "POST", &bindings, Some(second)).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    let second = json!({"user_id": carol, "member_id": member, "relation_type": "second"});
    let created = as_bearer(&t, "POST", &bindings, Some(second)).await;
    let created = created.expect_ok(201).clone();
    assert_eq!(created["email"], "", "a Space admin does not read instance users' e-mail");
    assert!(!created.to_string().contains(&carol_email));
    assert_eq!(created["is_primary"], false);
    let um = created["id"].as_str().unwrap();
    as_bearer(&t, "PATCH", &format!("{bindings}/{um}"), Some(json!({"is_primary": true})))
        .await
        .expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    as_bearer(&t, "PATCH", &format!("{bindings}/{um}"), Some(json!({"relation_type": "renamed"}))).await.expect_ok(200);
    let listed = as_bearer(&t, "GET", &bindings, None).await;
    assert!(!listed.text.contains(&carol_email), "lists hide e-mail too");

    // An instance credential (users:manage at instance scope) binds anyone, primary included, and sees e-mail.
    let (dave, dave_email) = acme_user("user_dave11", &[]).await;
    let by_admin =
        post(&bindings, json!({"user_id": dave, "member_id": member, "relation_type": "login", "is_primary": true}))
            .await;
    assert_eq!(by_admin.expect_ok(201)["email"], dave_email.as_str());
}

// ---------------------------------------------------------------------------------------------------------------
// F10: API keys are bounded by their creator and never outlive their parent.
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn f10_a_key_ends_with_its_creators_grant_and_account() {
    let (space, member) = space_with_member("space_f10").await;
    let (owner, owner_email) = make_user("user_keyowner", &space, &member, &[("space_admin", "*", Some(&space))]).await;
    let t = token(&owner_email).await;
    let mut keys = Vec::new();
    for name in ["k1", "k2"] {
        let created = as_bearer(
            &t,
            "POST",
            "/api/v1/api-keys",
            Some(json!({"name": name, "level": "space", "space_id": space, "permission_keys": ["*"]})),
        )
        .await;
        keys.push(created.expect_ok(201)["api_key"].as_str().unwrap().to_string());
    }
    let members = format!("/api/v1/spaces/{space}/members");
    as_key(&keys[0], "GET", &members, None).await.expect_ok(200);
    // The creator's grant is revoked: the key holds nothing any more.
    let alice = admin_session().await;
    as_bearer(&alice, "POST", &format!("/api/v1/admin/grants/ag_{owner}_0/revoke"), Some(json!({})))
        .await
        .expect_ok(200);
    as_key(&keys[0], "GET", &members, None).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    let child = json!({"name": "child", "level": "space", "space_id": space, "permission_keys": ["*"]});
    as_key(&keys[0], "POST", "/api/v1/api-keys", Some(child)).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    // A fresh grant, then the creator's account is disabled: the key holds nothing either.
    sql()
        .await
        .execute(
            "INSERT INTO plystra.admin_grants (id, user_id, level, permission_key, space_id) VALUES ($1, $2, 'space_admin', '*', $3)",
            &[&format!("ag_{owner}_again"), &owner, &space],
        )
        .await
        .unwrap();
    as_key(&keys[1], "GET", &members, None).await.expect_ok(200);
    as_bearer(&alice, "POST", &format!("/api/v1/users/{owner}/disable"), None).await.expect_ok(200);
    as_key(&keys[1], "GET", &members, None).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
}

#[tokio::test]
async fn f10_key_made_keys_never_outlive_their_parent_and_die_with_it() {
    let (space, member) = space_with_member("space_f10c").await;
    let (_, owner_email) = make_user("user_keyparent", &space, &member, &[("space_admin", "*", Some(&space))]).await;
    let t = token(&owner_email).await;
    let parent_expiry = (time::OffsetDateTime::now_utc() + time::Duration::days(1))
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let later = (time::OffsetDateTime::now_utc() + time::Duration::days(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let created = as_bearer(
        &t,
        "POST",
        "/api/v1/api-keys",
        Some(json!({"name": "parent", "level": "space", "space_id": space, "permission_keys": ["*"], "expires_at": parent_expiry})),
    )
    .await;
    let created = created.expect_ok(201).clone();
    let parent = created["api_key"].as_str().unwrap().to_string();
    let parent_id = created["id"].as_str().unwrap().to_string();
    let child = |extra: Value| {
        let mut body =
            json!({"name": "child", "level": "space", "space_id": space, "permission_keys": ["members:read"]});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let e = as_key(&parent, "POST", "/api/v1/api-keys", Some(child(json!({"expires_at": later})))).await;
    assert_eq!(e.expect_error(400, "VALIDATION_FAILED")["details"]["field"], "expires_at");
    // Without an expiry, the child gets its parent's.
    let made = as_key(&parent, "POST", "/api/v1/api-keys", Some(child(json!({})))).await;
    let made = made.expect_ok(201).clone();
    assert_eq!(made["expires_at"], parent_expiry.as_str());
    let child_key = made["api_key"].as_str().unwrap().to_string();
    let child_id = made["id"].as_str().unwrap().to_string();
    let link: Option<String> = sql()
        .await
        .query_one("SELECT created_by_api_key_id FROM plystra.api_keys WHERE id = $1", &[&child_id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(link.as_deref(), Some(parent_id.as_str()));
    let members = format!("/api/v1/spaces/{space}/members");
    as_key(&child_key, "GET", &members, None).await.expect_ok(200);
    // Revoking the parent over HTTP revokes the child.
    as_bearer(&t, "POST", &format!("/api/v1/api-keys/{parent_id}/revoke"), Some(json!({}))).await.expect_ok(200);
    as_key(&child_key, "GET", &members, None).await.expect_error(401, "AUTHENTICATION_REQUIRED");
    let status = get(&format!("/api/v1/api-keys/{child_id}")).await;
    assert_eq!(status.expect_ok(200)["status"], "revoked");
}

// ---------------------------------------------------------------------------------------------------------------
// F17: re-revoking changes nothing; /admin/me answers every credential with its own standing.
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn f17_revoking_twice_keeps_the_first_revocation() {
    let (user, _) = acme_user("user_rerevoke", &[("space_admin", "groups:read", Some("space_acme"))]).await;
    let grant = format!("ag_{user}_0");
    // API keys cannot revoke grants: Alice's session does.
    let alice = admin_session().await;
    let first = as_bearer(
        &alice,
        "POST",
        &format!("/api/v1/admin/grants/{grant}/revoke"),
        Some(json!({"revoked_reason": "first"})),
    )
    .await;
    let first = first.expect_ok(200).clone();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let again = as_bearer(
        &alice,
        "POST",
        &format!("/api/v1/admin/grants/{grant}/revoke"),
        Some(json!({"revoked_reason": "second"})),
    )
    .await;
    let again = again.expect_ok(200).clone();
    assert_eq!(again["revoked_at"], first["revoked_at"]);
    assert_eq!(again["revoked_reason"], "first");

    let key =
        post("/api/v1/api-keys", json!({"name": "twice", "level": "instance", "permission_keys": ["users:read"]}))
            .await
            .expect_ok(201)["id"]
            .as_str()
            .unwrap()
            .to_string();
    let first = post(&format!("/api/v1/api-keys/{key}/revoke"), json!({"revoked_reason": "first"})).await;
    let first = first.expect_ok(200).clone();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let again = post(&format!("/api/v1/api-keys/{key}/revoke"), json!({"revoked_reason": "second"})).await;
    let again = again.expect_ok(200).clone();
    assert_eq!(again["revoked_at"], first["revoked_at"]);
    assert_eq!(again["revoked_reason"], "first");
    let rows: i64 = sql()
        .await
        .query_one(
            "SELECT count(*) FROM plystra.audit_logs WHERE resource_id = $1 AND action = 'api_key.revoked'",
            &[&key],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1, "one revocation, one audit row");
}

#[tokio::test]
async fn f17_admin_me_answers_a_space_admin_with_its_own_standing() {
    let (space, member) = space_with_member("space_me").await;
    let (_, email) = make_user("user_me", &space, &member, &[("space_admin", "groups:manage", Some(&space))]).await;
    let t = token(&email).await;
    let me = as_bearer(&t, "GET", "/api/v1/admin/me", None).await;
    let me = me.expect_ok(200);
    assert_eq!(me["standing"], "space_admin");
    assert_eq!(me["grants"].as_array().unwrap().len(), 1);
    assert_eq!(me["capabilities"]["groups:manage"], true);
    let (_, nobody) = make_user("user_me_none", &space, &member, &[]).await;
    let t = token(&nobody).await;
    let me = as_bearer(&t, "GET", "/api/v1/admin/me", None).await;
    assert_eq!(me.expect_ok(200)["standing"], "none");
    send_to(server(), "GET", "/api/v1/admin/me", None, ANON).await.expect_error(401, "AUTHENTICATION_REQUIRED");
}

/// Refresh-token reuse: a thief who refreshes first holds the session; when the real user's (now old) refresh
/// token comes back, the whole session ends, the thief's tokens included.
#[tokio::test]
async fn f17_a_reused_refresh_token_ends_the_whole_session() {
    let (_, email) = acme_user("user_refresh", &[]).await;
    let first = login(&email).await;
    let old_refresh = first["refresh_token"].as_str().unwrap().to_string();
    let refresh = |token: String| async move {
        send_to(server(), "POST", "/api/v1/auth/refresh", Some(json!({"refresh_token": token})), ANON).await
    };
    let thief = refresh(old_refresh.clone()).await;
    let thief = thief.expect_ok(200).clone();
    let thief_access = thief["access_token"].as_str().unwrap().to_string();
    let thief_refresh = thief["refresh_token"].as_str().unwrap().to_string();
    as_bearer(&thief_access, "GET", "/api/v1/auth/me", None).await.expect_ok(200);
    // The rotated session keeps rotating while nobody reuses a token.
    let next = refresh(thief_refresh).await;
    let next = next.expect_ok(200).clone();
    let next_access = next["access_token"].as_str().unwrap().to_string();
    let next_refresh = next["refresh_token"].as_str().unwrap().to_string();
    // The old token comes back: refused, and the session family ends.
    refresh(old_refresh).await.expect_error(401, "SESSION_EXPIRED");
    as_bearer(&next_access, "GET", "/api/v1/auth/me", None).await.expect_error(401, "AUTHENTICATION_REQUIRED");
    refresh(next_refresh).await.expect_error(401, "SESSION_EXPIRED");
    // A made-up token of the right shape ends nothing.
    let other = login(&email).await;
    let forged = format!("ply_rt_{}", "0".repeat(64));
    refresh(forged).await.expect_error(401, "SESSION_EXPIRED");
    let other_access = other["access_token"].as_str().unwrap();
    as_bearer(other_access, "GET", "/api/v1/auth/me", None).await.expect_ok(200);
}

/// X-Request-ID is the caller's own correlation id (any caller may reuse any id); the server's own id is
/// recorded beside it (`trace.request.server_request_id`, written by migration 006's audit trigger from the
/// setting the front makes in every mutation).
#[tokio::test]
async fn f17_a_reused_request_id_is_recorded_beside_the_servers_own() {
    let reused = unique("req_reused");
    let mut ids = Vec::new();
    for name in ["one", "two"] {
        let id = unique("member_rid");
        send_to(
            server(),
            "POST",
            "/api/v1/spaces/space_acme/members",
            Some(json!({"id": id, "display_name": name})),
            &[("X-Request-ID", &reused)],
        )
        .await
        .expect_ok(201);
        ids.push(id);
    }
    let mut server_ids = Vec::new();
    for id in &ids {
        let rows = audit_of(id).await;
        let request = &rows[0].2["request"];
        assert_eq!(request["request_id"], reused.as_str(), "the caller's id is kept for correlation");
        let own = request["server_request_id"].as_str().expect("the server's own id").to_string();
        assert!(own.starts_with("req_") && own != reused);
        server_ids.push(own);
    }
    assert_ne!(server_ids[0], server_ids[1], "two requests, two server ids, whatever the caller sent");
}

/// A user in two Spaces without a primary binding: renaming the other Space "AAA" does not move the user's
/// login default (the oldest binding), and neither does a binding added later.
#[tokio::test]
async fn f11_renaming_a_space_does_not_move_a_users_default() {
    let (space, member) = space_with_member("space_f11b").await;
    let (_, mal_email) = make_user("user_mal11b", &space, &member, &[("space_admin", "*", Some(&space))]).await;
    let (user, email) = acme_user("user_two_spaces", &[]).await;
    // An instance credential bound the user into the second Space, later than the first binding.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    post(
        &format!("/api/v1/spaces/{space}/user-members"),
        json!({"user_id": user, "member_id": member, "relation_type": "login"}),
    )
    .await
    .expect_ok(201);
    let t = token(&mal_email).await;
    as_bearer(&t, "PATCH", &format!("/api/v1/spaces/{space}"), Some(json!({"name": "AAA"}))).await.expect_ok(200);
    let session = login(&email).await;
    assert_eq!(session["actor"]["space_id"], "space_acme", "the oldest binding stays the default");
    let members = session["available_members"].as_array().unwrap();
    assert_eq!(members.len(), 2, "both bindings are offered");
}
