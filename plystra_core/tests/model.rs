//! Property test: random Spaces, group trees, grants, bindings and targets, decided by the engine and by a small
//! model written separately and as plainly as possible from the rules (docs/v1-reference.md §1.3–§1.5 plus our two codes).
//! The model must agree on every case: allow or deny, and which deny code. The set-based `reach` must agree with
//! the decision too.

use plystra_core::model::*;
use plystra_core::reach::reach;
use plystra_core::{decide, DenyCode};
use proptest::prelude::*;

const SPACE: &str = "s0";
const NOW: i64 = 1_000_000;

/// Labels chosen to collide: prefixes of each other, `_` (a LIKE wildcard), and a dot-free near miss.
const LABELS: &[&str] = &["fin", "fin_ops", "finx", "finxops", "a", "a_b", "ab"];

#[derive(Clone, Debug)]
struct Case {
    req: Request,
    ctx: Context,
}

fn status() -> impl Strategy<Value = String> {
    prop_oneof![6 => Just(ACTIVE.to_string()), 1 => Just("disabled".to_string())]
}

fn space_id() -> impl Strategy<Value = String> {
    prop_oneof![8 => Just(SPACE.to_string()), 1 => Just("s1".to_string())]
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(LABELS), 1..=3).prop_map(|labels| labels.join("."))
}

fn group() -> impl Strategy<Value = Group> {
    (path(), space_id(), 0..3u8).prop_map(|(path, space_id, n)| Group {
        id: format!("g_{path}_{n}"),
        space_id,
        path,
        status: ACTIVE.into(),
    })
}

fn candidate(groups: Vec<Group>) -> impl Strategy<Value = Candidate> {
    let scope = prop::sample::select(vec!["self", "group", "group_tree", "space", "global", "planet"]);
    (scope, prop::option::weighted(0.8, prop::sample::select(groups)), space_id(), space_id(), "[a-c]").prop_map(
        |(scope, anchor, role_space, mr_space, key)| Candidate {
            member_role_id: format!("mr_{key}_{scope}"),
            role: Role { id: format!("role_{key}"), key: key.clone(), space_id: role_space },
            permission: Permission {
                id: format!("perm_{scope}"),
                resource: "doc".into(),
                action: "read".into(),
                scope: scope.to_string(),
            },
            scope_anchor: anchor,
            member_role_space_id: mr_space,
        },
    )
}

prop_compose! {
    fn case()(groups in prop::collection::vec(group(), 1..8))(
        user_status in status(), member_status in status(), space_status in status(),
        binding_status in prop_oneof![5 => Just(ACTIVE.to_string()), 1 => Just("revoked".to_string())],
        expires in prop::option::weighted(0.2, prop_oneof![Just(NOW - 1), Just(NOW + 1)]),
        missing_part in prop::option::weighted(0.1, 0..4u8),
        member_space in space_id(), binding_space in space_id(),
        binding_user_matches in prop::bool::weighted(0.95), binding_member_matches in prop::bool::weighted(0.95),
        type_registered in prop::bool::weighted(0.95), action_registered in prop::bool::weighted(0.95),
        target_exists in prop::bool::weighted(0.95), resource_space in space_id(),
        target_group in prop::option::weighted(0.85, prop::sample::select(groups.clone())),
        owner in prop::option::of(prop_oneof![Just("m_actor"), Just("m_other")]),
        candidates in prop::collection::vec(candidate(groups.clone()), 0..5),
    ) -> Case {
        let req = Request {
            user_id: "u".into(), member_id: "m_actor".into(), user_member_id: "b".into(), space_id: SPACE.into(),
            resource_type: "doc".into(), resource_id: "r".into(), action: "read".into(),
            context: RequestContext::default(), ..Request::default()
        };
        let actor = Actor {
            user: (missing_part != Some(0)).then(|| User { id: "u".into(), email: "u@x".into(), status: user_status }),
            member: (missing_part != Some(1)).then(|| Member {
                id: "m_actor".into(), space_id: member_space, display_name: "M".into(), status: member_status,
            }),
            user_member: (missing_part != Some(2)).then(|| UserMember {
                id: "b".into(),
                user_id: if binding_user_matches { "u".into() } else { "u_other".into() },
                member_id: if binding_member_matches { "m_actor".into() } else { "m_other".into() },
                space_id: binding_space, relation_type: "login".into(), status: binding_status, is_primary: true,
                expires_at: expires.map(|unix_micros| Timestamp { unix_micros, rfc3339: String::new() }),
            }),
            space: (missing_part != Some(3)).then(|| Space { id: SPACE.into(), name: "S".into(), status: space_status }),
        };
        let registry = Registry {
            resource_type: type_registered.then(|| ResourceType {
                id: "rt".into(), key: "doc".into(), display_name: "Doc".into(), description: None,
                status: ACTIVE.into(), source: "core".into(), metadata: None,
            }),
            action: action_registered.then(|| ResourceAction {
                id: "ra".into(), resource_type_id: "rt".into(), key: "read".into(), display_name: "Read".into(),
                description: None, risk_level: "low".into(), audit_default: true, metadata: None,
            }),
            mapping: None,
        };
        let target = target_exists.then(|| Target {
            resource: Resource {
                id: "r".into(), external_id: None, resource_type: "doc".into(), space_id: resource_space,
                group_id: target_group.as_ref().map(|g| g.id.clone()), owner_member_id: owner.map(str::to_string),
                display_name: None, visibility: None, status: None, metadata: None,
            },
            group: target_group,
        });
        Case { req, ctx: Context { actor: actor.into(), registry, target, candidates, now_micros: NOW, context_mode: None } }
    }
}

/// The rules, written out plainly. `None` is allow.
fn model(req: &Request, ctx: &Context) -> Option<DenyCode> {
    let a = &ctx.actor;
    let (Some(user), Some(member), Some(binding), Some(space)) = (&a.user, &a.member, &a.user_member, &a.space) else {
        return Some(DenyCode::ActorNotFound);
    };
    let state = if user.status != "active" {
        Some(DenyCode::ActorUserInactive)
    } else if member.status != "active" {
        Some(DenyCode::ActorMemberInactive)
    } else if space.status != "active" {
        Some(DenyCode::SpaceInactive)
    } else if binding.status != "active" {
        Some(DenyCode::UserMemberRevoked)
    } else if binding.expires_at.as_ref().is_some_and(|e| e.unix_micros < ctx.now_micros) {
        Some(DenyCode::UserMemberExpired)
    } else {
        None
    };
    if state.is_some() {
        return state;
    }
    if ctx.registry.resource_type.is_none() {
        return Some(DenyCode::InvalidResourceType);
    }
    if ctx.registry.action.is_none() {
        return Some(DenyCode::InvalidResourceAction);
    }
    let Some(target) = &ctx.target else { return Some(DenyCode::ResourceNotFound) };

    let mut spaces = vec![&binding.space_id, &member.space_id, &target.resource.space_id];
    if let Some(g) = &target.group {
        spaces.push(&g.space_id);
    }
    for c in &ctx.candidates {
        spaces.push(&c.role.space_id);
        spaces.push(&c.member_role_space_id);
        if let Some(anchor) = &c.scope_anchor {
            spaces.push(&anchor.space_id);
        }
    }
    if spaces.iter().any(|s| s.as_str() != req.space_id) || binding.user_id != user.id || binding.member_id != member.id
    {
        return Some(DenyCode::CrossSpaceViolation);
    }
    if ctx.candidates.is_empty() {
        return Some(DenyCode::NoMatchingPermission);
    }
    let covers = |c: &Candidate| match c.permission.scope.as_str() {
        "self" => target.resource.owner_member_id.as_deref() == Some(member.id.as_str()),
        "group" => matches!((&c.scope_anchor, &target.group), (Some(a), Some(g)) if a.id == g.id),
        "group_tree" => matches!((&c.scope_anchor, &target.group),
            (Some(a), Some(g)) if g.path == a.path || g.path.starts_with(&format!("{}.", a.path))),
        "space" => target.resource.space_id == member.space_id,
        _ => false,
    };
    if ctx.candidates.iter().any(covers) {
        return None;
    }
    let first = &ctx.candidates[0];
    Some(match first.permission.scope.as_str() {
        "group" | "group_tree" if first.scope_anchor.is_none() => DenyCode::ScopeAnchorMissing,
        "group" | "group_tree" if target.group.is_none() => DenyCode::TargetGroupMissing,
        "global" => DenyCode::GlobalScopeDisabled,
        _ => DenyCode::ScopeOutOfBounds,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_engine_agrees_with_the_model(case in case()) {
        let out = decide(&case.req, &case.ctx);
        prop_assert_eq!(out.deny_code, model(&case.req, &case.ctx));
        prop_assert_eq!(out.allow, out.deny_code.is_none());
    }

    #[test]
    fn reach_agrees_with_the_decision_for_targets_in_the_actor_space(case in case()) {
        let out = decide(&case.req, &case.ctx);
        let Some(target) = &case.ctx.target else { return Ok(()) };
        // A set-based policy tests the row's Space, group and owner; rows outside the Space are never reached.
        let in_space = target.resource.space_id == SPACE && target.group.as_ref().is_none_or(|g| g.space_id == SPACE);
        if !(in_space && case.ctx.registry.resource_type.is_some() && case.ctx.registry.action.is_some()) {
            return Ok(());
        }
        let reached = reach(&case.req, &case.ctx).is_some_and(|r| {
            r.whole_space
                || (target.resource.owner_member_id.is_some() && target.resource.owner_member_id == r.owner_member_id)
                || target.group.as_ref().is_some_and(|g| {
                    r.groups.contains(&g.id)
                        || r.subtrees.iter().any(|p| g.path == *p || g.path.starts_with(&format!("{p}.")))
                })
        });
        prop_assert_eq!(out.allow, reached);
    }
}

/// The model's own sanity: `_` is not a wildcard and prefixes stop at label boundaries.
#[test]
fn the_model_itself_matches_on_label_boundaries() {
    let starts = |g: &str, a: &str| g == a || g.starts_with(&format!("{a}."));
    assert!(starts("fin.a", "fin"));
    assert!(!starts("finx.a", "fin"));
    assert!(!starts("finxops", "fin_ops"));
    assert!(!starts("fin_ops", "fin"));
}
