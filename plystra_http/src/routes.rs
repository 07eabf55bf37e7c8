//! The route table: every route of the v1.0 Core API in one place, each with the access it needs (public, or
//! the admin permission key of reference 1.11). Method and path come from the handler's `#[utoipa::path]`
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
        // System (public, reference 1.8)
        def(Reads, Public, routes!(system::health)),
        def(Reads, Public, routes!(system::ready)),
        def(Reads, Public, routes!(system::version)),
        def(Reads, Public, routes!(system::metrics)),
        def(Reads, Admin("instance:read"), routes!(system::openapi_document)),
        def(Reads, Admin("instance:read"), routes!(system::console_overview)),
        // Sessions: these check their own credentials (reference 1.8)
        def(Writes, Own, routes!(auth::login)),
        def(Writes, Own, routes!(auth::refresh)),
        def(Writes, Own, routes!(auth::logout)),
        def(Reads, Own, routes!(auth::me)),
        def(Reads, Own, routes!(auth::actor_context)),
        def(Writes, Own, routes!(auth::switch_member)),
        // Any credential reads its own standing.
        def(Reads, Own, routes!(auth::admin_me)),
        // AdminGrants
        def(Reads, Admin("admin_grants:read"), routes!(admin_grants::list)),
        def(Writes, Admin("admin_grants:manage"), routes!(admin_grants::create)),
        def(Reads, Admin("admin_grants:read"), routes!(admin_grants::get)),
        def(Writes, Admin("admin_grants:manage"), routes!(admin_grants::revoke)),
        // API keys
        def(Reads, Admin("api_keys:read"), routes!(api_keys::list)),
        def(Writes, Admin("api_keys:create"), routes!(api_keys::create)),
        def(Reads, Admin("api_keys:read"), routes!(api_keys::get)),
        def(Writes, Admin("api_keys:revoke"), routes!(api_keys::revoke)),
        // Authz
        def(Decides, Decision("authz:check"), routes!(authz::check)),
        def(Decides, Decision("authz:check"), routes!(authz::explain)),
        def(Decides, Decision("authz:check"), routes!(authz::check_batch)),
        // Lookups: who can act on a resource, what a binding can act on (an access review: authz:read on the
        // whole Space, apart from authz:check, which lets a service ask about one decision).
        def(Reads, Admin("authz:read"), routes!(lookups::subjects)),
        def(Reads, Admin("authz:read"), routes!(lookups::resources)),
        // The OpenID AuthZEN Authorization API: its evaluations and action search are decisions (through the gate,
        // like /authz/check); its subject and resource searches are the lookups (authz:read on the Space the body
        // names, placed by the protection seam). Its metadata document is public, as the standard publishes it.
        def(Decides, Decision("authz:check"), routes!(authzen::evaluation)),
        def(Decides, Decision("authz:check"), routes!(authzen::evaluations)),
        def(Reads, Admin("authz:read"), routes!(authzen::search_subject)),
        def(Reads, Admin("authz:read"), routes!(authzen::search_resource)),
        def(Decides, Decision("authz:check"), routes!(authzen::search_action)),
        def(Reads, Public, routes!(authzen::configuration)),
        // AuditLog
        def(Reads, Admin("audit:read"), routes!(audit::list)),
        def(Reads, Admin("audit:read"), routes!(audit::get)),
        def(Reads, Admin("audit:read"), routes!(audit::list_in_space)),
        def(Reads, Admin("audit:read"), routes!(audit::get_in_space)),
        // Replay reads like GET of the row (audit:read on its Space); asking for an audit row also needs
        // authz:check there, checked by the handler. It goes to the primary: an audited replay writes a row.
        def(Writes, Admin("audit:read"), routes!(audit::replay)),
        // Verifying a chain reads it, on a replica too.
        def(Reads, Admin("audit:read"), routes!(audit::verify_chain)),
        // Users
        def(Reads, Admin("users:read"), routes!(users::list)),
        def(Writes, Admin("users:manage"), routes!(users::create)),
        def(Reads, Admin("users:read"), routes!(users::get)),
        def(Writes, Admin("users:manage"), routes!(users::patch)),
        def(Writes, Admin("users:manage"), routes!(users::disable)),
        def(Writes, Admin("users:manage"), routes!(users::restore)),
        // Spaces
        def(Reads, Admin("spaces:read"), routes!(spaces::list)),
        def(Writes, Admin("spaces:manage"), routes!(spaces::create)),
        def(Reads, Admin("spaces:read"), routes!(spaces::get)),
        def(Writes, Admin("spaces:manage"), routes!(spaces::patch)),
        def(Writes, Admin("spaces:manage"), routes!(spaces::disable)),
        def(Writes, Admin("spaces:manage"), routes!(spaces::restore)),
        // Groups
        def(Reads, Admin("groups:read"), routes!(groups::list)),
        def(Writes, Admin("groups:manage"), routes!(groups::create)),
        def(Reads, Admin("groups:read"), routes!(groups::tree)),
        def(Reads, Admin("groups:read"), routes!(groups::get)),
        def(Writes, Admin("groups:manage"), routes!(groups::patch)),
        def(Writes, Admin("groups:manage"), routes!(groups::disable)),
        def(Reads, Admin("groups:read"), routes!(groups::get_alias)),
        // Members
        def(Reads, Admin("members:read"), routes!(members::list)),
        def(Writes, Admin("members:manage"), routes!(members::create)),
        def(Reads, Admin("members:read"), routes!(members::get)),
        def(Writes, Admin("members:manage"), routes!(members::patch)),
        def(Writes, Admin("members:manage"), routes!(members::disable)),
        def(Reads, Admin("members:read"), routes!(members::get_alias)),
        // Roles
        def(Reads, Admin("roles:read"), routes!(roles::list)),
        def(Writes, Admin("roles:manage"), routes!(roles::create)),
        def(Reads, Admin("roles:read"), routes!(roles::get)),
        def(Writes, Admin("roles:manage"), routes!(roles::patch)),
        def(Writes, Admin("roles:manage"), routes!(roles::disable)),
        def(Reads, Admin("roles:read"), routes!(roles::get_alias)),
        // UserMembers
        def(Reads, Admin("user_members:read"), routes!(user_members::list)),
        def(Writes, Admin("user_members:manage"), routes!(user_members::create)),
        def(Reads, Admin("user_members:read"), routes!(user_members::get)),
        def(Writes, Admin("user_members:manage"), routes!(user_members::patch)),
        def(Writes, Admin("user_members:manage"), routes!(user_members::revoke)),
        def(Reads, Admin("user_members:read"), routes!(user_members::get_alias)),
        // MemberRoles (and the member-role-grants segment)
        def(Reads, Admin("roles:read"), routes!(member_roles::list)),
        def(Writes, Admin("roles:manage"), routes!(member_roles::create)),
        def(Reads, Admin("roles:read"), routes!(member_roles::get)),
        def(Writes, Admin("roles:manage"), routes!(member_roles::revoke)),
        def(Reads, Admin("roles:read"), routes!(member_roles::list_grants)),
        def(Writes, Admin("roles:manage"), routes!(member_roles::create_grant)),
        def(Reads, Admin("roles:read"), routes!(member_roles::get_grant)),
        def(Writes, Admin("roles:manage"), routes!(member_roles::revoke_grant)),
        // Permissions
        def(Reads, Admin("permissions:read"), routes!(permissions::list)),
        def(Writes, Admin("permissions:manage"), routes!(permissions::create)),
        def(Reads, Admin("permissions:read"), routes!(permissions::get)),
        def(Writes, Admin("permissions:manage"), routes!(permissions::patch)),
        def(Writes, Admin("permissions:manage"), routes!(permissions::disable)),
        // RolePermissions
        def(Reads, Admin("permissions:read"), routes!(role_permissions::list)),
        def(Writes, Admin("permissions:manage"), routes!(role_permissions::create)),
        def(Reads, Admin("permissions:read"), routes!(role_permissions::get)),
        def(Writes, Admin("permissions:manage"), routes!(role_permissions::delete)),
        def(Reads, Admin("roles:read"), routes!(role_permissions::list_in_space)),
        def(Writes, Admin("roles:manage"), routes!(role_permissions::create_in_space)),
        def(Reads, Admin("roles:read"), routes!(role_permissions::get_in_space)),
        def(Writes, Admin("roles:manage"), routes!(role_permissions::delete_in_space)),
        // Resource Registry
        def(Reads, Admin("registry:read"), routes!(registry::list_types)),
        def(Writes, Admin("registry:manage"), routes!(registry::upsert_type)),
        def(Reads, Admin("registry:read"), routes!(registry::get_type)),
        def(Reads, Admin("registry:read"), routes!(registry::list_actions)),
        def(Writes, Admin("registry:manage"), routes!(registry::upsert_action)),
        def(Reads, Admin("registry:read"), routes!(registry::get_mapping)),
        def(Writes, Admin("registry:manage"), routes!(registry::post_mapping)),
        def(Writes, Admin("registry:manage"), routes!(registry::patch_mapping)),
        def(Writes, Admin("registry:manage"), routes!(registry::put_mapping)),
        // Resources
        def(Reads, Admin("resources:read"), routes!(resources::list)),
        def(Writes, Admin("resources:manage"), routes!(resources::create)),
        def(Reads, Admin("resources:read"), routes!(resources::get)),
        def(Writes, Admin("resources:manage"), routes!(resources::patch)),
        def(Writes, Admin("resources:manage"), routes!(resources::archive)),
        def(Reads, Admin("resources:read"), routes!(resources::list_all)),
        def(Writes, Admin("resources:manage"), routes!(resources::create_any)),
        def(Reads, Admin("resources:read"), routes!(resources::get_by_type)),
    ]
}
