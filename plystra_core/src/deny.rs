//! The deny codes: the one place that lists them, their wire names and their fixed reasons.

use std::fmt;

/// Why a decision denied. The wire names are Plystra v1.0's, verbatim, so that clients written for it keep
/// working; `ActorNotFound` and `ResourceNotFound` are ours (v1.0 answered those with an HTTP 500), and so is
/// `ActorBindingAmbiguous` (an actor named by its User alone, who has several bindings to choose from).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DenyCode {
    ActorNotFound,
    ActorBindingAmbiguous,
    ActorUserInactive,
    ActorMemberInactive,
    SpaceInactive,
    UserMemberRevoked,
    UserMemberExpired,
    InvalidResourceType,
    InvalidResourceAction,
    ResourceNotFound,
    CrossSpaceViolation,
    NoMatchingPermission,
    ScopeAnchorMissing,
    TargetGroupMissing,
    ScopeOutOfBounds,
    GlobalScopeDisabled,
}

impl DenyCode {
    /// Every code, in the order the engine tries them (scope codes last: they come from candidates).
    pub const ALL: [DenyCode; 16] = [
        DenyCode::ActorNotFound,
        DenyCode::ActorBindingAmbiguous,
        DenyCode::ActorUserInactive,
        DenyCode::ActorMemberInactive,
        DenyCode::SpaceInactive,
        DenyCode::UserMemberRevoked,
        DenyCode::UserMemberExpired,
        DenyCode::InvalidResourceType,
        DenyCode::InvalidResourceAction,
        DenyCode::ResourceNotFound,
        DenyCode::CrossSpaceViolation,
        DenyCode::NoMatchingPermission,
        DenyCode::ScopeAnchorMissing,
        DenyCode::TargetGroupMissing,
        DenyCode::ScopeOutOfBounds,
        DenyCode::GlobalScopeDisabled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            DenyCode::ActorNotFound => "ACTOR_NOT_FOUND",
            DenyCode::ActorBindingAmbiguous => "ACTOR_BINDING_AMBIGUOUS",
            DenyCode::ActorUserInactive => "ACTOR_USER_INACTIVE",
            DenyCode::ActorMemberInactive => "ACTOR_MEMBER_INACTIVE",
            DenyCode::SpaceInactive => "SPACE_INACTIVE",
            DenyCode::UserMemberRevoked => "USER_MEMBER_REVOKED",
            DenyCode::UserMemberExpired => "USER_MEMBER_EXPIRED",
            DenyCode::InvalidResourceType => "INVALID_RESOURCE_TYPE",
            DenyCode::InvalidResourceAction => "INVALID_RESOURCE_ACTION",
            DenyCode::ResourceNotFound => "RESOURCE_NOT_FOUND",
            DenyCode::CrossSpaceViolation => "CROSS_SPACE_VIOLATION",
            DenyCode::NoMatchingPermission => "NO_MATCHING_PERMISSION",
            DenyCode::ScopeAnchorMissing => "SCOPE_ANCHOR_MISSING",
            DenyCode::TargetGroupMissing => "TARGET_GROUP_MISSING",
            DenyCode::ScopeOutOfBounds => "SCOPE_OUT_OF_BOUNDS",
            DenyCode::GlobalScopeDisabled => "GLOBAL_SCOPE_DISABLED",
        }
    }

    pub fn parse(s: &str) -> Option<DenyCode> {
        DenyCode::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The decision's reason when this code is the answer. Scope codes share one reason: the per-grant
    /// detail lives in each candidate's `scope_check`.
    pub const fn reason(self) -> &'static str {
        match self {
            DenyCode::ActorNotFound => "actor User, Member, UserMember binding or Space was not found",
            DenyCode::ActorBindingAmbiguous => {
                "actor User has several UserMember bindings and none is primary: name the binding or the Space"
            }
            DenyCode::ActorUserInactive => "actor User is not active",
            DenyCode::ActorMemberInactive => "actor Member is not active",
            DenyCode::SpaceInactive => "active Space is not active",
            DenyCode::UserMemberRevoked => "UserMember binding is not active",
            DenyCode::UserMemberExpired => "UserMember binding has expired",
            DenyCode::InvalidResourceType => "resource type is not registered",
            DenyCode::InvalidResourceAction => "resource action is not registered for the resource type",
            DenyCode::ResourceNotFound => "target resource was not found",
            DenyCode::CrossSpaceViolation => "actor context, grants, and target resource must belong to the same Space",
            DenyCode::NoMatchingPermission => "no permission grant matched the requested resource and action",
            DenyCode::ScopeAnchorMissing
            | DenyCode::TargetGroupMissing
            | DenyCode::ScopeOutOfBounds
            | DenyCode::GlobalScopeDisabled => "matching permission grants do not cover the target resource scope",
        }
    }
}

impl fmt::Display for DenyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The reason of every allow.
pub const ALLOW_REASON: &str = "at least one matching permission grant covers the target resource";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in DenyCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
            assert_eq!(DenyCode::parse(code.as_str()), Some(code));
            assert!(code.as_str().chars().all(|c| c.is_ascii_uppercase() || c == '_'));
        }
        assert_eq!(DenyCode::parse("AUTHORIZATION_DENIED"), None);
    }

    #[test]
    fn the_thirteen_reference_codes_are_all_present() {
        for name in [
            "ACTOR_USER_INACTIVE",
            "ACTOR_MEMBER_INACTIVE",
            "USER_MEMBER_REVOKED",
            "USER_MEMBER_EXPIRED",
            "SPACE_INACTIVE",
            "CROSS_SPACE_VIOLATION",
            "NO_MATCHING_PERMISSION",
            "SCOPE_ANCHOR_MISSING",
            "TARGET_GROUP_MISSING",
            "SCOPE_OUT_OF_BOUNDS",
            "GLOBAL_SCOPE_DISABLED",
            "INVALID_RESOURCE_TYPE",
            "INVALID_RESOURCE_ACTION",
        ] {
            assert!(DenyCode::parse(name).is_some(), "{name} missing");
        }
    }
}
