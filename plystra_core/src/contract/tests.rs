use crate::request::ACTOR_ID_FIELDS;
use serde_json::json;

use super::*;
use crate::deny::ALLOW_REASON;

fn ctx() -> RequestContext {
    RequestContext { request_id: Some("req_1".into()), ip: Some("127.0.0.1".into()), user_agent: Some("ua".into()) }
}

fn request(v: Value) -> DecisionRequest {
    serde_json::from_value(v).unwrap()
}

#[test]
fn binding_id_and_resource_object_are_folded() {
    let body = request(json!({
        "actor": {"user_id": "u", "member_id": "m", "binding_id": "b", "space_id": "s"},
        "resource": {"type": "invoice", "id": "invoice_001"},
        "action": "approve"
    }));
    assert!(!body.uses_inline_context());
    assert_eq!(
        body.document(&ctx()),
        json!({
            "actor": {"user_id": "u", "member_id": "m", "user_member_id": "b", "space_id": "s"},
            "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve",
            "request": {"request_id": "req_1", "ip": "127.0.0.1", "user_agent": "ua"}
        })
    );
    // An explicit user_member_id wins over its alias; flat resource fields win over the nested ones.
    let body = request(json!({
        "actor": {"user_member_id": "um", "binding_id": "b"},
        "resource_type": "contract", "resource_id": "c1", "resource": {"type": "invoice", "id": "i"}
    }));
    let doc = body.document(&RequestContext::default());
    assert_eq!(doc["actor"], json!({"user_member_id": "um"}));
    assert_eq!((doc["resource_type"].as_str(), doc["resource_id"].as_str()), (Some("contract"), Some("c1")));
    assert!(doc.get("resource").is_none());
    assert_eq!(doc["request"], json!({"request_id": null, "ip": null, "user_agent": null}));
}

#[test]
fn inline_context_is_detected() {
    let with = |v: Value| request(v).uses_inline_context();
    assert!(with(json!({"grants": [{"scope": "space"}]})));
    assert!(with(json!({"actor": {"user_email": "a@b"}})));
    assert!(with(json!({"resource": {"type": "invoice", "id": "x", "group_path": "finance"}})));
    // Any field given counts, as the extension's gate counts it: an empty list of grants makes the request pure
    // inline (an actor of the request's own, with no grants).
    assert!(with(json!({"grants": []})));
    assert!(with(json!({"resource": {"type": "invoice", "id": "x", "metadata": {}}})));
    assert!(!with(json!({"resource": {"type": "invoice", "id": "x"}, "actor": {"user_id": "u", "binding_id": "b"}})));
    // A null is a field not given.
    assert!(!with(json!({"actor": {"user_id": "u", "user_email": null}, "grants": null})));
}

/// `Actor::is_inline` names the inline fields itself; they are the actor's given fields other than the five that
/// name it, field for field.
#[test]
fn an_actor_is_inline_exactly_when_a_field_other_than_its_ids_is_given() {
    let given_other_than_ids = |a: &Actor| given_fields(a).keys().any(|k| !ACTOR_ID_FIELDS.contains(&k.as_str()));
    let fields: Vec<String> = match serde_json::to_value(Actor::default()).expect("an actor serializes") {
        Value::Object(map) => map.keys().cloned().collect(),
        other => panic!("an actor serializes as an object, not {other}"),
    };
    assert_eq!(fields.len(), 13);
    for field in &fields {
        for value in ["", "x"] {
            let actor: Actor = serde_json::from_value(json!({ field.as_str(): value })).expect("a field reads");
            assert_eq!(actor.is_inline(), given_other_than_ids(&actor), "{field} = {value:?}");
            assert_eq!(actor.is_inline(), !ACTOR_ID_FIELDS.contains(&field.as_str()), "{field}");
        }
    }
    assert!(!Actor::default().is_inline());
}

#[test]
fn the_extension_document_carries_the_inline_context() {
    let body = request(json!({
        "actor": {"user_id": "u", "member_id": "m", "binding_id": "b", "space_id": "s", "user_email": "e"},
        "resource": {"type": "invoice", "id": "x", "group_path": "finance", "metadata": {"k": 1}},
        "grants": [{"resource": "invoice", "action": "read", "scope": "space"}], "action": "read", "explain": true
    }));
    let doc = body.document(&ctx());
    assert_eq!(
        doc["actor"],
        json!({"user_id": "u", "member_id": "m", "user_member_id": "b", "space_id": "s", "user_email": "e"})
    );
    assert_eq!(doc["resource"], json!({"group_path": "finance", "metadata": {"k": 1}}));
    assert_eq!((doc["resource_type"].as_str(), doc["resource_id"].as_str()), (Some("invoice"), Some("x")));
    assert_eq!(doc["grants"], json!([{"resource": "invoice", "action": "read", "scope": "space"}]));
    assert!(doc.get("explain").is_none(), "the caller chooses plystra.explain; the document does not say it");
    // The extension reads the document as the front meant it.
    let parsed = crate::request::parse_request(&doc).unwrap();
    assert_eq!(parsed.request.user_member_id, "b");
    assert_eq!(parsed.request.context.request_id.as_deref(), Some("req_1"));
}

#[test]
fn the_batch_document_folds_each_item() {
    let batch: BatchRequest = serde_json::from_value(json!({
        "actor": {"user_id": "u", "member_id": "m", "binding_id": "b", "space_id": "s"},
        "items": [
            {"resource_type": "invoice", "resource_id": "i1", "action": "read"},
            {"resource": {"type": "invoice", "id": "i2", "group_path": "finance"}, "action": "approve"},
        ]
    }))
    .unwrap();
    assert_eq!(batch.inline_resource().and_then(|r| r.id.as_deref()), Some("i2"));
    let doc = batch.document(&ctx());
    assert_eq!(
        doc,
        json!({
            "actor": {"user_id": "u", "member_id": "m", "user_member_id": "b", "space_id": "s"},
            "request": {"request_id": "req_1", "ip": "127.0.0.1", "user_agent": "ua"},
            "items": [
                {"resource_type": "invoice", "resource_id": "i1", "action": "read"},
                {"resource_type": "invoice", "resource_id": "i2", "action": "approve",
                 "resource": {"group_path": "finance"}},
            ]
        })
    );
    let requests = crate::request::parse_batch(&doc).unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].user_member_id, "b");
}

#[test]
fn unknown_fields_are_refused_by_name() {
    let err = |v: Value| serde_json::from_value::<DecisionRequest>(v).unwrap_err().to_string();
    assert!(err(json!({"actor_user_id": "u"})).starts_with("unknown field `actor_user_id`"));
    assert!(err(json!({"actor": {"user": "u"}})).starts_with("unknown field `user`, expected one of `user_id`"));
    assert!(err(json!({"resource": {"owner": "m"}})).starts_with("unknown field `owner`, expected one of `type`"));
    let err = serde_json::from_value::<BatchRequest>(json!({"items": [{"explain": true}]})).unwrap_err();
    assert!(err.to_string().starts_with("unknown field `explain`"), "{err}");
}

/// The deny codes' wire names, as the README's list of deny codes documents them (and v1.0 answered them).
const DOCUMENTED: [(DenyCode, &str); 16] = [
    (DenyCode::ActorNotFound, "ACTOR_NOT_FOUND"),
    (DenyCode::ActorBindingAmbiguous, "ACTOR_BINDING_AMBIGUOUS"),
    (DenyCode::ActorUserInactive, "ACTOR_USER_INACTIVE"),
    (DenyCode::ActorMemberInactive, "ACTOR_MEMBER_INACTIVE"),
    (DenyCode::SpaceInactive, "SPACE_INACTIVE"),
    (DenyCode::UserMemberRevoked, "USER_MEMBER_REVOKED"),
    (DenyCode::UserMemberExpired, "USER_MEMBER_EXPIRED"),
    (DenyCode::InvalidResourceType, "INVALID_RESOURCE_TYPE"),
    (DenyCode::InvalidResourceAction, "INVALID_RESOURCE_ACTION"),
    (DenyCode::ResourceNotFound, "RESOURCE_NOT_FOUND"),
    (DenyCode::CrossSpaceViolation, "CROSS_SPACE_VIOLATION"),
    (DenyCode::NoMatchingPermission, "NO_MATCHING_PERMISSION"),
    (DenyCode::ScopeAnchorMissing, "SCOPE_ANCHOR_MISSING"),
    (DenyCode::TargetGroupMissing, "TARGET_GROUP_MISSING"),
    (DenyCode::ScopeOutOfBounds, "SCOPE_OUT_OF_BOUNDS"),
    (DenyCode::GlobalScopeDisabled, "GLOBAL_SCOPE_DISABLED"),
];

#[test]
fn every_deny_code_serialises_to_its_documented_string() {
    let readme = include_str!("../../../README.md");
    let list = &readme[readme.find("Deny codes, first").expect("the README lists the deny codes")..];
    let list = &list[..list.find("Only live groups count").expect("the list ends before the live groups")];
    assert_eq!(DenyCode::ALL.len(), DOCUMENTED.len());
    for (code, name) in DOCUMENTED {
        assert!(DenyCode::ALL.contains(&code));
        assert!(list.contains(&format!("`{name}`")), "{name} is not in the README's list of deny codes");
        assert_eq!(serde_json::to_value(code).unwrap(), json!(name));
        assert_eq!(serde_json::from_value::<DenyCode>(json!(name)).unwrap(), code);
        // In an answer, through the jsonb document too.
        let mut answer = sample(Decision::Deny, Some(code), None, None);
        answer.reason = Cow::Borrowed(code.reason());
        assert_eq!(serde_json::to_value(&answer).unwrap()["deny_code"], json!(name));
        assert_eq!(answer.to_doc().into_value()["audit"]["deny_code"], json!(name));
    }
    assert!(serde_json::from_value::<DenyCode>(json!("AUTHORIZATION_DENIED")).is_err());
    assert!(serde_json::from_value::<DenyCode>(json!("scope_out_of_bounds")).is_err());
    assert_eq!(serde_json::to_value(Decision::Allow).unwrap(), json!("allow"));
    assert_eq!(serde_json::to_value(Decision::Deny).unwrap(), json!("deny"));
    assert!(serde_json::from_value::<Decision>(json!("ALLOW")).is_err());
}

fn sample(
    decision: Decision,
    deny_code: Option<DenyCode>,
    audit_log_id: Option<&'static str>,
    request_id: Option<&'static str>,
) -> CheckAnswer<'static> {
    CheckAnswer {
        allow: decision == Decision::Allow,
        decision,
        deny_code,
        reason: Cow::Borrowed(deny_code.map_or(ALLOW_REASON, DenyCode::reason)),
        trace_id: Cow::Borrowed("trc_0123456789abcdef"),
        audit_log_id: audit_log_id.map(Cow::Borrowed),
        audit: AuditSummary {
            audit_log_id: audit_log_id.map(Cow::Borrowed),
            actor_user_id: Some(Cow::Borrowed("user_alice")),
            actor_member_id: Some(Cow::Borrowed("member_finance_reviewer")),
            actor_user_member_id: Some(Cow::Borrowed("um_alice")),
            space_id: Some(Cow::Borrowed("space_acme")),
            action: Some(Cow::Borrowed("invoice.approve")),
            resource_type: Some(Cow::Borrowed("invoice")),
            resource_id: Some(Cow::Owned("invoice_\"é\"".into())),
            decision,
            deny_code,
            request_id: request_id.map(Cow::Borrowed),
        },
    }
}

/// `to_doc` (what the extension encodes as jsonb) is the document serde writes, for every shape an answer takes,
/// and lists its keys in jsonb's order (so the encoder does not sort them).
#[test]
fn documents_are_the_serde_form() {
    fn in_jsonb_order(doc: &Doc<'_>) -> bool {
        match doc {
            Doc::Obj(members) => {
                members.windows(2).all(|w| (w[0].0.len(), w[0].0) < (w[1].0.len(), w[1].0))
                    && members.iter().all(|(_, v)| in_jsonb_order(v))
            }
            Doc::Arr(items) => items.iter().all(in_jsonb_order),
            _ => true,
        }
    }
    let mut all = Vec::new();
    for (decision, code) in [(Decision::Allow, None), (Decision::Deny, Some(DenyCode::ScopeOutOfBounds))] {
        for audit_log_id in [None, Some("audit_0123456789abcdef")] {
            for request_id in [None, Some("req_1")] {
                let answer = sample(decision, code, audit_log_id, request_id);
                assert!(in_jsonb_order(&answer.to_doc()));
                assert_eq!(answer.to_doc().into_value(), serde_json::to_value(&answer).unwrap());
                assert_eq!(answer.audit.to_doc().into_value(), serde_json::to_value(&answer.audit).unwrap());
                all.push(answer);
            }
        }
    }
    let mut sparse = sample(Decision::Deny, Some(DenyCode::ActorNotFound), None, None);
    sparse.audit.actor_member_id = None;
    sparse.audit.action = None;
    assert_eq!(sparse.to_doc().into_value(), serde_json::to_value(&sparse).unwrap());
    all.push(sparse);
    let batch = BatchAnswer { results: all };
    assert!(in_jsonb_order(&batch.to_doc()));
    assert_eq!(batch.to_doc().into_value(), serde_json::to_value(&batch).unwrap());
}

/// The compact answer the core builds for a decision is the contract's, field for field.
#[test]
fn the_core_builds_its_answers_as_the_contract() {
    use crate::decide::Outcome;
    use crate::model::Request;
    use crate::trace::{check_answer, check_document, DecisionId};
    let req = Request {
        user_id: "user_alice".into(),
        member_id: "member_finance_reviewer".into(),
        user_member_id: "um_alice".into(),
        space_id: "space_acme".into(),
        resource_type: "invoice".into(),
        resource_id: "invoice_\"é\"".into(),
        action: "approve".into(),
        context: RequestContext { request_id: Some("req_1".into()), ..RequestContext::default() },
        ..Request::default()
    };
    let outcome = Outcome {
        allow: true,
        deny_code: None,
        reason: ALLOW_REASON,
        scope_checks: Vec::new(),
        target_evaluated: true,
    };
    let id = DecisionId::from_hex("0123456789abcdef".into());
    let answer = check_answer(&req, &outcome, &id, Some("audit_0123456789abcdef"));
    assert_eq!(answer, sample(Decision::Allow, None, Some("audit_0123456789abcdef"), Some("req_1")));
    let read: CheckAnswer<'static> =
        serde_json::from_value(check_document(&req, &outcome, &id, Some("audit_0123456789abcdef"))).unwrap();
    assert_eq!(read, answer);
}

/// Answers the extension wrote (captured from `plystra.check`, `plystra.explain` and `plystra.check_batch` over
/// the demo data, Context Mode included: see the fixture's `_about`) read into the
/// contract's types and serialise back to exactly the same JSON: the front passes them on unchanged.
#[test]
fn the_extensions_answers_round_trip_exactly() {
    let fixture: Value = serde_json::from_str(include_str!("answers.json")).unwrap();
    fn round_trip<T: Serialize + serde::de::DeserializeOwned>(v: &Value) -> Value {
        let typed: T = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"));
        serde_json::to_value(typed).unwrap()
    }
    let mut seen = (0, 0, 0);
    for check in fixture["check"].as_array().unwrap() {
        assert_eq!(&round_trip::<CheckAnswer<'static>>(check), check);
        seen.0 += 1;
    }
    for trace in fixture["explain"].as_array().unwrap() {
        assert_eq!(&round_trip::<ExplainTrace>(trace), trace);
        seen.1 += 1;
    }
    for batch in fixture["check_batch"].as_array().unwrap() {
        assert_eq!(&round_trip::<BatchAnswer<'static>>(batch), batch);
        seen.2 += 1;
    }
    assert!(seen.0 >= 4 && seen.1 >= 4 && seen.2 >= 1, "{seen:?}");
    // Every deny code the fixture holds reads as a DenyCode, and an allow has none.
    for check in fixture["check"].as_array().unwrap() {
        let typed: CheckAnswer<'static> = serde_json::from_value(check.clone()).unwrap();
        assert_eq!(typed.allow, typed.decision == Decision::Allow);
        assert_eq!(typed.deny_code.is_none(), typed.allow);
        assert_eq!(typed.deny_code, typed.audit.deny_code);
    }
    // A shape the contract does not know does not read (the front answers it with a 500, never a guess).
    let mut odd = fixture["check"][0].clone();
    odd["deny_code"] = json!("NOT_A_CODE");
    assert!(serde_json::from_value::<CheckAnswer<'static>>(odd).is_err());
    let mut odd = fixture["check"][0].clone();
    odd["decision"] = json!("maybe");
    assert!(serde_json::from_value::<CheckAnswer<'static>>(odd).is_err());
}

/// The HTTP shape's inline fields are the parser's (`model::InlineActor`, `model::InlineResource`), field for
/// field: a field added to one side only, or carried into another field, fails here.
#[test]
fn the_inline_fields_are_the_models_field_for_field() {
    use crate::model::{InlineActor, InlineResource};
    use crate::request::{parse_request, INLINE_ACTOR_FIELDS, RESOURCE_FIELDS};
    use std::collections::BTreeSet;

    let keys = |v: Value| v.as_object().unwrap().keys().cloned().collect::<BTreeSet<String>>();
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<BTreeSet<String>>();
    let mut actor_fields = names(&ACTOR_ID_FIELDS);
    actor_fields.extend(names(&INLINE_ACTOR_FIELDS));
    assert_eq!(keys(serde_json::to_value(Actor::default()).unwrap()), actor_fields);
    assert_eq!(keys(serde_json::to_value(Resource::default()).unwrap()), names(RESOURCE_FIELDS));

    // Every field given, each with its own value: the parsed request holds each in the model's field of that name.
    let s = |v: &str| Some(v.to_string());
    let body = DecisionRequest {
        actor: Some(Actor {
            user_id: s("u1"),
            member_id: s("m1"),
            user_member_id: s("um1"),
            binding_id: None,
            space_id: s("sp1"),
            user_email: s("a1"),
            user_status: s("a2"),
            member_display_name: s("a3"),
            member_status: s("a4"),
            binding_status: s("a5"),
            relation_type: s("a6"),
            space_name: s("a7"),
            space_status: s("a8"),
        }),
        resource: Some(Resource {
            resource_type: s("invoice"),
            id: s("inv_1"),
            external_id: s("r1"),
            space_id: s("r2"),
            group_id: s("r3"),
            group_path: s("/r4"),
            owner_member_id: s("r5"),
            display_name: s("r6"),
            visibility: s("r7"),
            status: s("r8"),
            metadata: Some(json!({"k": "r9"})),
        }),
        action: s("read"),
        ..Default::default()
    };
    let parsed = parse_request(&body.document(&ctx())).expect("a request with every inline field reads");
    let inline = parsed.request.inline.expect("inline context");
    let expected_actor = InlineActor {
        user_email: s("a1"),
        user_status: s("a2"),
        member_display_name: s("a3"),
        member_status: s("a4"),
        binding_status: s("a5"),
        relation_type: s("a6"),
        space_name: s("a7"),
        space_status: s("a8"),
    };
    assert_eq!(inline.actor, Some(expected_actor));
    let expected_resource = InlineResource {
        external_id: s("r1"),
        space_id: s("r2"),
        group_id: s("r3"),
        group_path: s("/r4"),
        owner_member_id: s("r5"),
        display_name: s("r6"),
        visibility: s("r7"),
        status: s("r8"),
        metadata: Some(json!({"k": "r9"})),
    };
    assert_eq!(inline.resource, Some(expected_resource));
}
