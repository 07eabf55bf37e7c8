//! RolePermissions: a Permission attached to a Role. Create (re-granting a soft-deleted pair un-deletes it),
//! read, list, and DELETE, which is a soft delete (the row stays for the audit trail) answering with the row.
//! Also under /api/v1/spaces/{space_id}/role-permissions, limited to the Space's Roles.

use axum::extract::Path;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_postgres::Row;
use utoipa::{IntoParams, ToSchema};

use crate::api::crud::{self, Columns};
use crate::db::{self, ActorContext, Db, Filters, RowExt};
use crate::db_errors;
use crate::envelope::{Data, Page};
use crate::error::{code, ApiError, ApiResult, Entity, Operation};
use crate::extract::{ApiJson, ApiQuery, OptionalJson};
use crate::request_context::RequestContext;

pub use crate::store::role_permissions::VIEW;

#[derive(Debug, Serialize, ToSchema)]
pub struct RolePermissionDto {
    pub id: String,
    pub role_id: String,
    pub role_key: String,
    pub space_id: String,
    pub permission_id: String,
    pub resource: String,
    pub action: String,
    pub scope: String,
    #[schema(value_type = Object)]
    pub metadata: crate::db::JsonDoc,
    pub created_at: String,
    pub updated_at: String,
    pub deleted_at: Option<String>,
}

pub fn dto(r: &Row) -> RolePermissionDto {
    RolePermissionDto {
        id: r.get("id"),
        role_id: r.get("role_id"),
        role_key: r.text("role_key"),
        space_id: r.text("space_id"),
        permission_id: r.get("permission_id"),
        resource: r.text("resource"),
        action: r.text("action"),
        scope: r.text("scope"),
        metadata: r.json("metadata"),
        created_at: r.time("created_at"),
        updated_at: r.time("updated_at"),
        deleted_at: r.opt_time("deleted_at"),
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolePermissionCreate {
    #[schema(schema_with = crate::api::crud::schema::row_id)]
    pub id: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, pattern = r"\S")]
    pub role_id: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, pattern = r"\S")]
    pub permission_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    pub audit_space_id: Option<String>,
    pub actor: Option<ActorContext>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolePermissionDelete {
    pub actor: Option<ActorContext>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RolePermissionQuery {
    pub role_id: Option<String>,
    pub permission_id: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

async fn list_in(db: &mut Db, space_id: Option<&str>, q: RolePermissionQuery) -> ApiResult<Page<RolePermissionDto>> {
    let mut f = Filters::default();
    f.push_opt("t.role_id = $", &q.role_id);
    f.push_opt("t.permission_id = $", &q.permission_id);
    let client = db.connection().await?;
    VIEW.list(&**client, f, space_id, q.limit.as_deref(), q.cursor.as_deref(), dto, |p| p.id.clone()).await
}

async fn create_in(
    db: &mut Db,
    ctx: &RequestContext,
    space_id: Option<&str>,
    b: RolePermissionCreate,
) -> ApiResult<Data<RolePermissionDto>> {
    let role_id = crud::required("role_id", b.role_id)?;
    let permission_id = crud::required("permission_id", b.permission_id)?;
    let mut client = db.connection().await?;
    if let Some(space) = space_id {
        crud::require_space(&**client, space).await?;
        let role_space = crate::store::roles::space_of(&**client, &role_id).await.map_err(db_errors::read_error)?;
        // A Role of another Space and no Role at all are answered alike (as member-roles' and user-members'
        // references are), so that a Space's admin cannot learn which Role ids other tenants use.
        if role_space.as_deref() != Some(space) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                code::CROSS_SPACE_VIOLATION,
                "Referenced rows must belong to the same Space.",
            )
            .with_details(json!({ "field": "role_id", "rule": "role_permissions_role_same_space" })));
        }
    }
    let mut cols = Columns::default();
    cols.set("id", b.id.unwrap_or_else(|| db::new_id("rp")))
        .set("role_id", role_id)
        .set("permission_id", permission_id);
    cols.set_opt("metadata", crud::metadata(b.metadata)?);
    let audit_space = b.audit_space_id.as_deref().or(space_id);
    let tx = db::begin_mutation(&mut client, ctx, b.actor.as_ref(), audit_space).await?;
    // Granting a pair that was soft-deleted brings it back (v1.0's behaviour) instead of a conflict.
    let id =
        crud::upsert(&*tx, &VIEW, &cols, &["role_id", "permission_id"], "deleted_at = NULL", Operation::Create).await?;
    crud::finish(tx, &VIEW, &id, space_id, dto).await.map(Data::created)
}

async fn get_in(db: &mut Db, space_id: Option<&str>, id: &str) -> ApiResult<Data<RolePermissionDto>> {
    let client = db.connection().await?;
    Ok(Data::ok(dto(&VIEW.fetch(&**client, id, space_id).await?)))
}

async fn delete_in(
    db: &mut Db,
    ctx: &RequestContext,
    space_id: Option<&str>,
    id: &str,
    b: RolePermissionDelete,
) -> ApiResult<Data<RolePermissionDto>> {
    let mut client = db.connection().await?;
    let tx = db::begin_mutation(&mut client, ctx, b.actor.as_ref(), space_id).await?;
    let n = crate::store::role_permissions::soft_delete(&*tx, id, space_id)
        .await
        .map_err(|e| db_errors::write_error(e, Entity::RolePermission, Operation::Update))?;
    if n == 0 {
        return Err(ApiError::not_found(Entity::RolePermission));
    }
    let row = VIEW.fetch_including_deleted(&*tx, id, space_id).await?;
    let out = dto(&row);
    tx.commit().await.map_err(db::internal)?;
    Ok(Data::ok(out))
}

#[utoipa::path(get, operation_id = "list_role_permissions", path = "/api/v1/role-permissions", tag = "Core", params(RolePermissionQuery),
    responses((status = 200, description = "RolePermissions", body = crate::envelope::ListEnvelope<RolePermissionDto>)))]
pub async fn list(mut db: Db, ApiQuery(q): ApiQuery<RolePermissionQuery>) -> ApiResult<Page<RolePermissionDto>> {
    list_in(&mut db, None, q).await
}

#[utoipa::path(post, operation_id = "create_role_permission", path = "/api/v1/role-permissions", tag = "Core", request_body = RolePermissionCreate,
    responses((status = 201, description = "Created (or un-deleted)", body = crate::envelope::Envelope<RolePermissionDto>),
              (status = 409, description = "ROLE_PERMISSION_CREATE_FAILED", body = crate::error::ErrorEnvelope)))]
pub async fn create(
    mut db: Db,
    ctx: RequestContext,
    ApiJson(b): ApiJson<RolePermissionCreate>,
) -> ApiResult<Data<RolePermissionDto>> {
    create_in(&mut db, &ctx, None, b).await
}

#[utoipa::path(get, operation_id = "get_role_permission", path = "/api/v1/role-permissions/{id}", tag = "Core", params(("id" = String, Path)),
    responses((status = 200, description = "The RolePermission", body = crate::envelope::Envelope<RolePermissionDto>), (status = 404, description = "ROLE_PERMISSION_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn get(mut db: Db, Path(id): Path<String>) -> ApiResult<Data<RolePermissionDto>> {
    get_in(&mut db, None, &id).await
}

#[utoipa::path(delete, operation_id = "delete_role_permission", path = "/api/v1/role-permissions/{id}", tag = "Core", params(("id" = String, Path)), request_body(content = Option<RolePermissionDelete>),
    responses((status = 200, description = "Soft-deleted; the row with deleted_at set", body = crate::envelope::Envelope<RolePermissionDto>),
              (status = 404, description = "ROLE_PERMISSION_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn delete(
    mut db: Db,
    ctx: RequestContext,
    Path(id): Path<String>,
    OptionalJson(b): OptionalJson<RolePermissionDelete>,
) -> ApiResult<Data<RolePermissionDto>> {
    delete_in(&mut db, &ctx, None, &id, b).await
}

#[utoipa::path(get, operation_id = "list_space_role_permissions", path = "/api/v1/spaces/{space_id}/role-permissions", tag = "Core", params(("space_id" = String, Path), RolePermissionQuery),
    responses((status = 200, description = "RolePermissions of the Space's Roles", body = crate::envelope::ListEnvelope<RolePermissionDto>)))]
pub async fn list_in_space(
    mut db: Db,
    Path(space_id): Path<String>,
    ApiQuery(q): ApiQuery<RolePermissionQuery>,
) -> ApiResult<Page<RolePermissionDto>> {
    list_in(&mut db, Some(&space_id), q).await
}

#[utoipa::path(post, operation_id = "create_space_role_permission", path = "/api/v1/spaces/{space_id}/role-permissions", tag = "Core", params(("space_id" = String, Path)), request_body = RolePermissionCreate,
    responses((status = 201, description = "Created (or un-deleted)", body = crate::envelope::Envelope<RolePermissionDto>),
              (status = 400, description = "CROSS_SPACE_VIOLATION (the Role is in another Space)", body = crate::error::ErrorEnvelope)))]
pub async fn create_in_space(
    mut db: Db,
    ctx: RequestContext,
    Path(space_id): Path<String>,
    ApiJson(b): ApiJson<RolePermissionCreate>,
) -> ApiResult<Data<RolePermissionDto>> {
    create_in(&mut db, &ctx, Some(&space_id), b).await
}

#[utoipa::path(get, operation_id = "get_space_role_permission", path = "/api/v1/spaces/{space_id}/role-permissions/{id}", tag = "Core", params(("space_id" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "The RolePermission", body = crate::envelope::Envelope<RolePermissionDto>), (status = 404, description = "ROLE_PERMISSION_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn get_in_space(
    mut db: Db,
    Path((space_id, id)): Path<(String, String)>,
) -> ApiResult<Data<RolePermissionDto>> {
    get_in(&mut db, Some(&space_id), &id).await
}

#[utoipa::path(delete, operation_id = "delete_space_role_permission", path = "/api/v1/spaces/{space_id}/role-permissions/{id}", tag = "Core", params(("space_id" = String, Path), ("id" = String, Path)),
    request_body(content = Option<RolePermissionDelete>),
    responses((status = 200, description = "Soft-deleted; the row with deleted_at set", body = crate::envelope::Envelope<RolePermissionDto>),
              (status = 404, description = "ROLE_PERMISSION_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn delete_in_space(
    mut db: Db,
    ctx: RequestContext,
    Path((space_id, id)): Path<(String, String)>,
    OptionalJson(b): OptionalJson<RolePermissionDelete>,
) -> ApiResult<Data<RolePermissionDto>> {
    delete_in(&mut db, &ctx, Some(&space_id), &id, b).await
}
