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
    // A form posted with the ended session (its CSRF token was valid) is sent to sign in too, writing nothing.
    let csrf = {
        let fresh = sign_in(server(), "alice@example.com").await;
        let (_, html, _) = get_page(server(), &fresh, "/console").await;
        let token = fresh.trim_start_matches("plystra_console=").to_string();
        let csrf = hidden(&html, "csrf");
        send_to(server(), "POST", "/api/v1/auth/logout", None, &[("authorization", &bearer(&token))])
            .await
            .expect_ok(200);
        (fresh, csrf)
    };
    let name = unique("after_logout");
    let (status, location, _) =
        post_form(&csrf.0, "/console/spaces/space_acme/new/member", &[("csrf", &csrf.1), ("display_name", &name)])
            .await;
    assert_eq!((status, location.as_str()), (303, "/console/login?expired=1"));
    assert_eq!(one_id("SELECT id FROM plystra.members WHERE display_name = $1", &name).await, None);
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

/// Posts a Console form with the session cookie; returns (status, Location, body).
async fn post_form(cookie: &str, path: &str, form: &[(&str, &str)]) -> (u16, String, String) {
    let resp =
        client().post(format!("{}{path}", server().base)).header("cookie", cookie).form(form).send().await.unwrap();
    let status = resp.status().as_u16();
    let location = resp.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, location, resp.text().await.unwrap())
}

/// The management audit rows of a Space about one entity (the API's own rows, written by its change).
async fn audit_actions(space: &str, resource_id: &str) -> Vec<String> {
    sql()
        .await
        .query(
            "SELECT action FROM plystra.audit_logs WHERE space_id = $1 AND resource_id = $2 ORDER BY created_at",
            &[&space, &resource_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn one_id(query: &str, arg: &str) -> Option<String> {
    sql().await.query_opt(query, &[&arg]).await.unwrap().map(|r| r.get(0))
}

#[tokio::test]
async fn create_and_edit_forms_go_through_the_api_and_land_in_the_audit_trail() {
    let cookie = sign_in(server(), "alice@example.com").await;
    let (status, html, _) = get_page(server(), &cookie, "/console/spaces/space_acme/new/group").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Parent group") && html.contains("finance.apac"), "the parent is picked from the tree");
    let csrf = hidden(&html, "csrf");
    let path = format!("finance.{}", unique("team"));
    let group_form = |csrf: &str| {
        vec![
            ("csrf", csrf.to_string()),
            ("parent_group_id", "group_finance".to_string()),
            ("path", path.clone()),
            ("display_name", "Console team".to_string()),
        ]
    };
    let find_group = "SELECT id FROM plystra.groups WHERE space_id = 'space_acme' AND path = $1";
    // Without the token, with a wrong one, or with another session's: refused, nothing written.
    let bob = sign_in(server(), "bob@example.com").await;
    let (_, bob_page, _) = get_page(server(), &bob, "/console").await;
    for bad in ["", &"0".repeat(64), &hidden(&bob_page, "csrf")] {
        let form = group_form(bad);
        let form: Vec<(&str, &str)> =
            form.iter().filter(|(k, v)| *k != "csrf" || !v.is_empty()).map(|(k, v)| (*k, v.as_str())).collect();
        let (status, _, body) = post_form(&cookie, "/console/spaces/space_acme/new/group", &form).await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("CSRF_TOKEN_INVALID"));
    }
    assert_eq!(one_id(find_group, &path).await, None, "a forged form wrote nothing");
    // With the page's token the group is created under its parent, through the API, and audited.
    let form = group_form(&csrf);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, location, body) = post_form(&cookie, "/console/spaces/space_acme/new/group", &form).await;
    assert_eq!((status, location.as_str()), (303, "/console/spaces/space_acme#groups"), "{body}");
    let group = one_id(find_group, &path).await.expect("the group exists");
    let parent = one_id("SELECT parent_group_id FROM plystra.groups WHERE id = $1", &group).await;
    assert_eq!(parent.as_deref(), Some("group_finance"));
    assert_eq!(audit_actions("space_acme", &group).await, ["group.created"], "one management audit row");
    let (_, space, _) = get_page(server(), &cookie, "/console/spaces/space_acme").await;
    assert!(space.contains(&path) && space.contains(&format!("/console/spaces/space_acme/edit/group/{group}")));
    let (_, edit_group, _) =
        get_page(server(), &cookie, &format!("/console/spaces/space_acme/edit/group/{group}")).await;
    assert!(edit_group.contains(&format!("Disable group {group}")), "the group's edit page offers to disable it");

    // A refusal shows the API's envelope (code, message, field) on the form, keeps the input, and is no 500.
    let (status, _, body) = post_form(
        &cookie,
        "/console/spaces/space_acme/new/group",
        &[
            ("csrf", &csrf),
            ("parent_group_id", "group_finance"),
            ("path", "legal.kept_input"),
            ("display_name", "Kept"),
        ],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("GROUP_PATH_PARENT_MISMATCH") && body.contains("role=\"alert\""), "{body}");
    assert!(body.contains("value=\"legal.kept_input\"") && body.contains("value=\"Kept\""), "the input is kept");
    let (status, _, body) = post_form(
        &cookie,
        "/console/spaces/space_acme/new/member",
        &[("csrf", &csrf), ("display_name", "M"), ("metadata", "[not json")],
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("VALIDATION_FAILED") && body.contains("metadata") && body.contains("[not json"), "{body}");
    let (status, _, body) = post_form(&cookie, "/console/spaces/space_acme/new/role", &[("csrf", &csrf)]).await;
    assert_eq!(status, 400);
    assert!(body.contains("VALIDATION_FAILED") && body.contains("<code>key</code>"), "the field is named: {body}");

    // A Member, a role with a permission, a grant anchored at the new group, a binding with expiry and primary.
    let key = unique("console_role");
    let (status, _, body) = post_form(
        &cookie,
        "/console/spaces/space_acme/new/role",
        &[("csrf", &csrf), ("key", &key), ("name", "Console role"), ("description", "made in the Console")],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    let role = one_id("SELECT id FROM plystra.roles WHERE key = $1", &key).await.unwrap();
    let (status, _, body) = post_form(
        &cookie,
        &format!("/console/spaces/space_acme/edit/role/{role}"),
        &[("csrf", &csrf), ("key", &key), ("name", "Renamed role"), ("description", "edited in the Console")],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    let r = get(&format!("/api/v1/spaces/space_acme/roles/{role}")).await.expect_ok(200).clone();
    assert_eq!((r["name"].as_str(), r["description"].as_str()), (Some("Renamed role"), Some("edited in the Console")));
    assert_eq!(audit_actions("space_acme", &role).await, ["role.created", "role.updated"]);
    let (_, edit_page, _) = get_page(server(), &cookie, &format!("/console/spaces/space_acme/edit/role/{role}")).await;
    assert!(edit_page.contains("value=\"Renamed role\""), "the edit form shows today's values");

    let (status, _, _) = post_form(
        &cookie,
        "/console/spaces/space_acme/new/role-permission",
        &[("csrf", &csrf), ("role_id", &role), ("permission_id", "perm_invoice_approve_group_tree")],
    )
    .await;
    assert_eq!(status, 303);
    let rp = one_id("SELECT id FROM plystra.role_permissions WHERE role_id = $1 AND deleted_at IS NULL", &role)
        .await
        .expect("the role's permission");
    let (_, space, _) = get_page(server(), &cookie, "/console/spaces/space_acme").await;
    assert!(space.contains(&format!("Remove role permission {rp}")), "the permission can be removed");
    let (status, _, _) = post_form(
        &cookie,
        &format!("/console/spaces/space_acme/change/role-permissions/{rp}/remove"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, 303);
    assert!(
        one_id("SELECT id FROM plystra.role_permissions WHERE id = $1 AND deleted_at IS NOT NULL", &rp).await.is_some(),
        "removed (soft-deleted) through the API"
    );

    let (status, _, _) =
        post_form(&cookie, "/console/spaces/space_acme/new/member", &[("csrf", &csrf), ("display_name", &key)]).await;
    assert_eq!(status, 303);
    let member = one_id("SELECT id FROM plystra.members WHERE display_name = $1", &key).await.unwrap();
    let (status, _, body) = post_form(
        &cookie,
        "/console/spaces/space_acme/new/grant",
        &[("csrf", &csrf), ("member_id", &member), ("role_id", &role), ("scope_anchor_group_id", &group)],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    let grant = one_id("SELECT id FROM plystra.member_roles WHERE member_id = $1", &member).await.unwrap();
    let anchor = one_id("SELECT scope_anchor_group_id FROM plystra.member_roles WHERE id = $1", &grant).await;
    assert_eq!(anchor.as_deref(), Some(group.as_str()));
    assert_eq!(audit_actions("space_acme", &grant).await.len(), 1, "the grant's management audit row");
    let (status, _, body) = post_form(
        &cookie,
        "/console/spaces/space_acme/new/binding",
        &[
            ("csrf", &csrf),
            ("user_id", "user_bob"),
            ("member_id", &member),
            ("relation_type", "login"),
            ("expires_at", "2031-05-06T07:08"),
        ],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    let um = get(&format!("/api/v1/spaces/space_acme/user-members?member_id={member}")).await.expect_ok(200).clone();
    let um = &um[0];
    assert!(um["expires_at"].as_str().unwrap().starts_with("2031-05-06T07:08:00"), "{um}");
    assert_eq!(um["is_primary"], false);
    let um_id = um["id"].as_str().unwrap();
    let (status, _, body) = post_form(
        &cookie,
        &format!("/console/spaces/space_acme/edit/binding/{um_id}"),
        &[("csrf", &csrf), ("relation_type", "login"), ("expires_at", "2032-01-02T03:04"), ("is_primary", "on")],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    let um = get(&format!("/api/v1/spaces/space_acme/user-members/{um_id}")).await.expect_ok(200).clone();
    assert!(um["expires_at"].as_str().unwrap().starts_with("2032-01-02T03:04:00") && um["is_primary"] == true);

    // The Registry (a type and its action), a resource of that type, a permission: audited in this Space.
    let rtype = unique("console_doc");
    let (status, _, body) = post_form(
        &cookie,
        "/console/spaces/space_acme/new/resource-type",
        &[("csrf", &csrf), ("key", &rtype), ("display_name", "Console documents")],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    let (_, form, _) = get_page(server(), &cookie, "/console/spaces/space_acme/new/resource-action").await;
    assert!(form.contains("name=\"audit_default\" type=\"checkbox\" checked"), "the API's default (true) is shown");
    let (status, _, body) = post_form(
        &cookie,
        "/console/spaces/space_acme/new/resource-action",
        &[
            ("csrf", &csrf),
            ("resource_type", &rtype),
            ("key", "publish"),
            ("display_name", "Publish"),
            ("risk_level", "high"),
        ],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    let actions = get(&format!("/api/v1/resource-types/{rtype}/actions")).await.expect_ok(200).clone();
    assert_eq!((actions[0]["key"].as_str(), actions[0]["risk_level"].as_str()), (Some("publish"), Some("high")));
    let (status, _, body) = post_form(
        &cookie,
        &format!("/console/spaces/space_acme/edit/resource-type/{rtype}"),
        &[("csrf", &csrf), ("display_name", "Renamed documents")],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(
        get(&format!("/api/v1/resource-types/{rtype}")).await.expect_ok(200)["display_name"],
        "Renamed documents"
    );
    let rid = unique("doc");
    let (status, _, body) = post_form(
        &cookie,
        "/console/spaces/space_acme/new/resource",
        &[("csrf", &csrf), ("id", &rid), ("resource_type", &rtype), ("group_id", &group), ("metadata", "{\"k\": 1}")],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    let res = get(&format!("/api/v1/spaces/space_acme/resources/{rid}")).await.expect_ok(200).clone();
    assert_eq!((res["group_id"].as_str(), &res["metadata"]["k"]), (Some(group.as_str()), &json!(1)));
    let (status, _, _) =
        post_form(&cookie, &format!("/console/spaces/space_acme/change/resources/{rid}/archive"), &[("csrf", &csrf)])
            .await;
    assert_eq!(status, 303);
    let res = get(&format!("/api/v1/spaces/space_acme/resources/{rid}")).await.expect_ok(200).clone();
    assert_eq!(res["status"], "archived", "archived through the API");
    let (status, _, body) = post_form(
        &cookie,
        "/console/spaces/space_acme/new/permission",
        &[("csrf", &csrf), ("resource", &rtype), ("action", "publish"), ("scope", "group_tree")],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    let perm = one_id("SELECT id FROM plystra.permissions WHERE resource = $1", &rtype).await.unwrap();
    assert!(!audit_actions("space_acme", &perm).await.is_empty(), "the permission's row is in this Space's trail");
    let (_, space, _) = get_page(server(), &cookie, "/console/spaces/space_acme").await;
    assert!(space.contains(&rid) && space.contains("publish") && space.contains("Renamed documents"));

    // A Space: created from the Spaces page and renamed from its own.
    let sid = unique("space_console");
    let (status, location, body) =
        post_form(&cookie, "/console/new/space", &[("csrf", &csrf), ("id", &sid), ("name", "Made here")]).await;
    assert_eq!((status, location), (303, format!("/console/spaces/{sid}")), "{body}");
    let (status, _, _) =
        post_form(&cookie, &format!("/console/spaces/{sid}/edit/space/{sid}"), &[("csrf", &csrf), ("name", "Renamed")])
            .await;
    assert_eq!(status, 303);
    assert_eq!(get(&format!("/api/v1/spaces/{sid}")).await.expect_ok(200)["name"], "Renamed");
    // The new group is disabled from its edit page, through the API (after the grant anchored at it was made).
    let (status, location, _) =
        post_form(&cookie, &format!("/console/spaces/space_acme/change/groups/{group}/disable"), &[("csrf", &csrf)])
            .await;
    assert_eq!((status, location.as_str()), (303, "/console/spaces/space_acme#groups"));
    assert_eq!(get(&format!("/api/v1/spaces/space_acme/groups/{group}")).await.expect_ok(200)["status"], "disabled");
    let (_, edit_group, _) =
        get_page(server(), &cookie, &format!("/console/spaces/space_acme/edit/group/{group}")).await;
    assert!(!edit_group.contains("Disable group"), "no disable button on a disabled group");
    // Only the listed forms exist.
    for path in ["/console/spaces/space_acme/new/user", "/console/spaces/space_acme/edit/grant/x"] {
        let (status, _, _) = post_form(&cookie, path, &[("csrf", &csrf)]).await;
        assert_eq!(status, 404, "{path}");
    }
}

#[tokio::test]
async fn a_space_admin_cannot_create_in_another_space_through_the_console() {
    let (_, email) = make_user(
        "user_console_forms_sa",
        None,
        &demo_password_hash().await,
        ACME,
        &[("space_admin", "*", Some("space_acme"), None)],
    )
    .await;
    let other = unique("space_other");
    post("/api/v1/spaces", json!({"id": other, "name": "Other", "slug": other.replace('_', "-")})).await.expect_ok(201);
    let cookie = sign_in(server(), &email).await;
    let (status, html, _) = get_page(server(), &cookie, "/console/spaces/space_acme/new/member").await;
    assert_eq!(status, 200);
    let csrf = hidden(&html, "csrf");
    // The form of another Space is not shown (the API refuses to read that Space) ...
    let (status, _, _) = get_page(server(), &cookie, &format!("/console/spaces/{other}/new/member")).await;
    assert_eq!(status, 403);
    // ... and a hand-made POST gets the API's refusal, shown cleanly, with nothing written.
    let before: i64 = sql()
        .await
        .query_one("SELECT count(*) FROM plystra.audit_logs WHERE space_id = $1", &[&other])
        .await
        .unwrap()
        .get(0);
    for (what, form) in [
        ("member", vec![("display_name", "intruder")]),
        ("group", vec![("path", "intruder")]),
        ("role", vec![("key", "intruder")]),
    ] {
        let mut form = form;
        form.push(("csrf", &csrf));
        let (status, _, body) = post_form(&cookie, &format!("/console/spaces/{other}/new/{what}"), &form).await;
        assert_eq!(status, 403, "{what}: {body}");
        assert!(body.contains("role=\"alert\"") && body.contains("ADMIN_PERMISSION_REQUIRED"), "{body}");
        assert!(body.contains("value=\"intruder\""), "the input is kept");
    }
    let db = sql().await;
    for table in ["members", "groups", "roles"] {
        let n: i64 = db
            .query_one(&format!("SELECT count(*) FROM plystra.{table} WHERE space_id = $1"), &[&other])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "nothing written in {table}");
    }
    let after: i64 =
        db.query_one("SELECT count(*) FROM plystra.audit_logs WHERE space_id = $1", &[&other]).await.unwrap().get(0);
    assert_eq!(before, after, "no audit row in the other Space");
    // In its own Space the same admin creates.
    let name = unique("own_member");
    let (status, _, body) =
        post_form(&cookie, "/console/spaces/space_acme/new/member", &[("csrf", &csrf), ("display_name", &name)]).await;
    assert_eq!(status, 303, "{body}");
}

#[tokio::test]
async fn hostile_values_submitted_through_the_forms_render_inert() {
    let hostile = ["<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>"];
    let long = "L".repeat(3000);
    let rtl = "\u{202E}مرحبا بالعالم עולם\u{202C}";
    let cookie = sign_in(server(), "alice@example.com").await;
    let sid = unique("space_xss_forms");
    let (_, home, _) = get_page(server(), &cookie, "/console").await;
    let csrf = hidden(&home, "csrf");
    let (status, _, body) =
        post_form(&cookie, "/console/new/space", &[("csrf", &csrf), ("id", &sid), ("name", hostile[0])]).await;
    assert_eq!(status, 303, "{body}");
    let new = |what: &str| format!("/console/spaces/{sid}/new/{what}");
    for (what, form) in [
        ("group", vec![("path", "ops"), ("display_name", hostile[1])]),
        ("group", vec![("path", "long"), ("display_name", long.as_str())]),
        ("group", vec![("path", "rtl"), ("display_name", rtl)]),
        ("member", vec![("display_name", hostile[1]), ("metadata", "{\"note\": \"<script>alert(1)</script>\"}")]),
        ("member", vec![("display_name", long.as_str())]),
        ("role", vec![("key", "xss"), ("name", hostile[0]), ("description", rtl)]),
    ] {
        let mut form = form;
        form.push(("csrf", &csrf));
        let (status, _, body) = post_form(&cookie, &new(what), &form).await;
        assert_eq!(status, 303, "{what}: {body}");
    }
    // A refused form echoes the hostile input, inert too.
    let (status, _, refused) =
        post_form(&cookie, &new("group"), &[("csrf", &csrf), ("path", hostile[1]), ("display_name", hostile[0])]).await;
    assert_eq!(status, 400, "{refused}");
    let role = one_id("SELECT id FROM plystra.roles WHERE space_id = $1", &sid).await.unwrap();
    let (_, edit, _) = get_page(server(), &cookie, &format!("/console/spaces/{sid}/edit/role/{role}")).await;
    for (path, html) in [
        ("/console".to_string(), get_page(server(), &cookie, "/console").await.1),
        (format!("/console/spaces/{sid}"), get_page(server(), &cookie, &format!("/console/spaces/{sid}")).await.1),
        ("refused form".to_string(), refused),
        ("edit form".to_string(), edit),
    ] {
        assert!(!html.contains("<script>alert"), "{path}: raw script");
        assert!(!html.contains("<img src=x"), "{path}: raw img");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{path}: the text is shown literally");
        if path.starts_with("/console/spaces") {
            assert!(html.contains(&long) && html.contains("مرحبا"), "{path}: the long and right-to-left names");
            assert!(html.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"), "{path}");
        }
    }
}

/// Posts the Ask form as `cookie`, asking as `binding` about `resource`; the answer page.
async fn ask_as(cookie: &str, binding: &str, resource: &str) -> String {
    let (_, html, _) = get_page(server(), cookie, "/console/spaces/space_acme/ask").await;
    let csrf = hidden(&html, "csrf");
    let resp = client()
        .post(format!("{}/console/spaces/space_acme/ask", server().base))
        .header("cookie", cookie)
        .form(&[("csrf", csrf.as_str()), ("binding", binding), ("resource", resource), ("action", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

#[tokio::test]
async fn ask_as_another_binding_is_simulated_for_a_space_reader_only() {
    let bob = "user_bob|member_finance_reviewer|um_bob_finance_reviewer";
    let rows = || async {
        let n: i64 = sql()
            .await
            .query_one(
                "SELECT count(*) FROM plystra.audit_logs WHERE actor_user_member_id = 'um_bob_finance_reviewer' \
                 AND resource_id = 'invoice_002'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        n
    };
    let before = rows().await;
    // Alice (instance super admin, so authz:read on the Space) may not decide as Bob, so the Console simulates.
    let alice = sign_in(server(), "alice@example.com").await;
    let (_, form, _) = get_page(server(), &alice, "/console/spaces/space_acme/ask").await;
    assert!(form.contains("um_bob_finance_reviewer"), "the select lists the Space's bindings");
    let html = ask_as(&alice, bob, "invoice|invoice_002").await;
    assert!(html.contains("id=\"simulated\"") && html.contains("no audit row was written"), "{html}");
    assert!(html.contains("<svg") && html.contains("SCOPE_OUT_OF_BOUNDS") && html.contains("node fail"), "{html}");
    assert!(!html.contains("/console/spaces/space_acme/audit/"), "no audit row to link to");
    assert_eq!(rows().await, before, "a simulation writes no audit row");
    // A session that may check but not review the Space's access is refused by the API.
    let (_, email) = make_user(
        "user_console_checker",
        None,
        &demo_password_hash().await,
        ("space_acme", "member_invoice_creator"),
        &[("space_admin", "authz:check", Some("space_acme"), None)],
    )
    .await;
    let checker = sign_in(server(), &email).await;
    let html = ask_as(&checker, bob, "invoice|invoice_002").await;
    assert!(html.contains("The API refused") && html.contains("ADMIN_PERMISSION_REQUIRED"), "{html}");
    assert!(!html.contains("<svg"));
    assert_eq!(rows().await, before);
}
