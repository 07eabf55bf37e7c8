//! The route table: every route of the v1.0 Core API in one place, each with the access it needs (public, or
//! the admin permission key of reference 1.11). Method and path come from the handler's `#[utoipa::path]`
//! annotation, so the router and the OpenAPI document are built from the same facts.

use utoipa_axum::router::UtoipaMethodRouter;
use utoipa_axum::routes;

use crate::api::{
    admin_grants, api_keys, audit, auth, authz, authzen, groups, lookups, member_roles, members, permissions, registry,
    resources, role_permissions, roles, spaces, system, user_members, users,
};
use crate::app::AppState;
use crate::protection::Access;
use crate::protection::Access::{Admin, Decision, Own, Public};

pub struct RouteDef {
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

fn def(access: Access, route: UtoipaMethodRouter<AppState>) -> RouteDef {
    RouteDef { access, route }
}

pub fn table() -> Vec<RouteDef> {
    vec![
        // System (public, reference 1.8)
        def(Public, routes!(system::health)),
        def(Public, routes!(system::ready)),
        def(Public, routes!(system::version)),
        def(Public, routes!(system::metrics)),
        def(Admin("instance:read"), routes!(system::openapi_document)),
        def(Admin("instance:read"), routes!(system::console_overview)),
        // Sessions: these check their own credentials (reference 1.8)
        def(Own, routes!(auth::login)),
        def(Own, routes!(auth::refresh)),
        def(Own, routes!(auth::logout)),
        def(Own, routes!(auth::me)),
        def(Own, routes!(auth::actor_context)),
        def(Own, routes!(auth::switch_member)),
        // Any credential reads its own standing.
        def(Own, routes!(auth::admin_me)),
        // AdminGrants
        def(Admin("admin_grants:read"), routes!(admin_grants::list)),
        def(Admin("admin_grants:manage"), routes!(admin_grants::create)),
        def(Admin("admin_grants:read"), routes!(admin_grants::get)),
        def(Admin("admin_grants:manage"), routes!(admin_grants::revoke)),
        // API keys
        def(Admin("api_keys:read"), routes!(api_keys::list)),
        def(Admin("api_keys:create"), routes!(api_keys::create)),
        def(Admin("api_keys:read"), routes!(api_keys::get)),
        def(Admin("api_keys:revoke"), routes!(api_keys::revoke)),
        // Authz
        def(Decision("authz:check"), routes!(authz::check)),
        def(Decision("authz:check"), routes!(authz::explain)),
        def(Decision("authz:check"), routes!(authz::check_batch)),
        // Lookups: who can act on a resource, what a binding can act on (an access review: authz:read on the
        // whole Space, apart from authz:check, which lets a service ask about one decision).
        def(Admin("authz:read"), routes!(lookups::subjects)),
        def(Admin("authz:read"), routes!(lookups::resources)),
        // The OpenID AuthZEN Authorization API: its evaluations and action search are decisions (through the gate,
        // like /authz/check); its subject and resource searches are the lookups (authz:read on the Space the body
        // names, placed by the protection seam). Its metadata document is public, as the standard publishes it.
        def(Decision("authz:check"), routes!(authzen::evaluation)),
        def(Decision("authz:check"), routes!(authzen::evaluations)),
        def(Admin("authz:read"), routes!(authzen::search_subject)),
        def(Admin("authz:read"), routes!(authzen::search_resource)),
        def(Decision("authz:check"), routes!(authzen::search_action)),
        def(Public, routes!(authzen::configuration)),
        // AuditLog
        def(Admin("audit:read"), routes!(audit::list)),
        def(Admin("audit:read"), routes!(audit::get)),
        def(Admin("audit:read"), routes!(audit::list_in_space)),
        def(Admin("audit:read"), routes!(audit::get_in_space)),
        // Replay reads like GET of the row (audit:read on its Space); asking for an audit row also needs
        // authz:check there, checked by the handler.
        def(Admin("audit:read"), routes!(audit::replay)),
        def(Admin("audit:read"), routes!(audit::verify_chain)),
        // Users
        def(Admin("users:read"), routes!(users::list)),
        def(Admin("users:manage"), routes!(users::create)),
        def(Admin("users:read"), routes!(users::get)),
        def(Admin("users:manage"), routes!(users::patch)),
        def(Admin("users:manage"), routes!(users::disable)),
        def(Admin("users:manage"), routes!(users::restore)),
        // Spaces
        def(Admin("spaces:read"), routes!(spaces::list)),
        def(Admin("spaces:manage"), routes!(spaces::create)),
        def(Admin("spaces:read"), routes!(spaces::get)),
        def(Admin("spaces:manage"), routes!(spaces::patch)),
        def(Admin("spaces:manage"), routes!(spaces::disable)),
        def(Admin("spaces:manage"), routes!(spaces::restore)),
        // Groups
        def(Admin("groups:read"), routes!(groups::list)),
        def(Admin("groups:manage"), routes!(groups::create)),
        def(Admin("groups:read"), routes!(groups::tree)),
        def(Admin("groups:read"), routes!(groups::get)),
        def(Admin("groups:manage"), routes!(groups::patch)),
        def(Admin("groups:manage"), routes!(groups::disable)),
        def(Admin("groups:read"), routes!(groups::get_alias)),
        // Members
        def(Admin("members:read"), routes!(members::list)),
        def(Admin("members:manage"), routes!(members::create)),
        def(Admin("members:read"), routes!(members::get)),
        def(Admin("members:manage"), routes!(members::patch)),
        def(Admin("members:manage"), routes!(members::disable)),
        def(Admin("members:read"), routes!(members::get_alias)),
        // Roles
        def(Admin("roles:read"), routes!(roles::list)),
        def(Admin("roles:manage"), routes!(roles::create)),
        def(Admin("roles:read"), routes!(roles::get)),
        def(Admin("roles:manage"), routes!(roles::patch)),
        def(Admin("roles:manage"), routes!(roles::disable)),
        def(Admin("roles:read"), routes!(roles::get_alias)),
        // UserMembers
        def(Admin("user_members:read"), routes!(user_members::list)),
        def(Admin("user_members:manage"), routes!(user_members::create)),
        def(Admin("user_members:read"), routes!(user_members::get)),
        def(Admin("user_members:manage"), routes!(user_members::patch)),
        def(Admin("user_members:manage"), routes!(user_members::revoke)),
        def(Admin("user_members:read"), routes!(user_members::get_alias)),
        // MemberRoles (and the member-role-grants segment)
        def(Admin("roles:read"), routes!(member_roles::list)),
        def(Admin("roles:manage"), routes!(member_roles::create)),
        def(Admin("roles:read"), routes!(member_roles::get)),
        def(Admin("roles:manage"), routes!(member_roles::revoke)),
        def(Admin("roles:read"), routes!(member_roles::list_grants)),
        def(Admin("roles:manage"), routes!(member_roles::create_grant)),
        def(Admin("roles:read"), routes!(member_roles::get_grant)),
        def(Admin("roles:manage"), routes!(member_roles::revoke_grant)),
        // Permissions
        def(Admin("permissions:read"), routes!(permissions::list)),
        def(Admin("permissions:manage"), routes!(permissions::create)),
        def(Admin("permissions:read"), routes!(permissions::get)),
        def(Admin("permissions:manage"), routes!(permissions::patch)),
        def(Admin("permissions:manage"), routes!(permissions::disable)),
        // RolePermissions
        def(Admin("permissions:read"), routes!(role_permissions::list)),
        def(Admin("permissions:manage"), routes!(role_permissions::create)),
        def(Admin("permissions:read"), routes!(role_permissions::get)),
        def(Admin("permissions:manage"), routes!(role_permissions::delete)),
        def(Admin("roles:read"), routes!(role_permissions::list_in_space)),
        def(Admin("roles:manage"), routes!(role_permissions::create_in_space)),
        def(Admin("roles:read"), routes!(role_permissions::get_in_space)),
        def(Admin("roles:manage"), routes!(role_permissions::delete_in_space)),
        // Resource Registry
        def(Admin("registry:read"), routes!(registry::list_types)),
        def(Admin("registry:manage"), routes!(registry::upsert_type)),
        def(Admin("registry:read"), routes!(registry::get_type)),
        def(Admin("registry:read"), routes!(registry::list_actions)),
        def(Admin("registry:manage"), routes!(registry::upsert_action)),
        def(Admin("registry:read"), routes!(registry::get_mapping)),
        def(Admin("registry:manage"), routes!(registry::post_mapping)),
        def(Admin("registry:manage"), routes!(registry::patch_mapping)),
        def(Admin("registry:manage"), routes!(registry::put_mapping)),
        // Resources
        def(Admin("resources:read"), routes!(resources::list)),
        def(Admin("resources:manage"), routes!(resources::create)),
        def(Admin("resources:read"), routes!(resources::get)),
        def(Admin("resources:manage"), routes!(resources::patch)),
        def(Admin("resources:manage"), routes!(resources::archive)),
        def(Admin("resources:read"), routes!(resources::list_all)),
        def(Admin("resources:manage"), routes!(resources::create_any)),
        def(Admin("resources:read"), routes!(resources::get_by_type)),
    ]
}
