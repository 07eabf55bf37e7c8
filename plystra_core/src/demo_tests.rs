//! The Finance Reviewer demo (docs/v1-reference.md §1.6) in memory, and every case v1.0's engine tests cover, plus ours.

use std::rc::Rc;

use serde_json::json;

use crate::decide::decide;
use crate::deny::DenyCode;
use crate::model::*;
use crate::trace::{check_document, explain_document, DecisionId};

const NOW: i64 = 1_800_000_000_000_000; // 2027-01-15, after the expired binding's 2020 expiry

fn group(id: &str, path: &str) -> Group {
    Group { id: id.into(), space_id: "space_acme".into(), path: path.into(), status: ACTIVE.into() }
}

fn request(user: &str, binding: &str, resource: &str, action: &str) -> Request {
    Request {
        user_id: user.into(),
        member_id: "member_finance_reviewer".into(),
        user_member_id: binding.into(),
        space_id: "space_acme".into(),
        resource_type: "invoice".into(),
        resource_id: resource.into(),
        action: action.into(),
        context: RequestContext::default(),
        ..Request::default()
    }
}

fn binding(id: &str, user: &str, status: &str, expires: Option<i64>) -> UserMember {
    UserMember {
        id: id.into(),
        user_id: user.into(),
        member_id: "member_finance_reviewer".into(),
        space_id: "space_acme".into(),
        relation_type: "delegate".into(),
        status: status.into(),
        is_primary: true,
        expires_at: expires.map(|us| Timestamp { unix_micros: us, rfc3339: "2020-01-01T00:00:00Z".into() }),
    }
}

fn invoice(id: &str, group: &Group) -> Target {
    Target {
        resource: Resource {
            id: id.into(),
            external_id: None,
            resource_type: "invoice".into(),
            space_id: "space_acme".into(),
            group_id: Some(group.id.clone()),
            owner_member_id: Some("member_invoice_creator".into()),
            display_name: Some(format!("Invoice {id}")),
            visibility: Some("private".into()),
            status: Some(ACTIVE.into()),
            metadata: Some(json!({"number": "INV-001", "password": "never stored"})),
        },
        group: Some(group.clone()),
    }
}

fn candidate(scope: &str, anchor: Option<Group>) -> Candidate {
    Candidate {
        member_role_id: "mr_finance_reviewer_approver_finance".into(),
        role: Role {
            id: "role_finance_approver".into(),
            key: "finance_approver".into(),
            space_id: "space_acme".into(),
        },
        permission: Permission {
            id: format!("perm_invoice_approve_{scope}"),
            resource: "invoice".into(),
            action: "approve".into(),
            scope: scope.into(),
        },
        scope_anchor: anchor,
        member_role_space_id: "space_acme".into(),
    }
}

/// The context the loader would bring for `req` over the demo data.
fn context(req: &Request) -> Context {
    let user = |id: &str| User { id: id.into(), email: format!("{id}@example.com"), status: ACTIVE.into() };
    let um = match req.user_member_id.as_str() {
        "um_alice_finance_reviewer" => Some(binding("um_alice_finance_reviewer", "user_alice", ACTIVE, None)),
        "um_bob_finance_reviewer" => Some(binding("um_bob_finance_reviewer", "user_bob", ACTIVE, None)),
        "um_alice_finance_reviewer_revoked" => {
            Some(binding("um_alice_finance_reviewer_revoked", "user_alice", "revoked", None))
        }
        "um_alice_finance_reviewer_expired" => {
            Some(binding("um_alice_finance_reviewer_expired", "user_alice", ACTIVE, Some(1_577_836_800_000_000)))
        }
        _ => None,
    };
    let target = match req.resource_id.as_str() {
        "invoice_001" => Some(invoice("invoice_001", &group("group_finance_apac", "finance.apac"))),
        "invoice_002" => Some(invoice("invoice_002", &group("group_legal_emea", "legal.emea"))),
        _ => None,
    };
    let registered_actions = ["read", "create", "approve", "reject", "delete"];
    let registry = if req.resource_type == "invoice" {
        Registry {
            resource_type: Some(ResourceType {
                id: "rt_invoice".into(),
                key: "invoice".into(),
                display_name: "Invoice".into(),
                description: None,
                status: ACTIVE.into(),
                source: "core".into(),
                metadata: Some(json!({"demo": true})),
            }),
            action: registered_actions.contains(&req.action.as_str()).then(|| ResourceAction {
                id: format!("ra_invoice_{}", req.action),
                resource_type_id: "rt_invoice".into(),
                key: req.action.clone(),
                display_name: req.action.clone(),
                description: None,
                risk_level: "high".into(),
                audit_default: true,
                metadata: None,
            }),
            mapping: None,
        }
    } else {
        Registry::default()
    };
    let candidates = if req.action == "approve" {
        vec![candidate("group_tree", Some(group("group_finance", "finance")))]
    } else {
        Vec::new()
    };
    Context {
        actor: Rc::new(Actor {
            user: ["user_alice", "user_bob"].contains(&req.user_id.as_str()).then(|| user(&req.user_id)),
            member: (req.member_id == "member_finance_reviewer").then(|| Member {
                id: "member_finance_reviewer".into(),
                space_id: "space_acme".into(),
                display_name: "Finance Reviewer".into(),
                status: ACTIVE.into(),
            }),
            user_member: um,
            space: (req.space_id == "space_acme").then(|| Space {
                id: "space_acme".into(),
                name: "Acme".into(),
                status: ACTIVE.into(),
            }),
        }),
        registry,
        target,
        candidates,
        now_micros: NOW,
        context_mode: None,
    }
}

fn code_of(req: &Request, ctx: &Context) -> Option<DenyCode> {
    let out = decide(req, ctx);
    assert_eq!(out.allow, out.deny_code.is_none(), "allow and deny_code disagree");
    out.deny_code
}

fn code(req: Request) -> Option<DenyCode> {
    let ctx = context(&req);
    code_of(&req, &ctx)
}

#[test]
fn case_1_alice_approves_finance_apac_invoice() {
    let req = request("user_alice", "um_alice_finance_reviewer", "invoice_001", "approve");
    let ctx = context(&req);
    let out = decide(&req, &ctx);
    assert!(out.allow);
    assert_eq!(out.scope_checks.len(), 1);
    assert_eq!(out.reason, "at least one matching permission grant covers the target resource");
}

#[test]
fn case_2_alice_cannot_approve_legal_emea_invoice() {
    assert_eq!(
        code(request("user_alice", "um_alice_finance_reviewer", "invoice_002", "approve")),
        Some(DenyCode::ScopeOutOfBounds)
    );
}

#[test]
fn case_3_bob_approves_through_the_same_member() {
    assert_eq!(code(request("user_bob", "um_bob_finance_reviewer", "invoice_001", "approve")), None);
}

#[test]
fn case_4_revoked_binding_denies_even_when_the_role_matches() {
    assert_eq!(
        code(request("user_alice", "um_alice_finance_reviewer_revoked", "invoice_001", "approve")),
        Some(DenyCode::UserMemberRevoked)
    );
}

#[test]
fn expired_binding_denies() {
    assert_eq!(
        code(request("user_alice", "um_alice_finance_reviewer_expired", "invoice_001", "approve")),
        Some(DenyCode::UserMemberExpired)
    );
}

#[test]
fn binding_expiring_in_the_future_allows() {
    let req = request("user_alice", "um_alice_finance_reviewer", "invoice_001", "approve");
    let mut ctx = context(&req);
    Rc::make_mut(&mut ctx.actor).user_member.as_mut().unwrap().expires_at =
        Some(Timestamp { unix_micros: NOW + 1, rfc3339: "later".into() });
    assert_eq!(code_of(&req, &ctx), None);
}

#[test]
fn reject_has_no_matching_permission() {
    let req = request("user_alice", "um_alice_finance_reviewer", "invoice_001", "reject");
    let ctx = context(&req);
    let out = decide(&req, &ctx);
    assert_eq!(out.deny_code, Some(DenyCode::NoMatchingPermission));
    assert!(out.scope_checks.is_empty());
}

#[test]
fn unregistered_type_and_action() {
    let mut req = request("user_alice", "um_alice_finance_reviewer", "invoice_001", "approve");
    req.resource_type = "contract".into();
    assert_eq!(code(req), Some(DenyCode::InvalidResourceType));
    assert_eq!(
        code(request("user_alice", "um_alice_finance_reviewer", "invoice_001", "void")),
        Some(DenyCode::InvalidResourceAction)
    );
}

#[test]
fn actor_state_comes_before_the_registry() {
    // v1.0: a revoked binding asking about an unregistered type hears about the binding.
    let mut req = request("user_alice", "um_alice_finance_reviewer_revoked", "invoice_001", "approve");
    req.resource_type = "contract".into();
    assert_eq!(code(req), Some(DenyCode::UserMemberRevoked));
    let req = request("user_alice", "um_alice_finance_reviewer_revoked", "invoice_001", "void");
    assert_eq!(code(req), Some(DenyCode::UserMemberRevoked));
}

#[test]
fn unknown_actor_parts_and_unknown_resource_are_denies() {
    assert_eq!(
        code(request("user_mallory", "um_alice_finance_reviewer", "invoice_001", "approve")),
        Some(DenyCode::ActorNotFound)
    );
    assert_eq!(code(request("user_alice", "um_nobody", "invoice_001", "approve")), Some(DenyCode::ActorNotFound));
    let mut req = request("user_alice", "um_alice_finance_reviewer", "invoice_001", "approve");
    req.space_id = "space_nowhere".into();
    assert_eq!(code(req), Some(DenyCode::ActorNotFound));
    assert_eq!(
        code(request("user_alice", "um_alice_finance_reviewer", "invoice_404", "approve")),
        Some(DenyCode::ResourceNotFound)
    );
    // An inactive actor learns nothing about whether the resource exists.
    assert_eq!(
        code(request("user_alice", "um_alice_finance_reviewer_revoked", "invoice_404", "approve")),
        Some(DenyCode::UserMemberRevoked)
    );
}

#[test]
fn actor_state_order_user_member_space_binding_expiry() {
    let req = request("user_alice", "um_alice_finance_reviewer_expired", "invoice_001", "approve");
    let base = context(&req);
    let with = |f: &dyn Fn(&mut Context)| {
        let mut c = base.clone();
        f(&mut c);
        code_of(&req, &c)
    };
    // Everything inactive at once: the user wins, then member, then space, then binding, then expiry.
    let all = |c: &mut Context| {
        Rc::make_mut(&mut c.actor).user.as_mut().unwrap().status = "disabled".into();
        Rc::make_mut(&mut c.actor).member.as_mut().unwrap().status = "disabled".into();
        Rc::make_mut(&mut c.actor).space.as_mut().unwrap().status = "disabled".into();
        Rc::make_mut(&mut c.actor).user_member.as_mut().unwrap().status = "revoked".into();
    };
    assert_eq!(with(&all), Some(DenyCode::ActorUserInactive));
    assert_eq!(
        with(&|c| {
            all(c);
            Rc::make_mut(&mut c.actor).user.as_mut().unwrap().status = ACTIVE.into();
        }),
        Some(DenyCode::ActorMemberInactive)
    );
    assert_eq!(
        with(&|c| {
            all(c);
            Rc::make_mut(&mut c.actor).user.as_mut().unwrap().status = ACTIVE.into();
            Rc::make_mut(&mut c.actor).member.as_mut().unwrap().status = ACTIVE.into();
        }),
        Some(DenyCode::SpaceInactive)
    );
    assert_eq!(
        with(&|c| {
            all(c);
            Rc::make_mut(&mut c.actor).user.as_mut().unwrap().status = ACTIVE.into();
            Rc::make_mut(&mut c.actor).member.as_mut().unwrap().status = ACTIVE.into();
            Rc::make_mut(&mut c.actor).space.as_mut().unwrap().status = ACTIVE.into();
        }),
        Some(DenyCode::UserMemberRevoked)
    );
    assert_eq!(with(&|_| {}), Some(DenyCode::UserMemberExpired));
}

#[test]
fn seven_cross_space_mutations_each_deny() {
    let req = request("user_alice", "um_alice_finance_reviewer", "invoice_001", "approve");
    let base = context(&req);
    type Mutation = (&'static str, fn(&mut Context));
    let mutations: [Mutation; 7] = [
        ("member space", |c| Rc::make_mut(&mut c.actor).member.as_mut().unwrap().space_id = "space_other".into()),
        ("user_member.member_id", |c| {
            Rc::make_mut(&mut c.actor).user_member.as_mut().unwrap().member_id = "member_other".into()
        }),
        ("resource space", |c| c.target.as_mut().unwrap().resource.space_id = "space_other".into()),
        ("target group space", |c| c.target.as_mut().unwrap().group.as_mut().unwrap().space_id = "space_other".into()),
        ("role space", |c| c.candidates[0].role.space_id = "space_other".into()),
        ("member-role space", |c| c.candidates[0].member_role_space_id = "space_other".into()),
        ("anchor space", |c| c.candidates[0].scope_anchor.as_mut().unwrap().space_id = "space_other".into()),
    ];
    assert_eq!(code_of(&req, &base), None, "the unmutated context allows");
    for (name, mutate) in mutations {
        let mut c = base.clone();
        mutate(&mut c);
        assert_eq!(code_of(&req, &c), Some(DenyCode::CrossSpaceViolation), "{name}");
    }
    // The binding joining another user, or living in another space, is cross-space too.
    let mut c = base.clone();
    Rc::make_mut(&mut c.actor).user_member.as_mut().unwrap().user_id = "user_bob".into();
    assert_eq!(code_of(&req, &c), Some(DenyCode::CrossSpaceViolation));
    let mut c = base.clone();
    Rc::make_mut(&mut c.actor).user_member.as_mut().unwrap().space_id = "space_other".into();
    assert_eq!(code_of(&req, &c), Some(DenyCode::CrossSpaceViolation));
}

#[test]
fn cross_space_comes_before_no_matching_permission() {
    let req = request("user_alice", "um_alice_finance_reviewer", "invoice_001", "reject");
    let mut c = context(&req);
    c.target.as_mut().unwrap().resource.space_id = "space_other".into();
    assert_eq!(code_of(&req, &c), Some(DenyCode::CrossSpaceViolation));
}

#[test]
fn global_scope_is_disabled() {
    let req = request("user_alice", "um_alice_finance_reviewer", "invoice_001", "approve");
    let mut c = context(&req);
    c.candidates = vec![candidate("global", None)];
    assert_eq!(code_of(&req, &c), Some(DenyCode::GlobalScopeDisabled));
}

#[test]
fn anchor_and_target_group_missing() {
    let req = request("user_alice", "um_alice_finance_reviewer", "invoice_001", "approve");
    let mut c = context(&req);
    c.candidates[0].scope_anchor = None;
    assert_eq!(code_of(&req, &c), Some(DenyCode::ScopeAnchorMissing));
    let mut c = context(&req);
    c.target.as_mut().unwrap().group = None;
    c.target.as_mut().unwrap().resource.group_id = None;
    assert_eq!(code_of(&req, &c), Some(DenyCode::TargetGroupMissing));
}

#[test]
fn union_any_covering_grant_allows_and_first_deny_code_wins() {
    let req = request("user_alice", "um_alice_finance_reviewer", "invoice_002", "approve");
    let mut c = context(&req);
    // group_tree on finance does not cover legal.emea; a space grant does.
    c.candidates.push(candidate("space", None));
    assert_eq!(code_of(&req, &c), None);
    // Two uncovered grants: the first one's code is the answer.
    let mut c = context(&req);
    c.candidates = vec![candidate("global", None), candidate("group_tree", None)];
    assert_eq!(code_of(&req, &c), Some(DenyCode::GlobalScopeDisabled));
    c.candidates.reverse();
    assert_eq!(code_of(&req, &c), Some(DenyCode::ScopeAnchorMissing));
}

#[test]
fn self_scope_allows_the_owner_only() {
    let req = request("user_alice", "um_alice_finance_reviewer", "invoice_001", "approve");
    let mut c = context(&req);
    c.candidates = vec![candidate("self", None)];
    assert_eq!(code_of(&req, &c), Some(DenyCode::ScopeOutOfBounds));
    c.target.as_mut().unwrap().resource.owner_member_id = Some("member_finance_reviewer".into());
    assert_eq!(code_of(&req, &c), None);
}

#[test]
fn explain_document_has_v1_shape_and_no_sensitive_keys() {
    let mut req = request("user_alice", "um_alice_finance_reviewer", "invoice_002", "approve");
    req.context.request_id = Some("req_0123456789abcdef".into());
    let ctx = context(&req);
    let out = decide(&req, &ctx);
    let id = DecisionId::from_hex("0123456789abcdef".into());
    let doc = explain_document(&req, &ctx, &out, &id, Some(&id.audit_log_id()));
    assert_eq!(doc["trace_version"], "1.0");
    assert_eq!(doc["trace_id"], "trc_0123456789abcdef");
    assert_eq!(doc["decision"], "deny");
    assert_eq!(doc["deny_code"], "SCOPE_OUT_OF_BOUNDS");
    assert_eq!(doc["reason"], "matching permission grants do not cover the target resource scope");
    assert_eq!(doc["actor"]["user_member"]["relation_type"], "delegate");
    assert_eq!(doc["space"]["name"], "Acme");
    assert_eq!(doc["target"]["resource"]["group_path"], "legal.emea");
    assert_eq!(doc["target"]["group"]["path"], "legal.emea");
    assert_eq!(doc["resource_registry"]["resource_type"]["key"], "invoice");
    let cand = &doc["matched_candidates"][0];
    assert_eq!(cand["permission"]["scope"], "group_tree");
    assert_eq!(cand["scope_anchor"]["path"], "finance");
    assert_eq!(cand["scope_check"]["covered"], false);
    assert_eq!(cand["scope_check"]["reason"], "target group legal.emea is outside anchor group finance.");
    assert_eq!(doc["audit"]["audit_log_id"], "audit_0123456789abcdef");
    assert_eq!(doc["audit"]["action"], "invoice.approve");
    assert_eq!(doc["audit"]["request_id"], "req_0123456789abcdef");
    assert_eq!(doc["target"]["resource"]["metadata"], json!({"number": "INV-001"}));
    assert!(!doc.to_string().to_lowercase().contains("password"));

    let compact = check_document(&req, &out, &id, None);
    assert_eq!(compact["allow"], false);
    assert_eq!(compact["audit_log_id"], serde_json::Value::Null);
    assert_eq!(compact["audit"]["deny_code"], "SCOPE_OUT_OF_BOUNDS");
}

/// A member with thousands of grants: the trace keeps `MAX_TRACE_CANDIDATES`, the deciding ones first, and
/// counts the rest; its size does not grow with the grants.
#[test]
fn a_trace_keeps_a_bounded_number_of_candidates_deciding_ones_first() {
    use crate::trace::{MAX_TRACE_CANDIDATES, MAX_TRACE_METADATA_BYTES};
    let req = request("user_alice", "um_alice_finance_reviewer", "invoice_002", "approve");
    let id = DecisionId::from_hex("0123456789abcdef".into());
    let size_with = |grants: usize, covering_last: bool| {
        let mut c = context(&req);
        c.candidates = (0..grants)
            .map(|i| {
                let mut cand = candidate("group", Some(group(&format!("group_{i}"), &format!("g{i}"))));
                cand.member_role_id = format!("mr_{i}");
                cand
            })
            .collect();
        if covering_last {
            c.candidates.push(candidate("space", None));
        }
        let out = decide(&req, &c);
        (explain_document(&req, &c, &out, &id, None), out)
    };
    let (small, _) = size_with(3, false);
    assert_eq!(small["matched_candidates"].as_array().unwrap().len(), 3);
    assert!(small.get("matched_candidates_omitted").is_none(), "an ordinary trace keeps v1.0's shape");

    let (deny, out) = size_with(20_000, false);
    assert_eq!(out.deny_code, Some(DenyCode::ScopeOutOfBounds));
    let shown = deny["matched_candidates"].as_array().unwrap();
    assert_eq!(shown.len(), MAX_TRACE_CANDIDATES);
    assert_eq!(deny["matched_candidates_omitted"], 20_000 - MAX_TRACE_CANDIDATES);
    assert_eq!(shown[0]["member_role_id"], "mr_0", "the candidate whose code decided comes first");

    // The one covering grant is the last of 20,001: it is shown, first.
    let (allow, out) = size_with(20_000, true);
    assert!(out.allow);
    let shown = allow["matched_candidates"].as_array().unwrap();
    assert_eq!(shown.len(), MAX_TRACE_CANDIDATES);
    assert_eq!(shown[0]["scope_check"]["covered"], true);
    assert_eq!(shown[0]["permission"]["scope"], "space");

    // The size is bounded: 20,000 grants make the same size of trace as 40 (give or take the digits).
    let (forty, _) = size_with(40, false);
    assert!(deny.to_string().len() < forty.to_string().len() + 512);
    assert!(deny.to_string().len() < 64 * 1024);

    // Tenant metadata over the bound is replaced by a note of its size.
    let mut c = context(&req);
    c.target.as_mut().unwrap().resource.metadata = Some(json!({"blob": "A".repeat(600_000)}));
    let out = decide(&req, &c);
    let doc = explain_document(&req, &c, &out, &id, None);
    let meta = &doc["target"]["resource"]["metadata"];
    assert_eq!(meta["_omitted"], "metadata larger than the trace keeps");
    // And so is long free text (a 600 kB display name).
    c.target.as_mut().unwrap().resource.display_name = Some("D".repeat(600_000));
    let out = decide(&req, &c);
    let doc = explain_document(&req, &c, &out, &id, None);
    let name = doc["target"]["resource"]["display_name"].as_str().unwrap();
    assert!(name.ends_with("(cut: 600000 characters in all)"), "{}", &name[name.len() - 60..]);
    assert!(meta["bytes"].as_u64().unwrap() > MAX_TRACE_METADATA_BYTES as u64);
    assert!(doc.to_string().len() < 64 * 1024);
}

#[test]
fn registry_denies_show_no_target_and_null_candidates() {
    let req = request("user_alice", "um_alice_finance_reviewer", "invoice_001", "void");
    let ctx = context(&req);
    let out = decide(&req, &ctx);
    let doc = explain_document(&req, &ctx, &out, &DecisionId::from_hex("00000000000000ff".into()), None);
    assert_eq!(doc["target"], serde_json::Value::Null);
    assert_eq!(doc["matched_candidates"], serde_json::Value::Null);
    assert_eq!(doc["resource_registry"]["action"], serde_json::Value::Null);
}

mod reach_agreement {
    use super::*;
    use crate::reach::reach;

    /// Does the reach cover this target the way a row-level-security policy would test it?
    fn covers(r: &crate::reach::Reach, t: &Target) -> bool {
        let res = &t.resource;
        res.space_id == r.space_id
            && (r.whole_space
                || res.owner_member_id.is_some() && res.owner_member_id == r.owner_member_id
                || t.group.as_ref().is_some_and(|g| {
                    r.groups.contains(&g.id) || r.subtrees.iter().any(|p| crate::scope::path_within(&g.path, p))
                }))
    }

    #[test]
    fn reach_agrees_with_decide() {
        let groups = [
            group("group_finance", "finance"),
            group("group_finance_apac", "finance.apac"),
            group("group_finance_old", "finance_old"),
            group("group_legal_emea", "legal.emea"),
        ];
        let mut targets: Vec<Target> = groups.iter().map(|g| invoice("invoice_x", g)).collect();
        let mut owned = invoice("invoice_x", &groups[3]);
        owned.resource.owner_member_id = Some("member_finance_reviewer".into());
        targets.push(owned);
        let mut no_group = invoice("invoice_x", &groups[0]);
        no_group.group = None;
        no_group.resource.group_id = None;
        targets.push(no_group);

        let grant_sets: Vec<Vec<Candidate>> = vec![
            vec![],
            vec![candidate("group_tree", Some(group("group_finance", "finance")))],
            vec![candidate("group", Some(group("group_finance", "finance")))],
            vec![candidate("self", None)],
            vec![candidate("space", None)],
            vec![candidate("global", None)],
            vec![candidate("group_tree", None)],
            vec![candidate("global", None), candidate("self", None)],
        ];
        let bindings = [
            "um_alice_finance_reviewer",
            "um_alice_finance_reviewer_revoked",
            "um_alice_finance_reviewer_expired",
            "um_nobody",
        ];
        let mut compared = 0;
        for binding in bindings {
            for grants in &grant_sets {
                for target in &targets {
                    let req = request("user_alice", binding, "invoice_x", "approve");
                    let mut ctx = context(&req);
                    ctx.candidates = grants.clone();
                    ctx.target = Some(target.clone());
                    let allowed = decide(&req, &ctx).allow;
                    let reached = reach(&req, &ctx).is_some_and(|r| covers(&r, target));
                    assert_eq!(allowed, reached, "binding {binding}, grants {grants:?}, target {target:?}");
                    compared += 1;
                }
            }
        }
        assert_eq!(compared, 4 * 8 * 6);
    }

    #[test]
    fn nothing_is_reached_by_an_unusable_actor_or_an_unregistered_action() {
        let req = request("user_alice", "um_alice_finance_reviewer", "", "approve");
        assert!(reach(&req, &context(&req)).is_some_and(|r| r.subtrees == ["finance"]));
        for binding in ["um_alice_finance_reviewer_revoked", "um_alice_finance_reviewer_expired", "um_nobody"] {
            let req = request("user_alice", binding, "", "approve");
            assert_eq!(reach(&req, &context(&req)), None, "{binding}");
        }
        let req = request("user_alice", "um_alice_finance_reviewer", "", "void");
        assert_eq!(reach(&req, &context(&req)), None);
        let req = request("user_alice", "um_alice_finance_reviewer", "", "approve");
        let mut ctx = context(&req);
        ctx.candidates[0].role.space_id = "space_other".into();
        assert_eq!(reach(&req, &ctx), None, "a cross-space grant poisons every decision, so it reaches nothing");
    }
}
