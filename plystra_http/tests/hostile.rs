//! Hostile input to the REST front: one table of bad requests across every route class (authz, create and PATCH
//! bodies of each Core entity, lifecycle actions, list filters, cursors and limits, entity and alias path ids,
//! auth, API keys, admin grants). Every answer must be a 4xx in the error envelope (or, for identifiers that are
//! merely unknown data, a deny or an empty page), nothing may panic or 5xx, the one keep-alive client must still
//! work afterwards, and no Core row may change.

mod common;

use std::fmt::Write as _;

use common::*;
use serde_json::{json, Value};

/// What a case must get.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
    /// A 4xx in the error envelope (any code: the point is that it is a client error, clearly named).
    Refused,
    /// Exactly this 4xx.
    Status(u16),
    /// An authz decision on unknown identifiers: 200 with `decision: deny` (audited, counted separately).
    Deny,
    /// An out-of-range or unparsable `limit`: v1.0's documented fallback to the default page size,
    /// 200 with `pagination.limit` within 1..=200.
    DefaultPage,
    /// A list filter that is only data: 200, and every row has exactly that value (never a wildcard match).
    Exact(&'static str, String),
}

struct Case {
    name: String,
    method: &'static str,
    path: String,
    body: Option<Vec<u8>>,
    headers: Vec<(&'static str, String)>,
    expect: Expect,
}

const INJECTIONS: &[&str] = &[
    "' OR '1'='1",
    "'; DROP TABLE plystra.users; --",
    "x\"; DELETE FROM plystra.spaces; --",
    "1 UNION SELECT password_hash FROM plystra.users",
    "user_alice' --",
    "$$; TRUNCATE plystra.audit_logs; $$",
    "user_alice\\",
];

/// Path ids that must be literal: wildcards, encoded percent signs, dots, a NUL, invalid UTF-8, look-alikes.
const HOSTILE_IDS: &[&str] = &[
    "%25",
    "user%25",
    "user_%25",
    "_",
    "user_alic_",
    "space_acm_",
    "%2525",
    "%",
    "a.b",
    "...",
    "a..b",
    "user_alice.",
    "%00",
    "user_alice%00",
    "%FF%FE",
    "user_%D0%B0lice",
    "%E2%80%8Buser_alice",
];

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn deep(n: usize) -> String {
    format!("{{\"metadata\":{}{}}}", "[".repeat(n), "]".repeat(n))
}

/// A body route: where it is, and a string field it reads (for wrong types, NULs and look-alikes).
struct BodyRoute {
    method: &'static str,
    path: &'static str,
    field: &'static str,
    /// Whether `{field: null}` alone must be refused (creates and login; a PATCH may treat null as "unchanged").
    null_refused: bool,
}

const fn r(method: &'static str, path: &'static str, field: &'static str, null_refused: bool) -> BodyRoute {
    BodyRoute { method, path, field, null_refused }
}

const BODY_ROUTES: &[BodyRoute] = &[
    r("POST", "/api/v1/authz/check", "action", true),
    r("POST", "/api/v1/authz/explain", "action", true),
    r("POST", "/api/v1/users", "email", true),
    r("PATCH", "/api/v1/users/user_bob", "username", false),
    r("POST", "/api/v1/spaces", "name", true),
    r("PATCH", "/api/v1/spaces/space_acme", "name", false),
    r("POST", "/api/v1/spaces/space_acme/groups", "path", true),
    r("PATCH", "/api/v1/spaces/space_acme/groups/group_legal", "display_name", false),
    r("POST", "/api/v1/spaces/space_acme/members", "display_name", true),
    r("PATCH", "/api/v1/spaces/space_acme/members/member_invoice_creator", "display_name", false),
    r("POST", "/api/v1/spaces/space_acme/roles", "key", true),
    r("PATCH", "/api/v1/spaces/space_acme/roles/role_finance_approver", "description", false),
    r("POST", "/api/v1/spaces/space_acme/user-members", "user_id", true),
    r("PATCH", "/api/v1/spaces/space_acme/user-members/um_bob_finance_reviewer", "relation_type", false),
    r("POST", "/api/v1/spaces/space_acme/member-roles", "role_id", true),
    r("POST", "/api/v1/spaces/space_acme/member-role-grants", "role_id", true),
    r("POST", "/api/v1/permissions", "resource", true),
    r("PATCH", "/api/v1/permissions/perm_invoice_read_self", "description", false),
    r("POST", "/api/v1/role-permissions", "role_id", true),
    r("POST", "/api/v1/spaces/space_acme/role-permissions", "permission_id", true),
    r("POST", "/api/v1/resource-types", "key", true),
    r("POST", "/api/v1/resource-types/invoice/actions", "key", true),
    r("PUT", "/api/v1/resource-types/invoice/mapping", "table_name", false),
    r("PATCH", "/api/v1/resource-types/invoice/mapping", "table_name", false),
    r("POST", "/api/v1/spaces/space_acme/resources", "resource_type", true),
    r("PATCH", "/api/v1/spaces/space_acme/resources/invoice_001", "display_name", false),
    r("POST", "/api/v1/resources", "resource_type", true),
    r("POST", "/api/v1/users/user_bob/disable", "reason", false),
    r("POST", "/api/v1/spaces/space_acme/groups/group_legal/disable", "reason", false),
    r("POST", "/api/v1/spaces/space_acme/user-members/um_bob_finance_reviewer/revoke", "revoked_reason", false),
    r("POST", "/api/v1/spaces/space_acme/resources/invoice_001/archive", "reason", false),
    r("POST", "/api/v1/admin/grants", "user_id", true),
    r("POST", "/api/v1/admin/grants/ag_harness_alice_super_admin/revoke", "reason", false),
    r("POST", "/api/v1/api-keys", "name", true),
    r("POST", "/api/v1/api-keys/ak_harness_admin/revoke", "reason", false),
    r("POST", "/api/v1/auth/login", "email", true),
    r("POST", "/api/v1/auth/refresh", "refresh_token", false),
    r("POST", "/api/v1/actor/switch-member", "member_id", false),
];

/// Look-alike of an ASCII field name: its first vowel replaced by the Cyrillic one (`а`, `е`, `о`) or, without
/// one, a zero-width space after the first character.
fn lookalike(field: &str) -> String {
    for (i, c) in field.char_indices() {
        let cyr = match c {
            'a' => 'а',
            'e' => 'е',
            'o' => 'о',
            _ => continue,
        };
        return format!("{}{cyr}{}", &field[..i], &field[i + 1..]);
    }
    format!("{}\u{200b}{}", &field[..1], &field[1..])
}

fn body_cases(out: &mut Vec<Case>) {
    let huge_array = format!("[{}]", vec!["1"; 100_000].join(","));
    let huge_string = "x".repeat(900_000);
    for route in BODY_ROUTES {
        let f = route.field;
        let own_credential = route.path.starts_with("/api/v1/auth/") || route.path.starts_with("/api/v1/actor/");
        let mut bodies: Vec<(String, Vec<u8>, Expect)> = vec![
            ("truncated object".into(), b"{".to_vec(), Expect::Status(400)),
            ("truncated member".into(), format!("{{\"{f}\": \"x").into_bytes(), Expect::Status(400)),
            ("missing colon".into(), format!("{{\"{f}\" \"x\"}}").into_bytes(), Expect::Status(400)),
            ("not json".into(), b"not json at all".to_vec(), Expect::Status(400)),
            ("trailing garbage".into(), format!("{{\"{f}\": \"x\"}} }}").into_bytes(), Expect::Status(400)),
            ("array document".into(), b"[1, 2, 3]".to_vec(), Expect::Status(400)),
            ("string document".into(), b"\"hello\"".to_vec(), Expect::Status(400)),
            ("number for string".into(), format!("{{\"{f}\": 12345}}").into_bytes(), Expect::Status(400)),
            ("boolean for string".into(), format!("{{\"{f}\": true}}").into_bytes(), Expect::Status(400)),
            ("object for string".into(), format!("{{\"{f}\": {{\"a\": 1}}}}").into_bytes(), Expect::Status(400)),
            ("huge array for string".into(), format!("{{\"{f}\": {huge_array}}}").into_bytes(), Expect::Status(400)),
            (
                "huge string in an unknown field".into(),
                format!("{{\"zz_unknown\": \"{huge_string}\"}}").into_bytes(),
                Expect::Status(400),
            ),
            ("10,000-deep nesting".into(), deep(10_000).into_bytes(), Expect::Status(400)),
            (
                "look-alike field name".into(),
                format!("{{\"{}\": \"x\"}}", lookalike(f)).into_bytes(),
                Expect::Status(400),
            ),
            ("zero-width field name".into(), format!("{{\"{f}\u{200b}\": \"x\"}}").into_bytes(), Expect::Status(400)),
            ("JSON \\u0000 in a string".into(), format!("{{\"{f}\": \"a\\u0000b\"}}").into_bytes(), Expect::Refused),
            (
                "raw invalid UTF-8".into(),
                [format!("{{\"{f}\": \"").into_bytes(), vec![0xff, 0xfe, 0xc3], b"\"}".to_vec()].concat(),
                Expect::Status(400),
            ),
            ("lone surrogate escape".into(), format!("{{\"{f}\": \"\\ud800\"}}").into_bytes(), Expect::Status(400)),
        ];
        if route.null_refused {
            bodies.push(("null for string".into(), format!("{{\"{f}\": null}}").into_bytes(), Expect::Refused));
        }
        if ["/api/v1/authz/check", "/api/v1/users", "/api/v1/spaces/space_acme/members", "/api/v1/auth/login"]
            .contains(&route.path)
        {
            let big = format!("{{\"{f}\": \"{}\"}}", "y".repeat(1024 * 1024 + 16));
            bodies.push(("body over 1 MiB".into(), big.into_bytes(), Expect::Status(413)));
        }
        for (what, body, expect) in bodies {
            let mut headers = vec![("content-type", "application/json".to_string())];
            if own_credential {
                headers.push(("x-no-admin-key", "1".into()));
            }
            out.push(Case {
                name: format!("{} {}: {what}", route.method, route.path),
                method: route.method,
                path: route.path.to_string(),
                body: Some(body),
                headers,
                expect,
            });
        }
    }
}

fn json_case(name: String, method: &'static str, path: String, body: Value, expect: Expect) -> Case {
    Case {
        name,
        method,
        path,
        body: Some(serde_json::to_vec(&body).unwrap()),
        headers: vec![("content-type", "application/json".to_string())],
        expect,
    }
}

fn identifier_cases(out: &mut Vec<Case>) {
    let demo = json!({
        "actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer",
                  "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
        "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"
    });
    let wild = ["%", "_", "user_%", "user_alic_", "space_%", "invoice_00_", "%25", "a.b", "..", "user_alice."];
    for value in INJECTIONS.iter().chain(wild.iter()) {
        // Every identifier of a decision: ordinary unknown data, a deny.
        for pointer in [
            "/actor/user_id",
            "/actor/member_id",
            "/actor/user_member_id",
            "/actor/space_id",
            "/resource_type",
            "/resource_id",
            "/action",
        ] {
            let mut body = demo.clone();
            *body.pointer_mut(pointer).unwrap() = json!(value);
            out.push(json_case(
                format!("authz check {pointer} = {value:?}"),
                "POST",
                "/api/v1/authz/check".into(),
                body,
                Expect::Deny,
            ));
        }
    }
    for value in INJECTIONS {
        let v = enc(value);
        // Creates whose Space (path) or references (body) are hostile: refused, nothing written.
        for (path, body) in [
            (format!("/api/v1/spaces/{v}/groups"), json!({"id": "g_hostile", "path": "hostile", "name": "h"})),
            (format!("/api/v1/spaces/{v}/members"), json!({"id": "m_hostile", "display_name": "h"})),
            (format!("/api/v1/spaces/{v}/roles"), json!({"id": "r_hostile", "key": "hostile", "name": "h"})),
            (format!("/api/v1/spaces/{v}/resources"), json!({"resource_type": "invoice", "external_id": "x"})),
            (
                "/api/v1/spaces/space_acme/user-members".into(),
                json!({"user_id": value, "member_id": "member_finance_reviewer"}),
            ),
            ("/api/v1/spaces/space_acme/user-members".into(), json!({"user_id": "user_bob", "member_id": value})),
            (
                "/api/v1/spaces/space_acme/member-roles".into(),
                json!({"member_id": "member_finance_reviewer", "role_id": value}),
            ),
            ("/api/v1/role-permissions".into(), json!({"role_id": value, "permission_id": "perm_invoice_read_self"})),
            ("/api/v1/role-permissions".into(), json!({"role_id": "role_finance_approver", "permission_id": value})),
            ("/api/v1/resources".into(), json!({"resource_type": "invoice", "space_id": value, "external_id": "x"})),
            (
                "/api/v1/admin/grants".into(),
                json!({"user_id": value, "level": "instance_super_admin", "permission_key": "*"}),
            ),
            ("/api/v1/api-keys".into(), json!({"name": "hostile", "level": "space", "space_id": value})),
        ] {
            out.push(json_case(format!("create POST {path} with {value:?}"), "POST", path, body, Expect::Refused));
        }
    }
}

fn path_cases(out: &mut Vec<Case>) {
    let templates: &[(&str, &str)] = &[
        ("GET", "/api/v1/users/{}"),
        ("PATCH", "/api/v1/users/{}"),
        ("POST", "/api/v1/users/{}/disable"),
        ("POST", "/api/v1/users/{}/restore"),
        ("GET", "/api/v1/spaces/{}"),
        ("POST", "/api/v1/spaces/{}/disable"),
        ("GET", "/api/v1/spaces/space_acme/groups/{}"),
        ("GET", "/api/v1/groups/{}"),
        ("GET", "/api/v1/spaces/space_acme/members/{}"),
        ("GET", "/api/v1/members/{}"),
        ("GET", "/api/v1/spaces/space_acme/roles/{}"),
        ("POST", "/api/v1/spaces/space_acme/roles/{}/disable"),
        ("GET", "/api/v1/roles/{}"),
        ("GET", "/api/v1/user-members/{}"),
        ("POST", "/api/v1/spaces/space_acme/user-members/{}/revoke"),
        ("GET", "/api/v1/spaces/space_acme/member-roles/{}"),
        ("GET", "/api/v1/permissions/{}"),
        ("DELETE", "/api/v1/role-permissions/{}"),
        ("GET", "/api/v1/resource-types/{}"),
        ("GET", "/api/v1/resource-types/{}/mapping"),
        ("GET", "/api/v1/spaces/space_acme/resources/{}"),
        ("GET", "/api/v1/resources/invoice/{}"),
        ("GET", "/api/v1/audit/logs/{}"),
        ("GET", "/api/v1/admin/grants/{}"),
        ("POST", "/api/v1/admin/grants/{}/revoke"),
        ("GET", "/api/v1/api-keys/{}"),
        ("POST", "/api/v1/api-keys/{}/revoke"),
    ];
    let injections: Vec<String> = INJECTIONS.iter().map(|s| enc(s)).collect();
    for (method, template) in templates {
        for id in HOSTILE_IDS.iter().map(|s| s.to_string()).chain(injections.iter().cloned()) {
            let path = template.replace("{}", &id);
            let body = if *method == "PATCH" { Some(b"{\"username\": \"hostile\"}".to_vec()) } else { None };
            out.push(Case {
                name: format!("{method} {path}"),
                method,
                path,
                body,
                headers: vec![("content-type", "application/json".to_string())],
                expect: Expect::Refused,
            });
        }
    }
}

/// Percent-decodes a path segment the way the server does (lossy: only for the expected values).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_cases(out: &mut Vec<Case>) {
    // A Space's audit log under a hostile Space id: only rows of exactly that id (the deny cases above wrote
    // some, since a decision records the Space it was asked about), never a wildcard match. NUL and invalid
    // UTF-8 are refused.
    let injections: Vec<String> = INJECTIONS.iter().map(|s| enc(s)).collect();
    for id in HOSTILE_IDS.iter().map(|s| s.to_string()).chain(injections) {
        let expect = if id.contains("%00") || id.contains("%FF") {
            Expect::Status(400)
        } else {
            Expect::Exact("space_id", decode(&id))
        };
        out.push(Case {
            name: format!("GET /api/v1/spaces/{id}/audit-logs"),
            method: "GET",
            path: format!("/api/v1/spaces/{id}/audit-logs"),
            body: None,
            headers: vec![],
            expect,
        });
    }
    let lists = [
        "/api/v1/users",
        "/api/v1/spaces",
        "/api/v1/spaces/space_acme/groups",
        "/api/v1/spaces/space_acme/members",
        "/api/v1/spaces/space_acme/roles",
        "/api/v1/spaces/space_acme/user-members",
        "/api/v1/permissions",
        "/api/v1/role-permissions",
        "/api/v1/spaces/space_acme/resources",
        "/api/v1/audit/logs",
        "/api/v1/admin/grants",
        "/api/v1/api-keys",
    ];
    for list in lists {
        for q in ["limit=-1", "limit=0", "limit=abc", "limit=1e99", "limit=99999999999999999999999"] {
            out.push(Case {
                name: format!("GET {list}?{q}"),
                method: "GET",
                path: format!("{list}?{q}"),
                body: None,
                headers: vec![],
                expect: Expect::DefaultPage,
            });
        }
        for q in [
            "limit=%00",
            "limit=%FF",
            "cursor=not-a-cursor",
            "cursor=%FF%FE",
            "cursor=eyJrIjpbIicgT1IgMT0xIC0tIl19",
            "cursor=%27%20OR%201%3D1%20--",
        ] {
            out.push(Case {
                name: format!("GET {list}?{q}"),
                method: "GET",
                path: format!("{list}?{q}"),
                body: None,
                headers: vec![],
                expect: Expect::Refused,
            });
        }
    }
    for q in ["created_at_from=yesterday", "created_at_to=2026-13-45T99:00:00Z", "created_at_from=%00"] {
        out.push(Case {
            name: format!("GET /api/v1/audit/logs?{q}"),
            method: "GET",
            path: format!("/api/v1/audit/logs?{q}"),
            body: None,
            headers: vec![],
            expect: Expect::Refused,
        });
    }
    // Filters that are only data: rows with exactly that value (the deny cases above wrote some), never a
    // wildcard match.
    for field in ["actor_user_id", "actor_member_id", "resource_id", "request_id", "deny_code", "resource_type"] {
        for (encoded, value) in [
            ("%25", "%"),
            ("_", "_"),
            ("user_%25", "user_%"),
            ("user_alic_", "user_alic_"),
            ("%27%20OR%20%271%27%3D%271", "' OR '1'='1"),
            ("x%27%3B%20DROP%20TABLE%20plystra.users%3B--", "x'; DROP TABLE plystra.users;--"),
        ] {
            out.push(Case {
                name: format!("GET /api/v1/audit/logs?{field}={encoded}"),
                method: "GET",
                path: format!("/api/v1/audit/logs?{field}={encoded}"),
                body: None,
                headers: vec![],
                expect: Expect::Exact(field, value.to_string()),
            });
        }
    }
}

fn auth_cases(out: &mut Vec<Case>) {
    for value in INJECTIONS {
        out.push(Case {
            name: format!("login with email {value:?}"),
            method: "POST",
            path: "/api/v1/auth/login".into(),
            body: Some(serde_json::to_vec(&json!({"email": value, "password": value})).unwrap()),
            headers: vec![("content-type", "application/json".into()), ("x-no-admin-key", "1".into())],
            expect: Expect::Status(401),
        });
        out.push(Case {
            name: format!("refresh with token {value:?}"),
            method: "POST",
            path: "/api/v1/auth/refresh".into(),
            body: Some(serde_json::to_vec(&json!({"refresh_token": value})).unwrap()),
            headers: vec![("content-type", "application/json".into()), ("x-no-admin-key", "1".into())],
            expect: Expect::Status(401),
        });
    }
    for token in [
        "ply_at_%",
        "ply_at_' OR '1'='1",
        "ply_ak_ak_harness_admin.%",
        "ply_ak_%.00",
        "Bearer",
        "ply_ak_ak_harness_admin",
    ] {
        for (method, path) in [("POST", "/api/v1/auth/logout"), ("GET", "/api/v1/auth/me"), ("GET", "/api/v1/users")] {
            out.push(Case {
                name: format!("{method} {path} with bearer {token:?}"),
                method,
                path: path.into(),
                body: None,
                headers: vec![("authorization", format!("Bearer {token}"))],
                expect: Expect::Status(401),
            });
        }
        out.push(Case {
            name: format!("GET /api/v1/users with API key {token:?}"),
            method: "GET",
            path: "/api/v1/users".into(),
            body: None,
            headers: vec![("x-plystra-api-key", token.to_string()), ("x-no-admin-key", "1".into())],
            expect: Expect::Status(401),
        });
    }
}

const CORE_TABLES: &[&str] = &[
    "users",
    "spaces",
    "groups",
    "members",
    "user_members",
    "roles",
    "member_roles",
    "permissions",
    "role_permissions",
    "resource_types",
    "resource_actions",
    "resource_mappings",
    "resources",
    "admin_grants",
];

/// Every Core table's rows (a digest, so a status flip counts as a change), the credential tables' row counts
/// (`api_keys.last_used_at` moves on every call), and audit rows split into decisions and everything else.
async fn snapshot(db: &tokio_postgres::Client) -> (Vec<(String, String)>, i64, i64) {
    let mut state = Vec::new();
    for t in CORE_TABLES {
        let row = db
            .query_one(
                &format!(
                    "SELECT count(*)::text || ' ' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) \
                     FROM plystra.{t} t"
                ),
                &[],
            )
            .await
            .unwrap();
        state.push((t.to_string(), row.get(0)));
    }
    for t in ["api_keys", "sessions"] {
        let row = db.query_one(&format!("SELECT count(*)::text FROM plystra.{t}"), &[]).await.unwrap();
        state.push((t.to_string(), row.get(0)));
    }
    let audit = db
        .query_one(
            "SELECT count(*) FILTER (WHERE trace ? 'audit'), count(*) FILTER (WHERE NOT (trace ? 'audit')) \
             FROM plystra.audit_logs",
            &[],
        )
        .await
        .unwrap();
    (state, audit.get(0), audit.get(1))
}

fn check(case: &Case, a: &Answer) -> Result<(), String> {
    let fail = |why: &str| {
        Err(format!(
            "{} ({} {}): {why}; status {}; body {}",
            case.name,
            case.method,
            case.path,
            a.status,
            &a.text[..a.text.len().min(300)]
        ))
    };
    if a.status >= 500 {
        return fail("a 5xx");
    }
    match &case.expect {
        Expect::Deny => {
            if a.status != 200 || a.body["data"]["decision"] != "deny" {
                return fail("expected a 200 deny");
            }
        }
        Expect::DefaultPage => {
            let limit = a.body["pagination"]["limit"].as_i64().unwrap_or(0);
            if a.status != 200 || !(1..=200).contains(&limit) {
                return fail("expected a page of the default size");
            }
        }
        Expect::Exact(field, value) => {
            let Some(rows) = a.body["data"].as_array() else { return fail("expected a page") };
            if a.status != 200 || rows.iter().any(|row| row[*field].as_str() != Some(value.as_str())) {
                return fail(&format!("a row whose {field} is not exactly {value:?}"));
            }
        }
        Expect::Refused | Expect::Status(_) => {
            if let Expect::Status(s) = case.expect {
                if a.status != s {
                    return fail(&format!("expected {s}"));
                }
            }
            if !(400..500).contains(&a.status) {
                return fail("expected a 4xx");
            }
            let code = a.body["error"]["code"].as_str().unwrap_or("");
            let rid = a.body["request_id"].as_str().unwrap_or("");
            if code.is_empty() || rid.is_empty() || a.body["error"]["request_id"] != rid {
                return fail("not the error envelope");
            }
            if a.header("x-plystra-error-code").as_deref() != Some(code) {
                return fail("X-Plystra-Error-Code differs from error.code");
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn hostile_requests_are_refused_cleanly_and_change_nothing() {
    let mut cases = Vec::new();
    body_cases(&mut cases);
    identifier_cases(&mut cases);
    path_cases(&mut cases);
    query_cases(&mut cases);
    auth_cases(&mut cases);

    let db = sql().await;
    let before = snapshot(&db).await;
    // One client for the whole table: its keep-alive connections must survive every refusal.
    let client = http();
    let base = &server().base;
    let mut failures = Vec::new();
    let mut by_expect = std::collections::BTreeMap::<String, usize>::new();
    for case in &cases {
        let mut req = client.request(case.method.parse().unwrap(), format!("{base}{}", case.path));
        if !case.headers.iter().any(|(k, _)| *k == "x-no-admin-key" || *k == "authorization") {
            req = req.header("X-Plystra-API-Key", admin_key());
        }
        for (k, v) in &case.headers {
            if *k != "x-no-admin-key" {
                req = req.header(*k, v.as_bytes());
            }
        }
        if let Some(b) = &case.body {
            req = req.body(b.clone());
        }
        let a = into_answer(req.send().await.unwrap_or_else(|e| panic!("{}: {e}", case.name))).await;
        if let Err(e) = check(case, &a) {
            failures.push(e);
        }
        let key = match &case.expect {
            Expect::Deny => "deny".to_string(),
            Expect::DefaultPage => "default page".to_string(),
            Expect::Exact(..) => "exact filter".to_string(),
            _ => format!("{}", a.status),
        };
        *by_expect.entry(key).or_default() += 1;
    }
    println!("hostile HTTP cases: {} ({by_expect:?})", cases.len());
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("FAILED {}", &f[..f.len().min(400)]);
        }
        panic!("{} of {} cases failed", failures.len(), cases.len());
    }
    assert!(cases.len() >= 200);

    // The same client still works, on the same server.
    let a = into_answer(
        client.get(format!("{base}/api/v1/users")).header("X-Plystra-API-Key", admin_key()).send().await.unwrap(),
    )
    .await;
    a.expect_ok(200);

    let after = snapshot(&db).await;
    assert_eq!(before.0, after.0, "a Core or credential table changed");
    assert_eq!(before.2, after.2, "audit rows other than decisions were written");
    let denies = cases.iter().filter(|c| c.expect == Expect::Deny).count() as i64;
    println!("decision audit rows written by the {denies} deny cases: {}", after.1 - before.1);
    assert_eq!(after.1 - before.1, denies, "each deny case writes exactly its own decision row");
}
