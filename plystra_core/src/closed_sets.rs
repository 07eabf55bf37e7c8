//! The closed sets of values the Core stores as text: each entity's statuses, grant scopes, action risk levels,
//! admin grant and API key levels, audit decisions. One enum per set, with its text form and a parser, so that
//! the REST front validates and documents each set from one list.
//!
//! Where the schema has a CHECK listing the values (`<table>_<column>_known` in `migrations/`), a test below
//! keeps the enum equal to it. Statuses have no such list in the schema (only a format CHECK,
//! `^[a-z][a-z0-9_]{0,31}$`, which each status is tested against): the sets here are what the front accepts
//! and what its lifecycle actions write.

/// A closed set of text values.
pub trait ClosedSet: Copy + Sized + 'static {
    /// What the set is called in messages ("User status").
    const NAME: &'static str;
    /// Every value, in the order they are documented.
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;

    /// The value named `s` exactly (case-sensitive, as stored).
    fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.as_str() == s)
    }

    /// Every value's text, in order.
    fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|v| v.as_str()).collect()
    }
}

macro_rules! closed_set {
    ($(#[$doc:meta])* $name:ident, $label:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant),+
        }

        impl ClosedSet for $name {
            const NAME: &'static str = $label;
            const ALL: &'static [Self] = &[$($name::$variant),+];
            fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

closed_set!(
    /// A User: `disable` and `restore` move between the two.
    UserStatus, "User status", { Active => "active", Disabled => "disabled" }
);
closed_set!(
    /// A Space: `disable` and `restore` move between the two.
    SpaceStatus, "Space status", { Active => "active", Disabled => "disabled" }
);
closed_set!(
    /// A Group: `disable` writes disabled; an archived group is kept for history. Only active groups anchor or
    /// place anything.
    GroupStatus, "Group status", { Active => "active", Disabled => "disabled", Archived => "archived" }
);
closed_set!(
    /// A Member.
    MemberStatus, "Member status", { Active => "active", Disabled => "disabled" }
);
closed_set!(
    /// A UserMember binding: `revoke` writes revoked (with `revoked_at`).
    UserMemberStatus, "UserMember status", { Active => "active", Disabled => "disabled", Revoked => "revoked" }
);
closed_set!(
    /// A Role.
    RoleStatus, "Role status", { Active => "active", Disabled => "disabled" }
);
closed_set!(
    /// A MemberRole grant: `revoke` writes revoked.
    MemberRoleStatus, "MemberRole status", { Active => "active", Disabled => "disabled", Revoked => "revoked" }
);
closed_set!(
    /// A Permission.
    PermissionStatus, "Permission status", { Active => "active", Disabled => "disabled" }
);
closed_set!(
    /// A Resource Registry type.
    ResourceTypeStatus, "ResourceType status", { Active => "active", Disabled => "disabled" }
);
closed_set!(
    /// A Resource Registry mapping (not read by decisions).
    ResourceMappingStatus, "ResourceMapping status", { Active => "active", Disabled => "disabled" }
);
closed_set!(
    /// A Resource: `archive` writes archived; archived resources are not evaluated.
    ResourceStatus, "Resource status", { Active => "active", Archived => "archived" }
);
closed_set!(
    /// An AdminGrant: created active or disabled; `revoke` writes revoked.
    AdminGrantStatus, "AdminGrant status", { Active => "active", Disabled => "disabled", Revoked => "revoked" }
);
closed_set!(
    /// An API key: created active or disabled; `revoke` writes revoked.
    ApiKeyStatus, "API key status", { Active => "active", Disabled => "disabled", Revoked => "revoked" }
);

closed_set!(
    /// A Permission's scope (`permissions_scope_known`); `global` is reserved and always denied.
    GrantScope, "Permission scope", {
        SelfOnly => "self", Group => "group", GroupTree => "group_tree", Space => "space", Global => "global",
    }
);
closed_set!(
    /// A Resource Registry action's risk level (`resource_actions_risk_level_known`).
    RiskLevel, "risk level", { Low => "low", Normal => "normal", High => "high", Critical => "critical" }
);
closed_set!(
    /// An AdminGrant's level (`admin_grants_level_known`).
    AdminLevel, "AdminGrant level", {
        InstanceSuperAdmin => "instance_super_admin",
        InstanceAdmin => "instance_admin",
        SpaceAdmin => "space_admin",
        GroupAdmin => "group_admin",
    }
);
closed_set!(
    /// An API key's level (`api_keys_level_known`).
    ApiKeyLevel, "API key level", { Instance => "instance", Space => "space", Group => "group" }
);
closed_set!(
    /// An audit row's decision (`audit_logs_decision_known`).
    AuditDecision, "audit decision", { Allow => "allow", Deny => "deny" }
);

#[cfg(test)]
mod tests {
    use super::*;

    use crate::MIGRATIONS;

    /// The quoted values of `CONSTRAINT <name> CHECK (<column> IN ('a', 'b', ...))` in its last definition in the
    /// migrations (the one in force: a table made again, as the audit log's partitioning did, defines it again).
    fn check_list(constraint: &str) -> Vec<String> {
        let marker = format!("CONSTRAINT {constraint}");
        let mut found: Vec<Vec<String>> = Vec::new();
        for sql in MIGRATIONS {
            let mut rest = *sql;
            while let Some(at) = rest.find(&marker) {
                let after = &rest[at + marker.len()..];
                let open = after.find(" IN (").expect("an IN list") + " IN (".len();
                let close = after[open..].find(')').expect("a closing parenthesis") + open;
                found.push(after[open..close].split(',').map(|v| v.trim().trim_matches('\'').to_string()).collect());
                rest = &after[close..];
            }
        }
        found.pop().unwrap_or_else(|| panic!("{constraint} is not defined in migrations/"))
    }

    fn equals_check<T: ClosedSet>(constraint: &str) {
        assert_eq!(T::names(), check_list(constraint), "{} and the CHECK {constraint}", T::NAME);
    }

    #[test]
    fn every_enum_with_a_check_list_equals_it() {
        equals_check::<GrantScope>("permissions_scope_known");
        equals_check::<RiskLevel>("resource_actions_risk_level_known");
        equals_check::<AdminLevel>("admin_grants_level_known");
        equals_check::<ApiKeyLevel>("api_keys_level_known");
        equals_check::<AuditDecision>("audit_logs_decision_known");
    }

    /// `^[a-z][a-z0-9_]{0,31}$`, the `<table>_status_format` CHECK of every table with a status.
    fn status_format(s: &str) -> bool {
        let b = s.as_bytes();
        (1..=32).contains(&b.len())
            && b[0].is_ascii_lowercase()
            && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
    }

    fn statuses_fit<T: ClosedSet>(table: &str) {
        let constraint = format!("CONSTRAINT {table}_status_format CHECK (status ~ '^[a-z][a-z0-9_]{{0,31}}$')");
        assert!(MIGRATIONS.iter().any(|m| m.contains(&constraint)), "{constraint}");
        assert_eq!(T::ALL[0].as_str(), crate::model::ACTIVE, "{}: active first (the default)", T::NAME);
        for v in T::names() {
            assert!(status_format(v), "{}: {v}", T::NAME);
        }
    }

    #[test]
    fn statuses_fit_the_status_format_checks_and_start_with_active() {
        statuses_fit::<UserStatus>("users");
        statuses_fit::<SpaceStatus>("spaces");
        statuses_fit::<GroupStatus>("groups");
        statuses_fit::<MemberStatus>("members");
        statuses_fit::<UserMemberStatus>("user_members");
        statuses_fit::<RoleStatus>("roles");
        statuses_fit::<MemberRoleStatus>("member_roles");
        statuses_fit::<PermissionStatus>("permissions");
        statuses_fit::<ResourceTypeStatus>("resource_types");
        statuses_fit::<ResourceMappingStatus>("resource_mappings");
        statuses_fit::<ResourceStatus>("resources");
        statuses_fit::<AdminGrantStatus>("admin_grants");
        statuses_fit::<ApiKeyStatus>("api_keys");
    }

    #[test]
    fn parse_is_exact_and_inverts_as_str() {
        for v in GroupStatus::ALL {
            assert_eq!(GroupStatus::parse(v.as_str()), Some(*v));
        }
        assert_eq!(UserStatus::parse("banana"), None);
        assert_eq!(UserStatus::parse("Active"), None);
        assert_eq!(GrantScope::parse("group_tree"), Some(GrantScope::GroupTree));
        assert_eq!(GrantScope::SelfOnly.to_string(), "self");
    }
}
