//! The Console's pages. Each one asks the REST API (in process, with the session's token) and renders what it
//! answers; maud escapes every interpolated value, so tenant text (names, ids, metadata) is shown literally.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{html, Markup, DOCTYPE};
use serde_json::{json, Value};

use super::forms::{edit_link, new_links};
use super::svg::trace_picture;
use super::{need, signed_in, Api, Caller, PageError};
use crate::auth::secrets;

pub(super) type Fields = HashMap<String, String>;
type PageResult = Result<Response, PageError>;

/// A path segment, percent-encoded (ids come from users; a '/' or '?' must not change the API path).
pub(super) fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query string from pairs (empty values left out).
fn query(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> =
        pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", seg(v))).collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

pub(super) fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

pub(super) fn field<'a>(f: &'a Fields, key: &str) -> &'a str {
    f.get(key).map(String::as_str).unwrap_or("").trim()
}

pub(super) fn page(title: &str, caller: Option<&Caller>, space: Option<&str>, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Plystra Console" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                header class="top" {
                    a class="brand" href="/console" { "Plystra Console" }
                    @if let Some(sid) = space {
                        nav aria-label="Space" {
                            a href=(format!("/console/spaces/{}", seg(sid))) { "Overview" }
                            a href=(format!("/console/spaces/{}/ask", seg(sid))) { "Ask" }
                            a href=(format!("/console/spaces/{}/who-can", seg(sid))) { "Who can?" }
                            a href=(format!("/console/spaces/{}/audit", seg(sid))) { "Audit" }
                        }
                    }
                    @if let Some(c) = caller.filter(|c| c.token.is_some()) {
                        form method="post" action="/console/logout" class="signout" {
                            input type="hidden" name="csrf" value=(c.csrf());
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" { (body) }
            }
        }
    };
    Html(markup.into_string()).into_response()
}

pub fn error_page(status: u16, code: &str, message: &str) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Refused · Plystra Console" } link rel="stylesheet" href="/console/assets/console.css"; }
            body {
                header class="top" { a class="brand" href="/console" { "Plystra Console" } }
                main id="main" {
                    h1 { "The API refused this (" (status) ")" }
                    p class="deny" { code class="code" { (code) } " " (message) }
                    p { a href="/console" { "Back to your Spaces" } }
                }
            }
        }
    };
    Html(markup.into_string())
}

/// A table of `rows` with the given (header, field) columns; `extra` renders a last cell per row.
fn table(label: &str, rows: &[Value], cols: &[(&str, &str)], extra: Option<&dyn Fn(&Value) -> Markup>) -> Markup {
    html! {
        @if rows.is_empty() {
            p class="empty" { "None." }
        } @else {
            div class="scroll" role="region" aria-label=(label) tabindex="0" {
                table {
                    thead { tr {
                        @for (h, _) in cols { th scope="col" { (h) } }
                        @if extra.is_some() { th scope="col" { "Action" } }
                    } }
                    tbody {
                        @for r in rows {
                            tr {
                                @for (_, k) in cols { td { (text(r, k)) } }
                                @if let Some(f) = extra { td { (f(r)) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn refused_note(reply: &super::Reply) -> Markup {
    let (code, message) = reply.error();
    html! { p class="note" { "Not available to this session: " code class="code" { (code) } " " (message) } }
}

pub(super) fn list(reply: &super::Reply) -> Vec<Value> {
    reply.data().as_array().cloned().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------- sign in / out

pub async fn login_page(caller: Caller, Query(q): Query<Fields>) -> Response {
    let nonce = secrets::random_hex(16);
    let expired = q.contains_key("expired");
    let mut r = login_form(&nonce, expired, None, "");
    r.headers_mut().insert(header::SET_COOKIE, caller.login_cookie(&nonce));
    r
}

fn login_form(nonce: &str, expired: bool, error: Option<(String, String)>, email: &str) -> Response {
    page(
        "Sign in",
        None,
        None,
        html! {
            h1 { "Sign in" }
            @if expired { p class="note" role="status" { "Your session has ended. Sign in again." } }
            @if let Some((code, message)) = &error {
                p class="deny" role="alert" { code class="code" { (code) } " " (message) }
            }
            form method="post" action="/console/login" class="card narrow" {
                input type="hidden" name="nonce" value=(nonce);
                label for="email" { "E-mail" }
                input id="email" name="email" type="email" autocomplete="username" required value=(email);
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
            p class="hint" { "The Console uses the REST API with your session: you see and change exactly what your admin grants allow." }
        },
    )
}

pub async fn login(caller: Caller, Extension(api): Extension<Api>, Form(f): Form<Fields>) -> Response {
    let email = field(&f, "email").to_string();
    if !caller.login_nonce_ok(field(&f, "nonce")) {
        return PageError::BadForm.into_response();
    }
    let body = json!({"email": email, "password": f.get("password").cloned().unwrap_or_default()});
    let reply = api.call_as(&caller, None, Method::POST, "/api/v1/auth/login", Some(&body)).await;
    if !reply.ok() {
        let nonce = secrets::random_hex(16);
        let mut r = login_form(&nonce, false, Some(reply.error()), &email);
        *r.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::UNAUTHORIZED);
        r.headers_mut().insert(header::SET_COOKIE, caller.login_cookie(&nonce));
        return r;
    }
    let token = text(reply.data(), "access_token");
    // The cookie lives exactly as long as the session (the API refuses the token after that anyway).
    let expires =
        time::OffsetDateTime::parse(&text(reply.data(), "expires_at"), &time::format_description::well_known::Rfc3339)
            .map(|t| (t - time::OffsetDateTime::now_utc()).whole_seconds())
            .unwrap_or(900);
    let mut r = Redirect::to("/console").into_response();
    r.headers_mut().append(header::SET_COOKIE, caller.session_cookie(&token, expires));
    r.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("plystra_console_login=; Max-Age=0; Path=/console; HttpOnly; SameSite=Strict"),
    );
    r
}

pub async fn logout(caller: Caller, Extension(api): Extension<Api>, Form(f): Form<Fields>) -> PageResult {
    if !caller.csrf_ok(field(&f, "csrf")) {
        return Err(PageError::BadForm);
    }
    api.call(&caller, Method::POST, "/api/v1/auth/logout", None).await;
    let mut r = Redirect::to("/console/login").into_response();
    r.headers_mut().insert(header::SET_COOKIE, caller.clear_session_cookie());
    Ok(r)
}

// ---------------------------------------------------------------------------------------------- Spaces

pub async fn home(caller: Caller, Extension(api): Extension<Api>) -> PageResult {
    signed_in(&caller)?;
    let me = need(&caller, api.call(&caller, Method::GET, "/api/v1/admin/me", None).await)?;
    let me = &me["data"];
    let standing = text(me, "standing");
    // An instance admin lists every Space; anyone else sees the Spaces their grants name, one by one (so a
    // Space admin never learns another Space exists).
    let mut spaces: Vec<Value> = Vec::new();
    let listed = if standing.starts_with("instance") {
        let reply = api.call(&caller, Method::GET, "/api/v1/spaces?limit=200", None).await;
        reply.ok().then(|| list(&reply))
    } else {
        None
    };
    match listed {
        Some(all) => spaces = all,
        None => {
            let mut ids: Vec<String> = me["grants"]
                .as_array()
                .map(|g| g.iter().map(|g| text(g, "space_id")).filter(|s| !s.is_empty()).collect())
                .unwrap_or_default();
            ids.sort();
            ids.dedup();
            for id in ids {
                let reply = api.call(&caller, Method::GET, &format!("/api/v1/spaces/{}", seg(&id)), None).await;
                if reply.ok() {
                    spaces.push(reply.data().clone());
                }
            }
        }
    }
    Ok(page(
        "Spaces",
        Some(&caller),
        None,
        html! {
            h1 { "Spaces" }
            p class="hint" { "Signed in as " code { (text(me, "user_id")) } ", standing " strong { (standing) } "." }
            p class="actions" { a class="button" href="/console/new/space" { "New Space" } }
            @if spaces.is_empty() {
                p class="empty" { "This session may see no Space." }
            } @else {
                ul class="cards" {
                    @for s in &spaces {
                        li class="card" {
                            a href=(format!("/console/spaces/{}", seg(&text(s, "id")))) { bdi { (text(s, "name")) } }
                            div class="meta" { code { (text(s, "id")) } " · " (text(s, "status")) }
                        }
                    }
                }
            }
        },
    ))
}

/// The group tree from the flat list, nested by path (a group's parent is its path without the last label).
fn group_tree(sid: &str, groups: &[Value]) -> Markup {
    let mut children: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    let paths: Vec<String> = groups.iter().map(|g| text(g, "path")).collect();
    for g in groups {
        let path = text(g, "path");
        let parent = path.rsplit_once('.').map(|(p, _)| p.to_string()).unwrap_or_default();
        // A group whose parent path is not listed hangs at the top, so nothing is hidden.
        let parent = if paths.contains(&parent) { parent } else { String::new() };
        children.entry(parent).or_default().push(g);
    }
    fn level(sid: &str, children: &BTreeMap<String, Vec<&Value>>, at: &str, depth: usize) -> Markup {
        let empty = Vec::new();
        let mut nodes = children.get(at).unwrap_or(&empty).clone();
        nodes.sort_by_key(|g| text(g, "path"));
        html! {
            ul class="tree" {
                @for g in nodes {
                    @let path = text(g, "path");
                    @let has = children.get(&path).is_some_and(|c| !c.is_empty()) && depth < 64;
                    li {
                        @if has {
                            details open {
                                // The edit link stays out of the summary (no control inside a control).
                                summary { bdi { (text(g, "display_name")) } " " code { (path) } " " span class="meta" { (text(g, "status")) } }
                                span class="tree-edit" { (edit_link(sid, "group", &text(g, "id"))) }
                                (level(sid, children, &path, depth + 1))
                            }
                        } @else {
                            span class="leaf" { bdi { (text(g, "display_name")) } " " code { (path) } " " span class="meta" { (text(g, "status")) } " " (edit_link(sid, "group", &text(g, "id"))) }
                        }
                    }
                }
            }
        }
    }
    html! {
        @if groups.is_empty() { p class="empty" { "No groups." } } @else {
            p { button type="button" class="js-only" data-tree="open" { "Expand all" } " " button type="button" class="js-only" data-tree="close" { "Collapse all" } }
            (level(sid, &children, "", 0))
        }
    }
}

pub async fn space(caller: Caller, Extension(api): Extension<Api>, Path(sid): Path<String>) -> PageResult {
    signed_in(&caller)?;
    let base = format!("/api/v1/spaces/{}", seg(&sid));
    let sp = need(&caller, api.call(&caller, Method::GET, &base, None).await)?;
    let sp = &sp["data"];
    let get = |p: String| {
        let api = api.clone();
        let caller = &caller;
        async move { api.call(caller, Method::GET, &p, None).await }
    };
    let (groups, members, bindings, roles, role_perms, grants, resources, types, permissions) = tokio::join!(
        get(format!("{base}/groups?limit=200")),
        get(format!("{base}/members?limit=200")),
        get(format!("{base}/user-members?limit=200")),
        get(format!("{base}/roles?limit=200")),
        get(format!("{base}/role-permissions?limit=200")),
        get(format!("{base}/member-roles?limit=200")),
        get(format!("{base}/resources?limit=200")),
        get("/api/v1/resource-types?limit=200".to_string()),
        get("/api/v1/permissions?limit=200".to_string()),
    );
    // Each type's actions (the Registry is small; a type whose actions cannot be read shows none).
    let mut types_rows = list(&types);
    for t in &mut types_rows {
        let path = format!("/api/v1/resource-types/{}/actions?limit=200", seg(&text(t, "key")));
        let actions = api.call(&caller, Method::GET, &path, None).await;
        let keys: Vec<String> = list(&actions).iter().map(|a| text(a, "key")).collect();
        t["actions_text"] = json!(keys.join(", "));
    }
    if groups.status == 401 {
        need(&caller, groups)?;
        unreachable!("a 401 is an error");
    }
    let csrf = caller.csrf();
    // One button per change the API allows on a row (CHANGES), shown while the row is active, and the row's
    // edit form when it has one.
    let action = |collection: &'static str, edit: Option<&'static str>| {
        let csrf = csrf.clone();
        let sid = sid.clone();
        move |r: &Value| -> Markup {
            let id = text(r, "id");
            let active = text(r, "status") == "active" || (r.get("status").is_none() && r["deleted_at"].is_null());
            let change = CHANGES.iter().find(|c| c.0 == collection);
            html! {
                @if let Some(what) = edit { (edit_link(&sid, what, &id)) " " }
                @if let (true, Some((_, verb, _, label))) = (active, change) {
                    form method="post" action=(format!("/console/spaces/{}/change/{collection}/{}/{verb}", seg(&sid), seg(&id)))
                        class="inline" data-confirm=(format!("{label} {id}?")) {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" aria-label=(format!("{label} {id}")) { (verb.to_string()[..1].to_uppercase()) (verb[1..]) }
                    }
                }
            }
        }
    };
    let (revoke, disable_member, disable_role, revoke_grant, remove_permission) = (
        action("user-members", Some("binding")),
        action("members", Some("member")),
        action("roles", Some("role")),
        action("member-roles", None),
        action("role-permissions", None),
    );
    let edit_resource = action("resources", Some("resource"));
    let edit_permission = action("permissions", Some("permission"));
    let edit_type = {
        let sid = sid.clone();
        move |r: &Value| -> Markup { edit_link(&sid, "resource-type", &text(r, "key")) }
    };
    let section = |reply: &super::Reply, body: Markup| -> Markup {
        if reply.ok() {
            body
        } else {
            refused_note(reply)
        }
    };
    Ok(page(
        &text(sp, "name"),
        Some(&caller),
        Some(&sid),
        html! {
            h1 { "Space " bdi { (text(sp, "name")) } }
            p class="meta" { code { (text(sp, "id")) } " · " (text(sp, "status")) " · " (edit_link(&sid, "space", &sid)) }
            section id="groups" { h2 { "Groups" } (new_links(&sid, &["group"])) (section(&groups, group_tree(&sid, &list(&groups)))) }
            section id="bindings" {
                h2 { "Members and bindings" }
                (new_links(&sid, &["member", "binding"]))
                h3 { "Bindings (UserMembers)" }
                (section(&bindings, table("Bindings", &list(&bindings), &[("Binding", "id"), ("User", "user_id"), ("Member", "member_id"),
                    ("Relation", "relation_type"), ("Status", "status"), ("Primary", "is_primary"), ("Expires", "expires_at")], Some(&revoke))))
                h3 { "Members" }
                (section(&members, table("Members", &list(&members), &[("Member", "id"), ("Name", "display_name"), ("Type", "member_type"), ("Status", "status")], Some(&disable_member))))
            }
            section id="roles" {
                h2 { "Roles and permissions" }
                (new_links(&sid, &["role", "role-permission", "permission"]))
                (section(&roles, table("Roles", &list(&roles), &[("Role", "id"), ("Key", "key"), ("Name", "name"), ("Status", "status")], Some(&disable_role))))
                h3 { "Role permissions" }
                (section(&role_perms, table("Role permissions", &list(&role_perms), &[("Role", "role_key"), ("Permission", "permission_id"),
                    ("Resource", "resource"), ("Action", "action"), ("Scope", "scope")], Some(&remove_permission))))
                h3 { "Permissions (shared by every Space)" }
                (section(&permissions, table("Permissions", &list(&permissions), &[("Permission", "id"), ("Resource", "resource"),
                    ("Action", "action"), ("Scope", "scope"), ("Status", "status")], Some(&edit_permission))))
            }
            section id="grants" {
                h2 { "Grants (MemberRoles)" }
                (new_links(&sid, &["grant"]))
                (section(&grants, table("Grants", &list(&grants), &[("Grant", "id"), ("Member", "member_id"), ("Role", "role_key"),
                    ("Anchor", "scope_anchor_path"), ("Status", "status")], Some(&revoke_grant))))
            }
            section id="resources" {
                h2 { "Resources" }
                (new_links(&sid, &["resource"]))
                (section(&resources, table("Resources", &list(&resources), &[("Resource", "id"), ("Type", "resource_type"), ("Group", "group_id"),
                    ("Name", "display_name"), ("Visibility", "visibility"), ("Metadata", "metadata")], Some(&edit_resource))))
                h3 { "Resource Registry" }
                (new_links(&sid, &["resource-type", "resource-action"]))
                (section(&types, table("Resource types", &types_rows, &[("Type", "key"), ("Name", "display_name"), ("Actions", "actions_text"), ("Source", "source"), ("Status", "status")], Some(&edit_type))))
            }
        },
    ))
}

/// The changes the Space page offers, each one API route: (collection, verb, page section, button label).
/// Anything else is not a Console route (404), so a form cannot be pointed at another API call.
/// A "remove" is the route's DELETE (a role's permission), every other verb its POST .../{verb}.
const CHANGES: [(&str, &str, &str, &str); 7] = [
    ("groups", "disable", "groups", "Disable group"),
    ("user-members", "revoke", "bindings", "Revoke binding"),
    ("resources", "archive", "resources", "Archive resource"),
    ("members", "disable", "bindings", "Disable member"),
    ("roles", "disable", "roles", "Disable role"),
    ("member-roles", "revoke", "grants", "Revoke grant"),
    ("role-permissions", "remove", "roles", "Remove role permission"),
];

/// A change from the Space page, made through its API route with the session's token (and so audited).
pub async fn change(
    caller: Caller,
    Extension(api): Extension<Api>,
    Path((sid, collection, id, verb)): Path<(String, String, String, String)>,
    Form(f): Form<Fields>,
) -> PageResult {
    signed_in(&caller)?;
    let Some((collection, verb, section, _)) = CHANGES.iter().find(|c| c.0 == collection && c.1 == verb) else {
        return Ok((StatusCode::NOT_FOUND, super::pages::error_page(404, "ROUTE_NOT_FOUND", "No such change."))
            .into_response());
    };
    if !caller.csrf_ok(field(&f, "csrf")) {
        return Err(PageError::BadForm);
    }
    let one = format!("/api/v1/spaces/{}/{collection}/{}", seg(&sid), seg(&id));
    let body = if *verb == "revoke" { json!({"revoked_reason": "revoked in the Console"}) } else { json!({}) };
    if *verb == "remove" {
        need(&caller, api.call(&caller, Method::DELETE, &one, None).await)?;
    } else {
        need(&caller, api.call(&caller, Method::POST, &format!("{one}/{verb}"), Some(&body)).await)?;
    }
    Ok(Redirect::to(&format!("/console/spaces/{}#{section}", seg(&sid))).into_response())
}

// ---------------------------------------------------------------------------------------------- Ask

async fn ask_page(caller: &Caller, api: &Api, sid: &str, f: &Fields, answer: Option<Markup>) -> PageResult {
    let base = format!("/api/v1/spaces/{}", seg(sid));
    let bindings = api.call(caller, Method::GET, &format!("{base}/user-members?limit=200&status=active"), None).await;
    let resources = api.call(caller, Method::GET, &format!("{base}/resources?limit=200"), None).await;
    if bindings.status == 401 {
        need(caller, bindings)?;
        unreachable!("a 401 is an error");
    }
    let chosen = field(f, "binding");
    let chosen_res = field(f, "resource");
    Ok(page(
        "Ask",
        Some(caller),
        Some(sid),
        html! {
            h1 { "Ask" }
            p class="hint" { "As one of your own bindings, the decision is asked with your session (POST /api/v1/authz/explain, audited). As any other binding of this Space, about a registered resource, it is simulated (POST /api/v1/spaces/{space_id}/authz/simulate): the same decision and trace, no audit row; the API answers it only to a session that holds authz:read on this Space." }
            form method="post" action=(format!("/console/spaces/{}/ask", seg(sid))) class="card" {
                input type="hidden" name="csrf" value=(caller.csrf());
                label for="binding" { "Actor (binding)" }
                select id="binding" name="binding" required {
                    @for b in list(&bindings) {
                        @let v = format!("{}|{}|{}", text(&b, "user_id"), text(&b, "member_id"), text(&b, "id"));
                        option value=(v) selected[v == chosen] { (text(&b, "id")) " — " (text(&b, "user_id")) " as " (text(&b, "member_id")) }
                    }
                }
                label for="resource" { "Registered resource" }
                select id="resource" name="resource" {
                    option value="" { "(describe one inline below)" }
                    @for r in list(&resources) {
                        @let v = format!("{}|{}", text(&r, "resource_type"), text(&r, "id"));
                        option value=(v) selected[v == chosen_res] { (text(&r, "resource_type")) ":" (text(&r, "id")) }
                    }
                }
                fieldset {
                    legend { "…or inline (a resource Plystra does not hold)" }
                    label for="inline_type" { "Type" }
                    input id="inline_type" name="inline_type" value=(field(f, "inline_type"));
                    label for="inline_id" { "Id" }
                    input id="inline_id" name="inline_id" value=(field(f, "inline_id"));
                    label for="inline_group_path" { "Group path" }
                    input id="inline_group_path" name="inline_group_path" value=(field(f, "inline_group_path"));
                }
                label for="action" { "Action" }
                input id="action" name="action" required value=(field(f, "action"));
                button type="submit" { "Ask" }
            }
            @if let Some(a) = answer { (a) }
        },
    ))
}

pub async fn ask_form(
    caller: Caller,
    Extension(api): Extension<Api>,
    Path(sid): Path<String>,
    Query(q): Query<Fields>,
) -> PageResult {
    signed_in(&caller)?;
    ask_page(&caller, &api, &sid, &q, None).await
}

/// The decision banner, picture and JSON of a trace.
fn decision_view(trace: &Value, json_href: Option<String>) -> Markup {
    let allow = trace["decision"] == "allow";
    let pretty = serde_json::to_string_pretty(trace).unwrap_or_default();
    html! {
        div class=(if allow { "verdict allow" } else { "verdict deny" }) role="status" {
            strong { (if allow { "ALLOW" } else { "DENY" }) }
            @if !allow { " " code class="code" { (text(trace, "deny_code")) } }
            " — " (text(trace, "reason"))
        }
        figure class="picture" {
            div class="scroll" role="region" aria-label="Trace picture" tabindex="0" { (trace_picture(trace)) }
            figcaption { "User → binding → Member → candidate grants → anchor → scope check against the target's group path. Strong: the deciding path; red: the failed check with its deny code." }
        }
        p {
            @if let Some(href) = json_href { a href=(href) download { "Download the trace (JSON)" } }
        }
        details { summary { "Trace JSON" } pre { (pretty) } }
    }
}

pub async fn ask(
    caller: Caller,
    Extension(api): Extension<Api>,
    Path(sid): Path<String>,
    Form(f): Form<Fields>,
) -> PageResult {
    signed_in(&caller)?;
    if !caller.csrf_ok(field(&f, "csrf")) {
        return Err(PageError::BadForm);
    }
    let mut actor = field(&f, "binding").splitn(3, '|').map(str::to_string);
    let (user, member, binding) =
        (actor.next().unwrap_or_default(), actor.next().unwrap_or_default(), actor.next().unwrap_or_default());
    let mut body = json!({
        "actor": {"user_id": user, "member_id": member, "user_member_id": binding, "space_id": sid},
        "action": field(&f, "action"),
    });
    if let Some((rt, rid)) = field(&f, "resource").split_once('|') {
        body["resource_type"] = json!(rt);
        body["resource_id"] = json!(rid);
    } else {
        let mut inline = json!({"type": field(&f, "inline_type"), "id": field(&f, "inline_id"), "space_id": sid});
        if !field(&f, "inline_group_path").is_empty() {
            inline["group_path"] = json!(field(&f, "inline_group_path"));
        }
        body["resource"] = inline;
    }
    // As one of its own bindings a session decides (audited, as any decision). As another binding /authz/explain
    // refuses it; about a registered resource the Console then asks the simulate route, which answers a session
    // that holds authz:read on the Space (the API says whether it does) and writes no audit row.
    let mut reply = api.call(&caller, Method::POST, "/api/v1/authz/explain", Some(&body)).await;
    let simulated = body.get("resource_id").is_some()
        && reply.status == 403
        && reply.error().0 == crate::error::code::ACTIVE_MEMBER_REQUIRED;
    if simulated {
        let path = format!("/api/v1/spaces/{}/authz/simulate", seg(&sid));
        reply = api.call(&caller, Method::POST, &path, Some(&body)).await;
    }
    if reply.status == 401 {
        need(&caller, reply)?;
        unreachable!("a 401 is an error");
    }
    let answer = if reply.ok() {
        let trace = reply.data();
        let audit_id = trace.pointer("/audit/audit_log_id").and_then(Value::as_str).map(str::to_string);
        let href = audit_id.map(|id| format!("/console/spaces/{}/audit/{}/trace.json", seg(&sid), seg(&id)));
        html! { section id="answer" {
            h2 { "Answer" }
            @if simulated {
                p class="hint" id="simulated" { "Simulated (authz:read): asked as " code { (text(&body["actor"], "user_member_id")) } "; no audit row was written." }
            }
            (decision_view(trace, href))
        } }
    } else {
        let (code, message) = reply.error();
        html! { section id="answer" { h2 { "Answer" } p class="deny" role="alert" { "The API refused: " code class="code" { (code) } " " (message) } } }
    };
    ask_page(&caller, &api, &sid, &f, Some(answer)).await
}

// ---------------------------------------------------------------------------------------------- Who can?

pub async fn who_can(
    caller: Caller,
    Extension(api): Extension<Api>,
    Path(sid): Path<String>,
    Query(q): Query<Fields>,
) -> PageResult {
    signed_in(&caller)?;
    let base = format!("/api/v1/spaces/{}", seg(&sid));
    let resources = need(&caller, api.call(&caller, Method::GET, &format!("{base}/resources?limit=200"), None).await)?;
    let resources = resources["data"].as_array().cloned().unwrap_or_default();
    let (rid, action) = (field(&q, "resource_id"), field(&q, "action"));
    let answer = if !rid.is_empty() && !action.is_empty() {
        let path = format!("{base}/resources/{}/subjects{}", seg(rid), query(&[("action", action), ("limit", "200")]));
        let reply = api.call(&caller, Method::GET, &path, None).await;
        if reply.ok() {
            let rows: Vec<Value> = list(&reply)
                .into_iter()
                .map(|mut r| {
                    let grants = r["grants"].as_array().map(|g| {
                        g.iter()
                            .map(|g| {
                                format!(
                                    "{} ({}, anchor {})",
                                    text(g, "role_key"),
                                    text(g, "scope"),
                                    text(g, "scope_anchor_path")
                                )
                            })
                            .collect::<Vec<_>>()
                            .join("; ")
                    });
                    r["grants_text"] = json!(grants.unwrap_or_default());
                    r
                })
                .collect();
            html! {
                h2 { "Who may " code { (action) } " " code { (rid) } }
                (table("Who can", &rows, &[("Binding", "user_member_id"), ("Member", "member_id"), ("User", "user_id"), ("Grants that let them", "grants_text")], None))
            }
        } else {
            refused_note(&reply)
        }
    } else {
        html! {}
    };
    let (binding, rtype, raction) = (field(&q, "binding"), field(&q, "reach_type"), field(&q, "reach_action"));
    let bindings = api.call(&caller, Method::GET, &format!("{base}/user-members?limit=200"), None).await;
    let reach = if !binding.is_empty() && !rtype.is_empty() && !raction.is_empty() {
        let path = format!(
            "{base}/user-members/{}/resources{}",
            seg(binding),
            query(&[("resource_type", rtype), ("action", raction), ("limit", "200")])
        );
        let reply = api.call(&caller, Method::GET, &path, None).await;
        if reply.ok() {
            html! {
                h2 { "What " code { (binding) } " may " code { (raction) } }
                (table("Reach", &list(&reply), &[("Type", "resource_type"), ("Resource", "id")], None))
            }
        } else {
            refused_note(&reply)
        }
    } else {
        html! {}
    };
    Ok(page(
        "Who can?",
        Some(&caller),
        Some(&sid),
        html! {
            h1 { "Who can?" }
            form method="get" class="card" {
                label for="resource_id" { "Resource" }
                select id="resource_id" name="resource_id" required {
                    @for r in &resources {
                        option value=(text(r, "id")) selected[text(r, "id") == rid] { (text(r, "resource_type")) ":" (text(r, "id")) }
                    }
                }
                label for="action" { "Action" }
                input id="action" name="action" required value=(action);
                button type="submit" { "Look up" }
            }
            (answer)
            h2 { "What can a binding reach?" }
            form method="get" class="card" {
                label for="binding" { "Binding" }
                select id="binding" name="binding" required {
                    @for b in list(&bindings) {
                        option value=(text(&b, "id")) selected[text(&b, "id") == binding] { (text(&b, "id")) " — " (text(&b, "user_id")) }
                    }
                }
                label for="reach_type" { "Resource type to reach" }
                input id="reach_type" name="reach_type" required value=(rtype);
                label for="reach_action" { "Action to reach" }
                input id="reach_action" name="reach_action" required value=(raction);
                button type="submit" { "Look up what it reaches" }
            }
            (reach)
        },
    ))
}

// ---------------------------------------------------------------------------------------------- Audit

const AUDIT_FILTERS: [(&str, &str); 9] = [
    ("actor_user_id", "Actor user"),
    ("actor_user_member_id", "Actor binding"),
    ("resource_type", "Resource type (user: logins)"),
    ("resource_id", "Resource"),
    ("decision", "Decision (allow, deny)"),
    ("deny_code", "Deny code"),
    ("request_id", "Request id"),
    ("created_at_from", "From (RFC 3339)"),
    ("created_at_to", "To (RFC 3339)"),
];

pub async fn audit_list(
    caller: Caller,
    Extension(api): Extension<Api>,
    Path(sid): Path<String>,
    Query(q): Query<Fields>,
) -> PageResult {
    signed_in(&caller)?;
    let mut pairs: Vec<(&str, &str)> = AUDIT_FILTERS.iter().map(|(k, _)| (*k, field(&q, k))).collect();
    pairs.push(("limit", "100"));
    let path = format!("/api/v1/spaces/{}/audit-logs{}", seg(&sid), query(&pairs));
    let reply = api.call(&caller, Method::GET, &path, None).await;
    if reply.status == 401 {
        need(&caller, reply)?;
        unreachable!("a 401 is an error");
    }
    let rows = list(&reply);
    let link = |r: &Value| -> Markup {
        html! { a href=(format!("/console/spaces/{}/audit/{}", seg(&sid), seg(&text(r, "id")))) { "Open" } }
    };
    Ok(page(
        "Audit",
        Some(&caller),
        Some(&sid),
        html! {
            h1 { "Audit" }
            section id="chain" class="card" {
                h2 { "Chain status" }
                p { "The Space's audit rows are sealed into a hash chain. Verify it now:" }
                form method="post" action=(format!("/console/spaces/{}/chain/verify", seg(&sid))) {
                    input type="hidden" name="csrf" value=(caller.csrf());
                    button type="submit" { "Verify the chain" }
                }
            }
            form method="get" class="card filters" {
                @for (k, label) in AUDIT_FILTERS {
                    div { label for=(k) { (label) } input id=(k) name=(k) value=(field(&q, k)); }
                }
                button type="submit" { "Filter" }
            }
            p class="hint" { "Decisions, logins and administration events of this Space, newest first. Events with no Space (an instance admin's): " a href="/console/events" { "instance events" } "." }
            @if reply.ok() {
                (table("Audit rows", &rows, &[("When", "created_at"), ("Action", "action"), ("Actor user", "actor_user_id"),
                    ("Binding", "actor_user_member_id"), ("Resource", "resource_id"), ("Decision", "decision"), ("Deny code", "deny_code"), ("Request", "request_id")], Some(&link)))
            } @else { (refused_note(&reply)) }
        },
    ))
}

/// The audit rows of the whole instance (logins, administration and decisions), for a credential the API lets
/// read them all; anyone else gets the API's refusal.
pub async fn events(caller: Caller, Extension(api): Extension<Api>, Query(q): Query<Fields>) -> PageResult {
    signed_in(&caller)?;
    let path =
        format!("/api/v1/audit/logs{}", query(&[("resource_type", field(&q, "resource_type")), ("limit", "100")]));
    let reply = need(&caller, api.call(&caller, Method::GET, &path, None).await)?;
    let rows = reply["data"].as_array().cloned().unwrap_or_default();
    let link = |r: &Value| -> Markup {
        let sid = text(r, "space_id");
        html! {
            @if !sid.is_empty() { a href=(format!("/console/spaces/{}/audit/{}", seg(&sid), seg(&text(r, "id")))) { "Open" } }
        }
    };
    Ok(page(
        "Instance events",
        Some(&caller),
        None,
        html! {
            h1 { "Instance events" }
            p { a href="/console/events?resource_type=user" { "Logins and user administration only" } " · " a href="/console/events" { "Everything" } }
            (table("Instance events", &rows, &[("When", "created_at"), ("Space", "space_id"), ("Action", "action"), ("Actor user", "actor_user_id"),
                ("Resource", "resource_id"), ("Decision", "decision"), ("Deny code", "deny_code"), ("Request", "request_id")], Some(&link)))
        },
    ))
}

pub async fn audit_row(
    caller: Caller,
    Extension(api): Extension<Api>,
    Path((sid, id)): Path<(String, String)>,
) -> PageResult {
    signed_in(&caller)?;
    let path = format!("/api/v1/spaces/{}/audit-logs/{}", seg(&sid), seg(&id));
    let row = need(&caller, api.call(&caller, Method::GET, &path, None).await)?;
    let row = &row["data"];
    let trace = &row["trace"];
    let is_decision = trace.get("requested").is_some_and(Value::is_object);
    let fields = [
        "id",
        "created_at",
        "action",
        "actor_user_id",
        "actor_member_id",
        "actor_user_member_id",
        "resource_type",
        "resource_id",
        "decision",
        "deny_code",
        "request_id",
        "ip_address",
        "user_agent",
    ];
    Ok(page(
        "Audit row",
        Some(&caller),
        Some(&sid),
        html! {
            h1 { "Audit row " code { (id) } }
            dl class="fields" { @for k in fields { dt { (k) } dd { (text(row, k)) } } }
            @if is_decision {
                h2 { "The decision-time trace" }
                (decision_view(trace, Some(format!("/console/spaces/{}/audit/{}/trace.json", seg(&sid), seg(&id)))))
                form method="post" action=(format!("/console/spaces/{}/audit/{}/replay", seg(&sid), seg(&id))) class="card" {
                    input type="hidden" name="csrf" value=(caller.csrf());
                    p { "Replay asks the same request again against today's data (nothing is written)." }
                    button type="submit" { "Replay against today's data" }
                }
            } @else {
                h2 { "Event detail" }
                details open { summary { "Recorded detail (JSON)" } pre { (serde_json::to_string_pretty(trace).unwrap_or_default()) } }
            }
        },
    ))
}

pub async fn trace_json(
    caller: Caller,
    Extension(api): Extension<Api>,
    Path((sid, id)): Path<(String, String)>,
) -> PageResult {
    signed_in(&caller)?;
    let path = format!("/api/v1/spaces/{}/audit-logs/{}", seg(&sid), seg(&id));
    let row = need(&caller, api.call(&caller, Method::GET, &path, None).await)?;
    let body = serde_json::to_string_pretty(&row["data"]["trace"]).unwrap_or_default();
    let disposition = format!("attachment; filename=\"trace-{}.json\"", seg(&id));
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition).unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        body,
    )
        .into_response())
}

pub async fn replay(
    caller: Caller,
    Extension(api): Extension<Api>,
    Path((sid, id)): Path<(String, String)>,
    Form(f): Form<Fields>,
) -> PageResult {
    signed_in(&caller)?;
    if !caller.csrf_ok(field(&f, "csrf")) {
        return Err(PageError::BadForm);
    }
    let r =
        need(&caller, api.call(&caller, Method::POST, &format!("/api/v1/audit/logs/{}/replay", seg(&id)), None).await)?;
    let r = &r["data"];
    let changes: Vec<Value> = r["changes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut c| {
            c["then_text"] = json!(brief(&c["then"]));
            c["now_text"] = json!(brief(&c["now"]));
            c
        })
        .collect();
    let changed = r["decision_changed"] == true || r["deny_code_changed"] == true;
    Ok(page(
        "Replay",
        Some(&caller),
        Some(&sid),
        html! {
            h1 { "Replay of " code { (id) } }
            p class=(if changed { "verdict deny" } else { "verdict allow" }) role="status" {
                @if changed { "The decision would go differently today." } @else { "The decision would go the same way today." }
            }
            div class="sides" {
                section class="side" {
                    h2 { "Then " span class="meta" { (text(r, "decided_at")) } }
                    (decision_view(&r["then"]["trace"], None))
                }
                section class="side" {
                    h2 { "Now " span class="meta" { (text(r, "replayed_at")) } }
                    (decision_view(&r["now"]["trace"], None))
                }
            }
            h2 { "What changed" }
            (table("Changes", &changes, &[("Kind", "kind"), ("Id", "id"), ("Change", "change"), ("Then", "then_text"), ("Now", "now_text")], None))
        },
    ))
}

/// A short text of a changed entity (its status and the fields people look for), for the changes table.
fn brief(v: &Value) -> String {
    if v.is_null() {
        return "—".into();
    }
    let keys = ["status", "path", "key", "revoked_at", "expires_at"];
    let mut parts: Vec<String> = keys
        .iter()
        .filter_map(|k| {
            v.get(*k)
                .filter(|x| !x.is_null())
                .map(|x| format!("{k}: {}", x.as_str().map(str::to_string).unwrap_or(x.to_string())))
        })
        .collect();
    if let Some(a) = v.pointer("/scope_anchor/path").and_then(Value::as_str) {
        parts.push(format!("anchor: {a}"));
    }
    if let Some(c) = v.pointer("/scope_check/covered") {
        parts.push(format!("covers: {c}"));
    }
    if parts.is_empty() {
        let s = v.to_string();
        return s.chars().take(200).collect();
    }
    parts.join(", ")
}

pub async fn verify_chain(
    caller: Caller,
    Extension(api): Extension<Api>,
    Path(sid): Path<String>,
    Form(f): Form<Fields>,
) -> PageResult {
    signed_in(&caller)?;
    if !caller.csrf_ok(field(&f, "csrf")) {
        return Err(PageError::BadForm);
    }
    let path = format!("/api/v1/spaces/{}/audit-chain/verify", seg(&sid));
    let r = need(&caller, api.call(&caller, Method::POST, &path, None).await)?;
    let r = &r["data"];
    let intact = r["status"] == "intact";
    Ok(page(
        "Chain status",
        Some(&caller),
        Some(&sid),
        html! {
            h1 { "Audit chain of " code { (sid) } }
            p class=(if intact { "verdict allow" } else { "verdict deny" }) role="status" id="chain-status" {
                strong { (text(r, "status").to_uppercase()) }
                " — " (text(r, "sealed_rows")) " sealed rows, " (text(r, "unsealed_rows")) " not sealed yet"
                @if !intact { ". First broken position: " (text(r, "broken_at_position")) " (row " code { (text(r, "broken_audit_id")) } "): " (text(r, "problem")) }
            }
            p { a href=(format!("/console/spaces/{}/audit", seg(&sid))) { "Back to the audit log" } }
        },
    ))
}
