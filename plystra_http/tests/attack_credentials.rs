//! Attacks on credential handling, attribution and the Console by callers with less standing. Each test asserts
//! the SAFE behaviour: a failing test is a hole.

mod common;

use common::*;
use serde_json::{json, Value};

const PW: &str = "attack test password 1";

fn password_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| plystra_http::auth::password::hash(PW))
}

async fn user_in(prefix: &str, space: &str, member: &str, grants: &[(&str, &str, Option<&str>)]) -> (String, String) {
    let grants: Vec<GrantSpec<'_>> = grants.iter().map(|&(level, key, space)| (level, key, space, None)).collect();
    common::make_user(prefix, None, password_hash(), (space, member), &grants).await
}

async fn login(email: &str) -> Value {
    login_on(server(), email, PW).await.expect_ok(200).clone()
}

async fn token(email: &str) -> String {
    login(email).await["access_token"].as_str().unwrap().to_string()
}

fn refused(a: &Answer, what: &str) {
    assert!(
        a.status == 403 || a.status == 400 || a.status == 404 || a.status == 401,
        "{what}: expected a refusal, got {} {}",
        a.status,
        a.text
    );
}

// ------------------------------------------------------------------------------------------------------------
// 1. A Space admin and its Space key cannot mint wider keys or grants.
// ------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_space_key_cannot_mint_wider_keys_or_grants() {
    let (space, member) = space_with_member("space_atk1").await;
    let (_mal, mal_email) = user_in("user_atk1", &space, &member, &[("space_admin", "*", Some(&space))]).await;
    let t = token(&mal_email).await;
    // Mal makes a Space key with a few permissions.
    let k = as_bearer(
        &t,
        "POST",
        "/api/v1/api-keys",
        Some(json!({"name": "k", "level": "space", "space_id": space,
                    "permission_keys": ["api_keys:create", "members:read"]})),
    )
    .await;
    let key = k.expect_ok(201)["api_key"].as_str().unwrap().to_string();

    let attempts = [
        ("instance key", json!({"name": "x", "level": "instance", "permission_keys": ["members:read"]})),
        (
            "key in another Space",
            json!({"name": "x", "level": "space", "space_id": "space_acme", "permission_keys": ["members:read"]}),
        ),
        (
            "key with more than the parent",
            json!({"name": "x", "level": "space", "space_id": space, "permission_keys": ["members:manage"]}),
        ),
        ("key with *", json!({"name": "x", "level": "space", "space_id": space, "permission_keys": ["*"]})),
        (
            "key with api_keys:*",
            json!({"name": "x", "level": "space", "space_id": space, "permission_keys": ["api_keys:*"]}),
        ),
        (
            "group key in another Space",
            json!({"name": "x", "level": "group", "group_id": "group_finance", "permission_keys": ["members:read"]}),
        ),
    ];
    for (what, body) in attempts {
        let a = as_key(&key, "POST", "/api/v1/api-keys", Some(body)).await;
        refused(&a, what);
    }
    // Keys never manage grants.
    let a = as_key(
        &key,
        "POST",
        "/api/v1/admin/grants",
        Some(
            json!({"user_id": "user_bob", "level": "space_admin", "space_id": space, "permission_key": "members:read"}),
        ),
    )
    .await;
    refused(&a, "grant by a key");

    // The session: no instance grant, no grant in another Space, no grant of a key it lacks.
    let grants = [
        json!({"user_id": "user_bob", "level": "instance_admin", "permission_key": "members:read"}),
        json!({"user_id": "user_bob", "level": "instance_super_admin"}),
        json!({"user_id": "user_bob", "level": "space_admin", "space_id": "space_acme", "permission_key": "*"}),
        json!({"user_id": "user_bob", "level": "group_admin", "group_id": "group_finance", "permission_key": "*"}),
        json!({"user_id": "user_bob", "level": "group_admin", "space_id": space, "group_id": "group_finance", "permission_key": "*"}),
    ];
    for body in grants {
        let a = as_bearer(&t, "POST", "/api/v1/admin/grants", Some(body.clone())).await;
        refused(&a, &format!("grant {body}"));
    }
    let n: i64 = sql()
        .await
        .query_one("SELECT count(*) FROM plystra.admin_grants WHERE user_id = 'user_bob'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "nothing granted to bob");
}

/// An admin grant names the Member it was granted through: a Space admin must not be able to name a Member of
/// another Space (a row in its Space pointing at another tenant's Member).
#[tokio::test]
async fn a_space_admins_grant_cannot_name_another_spaces_member() {
    let (space, member) = space_with_member("space_atk2").await;
    let (_mal, mal_email) = user_in("user_atk2", &space, &member, &[("space_admin", "*", Some(&space))]).await;
    let (target, _) = user_in("user_atk2t", &space, &member, &[]).await;
    let t = token(&mal_email).await;
    let id = unique("ag_atk2");
    let a = as_bearer(
        &t,
        "POST",
        "/api/v1/admin/grants",
        Some(json!({"id": id, "user_id": target, "member_id": "member_finance_reviewer", "level": "space_admin",
                    "space_id": space, "permission_key": "members:read"})),
    )
    .await;
    refused(&a, "a grant in my Space naming space_acme's Member");
}

// ------------------------------------------------------------------------------------------------------------
// 2. Sessions: logout, refresh, disable, switch.
// ------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn sessions_end_for_good() {
    let (space, member) = space_with_member("space_atk3").await;
    let (uid, email) = user_in("user_atk3", &space, &member, &[("space_admin", "members:read", Some(&space))]).await;
    let l = login(&email).await;
    let (access, refresh) =
        (l["access_token"].as_str().unwrap().to_string(), l["refresh_token"].as_str().unwrap().to_string());
    // Logout with the refresh token alone ends the access token too.
    send_to(server(), "POST", "/api/v1/auth/logout", Some(json!({"refresh_token": refresh})), ANON)
        .await
        .expect_ok(200);
    as_bearer(&access, "GET", &format!("/api/v1/spaces/{space}/members"), None)
        .await
        .expect_error(401, "AUTHENTICATION_REQUIRED");
    let a = send_to(server(), "POST", "/api/v1/auth/refresh", Some(json!({"refresh_token": refresh})), ANON).await;
    assert_eq!(a.status, 401, "refresh after logout: {}", a.text);

    // Refresh, then disable the user: the new refresh token must not mint tokens.
    let l = login(&email).await;
    let refresh = l["refresh_token"].as_str().unwrap().to_string();
    let r = send_to(server(), "POST", "/api/v1/auth/refresh", Some(json!({"refresh_token": refresh})), ANON).await;
    let refresh2 = r.expect_ok(200)["refresh_token"].as_str().unwrap().to_string();
    sql().await.execute("UPDATE plystra.users SET status = 'disabled' WHERE id = $1", &[&uid]).await.unwrap();
    let a = send_to(server(), "POST", "/api/v1/auth/refresh", Some(json!({"refresh_token": refresh2})), ANON).await;
    assert_eq!(a.status, 401, "refresh by a disabled user: {}", a.text);
    sql().await.execute("UPDATE plystra.users SET status = 'active' WHERE id = $1", &[&uid]).await.unwrap();

    // A grant revoked over HTTP stops the session's next request.
    let l = login(&email).await;
    let access = l["access_token"].as_str().unwrap().to_string();
    as_bearer(&access, "GET", &format!("/api/v1/spaces/{space}/members"), None).await.expect_ok(200);
    let grant = format!("ag_{uid}_0");
    let alice = admin_session().await;
    as_bearer(&alice, "POST", &format!("/api/v1/admin/grants/{grant}/revoke"), Some(json!({}))).await.expect_ok(200);
    as_bearer(&access, "GET", &format!("/api/v1/spaces/{space}/members"), None)
        .await
        .expect_error(403, "ADMIN_PERMISSION_REQUIRED");
}

#[tokio::test]
async fn switch_member_never_reaches_another_users_binding() {
    let (space, member) = space_with_member("space_atk4").await;
    let (_u, email) = user_in("user_atk4", &space, &member, &[]).await;
    let (other, _) = user_in("user_atk4o", &space, &member, &[]).await;
    let t = token(&email).await;
    let tries = [
        json!({"user_member_id": format!("um_{other}")}),
        json!({"binding_id": format!("um_{other}")}),
        json!({"member_id": "member_finance_reviewer"}),
        json!({"user_member_id": "um_alice_finance_reviewer"}),
        json!({"user_member_id": "", "binding_id": "um_alice_finance_reviewer"}),
    ];
    for body in tries {
        let a = as_bearer(&t, "POST", "/api/v1/actor/switch-member", Some(body.clone())).await;
        refused(&a, &format!("switch {body}"));
    }
    let me = as_bearer(&t, "GET", "/api/v1/auth/me", None).await;
    assert_eq!(me.expect_ok(200)["actor"]["space_id"], space.as_str());
}

/// A switch between bindings of two Spaces: each Space's audit trail names only its own binding (the new Space's
/// row used to carry the previous binding's id, another tenant's), and the Space left records that the session left.
#[tokio::test]
async fn switch_member_across_spaces_names_each_space_only_its_own_binding() {
    let (space_a, member_a) = space_with_member("space_atk_swa").await;
    let (space_b, member_b) = space_with_member("space_atk_swb").await;
    let (u, email) = user_in("user_atk_sw", &space_a, &member_a, &[]).await;
    let (in_a, in_b) = (format!("um_{u}"), format!("umb_{u}"));
    sql()
        .await
        .execute(
            "INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type) \
             VALUES ($1, $2, $3, $4, 'login')",
            &[&in_b, &u, &member_b, &space_b],
        )
        .await
        .unwrap();
    let t = token(&email).await;
    for binding in [&in_a, &in_b] {
        let a = as_bearer(&t, "POST", "/api/v1/actor/switch-member", Some(json!({"user_member_id": binding}))).await;
        a.expect_ok(200);
    }
    let rows = sql()
        .await
        .query(
            "SELECT space_id, trace::text FROM plystra.audit_logs WHERE action = 'auth.member_switched' \
             AND resource_id = $1 ORDER BY seq",
            &[&u],
        )
        .await
        .unwrap();
    let in_space = |space: &str| -> Vec<String> {
        rows.iter().filter(|r| r.get::<_, Option<String>>(0).as_deref() == Some(space)).map(|r| r.get(1)).collect()
    };
    let (rows_a, rows_b) = (in_space(&space_a), in_space(&space_b));
    assert_eq!(rows_b.len(), 1, "{rows_b:?}");
    assert!(rows_b[0].contains(&format!("\"{in_b}\"")), "{rows_b:?}");
    assert!(!rows_b[0].contains(&format!("\"{in_a}\"")), "Space B's trail names Space A's binding: {rows_b:?}");
    let left: Vec<&String> = rows_a.iter().filter(|r| r.contains("switched_to_another_space")).collect();
    assert_eq!(left.len(), 1, "Space A records that the session left: {rows_a:?}");
    assert!(left[0].contains(&format!("\"{in_a}\"")), "{left:?}");
    for row in &rows_a {
        assert!(!row.contains(&in_b) && !row.contains(&space_b), "Space A's trail names Space B: {row}");
    }
}

// ------------------------------------------------------------------------------------------------------------
// 3. Attribution.
// ------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn actor_headers_do_not_change_attribution() {
    let (space, member) = space_with_member("space_atk5").await;
    let (mal, mal_email) = user_in("user_atk5", &space, &member, &[("space_admin", "*", Some(&space))]).await;
    let t = token(&mal_email).await;
    let g = unique("g_atk5");
    let auth = bearer(&t);
    send_to(
        server(),
        "POST",
        &format!("/api/v1/spaces/{space}/groups"),
        Some(json!({"id": g, "name": "g", "path": "g"})),
        &[
            ("authorization", &auth),
            ("x-plystra-actor-user-id", "user_alice"),
            ("x-plystra-actor", "user_alice"),
            ("x-plystra-actor-member-id", "member_finance_reviewer"),
            ("x-forwarded-user", "user_alice"),
        ],
    )
    .await
    .expect_ok(201);
    let row = sql()
        .await
        .query_one("SELECT actor_user_id, trace FROM plystra.audit_logs WHERE resource_id = $1", &[&g])
        .await
        .unwrap();
    let user: Option<String> = row.get(0);
    let trace: Value = row.get(1);
    assert_eq!(user.as_deref(), Some(mal.as_str()), "{trace}");
    assert_eq!(trace["credential"]["user_id"], mal.as_str());
}

/// An instance-level change (a User row, which the README keeps from Space admins: user-member answers show a
/// user's e-mail only to users:read at instance scope) must not land in a tenant's audit trail just because the
/// super admin's session acts through a binding in that tenant.
#[tokio::test]
async fn instance_level_changes_do_not_land_in_a_tenants_audit_trail() {
    // Mal is a Space admin of space_acme (audit:read there, nothing at instance scope).
    let (_mal, mal_email) = user_in(
        "user_atk6",
        "space_acme",
        "member_finance_reviewer",
        &[("space_admin", "audit:read", Some("space_acme"))],
    )
    .await;
    let t = token(&mal_email).await;
    // Mal cannot read users.
    as_bearer(&t, "GET", "/api/v1/users", None).await.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    // Alice (super admin, acting through her binding in space_acme) creates a user of another tenant.
    let alice = admin_session().await;
    let secret_email = format!("{}@other-tenant.test", unique("secret"));
    let created = as_bearer(&alice, "POST", "/api/v1/users", Some(json!({"email": secret_email}))).await;
    let uid = created.expect_ok(201)["id"].as_str().unwrap().to_string();
    // Mal reads its Space's audit trail.
    let a =
        as_bearer(&t, "GET", &format!("/api/v1/spaces/space_acme/audit-logs?resource_id={uid}&limit=200"), None).await;
    let a2 = as_bearer(&t, "GET", "/api/v1/spaces/space_acme/audit-logs?limit=200", None).await;
    let rows =
        sql().await.query("SELECT id, space_id FROM plystra.audit_logs WHERE resource_id = $1", &[&uid]).await.unwrap();
    let mut leaked = a.text.contains(&secret_email) || a2.text.contains(&secret_email);
    for r in &rows {
        let id: String = r.get(0);
        let one = as_bearer(&t, "GET", &format!("/api/v1/spaces/space_acme/audit-logs/{id}"), None).await;
        let one2 = as_bearer(&t, "GET", &format!("/api/v1/audit/logs/{id}"), None).await;
        leaked |= one.text.contains(&secret_email) || one2.text.contains(&secret_email);
    }
    let spaces: Vec<Option<String>> = rows.iter().map(|r| r.get(1)).collect();
    if let Some(r) = rows.first() {
        let id: String = r.get(0);
        let one = as_bearer(&t, "GET", &format!("/api/v1/spaces/space_acme/audit-logs/{id}"), None).await;
        eprintln!(
            "GET /api/v1/spaces/space_acme/audit-logs/{id} as Mal -> {} {}",
            one.status,
            one.text.chars().take(1500).collect::<String>()
        );
    }
    assert!(
        !leaked,
        "a Space admin of space_acme reads another tenant user's e-mail through the audit trail (rows filed in {spaces:?})"
    );
}

// ------------------------------------------------------------------------------------------------------------
// 4. CORS and /metrics.
// ------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn cors_never_allows_an_arbitrary_origin_with_credentials() {
    for s in [server().clone(), start_server(&[("CORS_ALLOWED_ORIGINS", "*")])] {
        let resp = http()
            .request(reqwest::Method::OPTIONS, format!("{}/api/v1/users", s.base))
            .header("origin", "https://evil.example")
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
            .await
            .unwrap();
        let h = resp.headers();
        let acao = h.get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_string());
        let acac = h.get("access-control-allow-credentials").map(|v| v.to_str().unwrap().to_string());
        assert_ne!(acao.as_deref(), Some("https://evil.example"), "reflected origin");
        assert_ne!(acac.as_deref(), Some("true"), "credentials allowed");
        let resp = http()
            .get(format!("{}/api/v1/users", s.base))
            .header("origin", "https://evil.example")
            .header("x-plystra-api-key", admin_key())
            .send()
            .await
            .unwrap();
        let h = resp.headers();
        let acao = h.get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_string());
        assert_ne!(acao.as_deref(), Some("https://evil.example"));
        assert_ne!(h.get("access-control-allow-credentials").map(|v| v.to_str().unwrap()), Some("true"));
    }
}

#[tokio::test]
async fn metrics_need_their_token_and_name_no_ids() {
    let s = start_server(&[("METRICS_ENABLED", "true"), ("METRICS_TOKEN", "metrics-secret-0123456789")]);
    let (space, member) = space_with_member("space_atk7").await;
    let (_u, email) = user_in("user_atk7", &space, &member, &[("space_admin", "*", Some(&space))]).await;
    let t = token(&email).await;
    for headers in [
        vec![("authorization", "")],
        vec![("authorization", "")]
            .into_iter()
            .chain([("x-plystra-metrics-token", "metrics-secret-012345678")])
            .collect(),
        vec![("authorization", "Bearer metrics-secret-012345678x")],
        vec![("authorization", "Basic bWV0cmljcy1zZWNyZXQtMDEyMzQ1Njc4OQ==")],
    ] {
        let a = send_to(&s, "GET", "/metrics", None, &headers).await;
        assert_eq!(a.status, 401, "{headers:?}: {}", a.text);
    }
    let auth = bearer(&t);
    let a = send_to(&s, "GET", "/metrics", None, &[("authorization", &auth)]).await;
    assert_eq!(a.status, 403, "a Space admin reads the instance's metrics: {}", a.text);
    // Some traffic with ids in paths, then the metrics text names none of them.
    let secret_id = unique("secretmember");
    send_to(&s, "GET", &format!("/api/v1/spaces/{space}/members/{secret_id}"), None, &[]).await;
    send_to(&s, "GET", &format!("/api/v1/api-keys/{secret_id}"), None, &[]).await;
    let ok = send_to(
        &s,
        "GET",
        "/metrics",
        None,
        &[("authorization", ""), ("x-plystra-metrics-token", "metrics-secret-0123456789")],
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    for needle in [secret_id.as_str(), space.as_str(), ADMIN_KEY_ID, "user_alice"] {
        assert!(!ok.text.contains(needle), "metrics name {needle}");
    }
}

// ------------------------------------------------------------------------------------------------------------
// 5. The Console.
// ------------------------------------------------------------------------------------------------------------

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        let (pair, _) = v.split_once(';').unwrap_or((v, ""));
        let (k, val) = pair.split_once('=')?;
        (k == name).then(|| val.to_string())
    })
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} in {html}")) + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

async fn sign_in(email: &str, password: &str) -> String {
    let c = client();
    let page = c.get(format!("{}/console/login", server().base)).send().await.unwrap();
    let nonce = set_cookie(&page, "plystra_console_login").expect("login nonce cookie");
    let html = page.text().await.unwrap();
    let resp = c
        .post(format!("{}/console/login", server().base))
        .header("cookie", format!("plystra_console_login={nonce}"))
        .form(&[("nonce", hidden(&html, "nonce").as_str()), ("email", email), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "{:?}", resp.text().await);
    format!("plystra_console={}", set_cookie(&resp, "plystra_console").expect("session cookie"))
}

async fn page(cookie: &str, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let resp = client().get(format!("{}{path}", server().base)).header("cookie", cookie).send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, resp.text().await.unwrap(), headers)
}

#[tokio::test]
async fn console_renders_a_hostile_request_id_and_user_agent_inert() {
    let hostile = "\"><svg/onload=alert(1)><script>alert(2)</script>";
    let ua = "<script>alert('ua')</script>\"><img src=x onerror=alert(3)>";
    let m = unique("member_atk8");
    send_to(
        server(),
        "POST",
        "/api/v1/spaces/space_acme/members",
        Some(json!({"id": m, "display_name": "<b>x</b>", "metadata": {"<script>": "</td><script>alert(4)</script>"}})),
        &[("x-request-id", hostile), ("user-agent", ua)],
    )
    .await
    .expect_ok(201);
    let audit_id: String =
        sql().await.query_one("SELECT id FROM plystra.audit_logs WHERE resource_id = $1", &[&m]).await.unwrap().get(0);
    let cookie = sign_in("alice@example.com", DEMO_PASSWORD).await;
    for path in [
        "/console/spaces/space_acme/audit".to_string(),
        format!("/console/spaces/space_acme/audit?resource_id={m}"),
        format!("/console/spaces/space_acme/audit/{audit_id}"),
        "/console/spaces/space_acme".to_string(),
    ] {
        let (status, html, headers) = page(&cookie, &path).await;
        assert_eq!(status, 200, "{path}");
        for raw in ["<svg/onload", "<script>alert", "<img src=x", "<b>x</b>"] {
            assert!(!html.contains(raw), "{path} renders {raw} raw");
        }
        assert!(headers.get("content-security-policy").is_some(), "{path}");
        assert_eq!(headers.get("x-frame-options").map(|v| v.to_str().unwrap()), Some("DENY"), "{path}");
    }
    // The trace download is JSON, not sniffable HTML.
    let (status, _, headers) = page(&cookie, &format!("/console/spaces/space_acme/audit/{audit_id}/trace.json")).await;
    if status == 200 {
        let ct = headers.get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        assert!(!ct.contains("html"), "trace.json served as {ct}");
        assert_eq!(headers.get("x-content-type-options").map(|v| v.to_str().unwrap()), Some("nosniff"));
    }
}

#[tokio::test]
async fn console_space_admin_cannot_see_or_change_another_space() {
    let (space, member) = space_with_member("space_atk9").await;
    let (_mal, mal_email) = user_in("user_atk9", &space, &member, &[("space_admin", "*", Some(&space))]).await;
    let cookie = sign_in(&mal_email, PW).await;
    let (_, own, _) = page(&cookie, &format!("/console/spaces/{space}")).await;
    let csrf = hidden(&own, "csrf");
    for path in [
        "/console/spaces/space_acme".to_string(),
        "/console/spaces/space_acme/audit".to_string(),
        "/console/spaces/space_acme/who-can?resource_id=invoice_001&action=approve".to_string(),
        "/console/events".to_string(),
        "/console/spaces/space_acme/edit/member/member_finance_reviewer".to_string(),
    ] {
        let (status, html, _) = page(&cookie, &path).await;
        assert!(!html.contains("um_alice_finance_reviewer"), "{path} ({status}) shows acme's binding");
        assert!(!html.contains("Finance Reviewer") || status >= 400, "{path} ({status}) shows acme's member name");
    }
    // A change through its own Space's URL aimed at another Space's row.
    let url = format!("{}/console/spaces/{space}/change/user-members/um_alice_finance_reviewer/revoke", server().base);
    client().post(&url).header("cookie", &cookie).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    let url =
        format!("{}/console/spaces/space_acme/change/user-members/um_alice_finance_reviewer/revoke", server().base);
    client().post(&url).header("cookie", &cookie).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(get("/api/v1/user-members/um_alice_finance_reviewer").await.expect_ok(200)["status"], "active");
}

/// A GET of a Console URL never changes state (no CSRF token is needed for a GET, so any link could trigger it).
#[tokio::test]
async fn console_gets_change_nothing() {
    let cookie = sign_in("alice@example.com", DEMO_PASSWORD).await;
    let um: Value = post(
        "/api/v1/spaces/space_acme/user-members",
        json!({"user_id": post("/api/v1/users", json!({"email": format!("{}@example.com", unique("atk10"))}))
            .await.expect_ok(201)["id"], "member_id": "member_finance_reviewer", "relation_type": "login"}),
    )
    .await
    .expect_ok(201)
    .clone();
    let um = um["id"].as_str().unwrap().to_string();
    for path in [
        format!("/console/spaces/space_acme/change/user-members/{um}/revoke"),
        "/console/logout".to_string(),
        "/console/spaces/space_acme/new/member?display_name=x&csrf=0".to_string(),
        "/console/spaces/space_acme/ask?binding=user_alice|member_finance_reviewer|um_alice_finance_reviewer&resource=invoice|invoice_001&action=approve".to_string(),
    ] {
        page(&cookie, &path).await;
    }
    assert_eq!(get(&format!("/api/v1/user-members/{um}")).await.expect_ok(200)["status"], "active");
    let (status, _, _) = page(&cookie, "/console").await;
    assert_eq!(status, 200, "the session survives GETs");
}

// ------------------------------------------------------------------------------------------------------------
// 6. Crafted input: never a 500.
// ------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn crafted_credential_inputs_never_500() {
    let alice = admin_session().await;
    let deep = (0..200).fold(json!(1), |acc, _| json!({ "a": acc }));
    let bodies = [
        (
            "/api/v1/admin/grants",
            json!({"id": "x".repeat(3000), "user_id": "user_bob", "level": "space_admin", "space_id": "space_acme", "permission_key": "members:read"}),
        ),
        (
            "/api/v1/admin/grants",
            json!({"id": "a/b?c#d", "user_id": "user_bob", "level": "space_admin", "space_id": "space_acme", "permission_key": "members:read"}),
        ),
        (
            "/api/v1/admin/grants",
            json!({"user_id": "user_bob", "level": "space_admin", "space_id": "space_acme", "permission_key": "members:read", "expires_at": "+275760-09-13T00:00:00Z"}),
        ),
        (
            "/api/v1/admin/grants",
            json!({"user_id": "user_bob", "level": "space_admin", "space_id": "space_acme", "permission_key": "members:read", "expires_at": "9999-12-31T23:59:59.999999999+14:00"}),
        ),
        (
            "/api/v1/admin/grants",
            json!({"user_id": "user_nobody_here", "level": "space_admin", "space_id": "space_acme", "permission_key": "members:read"}),
        ),
        (
            "/api/v1/admin/grants",
            json!({"user_id": "user_bob", "member_id": "member_nobody_here", "level": "space_admin", "space_id": "space_acme", "permission_key": "members:read"}),
        ),
        (
            "/api/v1/admin/grants",
            json!({"user_id": "user_bob", "level": "space_admin", "space_id": "space_acme", "permission_key": "members:read", "metadata": deep.clone()}),
        ),
        (
            "/api/v1/admin/grants",
            json!({"user_id": "user_bob", "level": "space_admin", "space_id": "space_acme", "permission_key": "members:read", "metadata": [1, 2]}),
        ),
        (
            "/api/v1/api-keys",
            json!({"name": "n", "level": "space", "space_id": "space_acme", "permission_keys": ["members:read"], "expires_at": "9999-12-31T23:59:59Z"}),
        ),
        (
            "/api/v1/api-keys",
            json!({"name": "n", "level": "group", "group_id": "x".repeat(5000), "permission_keys": ["members:read"]}),
        ),
        (
            "/api/v1/api-keys",
            json!({"name": "n".repeat(100_000), "level": "space", "space_id": "space_acme", "permission_keys": ["members:read"]}),
        ),
        (
            "/api/v1/api-keys",
            json!({"name": "n", "level": "space", "space_id": "s".repeat(5000), "permission_keys": ["members:read"]}),
        ),
        (
            "/api/v1/api-keys",
            json!({"name": "n", "level": "space", "space_id": "space_acme", "permission_keys": vec!["members:read"; 5000]}),
        ),
        (
            "/api/v1/api-keys",
            json!({"name": "n", "level": "space", "space_id": "space_acme", "permission_keys": ["members:read"], "metadata": deep}),
        ),
    ];
    for (path, body) in bodies {
        let a = as_bearer(&alice, "POST", path, Some(body.clone())).await;
        assert!(a.status < 500, "{path}: {} {}", a.status, a.text.chars().take(400).collect::<String>());
    }
    // Tokens of the right shape naming odd sessions.
    for t in [
        format!("ply_rt_{}", "f".repeat(64)),
        format!("ply_rt_{}ffffffff{}", "0".repeat(24), "0".repeat(32)),
        format!("ply_rt_{}", "0".repeat(64)),
    ] {
        let a = send_to(server(), "POST", "/api/v1/auth/refresh", Some(json!({"refresh_token": t})), ANON).await;
        assert_eq!(a.status, 401, "{}", a.text);
        let a = send_to(server(), "POST", "/api/v1/auth/logout", Some(json!({"refresh_token": t})), ANON).await;
        assert_eq!(a.status, 401, "{}", a.text);
    }
    for key in [
        format!("ply_ak_.{}", "a".repeat(64)),
        format!("ply_ak_{}.{}", "x".repeat(3000), "a".repeat(64)),
        "ply_ak_ak_harness_admin".to_string(),
        format!("ply_ak_ak_harness_admin.{}", "a1".repeat(31)),
        format!("ply_ak_ak_harness_admin.{}.", "a1".repeat(32)),
    ] {
        let a = as_key(&key, "GET", "/api/v1/users", None).await;
        assert_eq!(a.status, 401, "{key}: {}", a.text.chars().take(300).collect::<String>());
    }
}

/// The same for instance-level credentials: an instance API key or an instance admin grant made by the super
/// admin's session must not be shown to a tenant's auditor.
#[tokio::test]
async fn instance_credentials_do_not_land_in_a_tenants_audit_trail() {
    let (_mal, mal_email) = user_in(
        "user_atk11",
        "space_acme",
        "member_finance_reviewer",
        &[("space_admin", "audit:read", Some("space_acme"))],
    )
    .await;
    let t = token(&mal_email).await;
    let alice = admin_session().await;
    let (target, _) = user_in("user_atk11t", "space_acme", "member_finance_reviewer", &[]).await;
    let key_id = unique("ak_atk11");
    as_bearer(
        &alice,
        "POST",
        "/api/v1/api-keys",
        Some(json!({"id": key_id, "name": "root break-glass key",
        "level": "instance", "permission_keys": ["*"]})),
    )
    .await
    .expect_ok(201);
    let grant_id = unique("ag_atk11");
    as_bearer(
        &alice,
        "POST",
        "/api/v1/admin/grants",
        Some(json!({"id": grant_id, "user_id": target,
        "level": "instance_super_admin"})),
    )
    .await
    .expect_ok(201);
    let mut seen = Vec::new();
    for id in [&key_id, &grant_id] {
        let rows = sql().await.query("SELECT id FROM plystra.audit_logs WHERE resource_id = $1", &[id]).await.unwrap();
        for r in rows {
            let aid: String = r.get(0);
            let one = as_bearer(&t, "GET", &format!("/api/v1/spaces/space_acme/audit-logs/{aid}"), None).await;
            if one.status == 200 {
                eprintln!(
                    "GET /api/v1/spaces/space_acme/audit-logs/{aid} as Mal -> {}",
                    one.text.chars().take(1200).collect::<String>()
                );
                seen.push(id.clone());
            }
        }
    }
    assert!(seen.is_empty(), "a Space admin of space_acme reads instance-level credential rows: {seen:?}");
}

// ------------------------------------------------------------------------------------------------------------
// A Space's keys end with their Space: disabled or deleted, it has no live credential.
// ------------------------------------------------------------------------------------------------------------

/// A Space key and a Group key of a Space that is disabled, or deleted, are refused as an unknown key is: on an
/// inline (Context Mode) decision, which reads nothing of the Space, and on an admin route; restored, they work
/// again (the same key, nothing re-issued).
#[tokio::test]
async fn a_key_of_a_disabled_or_deleted_space_is_refused_everywhere() {
    let (space, member) = space_with_member("space_atk_gone").await;
    let group = format!("group_{space}");
    sql()
        .await
        .execute("INSERT INTO plystra.groups (id, space_id, name, path) VALUES ($1, $2, 'g', 'g')", &[&group, &space])
        .await
        .unwrap();
    let (_adm, adm_email) = user_in("user_atk_gone", &space, &member, &[("space_admin", "*", Some(&space))]).await;
    let t = token(&adm_email).await;
    let make = |body: Value| {
        let t = t.clone();
        async move {
            as_bearer(&t, "POST", "/api/v1/api-keys", Some(body)).await.expect_ok(201)["api_key"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let space_key = make(json!({"name": "s", "level": "space", "space_id": space,
                                "permission_keys": ["authz:check", "members:read"]}))
    .await;
    let group_key =
        make(json!({"name": "g", "level": "group", "group_id": group, "permission_keys": ["groups:read"]})).await;
    let inline = json!({
        "actor": {"user_id": "u_partner", "member_id": "m_partner", "user_member_id": "b_partner", "space_id": space},
        "resource": {"type": "invoice", "id": unique("invoice_inline"), "space_id": space, "group_path": "g"},
        "grants": [{"resource": "invoice", "action": "approve", "scope": "space"}],
        "action": "approve"
    });
    let members = format!("/api/v1/spaces/{space}/members");
    let the_group = format!("/api/v1/spaces/{space}/groups/{group}");
    let works = |expected: u16, when: &'static str| {
        let (space_key, group_key, inline, members, the_group) =
            (&space_key, &group_key, &inline, &members, &the_group);
        async move {
            let a = as_key(space_key, "POST", "/api/v1/authz/check", Some(inline.clone())).await;
            assert_eq!(a.status, expected, "{when}: inline check with the Space key: {}", a.text);
            let a = as_key(space_key, "GET", members, None).await;
            assert_eq!(a.status, expected, "{when}: members with the Space key: {}", a.text);
            let a = as_key(group_key, "GET", the_group, None).await;
            assert_eq!(a.status, expected, "{when}: its group with the Group key: {}", a.text);
        }
    };
    works(200, "active").await;
    let unknown = as_key(&format!("ply_ak_ak_nosuchkey.{}", "a".repeat(64)), "GET", &members, None).await;

    as_bearer(&t, "POST", &format!("/api/v1/spaces/{space}/disable"), None).await.expect_ok(200);
    works(401, "disabled").await;
    let refused = as_key(&space_key, "GET", &members, None).await;
    assert_eq!(refused.body["error"]["code"], unknown.body["error"]["code"], "as an unknown key");
    assert_eq!(refused.body["error"]["message"], unknown.body["error"]["message"], "as an unknown key");

    // Restored (the route needs standing outside the disabled Space; its effect is this).
    sql().await.execute("UPDATE plystra.spaces SET status = 'active' WHERE id = $1", &[&space]).await.unwrap();
    works(200, "restored").await;

    sql().await.execute("UPDATE plystra.spaces SET deleted_at = now() WHERE id = $1", &[&space]).await.unwrap();
    works(401, "deleted").await;
}

/// A key made by a key made by a key...: the chain is bounded (a change of the first key cascades down it one
/// trigger level a key, and a chain of hundreds made it unrevocable, 54001 answered 500), its first key stays
/// revocable, and a key's list of permission keys is bounded too.
#[tokio::test]
async fn a_chain_of_keys_is_bounded_and_its_first_key_stays_revocable() {
    let (space, member) = space_with_member("space_atk_chain").await;
    let (_adm, adm_email) = user_in("user_atk_chain", &space, &member, &[("space_admin", "*", Some(&space))]).await;
    let t = token(&adm_email).await;
    let body = |n: usize| {
        json!({"name": format!("chain {n}"), "level": "space", "space_id": space,
               "permission_keys": ["api_keys:create", "authz:check"]})
    };
    let first = as_bearer(&t, "POST", "/api/v1/api-keys", Some(body(0))).await.expect_ok(201).clone();
    let (first_id, mut key) =
        (first["id"].as_str().unwrap().to_string(), first["api_key"].as_str().unwrap().to_string());
    let mut made = 1;
    let refusal = loop {
        let a = as_key(&key, "POST", "/api/v1/api-keys", Some(body(made))).await;
        if a.status != 201 {
            break a;
        }
        key = a.expect_ok(201)["api_key"].as_str().unwrap().to_string();
        made += 1;
        assert!(made <= 40, "the chain is not bounded");
    };
    assert_eq!(made, 16, "sixteen keys in a chain, the first made by a session");
    assert_eq!(refusal.status, 403, "{}", refusal.text);
    assert_eq!(refusal.body["error"]["details"]["rule"], "api_keys_lineage_depth", "{}", refusal.text);

    let a = as_bearer(&t, "POST", &format!("/api/v1/api-keys/{first_id}/revoke"), None).await;
    a.expect_ok(200);
    let a = as_key(&key, "POST", "/api/v1/api-keys", Some(body(99))).await;
    assert_eq!(a.status, 401, "the last key of the chain went with the first: {}", a.text);

    let many: Vec<String> = (0..257).map(|i| format!("k{i}:read")).collect();
    let a = as_bearer(
        &t,
        "POST",
        "/api/v1/api-keys",
        Some(json!({"name": "many", "level": "space", "space_id": space, "permission_keys": many})),
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert_eq!(a.body["error"]["code"], "VALIDATION_FAILED", "{}", a.text);
}
