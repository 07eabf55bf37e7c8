//! The decision: a pure function from a gathered `Context` to an `Outcome`. The order in which deny codes are
//! tried is Plystra v1.0's (docs/v1-reference.md §1.5), with our two additions placed where they keep every v1.0 answer:
//!
//! 1. ACTOR_NOT_FOUND: a part of the actor tuple has no live row (ACTOR_BINDING_AMBIGUOUS when the actor was
//!    named by its User alone and no single binding could be chosen);
//! 2. actor state, first failure wins: user, member, **space**, then binding status, then binding expiry;
//! 3. INVALID_RESOURCE_TYPE, INVALID_RESOURCE_ACTION (v1.0 checked actor state first here too);
//! 4. RESOURCE_NOT_FOUND;
//! 5. CROSS_SPACE_VIOLATION;
//! 6. NO_MATCHING_PERMISSION when there is no candidate;
//! 7. union: allow when any candidate's scope covers the target; otherwise the first candidate's deny code.

use crate::deny::{DenyCode, ALLOW_REASON};
use crate::model::{Actor, ActorNaming, Context, Member, Request, Space, Target, User, UserMember, ACTIVE};
use crate::scope::{resolve_scope, ScopeCheck};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub allow: bool,
    pub deny_code: Option<DenyCode>,
    pub reason: &'static str,
    /// One per candidate, in candidate order; empty when the target was never reached (registry denies, or no
    /// target) because v1.0 did not load candidates then.
    pub scope_checks: Vec<ScopeCheck>,
    /// Whether the trace shows the target and candidates (false for registry denies, as in v1.0).
    pub target_evaluated: bool,
}

impl Outcome {
    fn deny(code: DenyCode, scope_checks: Vec<ScopeCheck>, target_evaluated: bool) -> Self {
        Outcome { allow: false, deny_code: Some(code), reason: code.reason(), scope_checks, target_evaluated }
    }
}

/// The live actor, once every part of the tuple was found.
pub(crate) struct LiveActor<'a> {
    pub(crate) user: &'a User,
    pub(crate) member: &'a Member,
    pub(crate) user_member: &'a UserMember,
    pub(crate) space: &'a Space,
}

pub(crate) fn live_actor_of(actor: &Actor) -> Option<LiveActor<'_>> {
    Some(LiveActor {
        user: actor.user.as_ref()?,
        member: actor.member.as_ref()?,
        user_member: actor.user_member.as_ref()?,
        space: actor.space.as_ref()?,
    })
}

/// Actor state, in v1.0's order: the Space is checked before the binding.
fn actor_state(actor: &LiveActor<'_>, now_micros: i64) -> Option<DenyCode> {
    if actor.user.status != ACTIVE {
        return Some(DenyCode::ActorUserInactive);
    }
    if actor.member.status != ACTIVE {
        return Some(DenyCode::ActorMemberInactive);
    }
    if actor.space.status != ACTIVE {
        return Some(DenyCode::SpaceInactive);
    }
    if actor.user_member.status != ACTIVE {
        return Some(DenyCode::UserMemberRevoked);
    }
    match &actor.user_member.expires_at {
        Some(expires) if expires.unix_micros < now_micros => Some(DenyCode::UserMemberExpired),
        _ => None,
    }
}

/// Whether the actor tuple exists, is active, unexpired and same-Space: the precondition of every allow.
pub fn actor_usable(req: &Request, actor: &Actor, now_micros: i64) -> bool {
    live_actor_of(actor).is_some_and(|a| !actor_blocked(req, &a, now_micros))
}

/// Whether this actor can be allowed anything at all: its state is fine and the tuple itself is same-Space
/// (the binding joins exactly this User and Member, all in the requested Space).
pub(crate) fn actor_blocked(req: &Request, actor: &LiveActor<'_>, now_micros: i64) -> bool {
    actor_state(actor, now_micros).is_some() || actor_violates_same_space(req, actor)
}

fn actor_violates_same_space(req: &Request, actor: &LiveActor<'_>) -> bool {
    let space = req.space_id.as_str();
    let um = actor.user_member;
    actor.user.id != req.user_id
        || actor.member.id != req.member_id
        || um.id != req.user_member_id
        || actor.space.id != space
        || um.user_id != actor.user.id
        || um.member_id != actor.member.id
        || um.space_id != space
        || actor.member.space_id != space
}

/// v1.0's `violatesSameSpace`: the loaded actor must be the requested one, the binding must join exactly this
/// User and Member, and every Space id in play (binding, member, resource, target group, each grant's role,
/// grant and anchor) must be the requested Space.
fn violates_same_space(req: &Request, actor: &LiveActor<'_>, ctx: &Context, target: &Target) -> bool {
    let space = req.space_id.as_str();
    actor_violates_same_space(req, actor)
        || target.resource.space_id != space
        || target.group.as_ref().is_some_and(|g| g.space_id != space)
        || candidates_violate_same_space(space, ctx)
}

/// Every grant's role, the grant itself and its anchor must be in the requested Space.
pub(crate) fn candidates_violate_same_space(space: &str, ctx: &Context) -> bool {
    ctx.candidates.iter().any(|c| {
        c.role.space_id != space
            || c.member_role_space_id != space
            || c.scope_anchor.as_ref().is_some_and(|a| a.space_id != space)
    })
}

/// Decides `req` over `ctx`. Pure: no I/O, no clock (the context carries "now").
pub fn decide(req: &Request, ctx: &Context) -> Outcome {
    let Some(actor) = live_actor_of(&ctx.actor) else {
        let code = match req.actor_naming {
            ActorNaming::Ambiguous => DenyCode::ActorBindingAmbiguous,
            _ => DenyCode::ActorNotFound,
        };
        return Outcome::deny(code, Vec::new(), false);
    };
    let state = actor_state(&actor, ctx.now_micros);
    if ctx.registry.resource_type.is_none() {
        return Outcome::deny(state.unwrap_or(DenyCode::InvalidResourceType), Vec::new(), false);
    }
    if ctx.registry.action.is_none() {
        return Outcome::deny(state.unwrap_or(DenyCode::InvalidResourceAction), Vec::new(), false);
    }
    let Some(target) = ctx.target.as_ref() else {
        return Outcome::deny(state.unwrap_or(DenyCode::ResourceNotFound), Vec::new(), false);
    };
    // v1.0 resolves every candidate's scope before judging the actor, so every trace past the registry
    // shows the scope checks, whatever the final code.
    let scope_checks: Vec<ScopeCheck> = ctx
        .candidates
        .iter()
        .map(|c| resolve_scope(&c.permission.scope, actor.member, target, c.scope_anchor.as_ref()))
        .collect();
    if let Some(code) = state {
        return Outcome::deny(code, scope_checks, true);
    }
    if violates_same_space(req, &actor, ctx, target) {
        return Outcome::deny(DenyCode::CrossSpaceViolation, scope_checks, true);
    }
    if ctx.candidates.is_empty() {
        return Outcome::deny(DenyCode::NoMatchingPermission, scope_checks, true);
    }
    if scope_checks.iter().any(|c| c.covered) {
        return Outcome { allow: true, deny_code: None, reason: ALLOW_REASON, scope_checks, target_evaluated: true };
    }
    let code = scope_checks.iter().find_map(|c| c.deny_code).unwrap_or(DenyCode::ScopeOutOfBounds);
    Outcome::deny(code, scope_checks, true)
}
