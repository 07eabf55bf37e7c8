//! Attack tests (tenancy): a caller with less standing (a Space-B key, a group key, a plain Member's session)
//! must not read or change anything of Space A. Each test asserts the SAFE behaviour: a failing test is a hole.

mod common;

use common::*;
use serde_json::{json, Value};

const SPACE_B: &str = "space_attack_b";
const A_SECRET: &str = "A-SECRET-DISPLAY-NAME";

struct Keys {
    /// Space B key: authz:check, authz:read, audit:read.
    b: String,
    /// Group key (group_finance in space_acme): authz:check, authz:read, audit:read.
    group: String,
}

async fn setup() -> &'static Keys {
    static KEYS: tokio::sync::OnceCell<Keys> = tokio::sync::OnceCell::const_new();
    KEYS.get_or_init(|| async {
        second_space(SPACE_B, "Bee", "bee", "bee_invoice_1").await;
        let b = post(
            "/api/v1/api-keys",
            json!({"name": "space b", "level": "space", "space_id": SPACE_B,
                   "permission_keys": ["authz:check", "authz:read", "audit:read"]}),
        )
        .await;
        let b = b.expect_ok(201)["api_key"].as_str().expect("api_key").to_string();
        let g = post(
            "/api/v1/api-keys",
            json!({"name": "group", "level": "group", "group_id": "group_finance",
                   "permission_keys": ["authz:check", "authz:read", "audit:read"]}),
        )
        .await;
        let group = g.expect_ok(201)["api_key"].as_str().expect("api_key").to_string();
        Keys { b, group }
    })
    .await
}

async fn as_key(key: &str, method: &str, path: &str, body: Option<Value>, rid: &str) -> Answer {
    send_to(server(), method, path, body, &[("x-plystra-api-key", key), ("x-request-id", rid)]).await
}

fn bee() -> Value {
    json!({"user_id": "user_bee", "member_id": "member_bee", "user_member_id": "um_bee", "space_id": SPACE_B})
}

async fn rows_with(rid: &str, space: &str) -> i64 {
    sql()
        .await
        .query_one("SELECT count(*) FROM plystra.audit_logs WHERE request_id = $1 AND space_id = $2", &[&rid, &space])
        .await
        .unwrap()
        .get(0)
}

fn leaks_a(text: &str) -> bool {
    text.contains("space_acme")
        || text.contains("group_finance")
        || text.contains("group_legal")
        || text.contains("alice@example.com")
        || text.contains(A_SECRET)
        || text.contains("um_alice")
        || text.contains("member_finance_reviewer")
}

fn refused_or_blind(a: &Answer, what: &str) {
    assert!(a.status < 500, "{what}: server error {} {}", a.status, a.text);
    assert!(!leaks_a(&a.text), "{what}: leaked Space A: {} {}", a.status, a.text);
}

/// A Space-B decision about an inline resource (a deny, audited in B: no registered resource has the id yet), then
/// Space A registers a resource with that id (ids are instance-wide), in its group `finance.apac` with a display
/// name and metadata only Space A may see. The decision's audit row id.
async fn plant_then_register_in_a(keys: &Keys) -> String {
    let id = unique("future_invoice");
    let a = as_key(
        &keys.b,
        "POST",
        "/api/v1/authz/check",
        Some(json!({"actor": bee(), "resource": {"type": "invoice", "id": id, "display_name": "inline"}, "action": "approve"})),
        &unique("req_replay_inline"),
    )
    .await;
    a.expect_ok(200);
    let audit_id = a.header("x-plystra-audit-log-id").expect("the decision's audit row");
    sql()
        .await
        .execute(
            "INSERT INTO plystra.resources (id, resource_type, space_id, group_id, owner_member_id, display_name, metadata)
             VALUES ($1, 'invoice', 'space_acme', 'group_finance_apac', 'member_invoice_creator', $2, '{\"secret\": \"A-SECRET-META\"}')",
            &[&id, &A_SECRET],
        )
        .await
        .unwrap();
    audit_id
}

/// Replaying that decision with the B key must not show A's resource through "today's data": refused, as a check
/// naming the id would be. A reader of every Space's audit still sees it.
#[tokio::test]
async fn replay_of_an_inline_decision_does_not_show_a_resource_later_registered_in_another_space() {
    let keys = setup().await;
    let audit_id = plant_then_register_in_a(keys).await;
    let r = as_key(&keys.b, "POST", &format!("/api/v1/audit/logs/{audit_id}/replay"), None, &unique("req_rp")).await;
    assert!(r.status < 500, "{}", r.text);
    assert!(
        !leaks_a(&r.text) && !r.text.contains("A-SECRET-META"),
        "replay by a Space-B reader showed Space A's resource: {}",
        r.text
    );
    r.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    let r = post(&format!("/api/v1/audit/logs/{audit_id}/replay"), json!({})).await;
    let now = r.expect_ok(200)["now"].to_string();
    assert!(now.contains(A_SECRET) && now.contains("CROSS_SPACE_VIOLATION"), "{now}");
}

/// AuthZEN: a Space-B key describes an inline resource whose properties put it in Space A.
#[tokio::test]
async fn authzen_inline_properties_cannot_place_a_resource_in_another_space() {
    let keys = setup().await;
    for props in [
        json!({"space_id": "space_acme"}),
        json!({"space_id": "space_acme", "group_id": "group_finance"}),
        json!({"group_id": "group_finance"}),
        json!({"owner_member_id": "member_finance_reviewer"}),
    ] {
        let rid = unique("req_az_inline");
        let body = json!({"subject": {"type": "user", "id": "user_bee"}, "action": {"name": "approve"},
                          "resource": {"type": "invoice", "id": unique("inl"), "properties": props}});
        let a = as_key(&keys.b, "POST", "/access/v1/evaluation", Some(body), &rid).await;
        refused_or_blind(&a, &format!("evaluation {props}"));
        assert_eq!(rows_with(&rid, "space_acme").await, 0, "{props}: wrote into A's audit: {}", a.text);
    }
}

/// check-batch: one inline item whose Space is A.
#[tokio::test]
async fn batch_inline_item_in_another_space_is_refused() {
    let keys = setup().await;
    for res in [
        json!({"type": "invoice", "id": unique("inl"), "space_id": "space_acme"}),
        json!({"type": "invoice", "id": unique("inl"), "group_id": "group_finance"}),
        json!({"type": "invoice", "id": unique("inl"), "group_path": "finance"}),
        json!({"type": "invoice", "id": unique("inl"), "metadata": {"space_id": "space_acme"}}),
        json!({"type": "invoice", "id": unique("inl"), "owner_member_id": "member_finance_reviewer"}),
    ] {
        let rid = unique("req_batch_inline");
        let body = json!({"actor": bee(), "items": [
            {"resource_type": "invoice", "resource_id": "bee_invoice_1", "action": "approve"},
            {"resource": res, "action": "approve"}]});
        for path in ["/api/v1/authz/check-batch", "/api/v1/authz/check_batch"] {
            let a = as_key(&keys.b, "POST", path, Some(body.clone()), &rid).await;
            refused_or_blind(&a, &format!("{path} {res}"));
        }
        assert_eq!(rows_with(&rid, "space_acme").await, 0, "{res}: wrote into A's audit");
    }
}

/// A B key names Alice (no binding in B) by her user alone, in a batch, an evaluation and the searches.
#[tokio::test]
async fn a_user_of_another_space_is_not_resolved_for_a_space_key() {
    let keys = setup().await;
    let rid = unique("req_byuser");
    let body = json!({"actor": {"user_id": "user_alice"},
                      "items": [{"resource_type": "invoice", "resource_id": "bee_invoice_1", "action": "approve"}]});
    let a = as_key(&keys.b, "POST", "/api/v1/authz/check-batch", Some(body), &rid).await;
    refused_or_blind(&a, "batch by user");
    let a = as_key(
        &keys.b,
        "POST",
        "/api/v1/authz/check",
        Some(json!({"actor": {"user_id": "user_alice"}, "resource_type": "invoice", "resource_id": "bee_invoice_1", "action": "approve"})),
        &rid,
    )
    .await;
    refused_or_blind(&a, "check by user");
    for path in ["/access/v1/evaluation", "/access/v1/search/action"] {
        let a = as_key(
            &keys.b,
            "POST",
            path,
            Some(json!({"subject": {"type": "user", "id": "user_alice"}, "action": {"name": "approve"},
                        "resource": {"type": "invoice", "id": "bee_invoice_1"}})),
            &rid,
        )
        .await;
        refused_or_blind(&a, path);
    }
    for ctx in [json!({}), json!({"space_id": "space_acme"}), json!({"space_id": SPACE_B})] {
        let a = as_key(
            &keys.b,
            "POST",
            "/access/v1/search/resource",
            Some(json!({"subject": {"type": "user", "id": "user_alice"}, "action": {"name": "approve"},
                        "resource": {"type": "invoice"}, "context": ctx})),
            &rid,
        )
        .await;
        refused_or_blind(&a, &format!("search/resource {ctx}"));
        assert!(!a.text.contains("invoice_001"), "{}", a.text);
        let a = as_key(
            &keys.b,
            "POST",
            "/access/v1/search/resource",
            Some(json!({"subject": {"type": "user", "id": "user_alice", "properties": {"space_id": "space_acme"}},
                        "action": {"name": "approve"}, "resource": {"type": "invoice"}, "context": ctx})),
            &rid,
        )
        .await;
        refused_or_blind(&a, &format!("search/resource props {ctx}"));
        assert!(!a.text.contains("invoice_001"), "{}", a.text);
    }
    assert_eq!(rows_with(&rid, "space_acme").await, 0);
}

/// Search/subject on A's resources by a B key, and with tricky bodies (duplicate keys, non-string ids).
#[tokio::test]
async fn search_subject_cannot_read_another_spaces_resource() {
    let keys = setup().await;
    let bodies = [
        r#"{"subject":{"type":"user"},"action":{"name":"approve"},"resource":{"type":"invoice","id":"invoice_001"}}"#,
        r#"{"subject":{"type":"user"},"action":{"name":"approve"},"resource":{"type":"invoice","id":"bee_invoice_1","id":"invoice_001"}}"#,
        r#"{"subject":{"type":"user"},"action":{"name":"approve"},"resource":{"type":"invoice","id":"invoice_001","id":"bee_invoice_1"}}"#,
        r#"{"subject":{"type":"user"},"action":{"name":"approve"},"resource":{"type":"invoice","id":"bee_invoice_1"},"resource":{"type":"invoice","id":"invoice_001"}}"#,
        r#"{"subject":{"type":"user"},"action":{"name":"approve"},"resource":{"type":"invoice","id":"invoice_001"},"resource":{"type":"invoice","id":"bee_invoice_1"}}"#,
        r#"{"subject":{"type":"user"},"action":{"name":"approve"},"resource":{"type":"invoice","id":"invoice_001"},"page":{"limit":200}}"#,
    ];
    for body in bodies {
        let req = http()
            .post(format!("{}/access/v1/search/subject", server().base))
            .header("Authorization", keys.b.as_str())
            .header("content-type", "application/json")
            .body(body.to_string());
        let a = into_answer(req.send().await.unwrap()).await;
        refused_or_blind(&a, body);
        assert!(!a.text.contains("user_alice") && !a.text.contains("user_bob"), "{body}: {}", a.text);
    }
    // search/resource with duplicate subject ids.
    let dup = r#"{"subject":{"type":"user","id":"user_bee","id":"user_alice","properties":{"space_id":"space_attack_b"}},"action":{"name":"approve"},"resource":{"type":"invoice"}}"#;
    let dup2 = r#"{"subject":{"type":"user","id":"user_alice","id":"user_bee"},"action":{"name":"approve"},"resource":{"type":"invoice"},"context":{"space_id":"space_acme","space_id":"space_attack_b"}}"#;
    for body in [dup, dup2] {
        let req = http()
            .post(format!("{}/access/v1/search/resource", server().base))
            .header("Authorization", keys.b.as_str())
            .header("content-type", "application/json")
            .body(body.to_string());
        let a = into_answer(req.send().await.unwrap()).await;
        refused_or_blind(&a, body);
        assert!(!a.text.contains("invoice_00"), "{body}: {}", a.text);
    }
}

/// Evaluations with several subjects and semantics: one in A refuses the whole request, nothing is decided.
#[tokio::test]
async fn evaluations_mixing_spaces_decide_nothing() {
    let keys = setup().await;
    for semantic in ["execute_all", "deny_on_first_deny", "permit_on_first_permit"] {
        let rid = unique("req_mix");
        let body = json!({"options": {"evaluations_semantic": semantic, "include_context": true},
        "action": {"name": "approve"},
        "evaluations": [
            {"subject": {"type": "user", "id": "user_bee"}, "resource": {"type": "invoice", "id": "bee_invoice_1"}},
            {"subject": {"type": "user", "id": "user_bee"}, "resource": {"type": "invoice", "id": "bee_invoice_1"}, "context": {"space_id": SPACE_B}},
            {"subject": {"type": "user", "id": "user_alice"}, "resource": {"type": "invoice", "id": "invoice_001"}, "context": {"space_id": "space_acme"}},
        ]});
        let a = as_key(&keys.b, "POST", "/access/v1/evaluations", Some(body), &rid).await;
        refused_or_blind(&a, semantic);
        assert_eq!(a.status, 403, "{semantic}: {}", a.text);
        assert_eq!(rows_with(&rid, "space_acme").await, 0);
        assert_eq!(rows_with(&rid, SPACE_B).await, 0, "{semantic}: decided before refusing");
        // Same subject, same Space key for grouping, but resource of A in the second evaluation only.
        let rid = unique("req_mix2");
        let body = json!({"options": {"evaluations_semantic": semantic},
        "subject": {"type": "user", "id": "user_bee"}, "action": {"name": "approve"},
        "evaluations": [
            {"resource": {"type": "invoice", "id": "bee_invoice_1"}},
            {"resource": {"type": "invoice", "id": "invoice_001"}},
            {"resource": {"type": "invoice", "id": "x_new", "properties": {"space_id": "space_acme"}}},
        ]});
        let a = as_key(&keys.b, "POST", "/access/v1/evaluations", Some(body), &rid).await;
        refused_or_blind(&a, semantic);
        assert_eq!(a.status, 403, "{semantic}: {}", a.text);
        assert_eq!(rows_with(&rid, SPACE_B).await, 0, "{semantic}: decided before refusing");
    }
}

/// Audit list: query tricks cannot widen a Space key to A's rows.
#[tokio::test]
async fn audit_list_query_tricks() {
    let keys = setup().await;
    // Make sure A has rows.
    let _ = post(
        "/api/v1/authz/check",
        json!({"actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer",
                         "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
               "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"}),
    )
    .await;
    let paths = [
        "/api/v1/audit/logs".to_string(),
        "/api/v1/audit/logs?space_id=space_acme".to_string(),
        format!("/api/v1/audit/logs?space_id={SPACE_B}&space_id=space_acme"),
        format!("/api/v1/audit/logs?space_id=space_acme&space_id={SPACE_B}"),
        format!("/api/v1/audit/logs?space%5Fid={SPACE_B}&space_id=space_acme"),
        format!("/api/v1/audit/logs?space_id={SPACE_B}&space_id"),
        format!("/api/v1/audit/logs?space_id={SPACE_B}&resource_id=invoice_001"),
        format!("/api/v1/audit/logs?space_id={SPACE_B}&actor_user_id=user_alice"),
        format!("/api/v1/spaces/{SPACE_B}/audit-logs?space_id=space_acme"),
        "/api/v1/spaces/space_acme/audit-logs".to_string(),
        format!("/api/v1/audit/logs?space_id=%20{SPACE_B}"),
        format!("/api/v1/audit/logs?space_id={SPACE_B}%00"),
        format!("/api/v1/audit/logs?space_id={SPACE_B}&limit=99999999999999999999999"),
        format!("/api/v1/audit/logs?space_id={SPACE_B}&created_at_from=99999-01-01T00:00:00Z"),
        format!("/api/v1/audit/logs?space_id={SPACE_B}&created_at_to=-infinity"),
        format!("/api/v1/audit/logs?space_id={SPACE_B}&created_at_from=infinity"),
        format!("/api/v1/audit/logs?space_id={SPACE_B}&created_at_from=2020-13-45T99:99:99Z"),
    ];
    for p in paths {
        let a = as_key(&keys.b, "GET", &p, None, &unique("req_al")).await;
        refused_or_blind(&a, &p);
        if a.status == 200 {
            for item in a.body["data"].as_array().or(a.body["data"]["items"].as_array()).cloned().unwrap_or_default() {
                assert_eq!(item["space_id"], SPACE_B, "{p}: {item}");
            }
        }
    }
    // Forged cursors (unsigned): any seq, any junk.
    use base64::Engine;
    for k in ["1", "-1", "9223372036854775807", "0", "abc", "1e3", ""] {
        let c = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&json!({"o": "audit_logs.created_desc", "k": [k]})).unwrap());
        let p = format!("/api/v1/audit/logs?space_id={SPACE_B}&cursor={c}");
        let a = as_key(&keys.b, "GET", &p, None, &unique("req_cur")).await;
        refused_or_blind(&a, &p);
    }
    // Group key: the Space's audit list.
    for p in ["/api/v1/audit/logs?space_id=space_acme", "/api/v1/spaces/space_acme/audit-logs"] {
        let a = as_key(&keys.group, "GET", p, None, &unique("req_g")).await;
        assert_eq!(a.status, 403, "group key read the Space's audit log via {p}: {}", a.text);
    }
}

/// Group key: AuthZEN and batch outside its group.
#[tokio::test]
async fn a_group_key_stays_inside_its_group() {
    let keys = setup().await;
    let rid = unique("req_grp");
    // invoice_002 lies in legal.emea: outside group_finance.
    for path in ["/access/v1/evaluation", "/access/v1/search/action"] {
        let body = json!({"subject": {"type": "user", "id": "user_alice"}, "action": {"name": "approve"},
                          "resource": {"type": "invoice", "id": "invoice_002"}});
        let a = as_key(&keys.group, "POST", path, Some(body), &rid).await;
        assert_eq!(a.status, 403, "{path}: {}", a.text);
    }
    for props in [
        json!({"group_id": "group_legal"}),
        json!({"group_id": "group_legal_emea"}),
        json!({}),
        json!({"group_path": "legal"}),
    ] {
        let body = json!({"subject": {"type": "user", "id": "user_alice"}, "action": {"name": "approve"},
                          "resource": {"type": "invoice", "id": unique("g_inl"), "properties": props}});
        let a = as_key(&keys.group, "POST", "/access/v1/evaluation", Some(body), &rid).await;
        assert_eq!(a.status, 403, "inline {props}: {}", a.text);
    }
    // search/subject (authz:read) on a resource inside the group: the Space-wide lookup needs the Space.
    let body = json!({"subject": {"type": "user"}, "action": {"name": "approve"}, "resource": {"type": "invoice", "id": "invoice_001"}});
    let a = as_key(&keys.group, "POST", "/access/v1/search/subject", Some(body), &rid).await;
    assert_eq!(a.status, 403, "group key ran a Space-wide lookup: {}", a.text);
    let body = json!({"subject": {"type": "user", "id": "user_alice"}, "action": {"name": "approve"}, "resource": {"type": "invoice"}});
    let a = as_key(&keys.group, "POST", "/access/v1/search/resource", Some(body), &rid).await;
    assert_eq!(a.status, 403, "group key ran a Space-wide lookup: {}", a.text);
    // batch: one item outside the group.
    let body = json!({"actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer",
                                "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
                      "items": [{"resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"},
                                {"resource_type": "invoice", "resource_id": "invoice_002", "action": "approve"}]});
    let a = as_key(&keys.group, "POST", "/api/v1/authz/check-batch", Some(body), &rid).await;
    assert_eq!(a.status, 403, "{}", a.text);
    // simulate / lookups need the Space.
    let a = as_key(
        &keys.group,
        "POST",
        "/api/v1/spaces/space_acme/authz/simulate",
        Some(json!({"actor": {"user_member_id": "um_bob_finance_reviewer"}, "resource_type": "invoice",
                    "resource_id": "invoice_001", "action": "approve"})),
        &rid,
    )
    .await;
    assert_eq!(a.status, 403, "{}", a.text);
    // Replay of a Space row needs audit:read on the Space.
    let row: Option<String> = sql()
        .await
        .query_opt(
            "SELECT id FROM plystra.audit_logs WHERE space_id = 'space_acme' AND resource_id = 'invoice_001' LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .map(|r| r.get(0));
    if let Some(row) = row {
        for (m, p) in
            [("GET", format!("/api/v1/audit/logs/{row}")), ("POST", format!("/api/v1/audit/logs/{row}/replay"))]
        {
            let a = as_key(&keys.group, m, &p, None, &rid).await;
            assert_eq!(a.status, 403, "{p}: {}", a.text);
        }
    }
}

/// B key: replay, get, simulate, lookups of A.
#[tokio::test]
async fn a_space_key_cannot_replay_simulate_or_lookup_another_space() {
    let keys = setup().await;
    let rid = unique("req_bx");
    let row: String = {
        let a = post(
            "/api/v1/authz/check",
            json!({"actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer",
                             "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
                   "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"}),
        )
        .await;
        a.header("x-plystra-audit-log-id").expect("audit row")
    };
    for (m, p, body) in [
        ("GET", format!("/api/v1/audit/logs/{row}"), None),
        ("POST", format!("/api/v1/audit/logs/{row}/replay"), None),
        ("POST", format!("/api/v1/audit/logs/{row}/replay"), Some(json!({"audit": true}))),
        ("GET", format!("/api/v1/spaces/{SPACE_B}/audit-logs/{row}"), None),
        ("GET", format!("/api/v1/spaces/{SPACE_B}/resources/invoice_001/subjects?action=approve"), None),
        (
            "GET",
            format!("/api/v1/spaces/{SPACE_B}/user-members/um_alice_finance_reviewer/resources?resource_type=invoice&action=approve"),
            None,
        ),
        (
            "POST",
            format!("/api/v1/spaces/{SPACE_B}/authz/simulate"),
            Some(json!({"actor": {"user_member_id": "um_alice_finance_reviewer"}, "resource_type": "invoice", "resource_id": "bee_invoice_1", "action": "approve"})),
        ),
        (
            "POST",
            format!("/api/v1/spaces/{SPACE_B}/authz/simulate"),
            Some(json!({"actor": {"user_member_id": "um_bee", "space_id": SPACE_B}, "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"})),
        ),
        (
            "POST",
            format!("/api/v1/spaces/{SPACE_B}/authz/simulate"),
            Some(json!({"actor": {"user_member_id": "um_bee"}, "resource": {"type": "invoice", "id": "invoice_001"}, "action": "approve"})),
        ),
        (
            "POST",
            format!("/api/v1/spaces/{SPACE_B}/authz/simulate"),
            Some(json!({"actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer"}, "resource_type": "invoice", "resource_id": "bee_invoice_1", "action": "approve"})),
        ),
        ("POST", format!("/api/v1/spaces/{SPACE_B}/audit-chain/verify"), None),
        ("POST", "/api/v1/spaces/space_acme/audit-chain/verify".to_string(), None),
    ] {
        let a = as_key(&keys.b, m, &p, body.clone(), &rid).await;
        refused_or_blind(&a, &format!("{m} {p} {body:?}"));
    }
    assert_eq!(rows_with(&rid, "space_acme").await, 0);
}

/// A plain Member's session (no admin grant) reaches nothing but its own routes.
#[tokio::test]
async fn a_plain_members_session_reaches_nothing_of_another_space() {
    setup().await;
    let hash = plystra_http::auth::password::hash(DEMO_PASSWORD);
    let (_id, email) = make_user("plain", None, &hash, ACME, &[]).await;
    let token = session_token(&email).await;
    let auth = bearer(&token);
    let h = [("authorization", auth.as_str())];
    let rid = unique("req_plain");
    let cases: Vec<(&str, String, Option<Value>)> = vec![
        (
            "POST",
            "/access/v1/evaluation".into(),
            Some(
                json!({"subject": {"type": "user", "id": "user_bee"}, "action": {"name": "approve"}, "resource": {"type": "invoice", "id": "bee_invoice_1"}}),
            ),
        ),
        (
            "POST",
            "/access/v1/search/subject".into(),
            Some(
                json!({"subject": {"type": "user"}, "action": {"name": "approve"}, "resource": {"type": "invoice", "id": "bee_invoice_1"}}),
            ),
        ),
        (
            "POST",
            "/access/v1/search/resource".into(),
            Some(
                json!({"subject": {"type": "user", "id": "user_bee"}, "action": {"name": "approve"}, "resource": {"type": "invoice"}}),
            ),
        ),
        (
            "POST",
            "/api/v1/authz/check-batch".into(),
            Some(json!({"items": [{"resource_type": "invoice", "resource_id": "bee_invoice_1", "action": "approve"}]})),
        ),
        ("GET", format!("/api/v1/spaces/{SPACE_B}/audit-logs"), None),
        ("GET", "/api/v1/spaces/space_acme/audit-logs".into(), None),
        ("GET", "/api/v1/audit/logs".into(), None),
        ("GET", format!("/api/v1/spaces/{SPACE_B}/members"), None),
        ("POST", "/api/v1/actor/switch-member".into(), Some(json!({"user_member_id": "um_bee"}))),
    ];
    for (m, p, body) in cases {
        let a = send_to(server(), m, &p, body.clone(), &[h[0], ("x-request-id", rid.as_str())]).await;
        assert!(a.status == 403 || a.status == 401 || a.status == 400, "{m} {p}: {} {}", a.status, a.text);
        assert!(!a.text.contains("bee@bee.test") && !a.text.contains("um_bee\""), "{m} {p}: {}", a.text);
    }
    assert_eq!(rows_with(&rid, SPACE_B).await, 0);
}

/// Crafted bodies never give a 500, whoever asks.
#[tokio::test]
async fn crafted_bodies_never_500() {
    let keys = setup().await;
    let cases: Vec<(&str, &str)> = vec![
        ("/api/v1/authz/check-batch", r#"{"actor":{"user_id":"user_bee"},"items":{}}"#),
        ("/api/v1/authz/check-batch", r#"{"actor":[],"items":[]}"#),
        ("/api/v1/authz/check-batch", r#"{"actor":{"user_id":"user_bee"},"items":[null,1,"x",[]]}"#),
        (
            "/api/v1/authz/check-batch",
            r#"{"actor":{"user_id":"user_bee"},"items":[{"resource":{"type":"invoice","id":"x","metadata":[]},"action":"a"}]}"#,
        ),
        (
            "/api/v1/authz/check-batch",
            r#"{"actor":{"user_id":"user_bee","space_id":""},"items":[{"resource_type":"invoice","resource_id":"bee_invoice_1","action":"approve"}]}"#,
        ),
        (
            "/api/v1/authz/check",
            r#"{"actor":{"user_id":"user_bee"},"resource":{"type":"invoice","id":"x","group_path":"...."},"action":"approve"}"#,
        ),
        (
            "/api/v1/authz/check",
            r#"{"actor":{"user_id":"user_bee"},"resource":{"type":"invoice","id":"x","group_path":"a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p"},"action":"approve"}"#,
        ),
        (
            "/api/v1/authz/explain",
            r#"{"actor":{"user_id":"user_bee"},"resource":{"type":"invoice","id":"x","visibility":"\ud800"},"action":"approve"}"#,
        ),
        ("/access/v1/evaluations", r#"{"evaluations":"x"}"#),
        ("/access/v1/evaluations", r#"{"evaluations":[{}],"subject":{"type":"user","id":"user_bee"}}"#),
        ("/access/v1/evaluations", r#"{"evaluations":[null]}"#),
        (
            "/access/v1/evaluations",
            r#"{"options":{"evaluations_semantic":7},"evaluations":[{"subject":{"type":"user","id":"user_bee"},"action":{"name":"approve"},"resource":{"type":"invoice","id":"bee_invoice_1"}}]}"#,
        ),
        (
            "/access/v1/search/subject",
            r#"{"subject":{"type":"user"},"action":{"name":"approve"},"resource":{"type":"invoice","id":"bee_invoice_1"},"page":{"limit":-1}}"#,
        ),
        (
            "/access/v1/search/subject",
            r#"{"subject":{"type":"user"},"action":{"name":"approve"},"resource":{"type":"invoice","id":"bee_invoice_1"},"page":{"limit":1e30}}"#,
        ),
        (
            "/access/v1/search/subject",
            r#"{"subject":{"type":"user"},"action":{"name":"approve"},"resource":{"type":"invoice","id":"bee_invoice_1"},"page":{"token":"eyJvIjoiYXV0aHplbi5zZWFyY2hfc3ViamVjdCIsImsiOlsiIiwiIl19"}}"#,
        ),
        (
            "/access/v1/search/resource",
            r#"{"subject":{"type":"user","id":"user_bee"},"action":{"name":"approve"},"resource":{"type":"invoice"},"page":{"limit":4294967296}}"#,
        ),
        (
            "/access/v1/search/resource",
            r#"{"subject":{"type":"user","id":"user_bee"},"action":{"name":"approve"},"resource":{"type":"no_such_type"}}"#,
        ),
        (
            "/access/v1/search/action",
            r#"{"subject":{"type":"user","id":"user_bee"},"resource":{"type":"no_such_type","id":"x"}}"#,
        ),
        (
            "/access/v1/search/action",
            r#"{"subject":{"type":"user","id":"user_bee"},"resource":{"type":"invoice","id":"x","properties":{"space_id":7}}}"#,
        ),
        (
            "/access/v1/evaluation",
            r#"{"subject":{"type":"user","id":"user_bee"},"action":{"name":"approve"},"resource":{"type":"invoice","id":"x","properties":{"group_id":{"a":1},"owner_member_id":[1]}}}"#,
        ),
    ];
    for (path, body) in cases {
        for key in [keys.b.as_str(), keys.group.as_str()] {
            let req = http()
                .post(format!("{}{path}", server().base))
                .header("Authorization", key)
                .header("content-type", "application/json")
                .body(body.to_string());
            let a = into_answer(req.send().await.unwrap()).await;
            assert!(a.status < 500, "{path} {body}: {} {}", a.status, a.text);
        }
    }
}

/// The audited replay of such a decision (the B key holds authz:check in B): refused too, and no row of B's audit
/// trail holds A's resource.
#[tokio::test]
async fn audited_replay_of_an_inline_decision_does_not_show_another_spaces_resource() {
    let keys = setup().await;
    let audit_id = plant_then_register_in_a(keys).await;
    let r = as_key(
        &keys.b,
        "POST",
        &format!("/api/v1/audit/logs/{audit_id}/replay"),
        Some(json!({"audit": true})),
        &unique("req_rp2"),
    )
    .await;
    assert!(r.status < 500, "{}", r.text);
    assert!(!leaks_a(&r.text), "audited replay by a Space-B key showed Space A's resource: {}", r.text);
    r.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    let copied: i64 = sql()
        .await
        .query_one(
            "SELECT count(*) FROM plystra.audit_logs WHERE space_id = $1 AND trace::text LIKE '%' || $2 || '%'",
            &[&SPACE_B, &A_SECRET],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(copied, 0, "an audit row of Space B holds Space A's resource");
}

/// A Space admin's answers do not tell another tenant's ids from ids nobody has, and its standing does not reach
/// another tenant's users: a Role of Space B named in a RolePermission of Space A is answered as a Role that does
/// not exist; admin standing in Space A for a user bound only in Space B is refused as for a user that does not
/// exist (before, B's user got the grant, 201, and an unknown id a 404), while a user of Space A gets it.
#[tokio::test]
async fn a_space_admin_cannot_tell_another_spaces_ids_from_none_nor_give_them_standing() {
    setup().await;
    sql()
        .await
        .batch_execute(&format!(
            "INSERT INTO plystra.roles (id, space_id, key, name) VALUES ('role_bee_secret', '{SPACE_B}', 'bee_secret', 'Bee') \
             ON CONFLICT (id) DO NOTHING; \
             INSERT INTO plystra.groups (id, space_id, name, display_name, path) \
             VALUES ('group_bee', '{SPACE_B}', 'bee', 'Bee', 'bee') ON CONFLICT (id) DO NOTHING"
        ))
        .await
        .unwrap();
    let hash = plystra_http::auth::password::hash(DEMO_PASSWORD);
    let (_, email) =
        make_user("acme_admin", None, &hash, ACME, &[("space_admin", "*", Some("space_acme"), None)]).await;
    let token = session_token(&email).await;
    let auth = bearer(&token);
    let ask = |path: &'static str, body: Value| {
        let auth = auth.clone();
        async move { send_to(server(), "POST", path, Some(body), &[("authorization", auth.as_str())]).await }
    };
    let same = |a: &Answer, b: &Answer, what: &str| {
        assert_eq!(
            (a.status, a.error_code(), &a.body["error"]["details"], &a.body["error"]["message"]),
            (b.status, b.error_code(), &b.body["error"]["details"], &b.body["error"]["message"]),
            "{what}: another Space's id and no id are answered alike: {} / {}",
            a.text,
            b.text
        );
    };

    let rp = |role: &str| json!({"role_id": role, "permission_id": "perm_invoice_read_self"});
    let foreign = ask("/api/v1/spaces/space_acme/role-permissions", rp("role_bee_secret")).await;
    let nowhere = ask("/api/v1/spaces/space_acme/role-permissions", rp(&unique("role_nowhere"))).await;
    foreign.expect_error(400, "CROSS_SPACE_VIOLATION");
    same(&foreign, &nowhere, "a RolePermission's Role");
    let bee_rps: i64 = sql()
        .await
        .query_one("SELECT count(*) FROM plystra.role_permissions WHERE role_id = 'role_bee_secret'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(bee_rps, 0, "nothing written to Space B's Role");

    let grant = |user: &str| json!({"user_id": user, "space_id": "space_acme", "level": "space_admin", "permission_key": "groups:read"});
    let foreign = ask("/api/v1/admin/grants", grant("user_bee")).await;
    let nowhere = ask("/api/v1/admin/grants", grant(&unique("user_nowhere"))).await;
    foreign.expect_error(403, "ADMIN_PERMISSION_REQUIRED");
    same(&foreign, &nowhere, "an admin grant's user");
    let bee_grants: i64 = sql()
        .await
        .query_one("SELECT count(*) FROM plystra.admin_grants WHERE user_id = 'user_bee'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(bee_grants, 0, "no standing in Space A for Space B's user");
    let (own, _) = make_user("acme_own", None, &hash, ACME, &[]).await;
    ask("/api/v1/admin/grants", grant(&own)).await.expect_ok(201);

    // A session describes nothing inline: refused alike whether the described resource or group is Space B's or
    // nobody's (before, B's registered invoice and B's group were refused for the scope, ADMIN_PERMISSION_REQUIRED).
    let check = |resource: Value| json!({"resource": resource, "action": "approve"});
    for (theirs, none) in [
        (
            json!({"type": "invoice", "id": "bee_invoice_1", "group_path": "finance"}),
            json!({"type": "invoice", "id": unique("invoice_nowhere"), "group_path": "finance"}),
        ),
        (
            json!({"type": "invoice", "id": unique("inline"), "group_id": "group_bee"}),
            json!({"type": "invoice", "id": unique("inline"), "group_id": unique("group_nowhere")}),
        ),
    ] {
        let foreign = ask("/api/v1/authz/check", check(theirs)).await;
        let nowhere = ask("/api/v1/authz/check", check(none)).await;
        foreign.expect_error(403, "INLINE_CONTEXT_REQUIRES_API_KEY");
        same(&foreign, &nowhere, "a session's inline resource");
    }
}

/// A Space's audit trail names no Member or binding of another Space: a user acting through its binding in Space B
/// with admin standing in Space A changes a Member of A; A's row records the user alone (before, it named B's
/// Member, binding and Space id).
#[tokio::test]
async fn a_change_made_from_another_spaces_binding_is_filed_without_that_binding() {
    setup().await;
    let hash = plystra_http::auth::password::hash(DEMO_PASSWORD);
    let (user, email) =
        make_user("bee_admin", None, &hash, (SPACE_B, "member_bee"), &[("space_admin", "*", Some("space_acme"), None)])
            .await;
    let token = session_token(&email).await;
    let me = as_bearer(&token, "GET", "/api/v1/auth/me", None).await;
    assert!(me.text.contains(&format!("um_{user}")), "the session acts through its Space B binding: {}", me.text);
    let rid = unique("req_cross_space_change");
    let auth = bearer(&token);
    send_to(
        server(),
        "PATCH",
        "/api/v1/spaces/space_acme/members/member_invoice_creator",
        Some(json!({"display_name": "APAC Invoice Creator (edited from B)"})),
        &[("authorization", auth.as_str()), ("x-request-id", rid.as_str())],
    )
    .await
    .expect_ok(200);
    let row = sql()
        .await
        .query_one(
            "SELECT space_id, actor_user_id, actor_member_id, actor_user_member_id, trace::text \
             FROM plystra.audit_logs WHERE request_id = $1 AND action = 'member.updated'",
            &[&rid],
        )
        .await
        .unwrap();
    let (space, actor_user, member, binding, trace): (String, Option<String>, Option<String>, Option<String>, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    assert_eq!(space, "space_acme");
    assert_eq!(actor_user.as_deref(), Some(user.as_str()), "the acting user is recorded");
    assert_eq!((member, binding), (None, None), "no Member or binding of Space B in Space A's row");
    for foreign in ["member_bee", &format!("um_{user}"), SPACE_B] {
        assert!(!trace.contains(foreign), "Space A's row names {foreign}: {trace}");
    }
}
