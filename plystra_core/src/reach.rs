//! What the current actor can reach for one (resource type, action), as sets instead of one decision per row:
//! the whole Space (space scope), groups (group scope, and group_tree subtrees), and its own resources
//! (self scope). Row-level-security policies and list filters use it, so it must agree with `decide` for
//! every target in the actor's Space: `tests::reach_agrees_with_decide` holds that.

use crate::decide::{actor_blocked, candidates_violate_same_space, live_actor_of};
use crate::model::{Context, Request};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reach {
    /// The actor's Space: nothing outside it is ever reachable.
    pub space_id: String,
    /// A space-scope grant covers every resource of the Space.
    pub whole_space: bool,
    /// A self-scope grant covers resources this Member owns.
    pub owner_member_id: Option<String>,
    /// Group-scope anchors: exactly these groups.
    pub groups: Vec<String>,
    /// group_tree anchors: these paths and everything below them on label boundaries.
    pub subtrees: Vec<String>,
}

impl Reach {
    pub fn is_empty(&self) -> bool {
        !self.whole_space && self.owner_member_id.is_none() && self.groups.is_empty() && self.subtrees.is_empty()
    }
}

/// `None` when the actor reaches nothing at all for this resource type and action: not found, not active,
/// expired, cross-space, or an unregistered type or action.
pub fn reach(req: &Request, ctx: &Context) -> Option<Reach> {
    let actor = live_actor_of(&ctx.actor)?;
    if actor_blocked(req, &actor, ctx.now_micros) {
        return None;
    }
    ctx.registry.resource_type.as_ref()?;
    ctx.registry.action.as_ref()?;
    if candidates_violate_same_space(&req.space_id, ctx) {
        return None;
    }
    let mut reach = Reach { space_id: req.space_id.clone(), ..Reach::default() };
    for c in &ctx.candidates {
        match (c.permission.scope.as_str(), c.scope_anchor.as_ref()) {
            ("self", _) => reach.owner_member_id = Some(actor.member.id.clone()),
            ("space", _) => reach.whole_space = true,
            ("group", Some(anchor)) => reach.groups.push(anchor.id.clone()),
            ("group_tree", Some(anchor)) => reach.subtrees.push(anchor.path.clone()),
            // global is reserved; unknown scopes and anchorless group grants cover nothing.
            _ => {}
        }
    }
    reach.groups.sort();
    reach.groups.dedup();
    reach.subtrees.sort();
    reach.subtrees.dedup();
    Some(reach)
}
