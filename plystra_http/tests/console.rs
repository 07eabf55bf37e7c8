//! The Plystra Console over HTTP (the browser tests in console-tests/ drive the same pages in Chromium): sign in
//! through the session API into an HttpOnly SameSite=Strict cookie, CSRF on every form, strict security
//! headers, tenant text escaped, a Space admin seeing only its Space, an ended session sending the user back to
//! sign in, and the Console off when CONSOLE_ENABLED says so.

mod common;

use common::*;
use serde_json::json;

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The value of `name` in the answer's Set-Cookie headers.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<(String, String)> {
    resp.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
        let (k, val) = pair.split_once('=')?;
        (k == name).then(|| (val.to_string(), attrs.to_string()))
    })
}

/// The value of the hidden input `name` in a page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} in {html}")) + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// Signs in through the Console's form; returns the session cookie.
async fn sign_in(server: &TestServer, email: &str) -> String {
    let c = client();
    let page = c.get(format!("{}/console/login", server.base)).send().await.unwrap();
    let (nonce, _) = set_cookie(&page, "plystra_console_login").expect("login nonce cookie");
    let html = page.text().await.unwrap();
    let resp = c
        .post(format!("{}/console/login", server.base))
        .header("cookie", format!("plystra_console_login={nonce}"))
        .form(&[("nonce", hidden(&html, "nonce").as_str()), ("email", email), ("password", DEMO_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "{:?}", resp.text().await);
    let (token, attrs) = set_cookie(&resp, "plystra_console").expect("session cookie");
    assert!(
        attrs.contains("HttpOnly") && attrs.contains("SameSite=Strict") && attrs.contains("Path=/console"),
        "{attrs}"
    );
    assert!(!attrs.contains("Secure"), "plain http here: no Secure");
    format!("plystra_console={token}")
}

async fn get_page(server: &TestServer, cookie: &str, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let resp = client().get(format!("{}{path}", server.base)).header("cookie", cookie).send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, resp.text().await.unwrap(), headers)
}

#[tokio::test]
async fn pages_carry_a_strict_policy_and_refuse_framing() {
    let (status, html, h) = get_page(server(), "", "/console/login").await;
    assert_eq!(status, 200);
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(!html.contains("<script>") && !html.contains("style="), "no inline script or style");
    let (status, js, h) = get_page(server(), "", "/console/assets/console.js").await;
    assert_eq!(status, 200);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(js.contains("has-js"));
    // Without a session every page sends the user to sign in.
    let (status, _, h) = get_page(server(), "", "/console/spaces/space_acme").await;
    assert_eq!(status, 303);
    assert_eq!(h["location"], "/console/login");
}

#[tokio::test]
async fn sign_in_lists_spaces_and_a_space_shows_its_tree_and_bindings() {
    let cookie = sign_in(server(), "alice@example.com").await;
    let (status, html, _) = get_page(server(), &cookie, "/console").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("/console/spaces/space_acme"), "{html}");
    let (status, html, _) = get_page(server(), &cookie, "/console/spaces/space_acme").await;
    assert_eq!(status, 200, "{html}");
    for expected in
        ["finance.apac", "legal.emea", "um_alice_finance_reviewer", "finance_approver", "invoice_001", "<details open>"]
    {
        assert!(html.contains(expected), "{expected} missing");
    }
    // A login with a bad password is refused with the API's error, shown escaped, and no session cookie.
    let c = client();
    let page = c.get(format!("{}/console/login", server().base)).send().await.unwrap();
    let (nonce, _) = set_cookie(&page, "plystra_console_login").unwrap();
    let resp = c
        .post(format!("{}/console/login", server().base))
        .header("cookie", format!("plystra_console_login={nonce}"))
        .form(&[("nonce", nonce.as_str()), ("email", "alice@example.com"), ("password", "wrong password")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(set_cookie(&resp, "plystra_console").is_none());
}

#[tokio::test]
async fn a_form_without_its_csrf_token_changes_nothing() {
    let cookie = sign_in(server(), "alice@example.com").await;
    let member = "member_finance_reviewer";
    let user = post("/api/v1/users", json!({"email": format!("{}@example.com", unique("csrf"))})).await.expect_ok(201)
        ["id"]
        .as_str()
        .unwrap()
        .to_string();
    let um = post(
        "/api/v1/spaces/space_acme/user-members",
        json!({"user_id": user, "member_id": member, "relation_type": "login"}),
    )
    .await
    .expect_ok(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!("{}/console/spaces/space_acme/change/user-members/{um}/revoke", server().base);
    for form in [vec![], vec![("csrf", "0".repeat(64))]] {
        let resp = client().post(&url).header("cookie", &cookie).form(&form).send().await.unwrap();
        assert_eq!(resp.status(), 403);
        assert!(resp.text().await.unwrap().contains("CSRF_TOKEN_INVALID"));
    }
    // Another session's token does not pass either.
    let other = sign_in(server(), "bob@example.com").await;
    let (_, other_page, _) = get_page(server(), &other, "/console").await;
    let bobs = hidden(&other_page, "csrf");
    let resp = client().post(&url).header("cookie", &cookie).form(&[("csrf", bobs)]).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(get(&format!("/api/v1/user-members/{um}")).await.expect_ok(200)["status"], "active");
    // With the page's token the revoke goes through the API (and so is audited like any change).
    let (_, html, _) = get_page(server(), &cookie, "/console/spaces/space_acme").await;
    let resp =
        client().post(&url).header("cookie", &cookie).form(&[("csrf", hidden(&html, "csrf"))]).send().await.unwrap();
    assert_eq!(resp.status(), 303, "{:?}", resp.text().await);
    assert_eq!(get(&format!("/api/v1/user-members/{um}")).await.expect_ok(200)["status"], "revoked");
    let rows = sql()
        .await
        .query_one("SELECT count(*) FROM plystra.audit_logs WHERE resource_id = $1 AND action LIKE '%revoked%'", &[&um])
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(rows, 1, "the revoke is in the audit trail");
}

#[tokio::test]
async fn tenant_text_renders_inert() {
    let hostile = ["<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>"];
    let space = unique("space_xss");
    post("/api/v1/spaces", json!({"id": space, "name": hostile[0], "slug": space.replace('_', "-")}))
        .await
        .expect_ok(201);
    post(&format!("/api/v1/spaces/{space}/groups"), json!({"path": "ops", "display_name": hostile[1]}))
        .await
        .expect_ok(201);
    post(
        &format!("/api/v1/spaces/{space}/members"),
        json!({"display_name": hostile[0], "metadata": {"x": hostile[1]}}),
    )
    .await
    .expect_ok(201);
    let cookie = sign_in(server(), "alice@example.com").await;
    for path in ["/console".to_string(), format!("/console/spaces/{space}")] {
        let (status, html, _) = get_page(server(), &cookie, &path).await;
        assert_eq!(status, 200);
        assert!(!html.contains("<script>alert"), "{path}: raw script");
        assert!(!html.contains("<img src=x"), "{path}: raw img");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{path}: the text is shown literally");
    }
}

#[tokio::test]
async fn a_space_admin_sees_only_its_space() {
    let (_, email) = make_user(
        "user_console_sa",
        None,
        &demo_password_hash().await,
        ACME,
        &[("space_admin", "*", Some("space_acme"), None)],
    )
    .await;
    let other = unique("space_hidden");
    post("/api/v1/spaces", json!({"id": other, "name": "Hidden", "slug": other.replace('_', "-")}))
        .await
        .expect_ok(201);
    let cookie = sign_in(server(), &email).await;
    let (status, html, _) = get_page(server(), &cookie, "/console").await;
    assert_eq!(status, 200);
    assert!(html.contains("space_acme"));
    assert!(!html.contains(&other), "another Space is not listed");
    let (status, html, _) = get_page(server(), &cookie, &format!("/console/spaces/{other}")).await;
    assert_eq!(status, 403, "{html}");
    let (status_missing, missing, _) = get_page(server(), &cookie, "/console/spaces/space_does_not_exist").await;
    assert_eq!(status_missing, 403);
    assert_eq!(
        html.replace(&other, "X"),
        missing.replace("space_does_not_exist", "X"),
        "the same page as for no Space"
    );
    // The whole instance's events are not a Space admin's to read.
    let (status, events, _) = get_page(server(), &cookie, "/console/events").await;
    assert_eq!(status, 403, "{events}");
    assert!(events.contains("ADMIN_PERMISSION_REQUIRED"));
}

#[tokio::test]
async fn an_ended_session_sends_the_user_back_to_sign_in() {
    let cookie = sign_in(server(), "alice@example.com").await;
    let token = cookie.trim_start_matches("plystra_console=");
    send_to(server(), "POST", "/api/v1/auth/logout", None, &[("authorization", &bearer(token))]).await.expect_ok(200);
    let (status, _, h) = get_page(server(), &cookie, "/console").await;
    assert_eq!(status, 303);
    assert_eq!(h["location"], "/console/login?expired=1");
    assert!(h["set-cookie"].to_str().unwrap().contains("Max-Age=0"), "the cookie is cleared");
}

#[tokio::test]
async fn the_console_is_off_when_disabled() {
    let s = start_server(&[("CONSOLE_ENABLED", "false")]);
    let (status, body, _) = get_page(&s, "", "/console/login").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("ROUTE_NOT_FOUND"));
}

/// The demo users' password hash (sql/demo.sql), for users a test makes.
async fn demo_password_hash() -> String {
    sql().await.query_one("SELECT password_hash FROM plystra.users WHERE id = 'user_alice'", &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn ask_draws_the_trace_and_an_audit_row_replays_and_the_chain_verifies() {
    let cookie = sign_in(server(), "alice@example.com").await;
    let (_, html, _) = get_page(server(), &cookie, "/console/spaces/space_acme/ask").await;
    let csrf = hidden(&html, "csrf");
    let binding = "user_alice|member_finance_reviewer|um_alice_finance_reviewer";
    let resp = client()
        .post(format!("{}/console/spaces/space_acme/ask", server().base))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("binding", binding),
            ("resource", "invoice|invoice_002"),
            ("action", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("<svg") && html.contains("SCOPE_OUT_OF_BOUNDS") && html.contains("node fail"), "{html}");
    let start = html.find("/console/spaces/space_acme/audit/").expect("a link to the audit row's trace");
    let href = html[start..].split('"').next().unwrap().to_string();
    let (status, json_text, h) = get_page(server(), &cookie, &href).await;
    assert_eq!(status, 200);
    assert!(h["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let trace: serde_json::Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(trace["deny_code"], "SCOPE_OUT_OF_BOUNDS");
    // The audit list finds the row, its page draws the same trace, and Replay shows then and now.
    let id = trace["audit"]["audit_log_id"].as_str().unwrap().to_string();
    let (status, list, _) =
        get_page(server(), &cookie, "/console/spaces/space_acme/audit?deny_code=SCOPE_OUT_OF_BOUNDS").await;
    assert_eq!(status, 200);
    assert!(list.contains(&id));
    let (status, row, _) = get_page(server(), &cookie, &format!("/console/spaces/space_acme/audit/{id}")).await;
    assert_eq!(status, 200);
    assert!(row.contains("<svg") && row.contains("Replay against today"));
    let resp = client()
        .post(format!("{}/console/spaces/space_acme/audit/{id}/replay", server().base))
        .header("cookie", &cookie)
        .form(&[("csrf", hidden(&row, "csrf"))])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let replay = resp.text().await.unwrap();
    assert!(replay.contains("Then") && replay.contains("Now") && replay.contains("would go the same way"), "{replay}");
    assert_eq!(replay.matches("<svg").count(), 2, "both sides drawn");
    let resp = client()
        .post(format!("{}/console/spaces/space_acme/chain/verify", server().base))
        .header("cookie", &cookie)
        .form(&[("csrf", hidden(&row, "csrf"))])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let chain = resp.text().await.unwrap();
    assert!(chain.contains("INTACT"), "{chain}");
    // Who can? lists the demo's reviewers for invoice_001.
    let (status, who, _) =
        get_page(server(), &cookie, "/console/spaces/space_acme/who-can?resource_id=invoice_001&action=approve").await;
    assert_eq!(status, 200);
    assert!(who.contains("um_bob_finance_reviewer") && who.contains("finance_approver"), "{who}");
    let (status, reach, _) = get_page(
        server(),
        &cookie,
        "/console/spaces/space_acme/who-can?binding=um_bob_finance_reviewer&reach_type=invoice&reach_action=approve",
    )
    .await;
    assert_eq!(status, 200);
    let table = &reach[reach.find("What <code>um_bob_finance_reviewer").expect("the reach answer")..];
    assert!(table.contains("invoice_001") && !table.contains("invoice_002"), "{table}");
    let (status, events, _) = get_page(server(), &cookie, "/console/events?resource_type=user").await;
    assert_eq!(status, 200);
    assert!(events.contains("auth.login_succeeded"), "{events}");
}

#[tokio::test]
async fn the_space_page_disables_and_revokes_through_the_api_and_nothing_else() {
    let cookie = sign_in(server(), "alice@example.com").await;
    let member =
        post("/api/v1/spaces/space_acme/members", json!({"display_name": "Console temp"})).await.expect_ok(201)["id"]
            .as_str()
            .unwrap()
            .to_string();
    let grant = post(
        "/api/v1/spaces/space_acme/member-roles",
        json!({"member_id": member, "role_id": "role_finance_approver", "scope_anchor_group_id": "group_finance"}),
    )
    .await
    .expect_ok(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, html, _) = get_page(server(), &cookie, "/console/spaces/space_acme").await;
    assert!(html.contains(&format!("Revoke grant {grant}")) && html.contains(&format!("Disable member {member}")));
    let csrf = hidden(&html, "csrf");
    let post_change = |path: String| {
        let (cookie, csrf) = (cookie.clone(), csrf.clone());
        async move {
            client()
                .post(format!("{}{path}", server().base))
                .header("cookie", cookie)
                .form(&[("csrf", csrf)])
                .send()
                .await
                .unwrap()
        }
    };
    let r = post_change(format!("/console/spaces/space_acme/change/member-roles/{grant}/revoke")).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/spaces/space_acme#grants");
    assert_eq!(
        get(&format!("/api/v1/spaces/space_acme/member-roles/{grant}")).await.expect_ok(200)["status"],
        "revoked"
    );
    let r = post_change(format!("/console/spaces/space_acme/change/members/{member}/disable")).await;
    assert_eq!(r.status(), 303);
    assert_eq!(get(&format!("/api/v1/spaces/space_acme/members/{member}")).await.expect_ok(200)["status"], "disabled");
    // Only the listed changes exist: a form pointed at any other API call is not a Console route.
    for path in [
        "/console/spaces/space_acme/change/users/user_bob/disable",
        "/console/spaces/space_acme/change/members/x/restore",
    ] {
        assert_eq!(post_change(path.to_string()).await.status(), 404, "{path}");
    }
    assert_eq!(get("/api/v1/users/user_bob").await.expect_ok(200)["status"], "active");
}
