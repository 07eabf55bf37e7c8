//! Admin authorization: may a credential (a user's AdminGrants, or an API key) use a Core management
//! permission (`groups:manage`, `audit:read`, `authz:check`...) on a scope (instance, a Space, a Group)?
//! Plystra v1.0's rules (docs/v1-reference.md §1.11), as a pure function so that every front asks the same question.

/// The most permission keys an API key carries (the schema's `api_keys_permission_keys_strings`, migration 021).
pub const MAX_PERMISSION_KEYS: usize = 256;

/// `*`, or lowercase `domain:action` with tokens `[a-z0-9_-]+` (the action may be `*`).
pub fn valid_permission_key(key: &str) -> bool {
    let token = |t: &str| {
        !t.is_empty() && t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    };
    key == "*" || key.split_once(':').is_some_and(|(d, a)| token(d) && (a == "*" || token(a)))
}

/// Does held key `held` grant required key `required`? `*`; equal; `domain:*`; `domain:manage` covers every
/// action of its domain (reading included).
pub fn permission_matches(held: &str, required: &str) -> bool {
    if held == "*" || held == required {
        return true;
    }
    let (Some((held_domain, held_action)), Some((required_domain, _))) =
        (held.split_once(':'), required.split_once(':'))
    else {
        return false;
    };
    held_domain == required_domain && (held_action == "*" || held_action == "manage")
}

/// Where a requirement applies: the whole instance, a Space, or a Group (with its Space and path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Instance,
    Space { space_id: String },
    Group { space_id: String, group_id: String, path: String },
}

impl Scope {
    fn space_id(&self) -> Option<&str> {
        match self {
            Scope::Instance => None,
            Scope::Space { space_id } | Scope::Group { space_id, .. } => Some(space_id),
        }
    }
}

/// A credential's standing: an AdminGrant's level (or an API key's) with its anchor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// instance_super_admin: everything, whatever the key.
    SuperAdmin,
    /// instance_admin, or an instance-level API key: any scope, when the key matches.
    Instance,
    /// space_admin, or a space-level API key.
    Space { space_id: String },
    /// group_admin, or a group-level API key: the group and everything below it, on label boundaries.
    Group { space_id: String, path: String },
}

/// One active grant (or key permission): its standing and the permission key it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holding {
    pub id: String,
    pub standing: Standing,
    pub permission_key: String,
}

fn covers(standing: &Standing, scope: &Scope) -> bool {
    match standing {
        Standing::SuperAdmin | Standing::Instance => true,
        Standing::Space { space_id } => scope.space_id() == Some(space_id),
        Standing::Group { space_id, path } => match scope {
            Scope::Group { space_id: s, path: p, .. } => s == space_id && crate::scope::path_within(p, path),
            _ => false,
        },
    }
}

/// The first holding that allows `required` on `scope`, if any.
pub fn allowing<'a>(holdings: &'a [Holding], required: &str, scope: &Scope) -> Option<&'a Holding> {
    holdings.iter().find(|h| {
        matches!(h.standing, Standing::SuperAdmin)
            || (permission_matches(&h.permission_key, required) && covers(&h.standing, scope))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_on_a_keys_permission_keys_is_the_schemas() {
        let migration = include_str!("../../migrations/021_api_key_bounds.sql");
        let bound = format!("jsonb_array_length(permission_keys) <= {}", MAX_PERMISSION_KEYS);
        assert!(migration.contains(&bound), "migration 021 bounds permission_keys by {}", MAX_PERMISSION_KEYS);
    }

    fn holding(standing: Standing, key: &str) -> Holding {
        Holding { id: "ag".into(), standing, permission_key: key.into() }
    }

    fn group(path: &str) -> Scope {
        Scope::Group { space_id: "space_acme".into(), group_id: format!("g_{path}"), path: path.into() }
    }

    #[test]
    fn permission_keys() {
        assert!(valid_permission_key("*"));
        assert!(valid_permission_key("groups:manage"));
        assert!(valid_permission_key("api_keys:*"));
        assert!(valid_permission_key("user-members:read"));
        for bad in ["", "groups", "Groups:read", "groups:", ":read", "groups:read:x", "*:*", "groups :read", "%:read"] {
            assert!(!valid_permission_key(bad), "{bad:?}");
        }
        assert!(permission_matches("*", "audit:read"));
        assert!(permission_matches("audit:read", "audit:read"));
        assert!(permission_matches("audit:*", "audit:read"));
        assert!(permission_matches("groups:manage", "groups:read"));
        assert!(!permission_matches("groups:read", "groups:manage"));
        assert!(!permission_matches("groups:manage", "roles:manage"));
        assert!(!permission_matches("groups_x:manage", "groups:read"));
        assert!(!permission_matches("audit:read", "audit:readx"));
    }

    #[test]
    fn levels_cover_their_scope_only() {
        let space = Scope::Space { space_id: "space_acme".into() };
        let other = Scope::Space { space_id: "space_other".into() };
        let super_admin = [holding(Standing::SuperAdmin, "*")];
        assert!(allowing(&super_admin, "instance:manage", &Scope::Instance).is_some());

        let instance = [holding(Standing::Instance, "audit:read")];
        assert!(allowing(&instance, "audit:read", &other).is_some());
        assert!(allowing(&instance, "audit:manage", &Scope::Instance).is_none());

        let space_admin = [holding(Standing::Space { space_id: "space_acme".into() }, "groups:manage")];
        assert!(allowing(&space_admin, "groups:read", &space).is_some());
        assert!(allowing(&space_admin, "groups:manage", &group("finance.apac")).is_some());
        assert!(allowing(&space_admin, "groups:manage", &other).is_none());
        assert!(allowing(&space_admin, "users:read", &Scope::Instance).is_none());

        let group_admin =
            [holding(Standing::Group { space_id: "space_acme".into(), path: "finance".into() }, "groups:*")];
        assert!(allowing(&group_admin, "groups:manage", &group("finance")).is_some());
        assert!(allowing(&group_admin, "groups:manage", &group("finance.apac")).is_some());
        assert!(allowing(&group_admin, "groups:manage", &group("finance_old")).is_none(), "label boundary");
        assert!(allowing(&group_admin, "groups:manage", &group("legal")).is_none());
        assert!(allowing(&group_admin, "groups:read", &space).is_none(), "a group admin does not cover its Space");
        let other_space_group =
            Scope::Group { space_id: "space_other".into(), group_id: "g".into(), path: "finance".into() };
        assert!(allowing(&group_admin, "groups:read", &other_space_group).is_none());
    }
}
