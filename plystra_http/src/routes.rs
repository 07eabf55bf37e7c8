//! The route table: every route of the v1.0 Core API in one place, each with the access it needs (public, or
//! the admin permission key of docs/v1-reference.md §1.11). Method and path come from the handler's `#[utoipa::path]`
//! annotation, so the router and the OpenAPI document are built from the same facts. Each route also says what
//! it does to the database: `Reads` (a fresh read replica may answer), `Writes` (the primary answers, and the
//! answer carries a consistency token) or `Decides` (a read while decisions write no audit row).

use utoipa_axum::router::UtoipaMethodRouter;
use utoipa_axum::routes;

use crate::api::{
    admin_grants, api_keys, audit, auth, authz, authzen, groups, lookups, member_roles, members, permissions, registry,
    resources, role_permissions, roles, spaces, system, user_members, users,
};
use crate::app::AppState;
use crate::protection::Access;
use crate::protection::Access::{Admin, Decision, Own, Public};
use crate::protection::Row;
use crate::protection::ScopeFrom::{
    BodyCreation, Instance, PathResource, PathRow, PathSpace, QuerySpace, ResourceSearch, SubjectSearch,
};
use crate::replicas::Load;
use crate::replicas::Load::{Decides, Reads, Writes};

pub struct RouteDef {
    /// Whether a read replica may answer it (see `replicas`).
    pub load: Load,
    pub access: Access,
    pub route: UtoipaMethodRouter<AppState>,
}

impl RouteDef {
    /// (METHOD, path) pairs this entry serves.
    pub fn endpoints(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (path, item) in &self.route.1.paths {
            for (method, op) in [
                ("GET", &item.get),
                ("POST", &item.post),
                ("PUT", &item.put),
                ("PATCH", &item.patch),
                ("DELETE", &item.delete),
            ] {
                if op.is_some() {
                    out.push((method.to_string(), path.clone()));
                }
            }
        }
        out
    }
}

fn def(load: Load, access: Access, route: UtoipaMethodRouter<AppState>) -> RouteDef {
    RouteDef { load, access, route }
}

pub fn table() -> Vec<RouteDef> {
    vec![
        // System (public, docs/v1-reference.md §1.8)
        def(Reads, Public, routes!(system::health)),
        def(Reads, Public, routes!(system::ready)),
        def(Reads, Public, routes!(system::version)),
        def(Reads, Public, routes!(system::metrics)),
        def(Reads, Admin("instance:read", Instance), routes!(system::openapi_document)),
        def(Reads, Admin("instance:read", Instance), routes!(system::console_overview)),
        // Sessions: these check their own credentials (docs/v1-reference.md §1.8)
        def(Writes, Own, routes!(auth::login)),
        def(Writes, Own, routes!(auth::refresh)),
        def(Writes, Own, routes!(auth::logout)),
        def(Reads, Own, routes!(auth::me)),
        def(Reads, Own, routes!(auth::actor_context)),
        def(Writes, Own, routes!(auth::switch_member)),
        // Any credential reads its own standing.
        def(Reads, Own, routes!(auth::admin_me)),
        // AdminGrants
        def(Reads, Admin("admin_grants:read", Instance), routes!(admin_grants::list)),
        def(Writes, Admin("admin_grants:manage", BodyCreation), routes!(admin_grants::create)),
        def(Reads, Admin("admin_grants:read", PathRow(Row::AdminGrant)), routes!(admin_grants::get)),
        def(Writes, Admin("admin_grants:manage", PathRow(Row::AdminGrant)), routes!(admin_grants::revoke)),
        // API keys
        def(Reads, Admin("api_keys:read", Instance), routes!(api_keys::list)),
        def(Writes, Admin("api_keys:create", BodyCreation), routes!(api_keys::create)),
        def(Reads, Admin("api_keys:read", PathRow(Row::ApiKey)), routes!(api_keys::get)),
        def(Writes, Admin("api_keys:revoke", PathRow(Row::ApiKey)), routes!(api_keys::revoke)),
        // Authz
        def(Decides, Decision("authz:check"), routes!(authz::check)),
        def(Decides, Decision("authz:check"), routes!(authz::explain)),
        def(Decides, Decision("authz:check"), routes!(authz::check_batch)),
        // Lookups: who can act on a resource, what a binding can act on (an access review: authz:read on the
        // whole Space, apart from authz:check, which lets a service ask about one decision).
        def(Reads, Admin("authz:read", PathSpace), routes!(lookups::subjects)),
        def(Reads, Admin("authz:read", PathSpace), routes!(lookups::resources)),
        // A decision asked as any binding of the Space, without an audit row: an access review like the lookups.
        def(Reads, Admin("authz:read", PathSpace), routes!(lookups::simulate)),
        // The OpenID AuthZEN Authorization API: its evaluations and action search are decisions (through the gate,
        // like /authz/check); its subject and resource searches are the lookups (authz:read on the Space the body
        // names, placed by the protection seam). Its metadata document is public, as the standard publishes it.
        def(Decides, Decision("authz:check"), routes!(authzen::evaluation)),
        def(Decides, Decision("authz:check"), routes!(authzen::evaluations)),
        def(Reads, Admin("authz:read", SubjectSearch), routes!(authzen::search_subject)),
        def(Reads, Admin("authz:read", ResourceSearch), routes!(authzen::search_resource)),
        def(Decides, Decision("authz:check"), routes!(authzen::search_action)),
        def(Reads, Public, routes!(authzen::configuration)),
        // AuditLog
        def(Reads, Admin("audit:read", QuerySpace), routes!(audit::list)),
        def(Reads, Admin("audit:read", PathRow(Row::AuditLog)), routes!(audit::get)),
        def(Reads, Admin("audit:read", PathSpace), routes!(audit::list_in_space)),
        def(Reads, Admin("audit:read", PathSpace), routes!(audit::get_in_space)),
        // Replay reads like GET of the row (audit:read on its Space); asking for an audit row also needs
        // authz:check there, checked by the handler. It goes to the primary: an audited replay writes a row.
        def(Writes, Admin("audit:read", PathRow(Row::AuditLog)), routes!(audit::replay)),
        // Verifying a chain reads it, on a replica too.
        def(Reads, Admin("audit:read", PathSpace), routes!(audit::verify_chain)),
        // Users
        def(Reads, Admin("users:read", Instance), routes!(users::list)),
        def(Writes, Admin("users:manage", Instance), routes!(users::create)),
        def(Reads, Admin("users:read", Instance), routes!(users::get)),
        def(Writes, Admin("users:manage", Instance), routes!(users::patch)),
        def(Writes, Admin("users:manage", Instance), routes!(users::disable)),
        def(Writes, Admin("users:manage", Instance), routes!(users::restore)),
        // Spaces
        def(Reads, Admin("spaces:read", Instance), routes!(spaces::list)),
        def(Writes, Admin("spaces:manage", Instance), routes!(spaces::create)),
        def(Reads, Admin("spaces:read", PathSpace), routes!(spaces::get)),
        def(Writes, Admin("spaces:manage", PathSpace), routes!(spaces::patch)),
        def(Writes, Admin("spaces:manage", PathSpace), routes!(spaces::disable)),
        def(Writes, Admin("spaces:manage", PathSpace), routes!(spaces::restore)),
        // Groups
        def(Reads, Admin("groups:read", PathSpace), routes!(groups::list)),
        def(Writes, Admin("groups:manage", PathSpace), routes!(groups::create)),
        def(Reads, Admin("groups:read", PathSpace), routes!(groups::tree)),
        def(Reads, Admin("groups:read", PathSpace), routes!(groups::get)),
        def(Writes, Admin("groups:manage", PathSpace), routes!(groups::patch)),
        def(Writes, Admin("groups:manage", PathSpace), routes!(groups::disable)),
        def(Reads, Admin("groups:read", PathRow(Row::Group)), routes!(groups::get_alias)),
        // Members
        def(Reads, Admin("members:read", PathSpace), routes!(members::list)),
        def(Writes, Admin("members:manage", PathSpace), routes!(members::create)),
        def(Reads, Admin("members:read", PathSpace), routes!(members::get)),
        def(Writes, Admin("members:manage", PathSpace), routes!(members::patch)),
        def(Writes, Admin("members:manage", PathSpace), routes!(members::disable)),
        def(Reads, Admin("members:read", PathRow(Row::Member)), routes!(members::get_alias)),
        // Roles
        def(Reads, Admin("roles:read", PathSpace), routes!(roles::list)),
        def(Writes, Admin("roles:manage", PathSpace), routes!(roles::create)),
        def(Reads, Admin("roles:read", PathSpace), routes!(roles::get)),
        def(Writes, Admin("roles:manage", PathSpace), routes!(roles::patch)),
        def(Writes, Admin("roles:manage", PathSpace), routes!(roles::disable)),
        def(Reads, Admin("roles:read", PathRow(Row::Role)), routes!(roles::get_alias)),
        // UserMembers
        def(Reads, Admin("user_members:read", PathSpace), routes!(user_members::list)),
        def(Writes, Admin("user_members:manage", PathSpace), routes!(user_members::create)),
        def(Reads, Admin("user_members:read", PathSpace), routes!(user_members::get)),
        def(Writes, Admin("user_members:manage", PathSpace), routes!(user_members::patch)),
        def(Writes, Admin("user_members:manage", PathSpace), routes!(user_members::revoke)),
        def(Reads, Admin("user_members:read", PathRow(Row::UserMember)), routes!(user_members::get_alias)),
        // MemberRoles (and the member-role-grants segment)
        def(Reads, Admin("roles:read", PathSpace), routes!(member_roles::list)),
        def(Writes, Admin("roles:manage", PathSpace), routes!(member_roles::create)),
        def(Reads, Admin("roles:read", PathSpace), routes!(member_roles::get)),
        def(Writes, Admin("roles:manage", PathSpace), routes!(member_roles::revoke)),
        def(Reads, Admin("roles:read", PathSpace), routes!(member_roles::list_grants)),
        def(Writes, Admin("roles:manage", PathSpace), routes!(member_roles::create_grant)),
        def(Reads, Admin("roles:read", PathSpace), routes!(member_roles::get_grant)),
        def(Writes, Admin("roles:manage", PathSpace), routes!(member_roles::revoke_grant)),
        // Permissions
        def(Reads, Admin("permissions:read", Instance), routes!(permissions::list)),
        def(Writes, Admin("permissions:manage", Instance), routes!(permissions::create)),
        def(Reads, Admin("permissions:read", Instance), routes!(permissions::get)),
        def(Writes, Admin("permissions:manage", Instance), routes!(permissions::patch)),
        def(Writes, Admin("permissions:manage", Instance), routes!(permissions::disable)),
        // RolePermissions
        def(Reads, Admin("permissions:read", Instance), routes!(role_permissions::list)),
        def(Writes, Admin("permissions:manage", Instance), routes!(role_permissions::create)),
        def(Reads, Admin("permissions:read", Instance), routes!(role_permissions::get)),
        def(Writes, Admin("permissions:manage", Instance), routes!(role_permissions::delete)),
        def(Reads, Admin("roles:read", PathSpace), routes!(role_permissions::list_in_space)),
        def(Writes, Admin("roles:manage", PathSpace), routes!(role_permissions::create_in_space)),
        def(Reads, Admin("roles:read", PathSpace), routes!(role_permissions::get_in_space)),
        def(Writes, Admin("roles:manage", PathSpace), routes!(role_permissions::delete_in_space)),
        // Resource Registry
        def(Reads, Admin("registry:read", Instance), routes!(registry::list_types)),
        def(Writes, Admin("registry:manage", Instance), routes!(registry::upsert_type)),
        def(Reads, Admin("registry:read", Instance), routes!(registry::get_type)),
        def(Reads, Admin("registry:read", Instance), routes!(registry::list_actions)),
        def(Writes, Admin("registry:manage", Instance), routes!(registry::upsert_action)),
        def(Reads, Admin("registry:read", Instance), routes!(registry::get_mapping)),
        def(Writes, Admin("registry:manage", Instance), routes!(registry::post_mapping)),
        def(Writes, Admin("registry:manage", Instance), routes!(registry::patch_mapping)),
        def(Writes, Admin("registry:manage", Instance), routes!(registry::put_mapping)),
        // Resources
        def(Reads, Admin("resources:read", PathSpace), routes!(resources::list)),
        def(Writes, Admin("resources:manage", PathSpace), routes!(resources::create)),
        def(Reads, Admin("resources:read", PathSpace), routes!(resources::get)),
        def(Writes, Admin("resources:manage", PathSpace), routes!(resources::patch)),
        def(Writes, Admin("resources:manage", PathSpace), routes!(resources::archive)),
        def(Reads, Admin("resources:read", QuerySpace), routes!(resources::list_all)),
        def(Writes, Admin("resources:manage", Instance), routes!(resources::create_any)),
        def(Reads, Admin("resources:read", PathResource), routes!(resources::get_by_type)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protection::ScopeFrom;

    /// The row a path's `{id}` names, by the path's first segments.
    const ROW_PATHS: &[(&str, Row)] = &[
        ("/api/v1/groups/{id}", Row::Group),
        ("/api/v1/members/{id}", Row::Member),
        ("/api/v1/user-members/{id}", Row::UserMember),
        ("/api/v1/roles/{id}", Row::Role),
        ("/api/v1/audit/logs/{id}", Row::AuditLog),
        ("/api/v1/admin/grants/{id}", Row::AdminGrant),
        ("/api/v1/api-keys/{id}", Row::ApiKey),
    ];

    /// Instance-wide rows: their routes name no Space.
    const INSTANCE_ROW_PATHS: &[&str] = &[
        "/api/v1/users/{id}",
        "/api/v1/permissions/{id}",
        "/api/v1/role-permissions/{id}",
        "/api/v1/resource-types/{key}",
    ];

    /// Every admin route finds its scope where its path says the object lives: a route under a Space's path is
    /// checked on that Space, a route about a row on the row's Space, and only routes that name no Space are
    /// instance-wide. A new route that names a Space or a row but is checked elsewhere fails here.
    #[test]
    fn each_admin_route_finds_its_scope_where_its_path_names_it() {
        let mut seen = 0;
        for def in table() {
            let Access::Admin(permission, scope_from) = def.access else { continue };
            for (method, path) in def.endpoints() {
                seen += 1;
                let what = format!("{method} {path} ({permission}, {scope_from:?})");
                let under_space = path.starts_with("/api/v1/spaces/{space_id}");
                assert_eq!(under_space, scope_from == ScopeFrom::PathSpace, "{what}");
                let row = ROW_PATHS.iter().find(|(prefix, _)| path.starts_with(prefix)).map(|(_, row)| *row);
                match scope_from {
                    ScopeFrom::PathRow(r) => assert_eq!(row, Some(r), "{what}: the path names another row"),
                    _ => assert_eq!(row, None, "{what}: the path names a row whose Space must be checked"),
                }
                let names_resource = path.contains("{resource_type}");
                assert_eq!(names_resource, scope_from == ScopeFrom::PathResource, "{what}");
                match scope_from {
                    ScopeFrom::QuerySpace => assert!(method == "GET" && !path.contains('{'), "{what}"),
                    ScopeFrom::BodyCreation => assert!(method == "POST" && !path.contains('{'), "{what}"),
                    ScopeFrom::SubjectSearch | ScopeFrom::ResourceSearch => {
                        assert!(method == "POST" && path.starts_with("/access/v1/search/"), "{what}")
                    }
                    ScopeFrom::Instance => assert!(
                        !path.contains('{') || INSTANCE_ROW_PATHS.iter().any(|p| path.starts_with(p)),
                        "{what}: a path with parameters is instance-wide only for instance rows"
                    ),
                    _ => {}
                }
            }
        }
        assert!(seen > 90, "{seen}");
    }
}
