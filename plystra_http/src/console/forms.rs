//! Create and edit forms. Each form is one API route: the Console turns the form's fields into that route's JSON
//! body and calls it in process with the session's token, so the API validates, authorizes and audits the change
//! exactly as for any other client. A refusal (the API's error envelope) is shown on the form with the user's
//! input kept; nothing here decides who may change what.
//!
//! A form is shown to anyone who may read the Space's page: the API decides on submit, and a refused form shows
//! the API's answer (403 and its code) rather than guessing in advance from the session's grants.

use axum::extract::Path;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{html, Markup};
use serde_json::{json, Map, Value};

use super::pages::{field, list, page, seg, text, Fields};
use super::{need, signed_in, Api, Caller, PageError, Reply};

type PageResult = Result<Response, PageError>;

/// What an input holds and how it is drawn.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Text,
    /// A longer text (a textarea).
    Long,
    /// A JSON object (metadata).
    Json,
    /// A moment, entered in UTC (datetime-local), sent as RFC 3339.
    When,
    Check,
    Group,
    Member,
    Role,
    Permission,
    ResourceType,
    Scope,
    Risk,
}

struct Input {
    name: &'static str,
    label: &'static str,
    kind: Kind,
    required: bool,
    /// Shown on the edit form too (else create only: ids, paths and links the API does not let change).
    edit: bool,
}

const fn input(name: &'static str, label: &'static str, kind: Kind, required: bool, edit: bool) -> Input {
    Input { name, label, kind, required, edit }
}

/// One form: its word in the Console's URL, its noun, the Space page's section it returns to, its inputs.
struct Def {
    what: &'static str,
    noun: &'static str,
    section: &'static str,
    inputs: &'static [Input],
    editable: bool,
}

use Kind::*;

const DEFS: [Def; 11] = [
    Def {
        what: "space",
        noun: "Space",
        section: "",
        editable: true,
        inputs: &[
            input("id", "Id (optional)", Text, false, false),
            input("name", "Name", Text, true, true),
            input("slug", "Slug", Text, false, true),
            input("type", "Type", Text, false, true),
        ],
    },
    Def {
        what: "group",
        noun: "group",
        section: "groups",
        editable: true,
        inputs: &[
            input("parent_group_id", "Parent group", Group, false, false),
            input("path", "Path (the full path, e.g. finance.apac.sg under finance.apac)", Text, true, false),
            input("display_name", "Display name", Text, false, true),
            input("metadata", "Metadata (JSON object)", Json, false, true),
        ],
    },
    Def {
        what: "member",
        noun: "Member",
        section: "bindings",
        editable: true,
        inputs: &[
            input("display_name", "Display name", Text, true, true),
            input("member_type", "Member type", Text, false, true),
            input("metadata", "Metadata (JSON object)", Json, false, true),
        ],
    },
    Def {
        what: "binding",
        noun: "binding (UserMember)",
        section: "bindings",
        editable: true,
        inputs: &[
            input("user_id", "User id", Text, true, false),
            input("member_id", "Member", Member, true, false),
            input("relation_type", "Relation type (e.g. login)", Text, true, true),
            input("expires_at", "Expires at (UTC, optional)", When, false, true),
            input("is_primary", "Primary binding of the user", Check, false, true),
        ],
    },
    Def {
        what: "role",
        noun: "role",
        section: "roles",
        editable: true,
        inputs: &[
            input("key", "Key", Text, true, true),
            input("name", "Name", Text, false, true),
            input("description", "Description", Long, false, true),
        ],
    },
    Def {
        what: "role-permission",
        noun: "permission of a role",
        section: "roles",
        editable: false,
        inputs: &[
            input("role_id", "Role", Role, true, false),
            input("permission_id", "Permission", Permission, true, false),
        ],
    },
    Def {
        what: "permission",
        noun: "permission",
        section: "roles",
        editable: true,
        inputs: &[
            input("resource", "Resource type", Text, true, true),
            input("action", "Action", Text, true, true),
            input("scope", "Scope", Scope, true, true),
            input("description", "Description", Long, false, true),
        ],
    },
    Def {
        what: "grant",
        noun: "grant (MemberRole)",
        section: "grants",
        editable: false,
        inputs: &[
            input("member_id", "Member", Member, true, false),
            input("role_id", "Role", Role, true, false),
            input("scope_anchor_group_id", "Anchor group (optional)", Group, false, false),
        ],
    },
    Def {
        what: "resource",
        noun: "resource",
        section: "resources",
        editable: true,
        inputs: &[
            input("id", "Id (optional)", Text, false, false),
            input("resource_type", "Type", ResourceType, true, false),
            input("display_name", "Display name", Text, false, true),
            input("group_id", "Group", Group, false, true),
            input("owner_member_id", "Owner Member", Member, false, true),
            input("visibility", "Visibility", Text, false, true),
            input("external_id", "External id", Text, false, true),
            input("metadata", "Metadata (JSON object)", Json, false, true),
        ],
    },
    Def {
        what: "resource-type",
        noun: "resource type",
        section: "resources",
        editable: true,
        inputs: &[
            input("key", "Key", Text, true, false),
            input("display_name", "Display name", Text, true, true),
            input("description", "Description", Long, false, true),
        ],
    },
    Def {
        what: "resource-action",
        noun: "action of a resource type",
        section: "resources",
        editable: false,
        inputs: &[
            input("resource_type", "Resource type", ResourceType, true, false),
            input("key", "Key", Text, true, false),
            input("display_name", "Display name", Text, true, false),
            input("description", "Description", Long, false, false),
            input("risk_level", "Risk level", Risk, false, false),
            input("audit_default", "Audit every decision by default", Check, false, false),
        ],
    },
];

fn def(what: &str) -> Option<&'static Def> {
    DEFS.iter().find(|d| d.what == what)
}

/// The API route a create form calls (always POST).
fn create_route(d: &Def, sid: &str, f: &Fields) -> String {
    let base = format!("/api/v1/spaces/{}", seg(sid));
    match d.what {
        "space" => "/api/v1/spaces".into(),
        "group" => format!("{base}/groups"),
        "member" => format!("{base}/members"),
        "binding" => format!("{base}/user-members"),
        "role" => format!("{base}/roles"),
        "role-permission" => format!("{base}/role-permissions"),
        "permission" => "/api/v1/permissions".into(),
        "grant" => format!("{base}/member-roles"),
        "resource" => format!("{base}/resources"),
        "resource-type" => "/api/v1/resource-types".into(),
        _ => format!("/api/v1/resource-types/{}/actions", seg(field(f, "resource_type"))),
    }
}

/// The API routes an edit form reads from and writes to: (GET path, method, write path).
fn edit_routes(d: &Def, sid: &str, id: &str) -> (String, Method, String) {
    let base = format!("/api/v1/spaces/{}", seg(sid));
    let one = match d.what {
        "space" => base.clone(),
        "group" => format!("{base}/groups/{}", seg(id)),
        "member" => format!("{base}/members/{}", seg(id)),
        "binding" => format!("{base}/user-members/{}", seg(id)),
        "role" => format!("{base}/roles/{}", seg(id)),
        "permission" => format!("/api/v1/permissions/{}", seg(id)),
        "resource" => format!("{base}/resources/{}", seg(id)),
        _ => format!("/api/v1/resource-types/{}", seg(id)),
    };
    // The Registry has no PATCH: a type is changed by upserting it under its key.
    if d.what == "resource-type" {
        (one, Method::POST, "/api/v1/resource-types".into())
    } else {
        (one.clone(), Method::PATCH, one)
    }
}

/// Routes whose rows live outside a Space (permissions, the Registry) say which Space's audit trail the change
/// belongs to: the one the Console is showing.
fn audited_in_space(d: &Def) -> bool {
    matches!(d.what, "permission" | "resource-type" | "resource-action")
}

/// A refusal to show on the form: status, code, message and the field it names.
struct Refusal {
    status: u16,
    code: String,
    message: String,
    field: String,
}

impl Refusal {
    fn from_reply(reply: &Reply) -> Self {
        let (code, message) = reply.error();
        let field = reply.body["error"]["details"]["field"].as_str().unwrap_or_default().to_string();
        Refusal { status: reply.status, code, message, field }
    }
}

/// The JSON body of a form; a field the Console itself cannot read (metadata that is not a JSON object) is
/// refused here the way the API refuses one (400 VALIDATION_FAILED naming the field).
fn body_of(d: &Def, editing: bool, f: &Fields, sid: &str) -> Result<Value, Refusal> {
    let mut body = Map::new();
    for i in d.inputs.iter().filter(|i| !editing || i.edit) {
        let v = field(f, i.name);
        let value = match i.kind {
            Check => json!(f.contains_key(i.name)),
            _ if v.is_empty() => continue,
            Json => match serde_json::from_str::<Value>(v) {
                Ok(o @ Value::Object(_)) => o,
                _ => {
                    return Err(Refusal {
                        status: 400,
                        code: "VALIDATION_FAILED".into(),
                        message: format!("{} must be a JSON object.", i.name),
                        field: i.name.into(),
                    })
                }
            },
            When => json!(utc_rfc3339(v)),
            _ => json!(v),
        };
        // The action's type is its route's path segment, not a body field.
        if d.what == "resource-action" && i.name == "resource_type" {
            continue;
        }
        body.insert(i.name.to_string(), value);
    }
    if audited_in_space(d) {
        body.insert("audit_space_id".into(), json!(sid));
    }
    Ok(Value::Object(body))
}

/// A datetime-local value (no zone) read as UTC; anything else is passed on for the API to judge.
fn utc_rfc3339(v: &str) -> String {
    match v.len() {
        16 if v.as_bytes()[10] == b'T' => format!("{v}:00Z"),
        19 if v.as_bytes()[10] == b'T' => format!("{v}Z"),
        _ => v.to_string(),
    }
}

/// An API moment shown in a datetime-local input (UTC, to the minute).
fn local_input(v: &str) -> String {
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!("{:04}-{:02}-{:02}T{:02}:{:02}", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
        })
        .unwrap_or_default()
}

/// The form's values from an API row (for an edit form's first showing).
fn values_of(d: &Def, row: &Value) -> Fields {
    let mut f = Fields::new();
    for i in d.inputs {
        let v = match i.kind {
            Check => {
                if row[i.name] == true {
                    "on".to_string()
                } else {
                    continue;
                }
            }
            Json => match &row[i.name] {
                Value::Object(o) if !o.is_empty() => serde_json::to_string_pretty(&row[i.name]).unwrap_or_default(),
                _ => String::new(),
            },
            When => local_input(&text(row, i.name)),
            _ => text(row, i.name),
        };
        f.insert(i.name.to_string(), v);
    }
    f
}

/// The choices of the pick lists a form uses, each from its API list (a list the session may not read leaves a
/// plain text input).
async fn choices(api: &Api, caller: &Caller, sid: &str, d: &Def) -> Vec<(Kind, Vec<(String, String)>)> {
    let base = format!("/api/v1/spaces/{}", seg(sid));
    let mut out = Vec::new();
    for kind in [Group, Member, Role, Permission, ResourceType] {
        if !d.inputs.iter().any(|i| i.kind == kind) {
            continue;
        }
        let path = match kind {
            Group => format!("{base}/groups?limit=200"),
            Member => format!("{base}/members?limit=200"),
            Role => format!("{base}/roles?limit=200"),
            Permission => "/api/v1/permissions?limit=200".to_string(),
            _ => "/api/v1/resource-types?limit=200".to_string(),
        };
        let reply = api.call(caller, Method::GET, &path, None).await;
        if !reply.ok() {
            continue;
        }
        let mut options: Vec<(String, String)> = list(&reply)
            .iter()
            .filter(|r| matches!(text(r, "status").as_str(), "" | "active"))
            .map(|r| {
                let label = match kind {
                    Group => format!("{} — {}", text(r, "path"), text(r, "display_name")),
                    Member => format!("{} ({})", text(r, "display_name"), text(r, "id")),
                    Role => format!("{} ({})", text(r, "key"), text(r, "id")),
                    Permission => format!("{}:{} ({})", text(r, "resource"), text(r, "action"), text(r, "scope")),
                    _ => text(r, "key"),
                };
                let value = if kind == ResourceType { text(r, "key") } else { text(r, "id") };
                (value, label)
            })
            .collect();
        options.sort_by(|a, b| a.1.cmp(&b.1));
        out.push((kind, options));
    }
    out
}

fn fixed(kind: Kind) -> Option<&'static [&'static str]> {
    match kind {
        Scope => Some(&["self", "group", "group_tree", "space", "global"]),
        Risk => Some(&["low", "normal", "high", "critical"]),
        _ => None,
    }
}

fn form_page(
    caller: &Caller,
    sid: Option<&str>,
    d: &Def,
    editing: Option<&str>,
    values: &Fields,
    picks: &[(Kind, Vec<(String, String)>)],
    refusal: Option<&Refusal>,
) -> Response {
    form_page_full(caller, sid, d, editing, values, picks, refusal, html! {})
}

#[allow(clippy::too_many_arguments)] // one page, drawn from the form's parts
fn form_page_full(
    caller: &Caller,
    sid: Option<&str>,
    d: &Def,
    editing: Option<&str>,
    values: &Fields,
    picks: &[(Kind, Vec<(String, String)>)],
    refusal: Option<&Refusal>,
    extra: Markup,
) -> Response {
    let action = match editing {
        Some(id) => edit_action(sid.unwrap_or_default(), d, id),
        None => create_action(sid, d),
    };
    let title = match editing {
        Some(_) => format!("Edit {}", d.noun),
        None => format!("New {}", d.noun),
    };
    let back = match sid {
        Some(s) if d.section.is_empty() => format!("/console/spaces/{}", seg(s)),
        Some(s) => format!("/console/spaces/{}#{}", seg(s), d.section),
        None => "/console".to_string(),
    };
    let body = html! {
        h1 { (title) @if let Some(id) = editing { " " code { (id) } } }
        @if let Some(r) = refusal {
            div class="deny card" role="alert" id="form-error" {
                p { "The API refused this (" (r.status) "): " code class="code" { (r.code) } " " (r.message) }
                @if !r.field.is_empty() { p { "Field: " code { (r.field) } } }
            }
        }
        form method="post" action=(action) class="card" novalidate {
            input type="hidden" name="csrf" value=(caller.csrf());
            @for i in d.inputs.iter().filter(|i| editing.is_none() || i.edit) {
                @let id = format!("f_{}", i.name);
                @let v = values.get(i.name).map(String::as_str).unwrap_or("");
                @let bad = refusal.is_some_and(|r| r.field == i.name);
                @let options = picks.iter().find(|(k, _)| *k == i.kind).map(|(_, o)| o);
                @if i.kind == Check {
                    label for=(id) class="check" {
                        input id=(id) name=(i.name) type="checkbox" checked[!v.is_empty()];
                        " " (i.label)
                    }
                } @else {
                    label for=(id) { (i.label) @if i.required { " (required)" } }
                    @if let Some(fx) = fixed(i.kind) {
                        select id=(id) name=(i.name) required[i.required] aria-invalid=[bad.then_some("true")] {
                            @if !i.required { option value="" { "(default)" } }
                            @for o in fx { option value=(o) selected[*o == v] { (o) } }
                        }
                    } @else if let Some(opts) = options {
                        select id=(id) name=(i.name) required[i.required] aria-invalid=[bad.then_some("true")] {
                            @if !i.required || v.is_empty() { option value="" { "(none)" } }
                            @for (value, label) in opts { option value=(value) selected[value == v] { (label) } }
                            // A value typed before (or one the list no longer holds) stays chosen.
                            @if !v.is_empty() && !opts.iter().any(|(value, _)| value == v) { option value=(v) selected { (v) } }
                        }
                    } @else if matches!(i.kind, Long | Json) {
                        textarea id=(id) name=(i.name) rows="4" required[i.required] aria-invalid=[bad.then_some("true")] { (v) }
                    } @else if i.kind == When {
                        input id=(id) name=(i.name) type="datetime-local" value=(v) aria-invalid=[bad.then_some("true")];
                    } @else {
                        input id=(id) name=(i.name) value=(v) required[i.required] aria-invalid=[bad.then_some("true")];
                    }
                }
            }
            button type="submit" { (if editing.is_some() { "Save" } else { "Create" }) }
        }
        (extra)
        p { a href=(back) { "Back" } }
    };
    page(&title, Some(caller), sid, body)
}

fn not_a_form() -> Response {
    (StatusCode::NOT_FOUND, super::pages::error_page(404, "ROUTE_NOT_FOUND", "No such form.")).into_response()
}

/// Where a change returns to: the Space page's section (a new Space: its own page).
fn done(d: &Def, sid: Option<&str>, reply: &Reply) -> Response {
    let to = match sid {
        None => format!("/console/spaces/{}", seg(&text(reply.data(), "id"))),
        Some(s) if d.section.is_empty() => format!("/console/spaces/{}", seg(s)),
        Some(s) => format!("/console/spaces/{}#{}", seg(s), d.section),
    };
    Redirect::to(&to).into_response()
}

fn create_action(sid: Option<&str>, d: &Def) -> String {
    match sid {
        Some(s) => format!("/console/spaces/{}/new/{}", seg(s), d.what),
        None => "/console/new/space".to_string(),
    }
}

async fn show_new(caller: Caller, api: Api, sid: Option<String>, what: String) -> PageResult {
    signed_in(&caller)?;
    let Some(d) = def(&what).filter(|d| (d.what == "space") == sid.is_none()) else { return Ok(not_a_form()) };
    let picks = match &sid {
        Some(s) => {
            need(&caller, api.call(&caller, Method::GET, &format!("/api/v1/spaces/{}", seg(s)), None).await)?;
            choices(&api, &caller, s, d).await
        }
        None => Vec::new(),
    };
    let mut values = Fields::new();
    // The API's defaults, shown: a checkbox left alone must not send the opposite of what the API would choose.
    if d.what == "binding" {
        values.insert("relation_type".into(), "login".into());
    }
    if d.what == "resource-action" {
        values.insert("audit_default".into(), "on".into());
    }
    Ok(form_page(&caller, sid.as_deref(), d, None, &values, &picks, None))
}

async fn submit_new(caller: Caller, api: Api, sid: Option<String>, what: String, f: Fields) -> PageResult {
    signed_in(&caller)?;
    let Some(d) = def(&what).filter(|d| (d.what == "space") == sid.is_none()) else { return Ok(not_a_form()) };
    if !caller.csrf_ok(field(&f, "csrf")) {
        return Err(PageError::BadForm);
    }
    let space = sid.clone().unwrap_or_default();
    let reply = match body_of(d, false, &f, &space) {
        Ok(body) => api.call(&caller, Method::POST, &create_route(d, &space, &f), Some(&body)).await,
        Err(refusal) => return Ok(refused(&caller, &api, sid.as_deref(), d, None, &f, refusal).await),
    };
    if reply.ok() {
        return Ok(done(d, sid.as_deref(), &reply));
    }
    if reply.status == 401 {
        return Err(PageError::SignIn { expired: true, clear: caller.clear_session_cookie() });
    }
    Ok(refused(&caller, &api, sid.as_deref(), d, None, &f, Refusal::from_reply(&reply)).await)
}

/// The form again, with the user's input and the refusal, answered with the API's status.
async fn refused(
    caller: &Caller,
    api: &Api,
    sid: Option<&str>,
    d: &Def,
    editing: Option<&str>,
    f: &Fields,
    refusal: Refusal,
) -> Response {
    let picks = match sid {
        Some(s) => choices(api, caller, s, d).await,
        None => Vec::new(),
    };
    let mut r = form_page(caller, sid, d, editing, f, &picks, Some(&refusal));
    // The API's status (400, 403, 404, 409, 422); anything odd is reported as a refused request, never a 500.
    *r.status_mut() =
        StatusCode::from_u16(refusal.status).ok().filter(|s| s.is_client_error()).unwrap_or(StatusCode::BAD_REQUEST);
    r
}

fn edit_action(sid: &str, d: &Def, id: &str) -> String {
    format!("/console/spaces/{}/edit/{}/{}", seg(sid), d.what, seg(id))
}

pub async fn new_form(
    caller: Caller,
    Extension(api): Extension<Api>,
    Path((sid, what)): Path<(String, String)>,
) -> PageResult {
    show_new(caller, api, Some(sid), what).await
}

pub async fn new_space_form(caller: Caller, Extension(api): Extension<Api>) -> PageResult {
    show_new(caller, api, None, "space".into()).await
}

pub async fn create(
    caller: Caller,
    Extension(api): Extension<Api>,
    Path((sid, what)): Path<(String, String)>,
    Form(f): Form<Fields>,
) -> PageResult {
    submit_new(caller, api, Some(sid), what, f).await
}

pub async fn create_space(caller: Caller, Extension(api): Extension<Api>, Form(f): Form<Fields>) -> PageResult {
    submit_new(caller, api, None, "space".into(), f).await
}

pub async fn edit_form(
    caller: Caller,
    Extension(api): Extension<Api>,
    Path((sid, what, id)): Path<(String, String, String)>,
) -> PageResult {
    signed_in(&caller)?;
    let Some(d) = def(&what).filter(|d| d.editable) else { return Ok(not_a_form()) };
    if d.what == "space" && id != sid {
        return Ok(not_a_form());
    }
    let (read, _, _) = edit_routes(d, &sid, &id);
    let row = need(&caller, api.call(&caller, Method::GET, &read, None).await)?;
    let picks = choices(&api, &caller, &sid, d).await;
    let values = values_of(d, &row["data"]);
    // A group has no row in a table to carry its disable button: its edit page does (while it is active).
    let mut extra = html! {};
    if d.what == "group" && text(&row["data"], "status") == "active" {
        extra = html! {
            form method="post" action=(format!("/console/spaces/{}/change/groups/{}/disable", seg(&sid), seg(&id)))
                class="card" data-confirm=(format!("Disable group {id}?")) {
                input type="hidden" name="csrf" value=(caller.csrf());
                p { "A disabled group anchors no grant and holds no resource's decisions any more." }
                button type="submit" { "Disable group " (id) }
            }
        };
    }
    Ok(form_page_full(&caller, Some(&sid), d, Some(&id), &values, &picks, None, extra))
}

pub async fn edit(
    caller: Caller,
    Extension(api): Extension<Api>,
    Path((sid, what, id)): Path<(String, String, String)>,
    Form(f): Form<Fields>,
) -> PageResult {
    signed_in(&caller)?;
    let Some(d) = def(&what).filter(|d| d.editable) else { return Ok(not_a_form()) };
    if d.what == "space" && id != sid {
        return Ok(not_a_form());
    }
    if !caller.csrf_ok(field(&f, "csrf")) {
        return Err(PageError::BadForm);
    }
    let (_, method, write) = edit_routes(d, &sid, &id);
    let reply = match body_of(d, true, &f, &sid) {
        Ok(mut body) => {
            if d.what == "resource-type" {
                body["key"] = json!(id);
            }
            api.call(&caller, method, &write, Some(&body)).await
        }
        Err(refusal) => return Ok(refused(&caller, &api, Some(&sid), d, Some(&id), &f, refusal).await),
    };
    if reply.ok() {
        return Ok(done(d, Some(&sid), &reply));
    }
    if reply.status == 401 {
        return Err(PageError::SignIn { expired: true, clear: caller.clear_session_cookie() });
    }
    Ok(refused(&caller, &api, Some(&sid), d, Some(&id), &f, Refusal::from_reply(&reply)).await)
}

/// Links to the create forms of a Space page's section.
pub fn new_links(sid: &str, whats: &[&str]) -> Markup {
    html! {
        p class="actions" {
            @for w in whats {
                @if let Some(d) = def(w) {
                    a class="button" href=(format!("/console/spaces/{}/new/{}", seg(sid), d.what)) { "New " (d.noun) }
                    " "
                }
            }
        }
    }
}

/// The edit link of a row.
pub fn edit_link(sid: &str, what: &str, id: &str) -> Markup {
    let label = def(what).map(|d| d.noun).unwrap_or(what);
    html! {
        a href=(format!("/console/spaces/{}/edit/{what}/{}", seg(sid), seg(id))) aria-label=(format!("Edit {label} {id}")) { "Edit" }
    }
}
