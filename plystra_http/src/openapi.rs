//! The OpenAPI 3.1 document, generated from the handlers' annotations and the route table, served at
//! /api/v1/openapi.json and committed as `plystra_http/openapi.json` (a test keeps the file current).

use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::OpenApi;

use crate::routes::RouteDef;

#[derive(OpenApi)]
#[openapi(
    info(title = "Plystra Core API", version = "1.0.0",
         description = "Identity, authorization and audit core. Decisions run inside PostgreSQL (the plystra extension); this is its REST front."),
    tags(
        (name = "System", description = "Health, readiness, version, metrics"),
        (name = "Auth", description = "Password sessions and the caller's acting context"),
        (name = "Admin", description = "AdminGrants and API keys"),
        (name = "Authz", description = "Authorization decisions and their traces"),
        (name = "Audit", description = "The append-only AuditLog"),
        (name = "Core", description = "Users, Spaces, Groups, Members, UserMembers, Roles, MemberRoles, Permissions, RolePermissions, Resources"),
        (name = "Registry", description = "Resource Registry: resource types, actions, mappings"),
    ),
    components(schemas(crate::error::ErrorEnvelope, crate::envelope::Pagination))
)]
pub struct ApiDoc;

/// Marks each operation with the admin permission it will require (`x-plystra-permission`), or public.
pub fn annotate_access(def: &mut RouteDef) {
    let value = match def.access {
        crate::protection::Access::Admin(p) => serde_json::json!(p),
        crate::protection::Access::Own => serde_json::json!("own-credential"),
        crate::protection::Access::Public => serde_json::json!("public"),
    };
    for item in def.route.1.paths.values_mut() {
        for op in
            [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
        {
            let op: &mut Operation = op;
            let ext = ExtensionsBuilder::new().add("x-plystra-permission", value.clone()).build();
            match &mut op.extensions {
                Some(existing) => existing.merge(ext),
                None => op.extensions = Some(ext),
            }
        }
    }
}

/// The document as served and committed: pretty JSON with a trailing newline.
pub fn to_pretty_json(doc: &OpenApiDoc) -> String {
    let mut s = doc.to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}
