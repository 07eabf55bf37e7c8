//! Scope resolution: does one permission grant cover the target resource? The rule and reason strings are
//! Plystra v1.0's, verbatim, because traces are compared by people and tools that know them.

use crate::deny::DenyCode;
use crate::model::{Group, Member, Target};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeCheck {
    pub covered: bool,
    pub rule: &'static str,
    pub reason: String,
    pub deny_code: Option<DenyCode>,
}

impl ScopeCheck {
    fn covered(rule: &'static str, reason: String) -> Self {
        ScopeCheck { covered: true, rule, reason, deny_code: None }
    }

    fn uncovered(rule: &'static str, reason: String, code: DenyCode) -> Self {
        ScopeCheck { covered: false, rule, reason, deny_code: Some(code) }
    }
}

/// The group_tree test: the target path equals the anchor path or extends it by whole labels.
///
/// A plain byte comparison on a label boundary: `finance` covers `finance.apac` but not `finance_old` or
/// `financeops`, and `_` / `%` are ordinary characters (`fin_ops` does not cover `finxops.a`), which a
/// LIKE pattern built from the path would get wrong.
pub fn path_within(target_path: &str, anchor_path: &str) -> bool {
    match target_path.strip_prefix(anchor_path) {
        Some("") => true,
        Some(rest) => rest.starts_with('.'),
        None => false,
    }
}

/// Resolves one grant's scope against the target. `member` is the acting Member.
pub fn resolve_scope(scope: &str, member: &Member, target: &Target, anchor: Option<&Group>) -> ScopeCheck {
    match scope {
        "self" => {
            const RULE: &str = "resource.owner_member_id == actor.member_id";
            if target.resource.owner_member_id.as_deref() == Some(member.id.as_str()) {
                ScopeCheck::covered(RULE, "target resource is owned by the active Member identity.".into())
            } else {
                ScopeCheck::uncovered(
                    RULE,
                    "target resource is not owned by the active Member identity.".into(),
                    DenyCode::ScopeOutOfBounds,
                )
            }
        }
        "group" | "group_tree" => {
            let Some(anchor) = anchor else {
                return ScopeCheck::uncovered(
                    "scope_anchor_group_id is required",
                    "permission grant is missing a scope anchor group.".into(),
                    DenyCode::ScopeAnchorMissing,
                );
            };
            let Some(group) = target.group.as_ref() else {
                return ScopeCheck::uncovered(
                    "target resource must have group_id",
                    "target resource is missing a group.".into(),
                    DenyCode::TargetGroupMissing,
                );
            };
            if scope == "group" {
                const RULE: &str = "target_group_id = scope_anchor_group_id";
                if group.id == anchor.id {
                    ScopeCheck::covered(
                        RULE,
                        format!("target group {} matches anchor group {}.", group.path, anchor.path),
                    )
                } else {
                    ScopeCheck::uncovered(
                        RULE,
                        format!("target group {} does not match anchor group {}.", group.path, anchor.path),
                        DenyCode::ScopeOutOfBounds,
                    )
                }
            } else {
                // The rule text is v1.0's; the test itself is `path_within`, never a LIKE.
                const RULE: &str = "target_path = anchor_path OR target_path LIKE anchor_path || '.%'";
                if path_within(&group.path, &anchor.path) {
                    ScopeCheck::covered(
                        RULE,
                        format!("target group {} is inside anchor group {}.", group.path, anchor.path),
                    )
                } else {
                    ScopeCheck::uncovered(
                        RULE,
                        format!("target group {} is outside anchor group {}.", group.path, anchor.path),
                        DenyCode::ScopeOutOfBounds,
                    )
                }
            }
        }
        "space" => {
            const RULE: &str = "resource.space_id == actor.space_id";
            if target.resource.space_id == member.space_id {
                ScopeCheck::covered(RULE, "target resource belongs to the active Space.".into())
            } else {
                ScopeCheck::uncovered(
                    RULE,
                    "target resource does not belong to the active Space.".into(),
                    DenyCode::ScopeOutOfBounds,
                )
            }
        }
        "global" => ScopeCheck::uncovered(
            "global scope disabled for ordinary Members",
            "global scope is reserved and disabled in v1.0.".into(),
            DenyCode::GlobalScopeDisabled,
        ),
        other => ScopeCheck::uncovered(
            "known permission scope",
            format!("unsupported scope {other:?}."),
            DenyCode::ScopeOutOfBounds,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Resource;

    fn group(id: &str, path: &str) -> Group {
        Group { id: id.into(), space_id: "space_acme".into(), path: path.into(), status: "active".into() }
    }

    fn member() -> Member {
        Member {
            id: "member_finance_reviewer".into(),
            space_id: "space_acme".into(),
            display_name: "Finance Reviewer".into(),
            status: "active".into(),
        }
    }

    /// reference scope_test.go: invoice_001 in finance.apac, owned by the acting Member, anchor finance.
    fn target(group: Option<Group>) -> Target {
        Target {
            resource: Resource {
                id: "invoice_001".into(),
                external_id: None,
                resource_type: "invoice".into(),
                space_id: "space_acme".into(),
                group_id: group.as_ref().map(|g| g.id.clone()),
                owner_member_id: Some("member_finance_reviewer".into()),
                display_name: None,
                visibility: None,
                status: None,
                metadata: None,
            },
            group,
        }
    }

    #[test]
    fn reference_scope_matrix() {
        let m = member();
        let t = target(Some(group("group_finance_apac", "finance.apac")));
        let anchor = group("group_finance", "finance");
        let check = |scope| resolve_scope(scope, &m, &t, Some(&anchor));
        assert!(check("self").covered);
        let g = check("group");
        assert_eq!((g.covered, g.deny_code), (false, Some(DenyCode::ScopeOutOfBounds)));
        assert_eq!(g.reason, "target group finance.apac does not match anchor group finance.");
        let gt = check("group_tree");
        assert!(gt.covered);
        assert_eq!(gt.reason, "target group finance.apac is inside anchor group finance.");
        assert_eq!(gt.rule, "target_path = anchor_path OR target_path LIKE anchor_path || '.%'");
        assert!(check("space").covered);
        assert_eq!(check("global").deny_code, Some(DenyCode::GlobalScopeDisabled));
        assert!(!check("global").covered);
        let unknown = check("planet");
        assert_eq!((unknown.covered, unknown.deny_code), (false, Some(DenyCode::ScopeOutOfBounds)));
        assert_eq!(unknown.reason, "unsupported scope \"planet\".");

        let no_anchor = resolve_scope("group_tree", &m, &t, None);
        assert_eq!(no_anchor.deny_code, Some(DenyCode::ScopeAnchorMissing));
        let no_group = resolve_scope("group_tree", &m, &target(None), Some(&anchor));
        assert_eq!(no_group.deny_code, Some(DenyCode::TargetGroupMissing));
        let no_group = resolve_scope("group", &m, &target(None), Some(&anchor));
        assert_eq!(no_group.deny_code, Some(DenyCode::TargetGroupMissing));
        // An anchor is checked before the target group, as in v1.0.
        let neither = resolve_scope("group", &m, &target(None), None);
        assert_eq!(neither.deny_code, Some(DenyCode::ScopeAnchorMissing));
    }

    #[test]
    fn self_scope_denies_another_owner_and_no_owner() {
        let mut t = target(None);
        t.resource.owner_member_id = Some("member_invoice_creator".into());
        let c = resolve_scope("self", &member(), &t, None);
        assert_eq!((c.covered, c.deny_code), (false, Some(DenyCode::ScopeOutOfBounds)));
        t.resource.owner_member_id = None;
        assert!(!resolve_scope("self", &member(), &t, None).covered);
    }

    #[test]
    fn space_scope_denies_another_space() {
        let mut t = target(None);
        t.resource.space_id = "space_other".into();
        assert!(!resolve_scope("space", &member(), &t, None).covered);
    }

    #[test]
    fn group_tree_matches_on_label_boundaries_only() {
        assert!(path_within("finance", "finance"));
        assert!(path_within("finance.apac", "finance"));
        assert!(path_within("finance.apac.sg", "finance"));
        assert!(!path_within("finance_old", "finance"));
        assert!(!path_within("financeops", "finance"));
        assert!(!path_within("finance", "finance.apac"));
        assert!(!path_within("legal.emea", "finance"));
        // LIKE wildcards are literal characters.
        assert!(!path_within("finxops.a", "fin_ops"));
        assert!(path_within("fin_ops.a", "fin_ops"));
        assert!(!path_within("fin%.a", "fin_"));
        assert!(!path_within("finance.apac", "fin%"));
        assert!(!path_within("x", ""));
    }
}
