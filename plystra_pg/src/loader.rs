//! Loading a decision's context: the actor tuple, the Space, the Resource Registry entries, the target resource
//! and its group, and every candidate grant, each read by an index probe (see `probe`) under one snapshot.
//!
//! Which rows count is the rule of the decision contract, written once here:
//! - the User, Member, UserMember binding, Space, target resource and groups must not be deleted;
//! - the target resource must be `active` and of the requested type; its group and a grant's anchor must be
//!   `active` (an archived resource is not found, an inactive target group is missing, an inactive anchor
//!   confers nothing);
//! - a candidate is an `active`, not-deleted MemberRole grant of the requested Member whose Role is `active` and
//!   not deleted, joined by a not-deleted RolePermission to an `active`, not-deleted Permission for exactly the
//!   requested resource type and action.
//!
//! A pg_test compares every context with the one the SQL statement of `loader_oracle` loads.

use std::collections::HashMap;
use std::rc::Rc;

use plystra_core::inline::{ignored_fields, inline_actor, inline_candidates, inline_target, CoreGroup, GroupLookup};
use plystra_core::model::*;
use serde_json::Value;

use crate::actor_kept::{self, Grant};
use crate::catalog::{Catalog, TypeAction as TypeAndAction};
use crate::group_shared;
use crate::probe::{statement_unix_micros, Reader, Row};

fn not_deleted(row: &Row) -> bool {
    row.is_null("deleted_at")
}

fn live(row: &Row) -> bool {
    not_deleted(row) && row.text_is("status", ACTIVE)
}

/// Metadata, read as text: a value nested deeper than serde reads (PostgreSQL allows far more) is shown as a
/// note in the trace instead of failing the decision.
fn metadata(row: &Row, with_metadata: bool) -> Option<Value> {
    if !with_metadata {
        return None;
    }
    let text = row.jsonb_text("metadata")?;
    Some(serde_json::from_str(&text).unwrap_or_else(|_| Value::from("(metadata too deeply nested to show)")))
}

fn group(row: &Row) -> Group {
    Group {
        id: row.text_or_empty("id"),
        space_id: row.text_or_empty("space_id"),
        path: row.text_or_empty("path"),
        status: row.text_or_empty("status"),
    }
}

/// A live group by id (deleted or inactive groups place and scope nothing).
fn group_by_id(reader: &Reader, id: &str) -> Option<Group> {
    reader.one(c"groups", c"groups_pkey", &[id], |row| live(row).then(|| group(row)))
}

/// A live group by id, read on its own (an application row's group).
pub fn live_group(id: &str) -> Option<Group> {
    group_by_id(&Reader::begin(), id)
}

/// A live group by its path in `space_id`.
pub fn live_group_by_path(space_id: &str, path: &str) -> Option<Group> {
    group_by_path(&Reader::begin(), space_id, path)
}

fn group_by_path(reader: &Reader, space_id: &str, path: &str) -> Option<Group> {
    reader.one(c"groups", c"groups_space_path_key", &[space_id, path], |row| live(row).then(|| group(row)))
}

/// The groups a Context Mode request names are Core's when Core holds them (live or not).
impl GroupLookup for Reader {
    fn by_id(&self, id: &str) -> CoreGroup {
        core_group(self.one(c"groups", c"groups_pkey", &[id], |row| Some(live(row).then(|| group(row)))))
    }
    fn by_path(&self, space_id: &str, path: &str) -> CoreGroup {
        core_group(
            self.one(c"groups", c"groups_space_path_key", &[space_id, path], |row| Some(live(row).then(|| group(row)))),
        )
    }
}

fn core_group(found: Option<Option<Group>>) -> CoreGroup {
    match found {
        Some(Some(group)) => CoreGroup::Live(group),
        Some(None) => CoreGroup::NotLive,
        None => CoreGroup::Absent,
    }
}

/// What is read here of a User (id, email, status, deleted_at) is what migration 014's trigger compares before it
/// moves a User's Spaces' actor versions (`actor_kept`): a column read here must be added there too.
fn actor(reader: &Reader, req: &Request) -> Actor {
    let user = reader.one(c"users", c"users_pkey", &[&req.user_id], |row| {
        not_deleted(row).then(|| User {
            id: row.text_or_empty("id"),
            email: row.text_or_empty("email"),
            status: row.text_or_empty("status"),
        })
    });
    let member = reader.one(c"members", c"members_pkey", &[&req.member_id], |row| {
        not_deleted(row).then(|| Member {
            id: row.text_or_empty("id"),
            space_id: row.text_or_empty("space_id"),
            display_name: row.text_or_empty("display_name"),
            status: row.text_or_empty("status"),
        })
    });
    let user_member = reader.one(c"user_members", c"user_members_pkey", &[&req.user_member_id], |row| {
        not_deleted(row).then(|| UserMember {
            id: row.text_or_empty("id"),
            user_id: row.text_or_empty("user_id"),
            member_id: row.text_or_empty("member_id"),
            space_id: row.text_or_empty("space_id"),
            relation_type: row.text_or_empty("relation_type"),
            status: row.text_or_empty("status"),
            is_primary: row.boolean("is_primary"),
            expires_at: row.unix_micros("expires_at").map(Timestamp::from_unix_micros),
        })
    });
    let space = reader.one(c"spaces", c"spaces_pkey", &[&req.space_id], |row| {
        not_deleted(row).then(|| Space {
            id: row.text_or_empty("id"),
            name: row.text_or_empty("name"),
            status: row.text_or_empty("status"),
        })
    });
    Actor { user, member, user_member, space }
}

/// The resource type and action entries of the request, kept between decisions by `catalog`, with their metadata
/// when a trace needs it (kept apart: a decision without a trace never copies metadata).
fn type_and_action(reader: &Reader, catalog: &Catalog, req: &Request, with_metadata: bool) -> TypeAndAction {
    let load = || {
        let resource_type = reader.one(c"resource_types", c"resource_types_key_key", &[&req.resource_type], |row| {
            Some(ResourceType {
                id: row.text_or_empty("id"),
                key: row.text_or_empty("key"),
                display_name: row.text_or_empty("display_name"),
                description: row.text("description"),
                status: row.text_or_empty("status"),
                source: row.text_or_empty("source"),
                metadata: metadata(row, with_metadata),
            })
        });
        let action = resource_type.as_ref().and_then(|t| {
            reader.one(c"resource_actions", c"resource_actions_type_key_key", &[&t.id, &req.action], |row| {
                Some(ResourceAction {
                    id: row.text_or_empty("id"),
                    resource_type_id: row.text_or_empty("resource_type_id"),
                    key: row.text_or_empty("key"),
                    display_name: row.text_or_empty("display_name"),
                    description: row.text("description"),
                    risk_level: row.text_or_empty("risk_level"),
                    audit_default: row.boolean("audit_default"),
                    metadata: metadata(row, with_metadata),
                })
            })
        });
        (resource_type, action)
    };
    catalog.registry(&req.resource_type, &req.action, with_metadata, load)
}

/// `with_mapping`: whether the type's mapping is read (a trace shows it; an inline resource is read through it).
fn registry(reader: &Reader, catalog: &Catalog, req: &Request, with_metadata: bool, with_mapping: bool) -> Registry {
    let (resource_type, action) = type_and_action(reader, catalog, req, with_metadata);
    let Some(type_id) = resource_type.as_ref().map(|t| t.id.clone()) else {
        return Registry { resource_type, action: None, mapping: None };
    };
    // The mapping says how a type's rows expose their Space, group and owner; a Core resource's placement is
    // already in its row, so only a trace or an inline resource needs it.
    if !with_mapping {
        return Registry { resource_type, action, mapping: None };
    }
    let read = || {
        reader.one(c"resource_mappings", c"resource_mappings_type_key", &[&type_id], |row| {
            Some(ResourceMapping {
                id: row.text_or_empty("id"),
                resource_type_id: row.text_or_empty("resource_type_id"),
                storage_kind: row.text_or_empty("storage_kind"),
                table_name: row.text("table_name"),
                id_field: row.text_or_empty("id_field"),
                space_field: row.text_or_empty("space_field"),
                group_field: row.text("group_field"),
                owner_member_field: row.text("owner_member_field"),
                visibility_field: row.text("visibility_field"),
                metadata_field: row.text("metadata_field"),
                status: row.text_or_empty("status"),
                metadata: metadata(row, with_metadata),
            })
        })
    };
    let mapping = catalog.mapping(&type_id, with_metadata, read);
    Registry { resource_type, action, mapping }
}

/// The resource row `id`, read by `read`: through the hash index on the id (migration 018) when the schema has it,
/// else through the primary key. Every reading of a resource by its id goes through here.
pub fn resource_row<T>(reader: &Reader, id: &str, read: impl FnOnce(&Row) -> Option<T>) -> Option<T> {
    reader.one(c"resources", reader.index_or(c"resources_id_hash", c"resources_pkey"), &[id], read)
}

/// The resource row with this id, if it is of the requested type: `Some(None)` when such a row exists but is not
/// live (deleted, archived), so that an inline description can never stand in for a row Core holds. Its group is
/// read by `group_of` (a live group by id).
fn core_target(
    reader: &Reader,
    req: &Request,
    with_metadata: bool,
    group_of: impl FnOnce(&str) -> Option<Group>,
) -> Option<Option<Target>> {
    let resource = resource_row(reader, &req.resource_id, |row| {
        row.text_is("resource_type", &req.resource_type).then(|| {
            live(row).then(|| Resource {
                id: row.text_or_empty("id"),
                external_id: row.text("external_id"),
                resource_type: row.text_or_empty("resource_type"),
                space_id: row.text_or_empty("space_id"),
                group_id: row.text("group_id"),
                owner_member_id: row.text("owner_member_id"),
                display_name: row.text("display_name"),
                visibility: row.text("visibility"),
                status: row.text("status"),
                metadata: metadata(row, with_metadata),
            })
        })
    })?;
    Some(resource.map(|resource| {
        let group = resource.group_id.as_deref().and_then(group_of);
        Target { resource, group }
    }))
}

/// Live groups by id, each read once per loading: a batch's items often lie in the same group. Under the one
/// snapshot of the loading, a group read again would be the same row. A group not yet seen comes from the groups
/// the server's backends share when the request's Space's version allows (`group_shared`), else from the table.
struct GroupMemo {
    seen: HashMap<String, Option<Group>>,
    kept_under: Option<group_shared::Under>,
}

impl GroupMemo {
    fn get(&mut self, reader: &Reader, id: &str) -> Option<Group> {
        if let Some(known) = self.seen.get(id) {
            return known.clone();
        }
        let group = group_shared::kept_or_read(self.kept_under.as_ref(), id, || group_by_id(reader, id));
        self.seen.insert(id.to_string(), group.clone());
        group
    }
}

/// The target and, for a request with inline context, what came inline. A registered resource is always Core's
/// (its inline fields are ignored, and listed); an unregistered one described inline is built from the request.
fn target(
    reader: &Reader,
    req: &Request,
    with_metadata: bool,
    registry: &Registry,
    groups: &mut GroupMemo,
) -> (Option<Target>, Option<ContextMode>) {
    let inline = req.inline.as_deref();
    let mut mode =
        inline.map(|i| ContextMode { actor_inline: i.is_pure(), grants_inline: i.is_pure(), ..ContextMode::default() });
    let described = inline.and_then(|i| i.resource.as_ref());
    let target = match (core_target(reader, req, with_metadata, |id| groups.get(reader, id)), described) {
        (Some(core), described) => {
            if let (Some(mode), Some(d)) = (mode.as_mut(), described) {
                mode.ignored = ignored_fields(d);
            }
            core
        }
        (None, Some(d)) => {
            if let Some(mode) = mode.as_mut() {
                mode.target_inline = true;
            }
            Some(inline_target(req, d, registry.mapping.as_ref(), reader))
        }
        (None, None) => None,
    };
    (target, mode)
}

/// The Member's live grants (anchors not yet read).
fn member_grants(reader: &Reader, member_id: &str) -> Vec<Grant> {
    let mut grants = Vec::new();
    reader.probe(c"member_roles", c"member_roles_member_role_anchor_key", &[member_id], |row| {
        if live(row) {
            grants.push(Grant {
                id: row.text_or_empty("id"),
                role_id: row.text_or_empty("role_id"),
                space_id: row.text_or_empty("space_id"),
                anchor_id: row.text("scope_anchor_group_id"),
                anchor: None,
            });
        }
        true
    });
    grants
}

/// The Member's live grants with each anchor read (for `actor_kept`), and the Space of each anchor group, live or
/// not (`None` for a group not found).
fn member_grants_with_anchors(reader: &Reader, member_id: &str) -> (Vec<Grant>, Vec<Option<String>>) {
    let mut grants = member_grants(reader, member_id);
    let mut anchor_spaces = Vec::new();
    for grant in &mut grants {
        let Some(id) = grant.anchor_id.as_deref() else {
            grant.anchor = Some(None);
            continue;
        };
        let found = reader.one(c"groups", c"groups_pkey", &[id], |row| {
            Some((row.text_or_empty("space_id"), live(row).then(|| group(row))))
        });
        anchor_spaces.push(found.as_ref().map(|(space, _)| space.clone()));
        grant.anchor = Some(found.and_then(|(_, group)| group));
    }
    (grants, anchor_spaces)
}

/// `kept_grants`: the Member's grants with their anchors when `actor_kept` has them (kept, or read with the actor).
fn candidates(reader: &Reader, catalog: &Catalog, req: &Request, kept_grants: Option<&[Grant]>) -> Vec<Candidate> {
    if let Some(inline) = req.inline.as_deref().filter(|i| i.is_pure()) {
        return inline_candidates(req, inline.grants.as_deref().unwrap_or_default(), reader);
    }
    // The live permissions for exactly this type and action (one a scope): usually one to three. None means no
    // grant can match, and the Member's grants need not be read at all.
    let permissions = catalog.permissions(&req.resource_type, &req.action, || {
        let mut permissions = Vec::new();
        let keys = [req.resource_type.as_str(), req.action.as_str()];
        reader.probe(c"permissions", c"permissions_resource_action_scope_key", &keys, |row| {
            if live(row) {
                permissions.push(Permission {
                    id: row.text_or_empty("id"),
                    resource: row.text_or_empty("resource"),
                    action: row.text_or_empty("action"),
                    scope: row.text_or_empty("scope"),
                });
            }
            true
        });
        permissions
    });
    if permissions.is_empty() {
        return Vec::new();
    }
    let read;
    let grants: &[Grant] = match kept_grants {
        Some(kept) => kept,
        None => {
            read = member_grants(reader, &req.member_id);
            &read
        }
    };
    // A Member may hold one Role through many grants (one an anchor): each Role and its permissions are read once.
    let mut roles: HashMap<String, Option<(Role, Vec<Permission>)>> = HashMap::new();
    let mut out = Vec::new();
    for grant in grants {
        let role = roles.entry(grant.role_id.clone()).or_insert_with(|| {
            let role = catalog.role(&grant.role_id, || {
                reader.one(c"roles", c"roles_pkey", &[&grant.role_id], |row| {
                    live(row).then(|| Role {
                        id: row.text_or_empty("id"),
                        key: row.text_or_empty("key"),
                        space_id: row.text_or_empty("space_id"),
                    })
                })
            })?;
            // Each matching permission the Role holds through a not-deleted RolePermission: one exact probe each
            // when the catalog is not kept yet.
            let held: Vec<Permission> = permissions
                .iter()
                .filter(|p| {
                    catalog.holds(&role.id, &p.id, || {
                        let keys = [role.id.as_str(), p.id.as_str()];
                        let mut held = false;
                        reader.probe(c"role_permissions", c"role_permissions_role_permission_key", &keys, |row| {
                            held |= not_deleted(row);
                            !held
                        });
                        held
                    })
                })
                .cloned()
                .collect();
            Some((role, held))
        });
        let Some((role, held)) = role else { continue };
        if held.is_empty() {
            continue;
        }
        let anchor = match &grant.anchor {
            Some(anchor) => anchor.clone(),
            None => grant.anchor_id.as_deref().and_then(|id| group_by_id(reader, id)),
        };
        for permission in held {
            out.push(Candidate {
                member_role_id: grant.id.clone(),
                role: role.clone(),
                permission: permission.clone(),
                scope_anchor: anchor.clone(),
                member_role_space_id: grant.space_id.clone(),
            });
        }
    }
    // The contract's order (role key, resource, action, scope, grant id), compared bytewise so that it does not
    // depend on the database's collation.
    out.sort_by(|a, b| {
        (&a.role.key, &a.permission.resource, &a.permission.action, &a.permission.scope, &a.member_role_id).cmp(&(
            &b.role.key,
            &b.permission.resource,
            &b.permission.action,
            &b.permission.scope,
            &b.member_role_id,
        ))
    });
    out
}

/// Loads everything `req` needs under one snapshot.
/// `with_metadata`: whether what only a trace shows is read too (the metadata of the target and registry entries,
/// the type's mapping).
pub fn load_context(req: &Request, with_metadata: bool) -> Context {
    let mut loader = ActorLoader::begin(req, with_metadata);
    loader.load(req);
    loader.into_context()
}

/// Whether a request's registry entries must include the type's mapping.
fn needs_mapping(req: &Request, with_metadata: bool) -> bool {
    with_metadata || req.inline.as_ref().is_some_and(|i| i.resource.is_some())
}

/// What the registry entries and candidates were loaded for: (resource type, action, with the mapping).
type TypeAction = (String, String, bool);

/// The loading of one actor's decisions under one snapshot: `plystra.check` uses it for one request, a batch
/// (`plystra.check_batch`) for all its items. The actor tuple (user, member, binding, Space) is read once (or,
/// for a pure-inline request, built from it); the registry entries and candidate grants once per (resource
/// type, action); the target once per item, each group once. Every request given to [`ActorLoader::load`] must
/// name the actor given to [`ActorLoader::begin`].
///
/// The loader holds one context and loads each request into it in place: the actor is never copied, and the
/// registry entries and candidates of the current (type, action) stay where they are while consecutive items
/// share it (a batch's items usually do), instead of being copied for every item.
pub struct ActorLoader {
    reader: Reader,
    catalog: Catalog,
    /// The Member's grants with their anchors, when `actor_kept` kept them or read them with the actor.
    grants: Option<Rc<[Grant]>>,
    with_metadata: bool,
    ctx: Context,
    /// What `ctx.registry` and `ctx.candidates` hold, when it may be kept (never for a pure-inline request).
    current: Option<TypeAction>,
    /// The registry entries and candidates of the other (type, action) pairs seen so far.
    by_type_action: HashMap<TypeAction, (Registry, Vec<Candidate>)>,
    groups: GroupMemo,
}

impl ActorLoader {
    pub fn begin(req: &Request, with_metadata: bool) -> ActorLoader {
        let reader = Reader::begin();
        let catalog = Catalog::validate(&reader);
        let (actor, grants, kept_under) = match req.inline.as_deref().filter(|i| i.is_pure()) {
            Some(inline) => (Rc::new(inline_actor(req, inline.actor.as_ref())), None, None),
            None => {
                let loaded = actor_kept::load(
                    &reader,
                    req,
                    || actor(&reader, req),
                    || member_grants_with_anchors(&reader, &req.member_id),
                );
                (loaded.actor, loaded.grants, loaded.kept_under)
            }
        };
        ActorLoader {
            reader,
            catalog,
            grants,
            with_metadata,
            ctx: Context { actor, now_micros: statement_unix_micros(), ..Context::default() },
            current: None,
            by_type_action: HashMap::new(),
            groups: GroupMemo { seen: HashMap::new(), kept_under },
        }
    }

    /// The context of `req`, loaded in place: the actor loaded once, the registry and candidates memoised, its
    /// target. Valid until the next `load`.
    pub fn load(&mut self, req: &Request) -> &Context {
        let with_mapping = needs_mapping(req, self.with_metadata);
        let pure_inline = req.inline.as_ref().is_some_and(|i| i.is_pure());
        let same = !pure_inline
            && self
                .current
                .as_ref()
                .is_some_and(|(t, a, m)| *t == req.resource_type && *a == req.action && *m == with_mapping);
        if !same {
            let loaded = (std::mem::take(&mut self.ctx.registry), std::mem::take(&mut self.ctx.candidates));
            if let Some(previous) = self.current.take() {
                self.by_type_action.insert(previous, loaded);
            }
            let key = (req.resource_type.clone(), req.action.clone(), with_mapping);
            let kept = if pure_inline { None } else { self.by_type_action.remove(&key) };
            (self.ctx.registry, self.ctx.candidates) = kept.unwrap_or_else(|| {
                let registry = registry(&self.reader, &self.catalog, req, self.with_metadata, with_mapping);
                (registry, candidates(&self.reader, &self.catalog, req, self.grants.as_deref()))
            });
            self.current = (!pure_inline).then_some(key);
        }
        let (target, context_mode) =
            target(&self.reader, req, self.with_metadata, &self.ctx.registry, &mut self.groups);
        self.ctx.target = target;
        self.ctx.context_mode = context_mode;
        &self.ctx
    }

    /// The context last loaded, the reading closed.
    pub fn into_context(self) -> Context {
        let ActorLoader { ctx, .. } = self;
        ctx
    }
}

/// Resolves the binding of an actor named by its User alone (`ActorNaming::ByUser`): among the User's
/// not-deleted bindings (in the request's Space when it names one, else in `within_space` when given), the only
/// one; else the one usable (`plystra.usable_bindings`) and primary; else the only usable one. The request then names that binding
/// (`Resolved`), or is left unresolved as `Unbound` (no binding) or `Ambiguous`.
pub fn resolve_binding(req: &mut Request, within_space: Option<&str>) {
    if req.actor_naming != ActorNaming::ByUser {
        return;
    }
    let space = Some(req.space_id.as_str()).filter(|s| !s.is_empty()).or(within_space);
    match binding_of_user(&req.user_id, space) {
        Resolution::Found { member_id, user_member_id, space_id } => {
            req.member_id = member_id;
            req.user_member_id = user_member_id;
            req.space_id = space_id;
            req.actor_naming = ActorNaming::Resolved;
        }
        Resolution::None => req.actor_naming = ActorNaming::Unbound,
        Resolution::Ambiguous => req.actor_naming = ActorNaming::Ambiguous,
    }
}

pub enum Resolution {
    Found { member_id: String, user_member_id: String, space_id: String },
    None,
    Ambiguous,
}

/// A User's bindings that could be the acting one (at most 1,000 are considered: more is ambiguous anyway).
const USER_BINDINGS_SQL: &str = "\
SELECT um.id, um.member_id, um.space_id, um.is_primary,
       EXISTS (SELECT 1 FROM plystra.usable_bindings ub WHERE ub.id = um.id)
FROM plystra.user_members um
WHERE um.user_id = $1 AND um.deleted_at IS NULL AND ($2::text IS NULL OR um.space_id = $2)
ORDER BY um.id LIMIT 1000";

/// The rule of [`resolve_binding`], for `plystra.resolve_actor` too.
pub fn binding_of_user(user_id: &str, space_id: Option<&str>) -> Resolution {
    struct Binding {
        id: String,
        member_id: String,
        space_id: String,
        primary: bool,
        usable: bool,
    }
    let bindings: Vec<Binding> = pgrx::Spi::connect(|client| {
        let args = [user_id.into(), space_id.into()];
        crate::kept::select(client, USER_BINDINGS_SQL, &[crate::kept::TEXT; 2], None, &args, |rows| {
            rows.map(|row| Binding {
                id: row.get::<String>(1).ok().flatten().unwrap_or_default(),
                member_id: row.get::<String>(2).ok().flatten().unwrap_or_default(),
                space_id: row.get::<String>(3).ok().flatten().unwrap_or_default(),
                primary: row.get::<bool>(4).ok().flatten().unwrap_or(false),
                usable: row.get::<bool>(5).ok().flatten().unwrap_or(false),
            })
            .collect()
        })
    });
    let found = |b: &Binding| Resolution::Found {
        member_id: b.member_id.clone(),
        user_member_id: b.id.clone(),
        space_id: b.space_id.clone(),
    };
    if let [only] = bindings.as_slice() {
        return found(only);
    }
    let usable: Vec<&Binding> = bindings.iter().filter(|b| b.usable).collect();
    let primary: Vec<&&Binding> = usable.iter().filter(|b| b.primary).collect();
    match (bindings.is_empty(), primary.as_slice(), usable.as_slice()) {
        (true, _, _) => Resolution::None,
        (_, [one], _) => found(one),
        (_, [], [one]) => found(one),
        _ => Resolution::Ambiguous,
    }
}

/// Where a Context Mode request's inline objects lie, for the REST front's gate: each is a (Space, Core group)
/// scope the credential must hold. A group only the request knows (a synthesised path) places at its Space.
#[derive(Default)]
pub struct InlinePlacements {
    /// The inline target's, when the resource is not registered.
    pub target: Option<(String, Option<String>)>,
    /// Every inline grant's (its Space, its anchor when Core holds it).
    pub grants: Vec<(String, Option<String>)>,
}

pub fn inline_placements(req: &Request) -> InlinePlacements {
    let Some(inline) = req.inline.as_deref() else { return InlinePlacements::default() };
    let reader = Reader::begin();
    let in_core = |g: Group| group_by_id(&reader, &g.id).map(|g| g.id);
    let registered = || core_target(&reader, req, false, |id| group_by_id(&reader, id)).is_some();
    let target = inline.resource.as_ref().filter(|_| !registered()).map(|d| {
        let registry = registry(&reader, &Catalog::validate(&reader), req, false, true);
        let t = inline_target(req, d, registry.mapping.as_ref(), &reader);
        (t.resource.space_id, t.group.and_then(in_core))
    });
    let grants = inline
        .grants
        .iter()
        .flatten()
        .map(|g| {
            let space = g.space_id.clone().unwrap_or_else(|| req.space_id.clone());
            let anchor = match (&g.scope_anchor_group_id, &g.scope_anchor_group_path) {
                (Some(id), _) => group_by_id(&reader, id),
                (None, Some(path)) => group_by_path(&reader, &space, path),
                (None, None) => None,
            };
            (space, anchor.map(|a| a.id))
        })
        .collect();
    InlinePlacements { target, grants }
}
