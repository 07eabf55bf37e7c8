//! Context Mode: building a decision's actor, target and candidates from what the request describes inline
//! (docs/v1-reference.md §1.7). Pure: the groups an inline object names are found by a lookup the caller passes (the
//! extension reads live groups), so a group that exists in Core is always Core's, and only a path Core does not
//! hold is synthesised.
//!
//! v1.0's defaults are kept: statuses default to `active`, the binding's relation to `external`, names
//! to ids; a synthesised group's id is `group_inline_<16 hex of sha1(space_id NUL path)>`; an inline grant's role
//! id is `role_inline_<n>` and key `inline`, its permission id `perm_inline_<resource>_<action>_<scope>`.

use serde_json::Value;
use sha1::{Digest, Sha1};

use crate::model::*;

/// What Core holds under a group id, or a path in a Space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoreGroup {
    /// A live group (active, not deleted).
    Live(Group),
    /// A group Core holds that is deleted or inactive: it places and scopes nothing, and a request may not
    /// stand in for it.
    NotLive,
    /// Nothing: a group only the request knows.
    Absent,
}

/// Finds a group by id, or by path within a Space. The extension reads Core; tests pass a table.
pub trait GroupLookup {
    fn by_id(&self, id: &str) -> CoreGroup;
    fn by_path(&self, space_id: &str, path: &str) -> CoreGroup;
}

/// The id of a group that exists only in a request (docs/v1-reference.md §1.7).
pub fn synthesized_group_id(space_id: &str, path: &str) -> String {
    let mut hasher = Sha1::new();
    hasher.update(space_id.as_bytes());
    hasher.update([0u8]);
    hasher.update(path.as_bytes());
    let digest = hasher.finalize();
    format!("group_inline_{}", hex::encode(&digest[..8]))
}

/// A group named inline by id and/or path, in `space_id`: Core's group when Core holds one with that id (or,
/// named by path alone, that path in the Space), and then only if it is live (a deleted or disabled group places
/// nothing, whatever the request says); otherwise a group of the request, when it has a path to be placed by
/// (`None` when only an unknown id is given: a group with no path covers nothing and is missing).
fn named_group(lookup: &dyn GroupLookup, space_id: &str, id: Option<&str>, path: Option<&str>) -> Option<Group> {
    let core = match (id, path) {
        (Some(id), _) => lookup.by_id(id),
        (None, Some(path)) => lookup.by_path(space_id, path),
        (None, None) => CoreGroup::Absent,
    };
    match core {
        CoreGroup::Live(group) => return Some(group),
        CoreGroup::NotLive => return None,
        CoreGroup::Absent => {}
    }
    let path = path?;
    Some(Group {
        id: id.map_or_else(|| synthesized_group_id(space_id, path), str::to_string),
        space_id: space_id.to_string(),
        path: path.to_string(),
        status: ACTIVE.to_string(),
    })
}

/// The text at `field` of an inline resource's metadata (what the type's mapping names). A number or boolean
/// is read as its JSON text; objects, arrays and null are not values of a field.
pub fn mapped_field(metadata: Option<&Value>, field: Option<&str>) -> Option<String> {
    let value = metadata?.get(field.filter(|f| !f.is_empty())?)?;
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The target an inline resource describes. A field not given is read from its metadata through the type's
/// mapping; a Space still missing is the actor's. The group is named by `group_id` and/or `group_path`, or, when
/// neither is given, by the mapped group field (a group id).
pub fn inline_target(
    req: &Request,
    inline: &InlineResource,
    mapping: Option<&ResourceMapping>,
    lookup: &dyn GroupLookup,
) -> Target {
    let meta = inline.metadata.as_ref();
    let mapped = |field: Option<&String>| mapped_field(meta, field.map(String::as_str));
    let space_id = inline
        .space_id
        .clone()
        .or_else(|| mapped(mapping.map(|m| &m.space_field)))
        .unwrap_or_else(|| req.space_id.clone());
    // The group is one fact: named explicitly (by id or path), or else read from the metadata.
    let group_id = match (&inline.group_id, &inline.group_path) {
        (None, None) => mapped(mapping.and_then(|m| m.group_field.as_ref())),
        (id, _) => id.clone(),
    };
    let group = named_group(lookup, &space_id, group_id.as_deref(), inline.group_path.as_deref());
    let owner_member_id =
        inline.owner_member_id.clone().or_else(|| mapped(mapping.and_then(|m| m.owner_member_field.as_ref())));
    let visibility = inline.visibility.clone().or_else(|| mapped(mapping.and_then(|m| m.visibility_field.as_ref())));
    Target {
        resource: Resource {
            id: req.resource_id.clone(),
            external_id: inline.external_id.clone(),
            resource_type: req.resource_type.clone(),
            space_id,
            group_id: group.as_ref().map(|g| g.id.clone()).or(group_id),
            owner_member_id,
            display_name: inline.display_name.clone(),
            visibility,
            status: inline.status.clone(),
            metadata: inline.metadata.clone(),
        },
        group,
    }
}

/// The actor of a pure-inline request: the request's ids and its inline metadata.
pub fn inline_actor(req: &Request, inline: Option<&InlineActor>) -> Actor {
    let none = InlineActor::default();
    let a = inline.unwrap_or(&none);
    let or_active = |s: &Option<String>| s.clone().unwrap_or_else(|| ACTIVE.to_string());
    Actor {
        user: Some(User {
            id: req.user_id.clone(),
            email: a.user_email.clone().unwrap_or_default(),
            status: or_active(&a.user_status),
        }),
        member: Some(Member {
            id: req.member_id.clone(),
            space_id: req.space_id.clone(),
            display_name: a.member_display_name.clone().unwrap_or_else(|| req.member_id.clone()),
            status: or_active(&a.member_status),
        }),
        user_member: Some(UserMember {
            id: req.user_member_id.clone(),
            user_id: req.user_id.clone(),
            member_id: req.member_id.clone(),
            space_id: req.space_id.clone(),
            relation_type: a.relation_type.clone().unwrap_or_else(|| "external".to_string()),
            status: or_active(&a.binding_status),
            is_primary: false,
            expires_at: None,
        }),
        space: Some(Space {
            id: req.space_id.clone(),
            name: a.space_name.clone().unwrap_or_else(|| req.space_id.clone()),
            status: or_active(&a.space_status),
        }),
    }
}

/// The candidates of a pure-inline request: the inline grants for exactly the requested resource type and
/// action, in the contract's order (role key, resource, action, scope, then position).
pub fn inline_candidates(req: &Request, grants: &[InlineGrant], lookup: &dyn GroupLookup) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = grants
        .iter()
        .enumerate()
        .filter(|(_, g)| g.resource == req.resource_type && g.action == req.action)
        .map(|(i, g)| {
            let space_id = g.space_id.clone().unwrap_or_else(|| req.space_id.clone());
            let anchor = named_group(
                lookup,
                &space_id,
                g.scope_anchor_group_id.as_deref(),
                g.scope_anchor_group_path.as_deref(),
            );
            Candidate {
                member_role_id: format!("mr_inline_{i}"),
                role: Role {
                    id: g.role_id.clone().unwrap_or_else(|| format!("role_inline_{i}")),
                    key: g.role_key.clone().unwrap_or_else(|| "inline".to_string()),
                    space_id: space_id.clone(),
                },
                permission: Permission {
                    id: g
                        .permission_id
                        .clone()
                        .unwrap_or_else(|| format!("perm_inline_{}_{}_{}", g.resource, g.action, g.scope)),
                    resource: g.resource.clone(),
                    action: g.action.clone(),
                    scope: g.scope.clone(),
                },
                scope_anchor: anchor,
                member_role_space_id: space_id,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (&a.role.key, &a.permission.resource, &a.permission.action, &a.permission.scope).cmp(&(
            &b.role.key,
            &b.permission.resource,
            &b.permission.action,
            &b.permission.scope,
        ))
    });
    out
}

/// The inline resource fields a registered resource makes unused (Core's row wins), by their request names.
pub fn ignored_fields(inline: &InlineResource) -> Vec<&'static str> {
    let fields: [(&'static str, bool); 9] = [
        ("resource.external_id", inline.external_id.is_some()),
        ("resource.space_id", inline.space_id.is_some()),
        ("resource.group_id", inline.group_id.is_some()),
        ("resource.group_path", inline.group_path.is_some()),
        ("resource.owner_member_id", inline.owner_member_id.is_some()),
        ("resource.display_name", inline.display_name.is_some()),
        ("resource.visibility", inline.visibility.is_some()),
        ("resource.status", inline.status.is_some()),
        ("resource.metadata", inline.metadata.is_some()),
    ];
    fields.into_iter().filter(|(_, given)| *given).map(|(name, _)| name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Groups(Vec<Group>);

    fn found(g: Option<&Group>) -> CoreGroup {
        match g {
            Some(g) if g.status == "active" => CoreGroup::Live(g.clone()),
            Some(_) => CoreGroup::NotLive,
            None => CoreGroup::Absent,
        }
    }

    impl GroupLookup for Groups {
        fn by_id(&self, id: &str) -> CoreGroup {
            found(self.0.iter().find(|g| g.id == id))
        }
        fn by_path(&self, space_id: &str, path: &str) -> CoreGroup {
            found(self.0.iter().find(|g| g.space_id == space_id && g.path == path))
        }
    }

    #[test]
    fn a_group_core_holds_but_not_live_is_never_stood_in_for() {
        let disabled = Group { status: "disabled".into(), ..apac() };
        let groups = Groups(vec![disabled]);
        let by_path = InlineResource { group_path: Some("finance.apac".into()), ..Default::default() };
        assert_eq!(inline_target(&req(), &by_path, None, &groups).group, None);
        let by_id = InlineResource {
            group_id: Some("group_apac".into()),
            group_path: Some("finance.apac".into()),
            ..Default::default()
        };
        assert_eq!(inline_target(&req(), &by_id, None, &groups).group, None);
        let grant = InlineGrant {
            resource: "invoice".into(),
            action: "approve".into(),
            scope: "group_tree".into(),
            scope_anchor_group_path: Some("finance.apac".into()),
            ..Default::default()
        };
        assert_eq!(inline_candidates(&req(), &[grant], &groups)[0].scope_anchor, None);
    }

    fn apac() -> Group {
        Group {
            id: "group_apac".into(),
            space_id: "space_acme".into(),
            path: "finance.apac".into(),
            status: "active".into(),
        }
    }

    fn req() -> Request {
        Request {
            user_id: "u".into(),
            member_id: "m".into(),
            user_member_id: "b".into(),
            space_id: "space_acme".into(),
            resource_type: "invoice".into(),
            resource_id: "invoice_draft_001".into(),
            action: "approve".into(),
            ..Request::default()
        }
    }

    fn mapping() -> ResourceMapping {
        ResourceMapping {
            id: "map".into(),
            resource_type_id: "rt".into(),
            storage_kind: "external".into(),
            table_name: None,
            id_field: "id".into(),
            space_field: "tenant".into(),
            group_field: Some("team_id".into()),
            owner_member_field: Some("ownerID".into()),
            visibility_field: None,
            metadata_field: None,
            status: "active".into(),
            metadata: None,
        }
    }

    #[test]
    fn a_core_group_named_by_path_is_cores_and_an_unknown_path_is_synthesised() {
        let groups = Groups(vec![apac()]);
        let inline = InlineResource { group_path: Some("finance.apac".into()), ..Default::default() };
        let t = inline_target(&req(), &inline, None, &groups);
        assert_eq!(t.group, Some(apac()));
        assert_eq!(t.resource.group_id.as_deref(), Some("group_apac"));
        assert_eq!(t.resource.space_id, "space_acme");

        let inline = InlineResource { group_path: Some("finance.nowhere".into()), ..Default::default() };
        let t = inline_target(&req(), &inline, None, &groups);
        let g = t.group.unwrap();
        assert_eq!(g.id, synthesized_group_id("space_acme", "finance.nowhere"));
        assert!(g.id.starts_with("group_inline_") && g.id.len() == "group_inline_".len() + 16);
        assert_eq!(g.path, "finance.nowhere");
        // The id depends on the Space and the path, with a separator that no id or path holds.
        assert_ne!(synthesized_group_id("a", "bc"), synthesized_group_id("ab", "c"));
    }

    #[test]
    fn a_known_group_id_wins_over_an_inline_path() {
        let groups = Groups(vec![apac()]);
        let inline = InlineResource {
            group_id: Some("group_apac".into()),
            group_path: Some("finance".into()),
            ..Default::default()
        };
        assert_eq!(inline_target(&req(), &inline, None, &groups).group, Some(apac()));
        // An unknown id without a path places nothing: the group is missing.
        let inline = InlineResource { group_id: Some("group_x".into()), ..Default::default() };
        let t = inline_target(&req(), &inline, None, &groups);
        assert_eq!((t.group, t.resource.group_id.as_deref()), (None, Some("group_x")));
    }

    #[test]
    fn metadata_is_read_through_the_mapping_and_explicit_fields_win() {
        let groups = Groups(vec![apac()]);
        let inline = InlineResource {
            metadata: Some(json!({"tenant": "space_acme", "team_id": "group_apac", "ownerID": "rick@example.com"})),
            ..Default::default()
        };
        let t = inline_target(&req(), &inline, Some(&mapping()), &groups);
        assert_eq!(t.resource.owner_member_id.as_deref(), Some("rick@example.com"));
        assert_eq!(t.group, Some(apac()));
        assert_eq!(t.resource.space_id, "space_acme");

        let inline = InlineResource {
            owner_member_id: Some("m".into()),
            space_id: Some("space_other".into()),
            metadata: Some(json!({"ownerID": "rick@example.com", "tenant": "space_acme"})),
            ..Default::default()
        };
        let t = inline_target(&req(), &inline, Some(&mapping()), &groups);
        assert_eq!(t.resource.owner_member_id.as_deref(), Some("m"));
        assert_eq!(t.resource.space_id, "space_other");

        // A group named explicitly (here by path) is the group: the metadata's group field is not read.
        let inline = InlineResource {
            group_path: Some("legal".into()),
            metadata: Some(json!({"team_id": "group_apac"})),
            ..Default::default()
        };
        let t = inline_target(&req(), &inline, Some(&mapping()), &groups);
        assert_eq!(t.group.map(|g| g.path).as_deref(), Some("legal"));

        // Without a mapping the metadata is shown, not read.
        let inline = InlineResource { metadata: Some(json!({"ownerID": "m"})), ..Default::default() };
        assert_eq!(inline_target(&req(), &inline, None, &groups).resource.owner_member_id, None);
        assert_eq!(mapped_field(Some(&json!({"n": 7, "o": {}, "e": ""})), Some("n")).as_deref(), Some("7"));
        assert_eq!(mapped_field(Some(&json!({"o": {}})), Some("o")), None);
        assert_eq!(mapped_field(Some(&json!({"e": ""})), Some("e")), None);
    }

    #[test]
    fn inline_grants_keep_only_the_requested_type_and_action_with_the_reference_defaults() {
        let groups = Groups(vec![apac()]);
        let grants = vec![
            InlineGrant {
                resource: "invoice".into(),
                action: "approve".into(),
                scope: "group_tree".into(),
                scope_anchor_group_path: Some("finance".into()),
                ..Default::default()
            },
            InlineGrant {
                resource: "invoice".into(),
                action: "read".into(),
                scope: "space".into(),
                ..Default::default()
            },
            InlineGrant {
                role_id: Some("role_x".into()),
                role_key: Some("approver".into()),
                resource: "invoice".into(),
                action: "approve".into(),
                scope: "group".into(),
                scope_anchor_group_id: Some("group_apac".into()),
                ..Default::default()
            },
        ];
        let c = inline_candidates(&req(), &grants, &groups);
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].role.id.as_str(), c[0].role.key.as_str()), ("role_x", "approver"));
        assert_eq!(c[0].scope_anchor, Some(apac()));
        assert_eq!(c[1].role.key, "inline");
        assert_eq!(c[1].permission.id, "perm_inline_invoice_approve_group_tree");
        assert_eq!(c[1].scope_anchor.as_ref().map(|g| g.path.as_str()), Some("finance"));
        assert_eq!(c[1].member_role_space_id, "space_acme");
    }

    #[test]
    fn an_inline_actor_defaults_to_active_and_external() {
        let a = inline_actor(&req(), None);
        assert_eq!(a.user.as_ref().unwrap().status, "active");
        assert_eq!(a.user_member.as_ref().unwrap().relation_type, "external");
        assert_eq!(a.space.as_ref().unwrap().name, "space_acme");
        let meta = InlineActor { binding_status: Some("revoked".into()), ..Default::default() };
        assert_eq!(inline_actor(&req(), Some(&meta)).user_member.unwrap().status, "revoked");
    }
}
