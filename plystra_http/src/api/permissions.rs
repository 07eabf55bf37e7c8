//! Permissions (instance-wide; the scope lives here, the anchor on the MemberRole): create, read, list, patch,
//! disable. A `global` permission is always stored disabled: global scope is reserved in v1.0.

use axum::extract::Path;
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::{IntoParams, ToSchema};

use crate::api::crud::{self, Columns, LifecycleBody};
use plystra_core::closed_sets::{GrantScope, PermissionStatus};

use crate::db::{self, ActorContext, Db, Filters, RowExt};
use crate::envelope::{Data, Page};
use crate::error::{ApiResult, Operation};
use crate::extract::{ApiJson, ApiQuery, OptionalJson};
use crate::request_context::RequestContext;

pub use crate::store::permissions::VIEW;

#[derive(Debug, Serialize, ToSchema)]
pub struct PermissionDto {
    pub id: String,
    pub resource: String,
    pub action: String,
    pub scope: String,
    pub description: String,
    pub status: String,
    #[schema(value_type = Object)]
    pub metadata: crate::db::JsonDoc,
    pub created_at: String,
    pub updated_at: String,
}

pub fn dto(r: &Row) -> PermissionDto {
    PermissionDto {
        id: r.get("id"),
        resource: r.get("resource"),
        action: r.get("action"),
        scope: r.get("scope"),
        description: r.text("description"),
        status: r.get("status"),
        metadata: r.json("metadata"),
        created_at: r.time("created_at"),
        updated_at: r.time("updated_at"),
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionCreate {
    #[schema(schema_with = crate::api::crud::schema::row_id)]
    pub id: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, pattern = r"\S")]
    pub resource: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, pattern = r"\S")]
    pub action: Option<String>,
    /// self, group, group_tree, space or global.
    #[schema(required = true, schema_with = crate::api::crud::schema::grant_scope_required)]
    pub scope: Option<String>,
    pub description: Option<String>,
    #[schema(schema_with = crate::api::crud::schema::permission_status)]
    pub status: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    pub audit_space_id: Option<String>,
    pub actor: Option<ActorContext>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionPatch {
    pub resource: Option<String>,
    pub action: Option<String>,
    #[schema(schema_with = crate::api::crud::schema::grant_scope)]
    pub scope: Option<String>,
    pub description: Option<String>,
    #[schema(schema_with = crate::api::crud::schema::permission_status)]
    pub status: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    pub audit_space_id: Option<String>,
    pub actor: Option<ActorContext>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PermissionQuery {
    pub resource: Option<String>,
    pub action: Option<String>,
    pub scope: Option<String>,
    pub status: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// v1.0's rule: creating or updating with scope `global` forces status `disabled`.
fn status_for(scope: Option<&str>, status: Option<String>) -> Option<String> {
    if scope == Some("global") {
        Some("disabled".into())
    } else {
        status
    }
}

#[utoipa::path(get, operation_id = "list_permissions", path = "/api/v1/permissions", tag = "Core", params(PermissionQuery), responses((status = 200, description = "Permissions", body = crate::envelope::ListEnvelope<PermissionDto>)))]
pub async fn list(mut db: Db, ApiQuery(q): ApiQuery<PermissionQuery>) -> ApiResult<Page<PermissionDto>> {
    let mut f = Filters::default();
    f.push_opt("t.resource = $", &q.resource);
    f.push_opt("t.action = $", &q.action);
    f.push_opt("t.scope = $", &q.scope);
    f.push_opt("t.status = $", &q.status);
    let client = db.connection().await?;
    VIEW.list(&**client, f, None, q.limit.as_deref(), q.cursor.as_deref(), dto, |p| p.id.clone()).await
}

#[utoipa::path(post, operation_id = "create_permission", path = "/api/v1/permissions", tag = "Core", request_body = PermissionCreate,
    responses((status = 201, description = "Created", body = crate::envelope::Envelope<PermissionDto>), (status = 409, description = "PERMISSION_CREATE_FAILED", body = crate::error::ErrorEnvelope)))]
pub async fn create(
    mut db: Db,
    ctx: RequestContext,
    ApiJson(b): ApiJson<PermissionCreate>,
) -> ApiResult<Data<PermissionDto>> {
    let resource = crud::required("resource", b.resource)?;
    let action = crud::required("action", b.action)?;
    let scope = crud::required("scope", b.scope)?;
    crud::closed::<GrantScope>("scope", Some(&scope))?;
    let id = b.id.unwrap_or_else(|| db::new_id("perm"));
    let status = status_for(Some(&scope), crud::status::<PermissionStatus>(b.status)?);
    let mut cols = Columns::default();
    cols.set("id", id.clone()).set("resource", resource).set("action", action).set("scope", scope);
    cols.set_opt("description", b.description)
        .set_opt("status", status)
        .set_opt("metadata", crud::metadata(b.metadata)?);
    let mut client = db.connection().await?;
    let tx = db::begin_mutation(&mut client, &ctx, b.actor.as_ref(), b.audit_space_id.as_deref()).await?;
    crud::insert(&*tx, &VIEW, &cols, Operation::Create).await?;
    crud::finish(tx, &VIEW, &id, None, dto).await.map(Data::created)
}

#[utoipa::path(get, operation_id = "get_permission", path = "/api/v1/permissions/{id}", tag = "Core", params(("id" = String, Path)),
    responses((status = 200, description = "The Permission", body = crate::envelope::Envelope<PermissionDto>), (status = 404, description = "PERMISSION_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn get(mut db: Db, Path(id): Path<String>) -> ApiResult<Data<PermissionDto>> {
    let client = db.connection().await?;
    Ok(Data::ok(dto(&VIEW.fetch(&**client, &id, None).await?)))
}

#[utoipa::path(patch, operation_id = "update_permission", path = "/api/v1/permissions/{id}", tag = "Core", params(("id" = String, Path)), request_body = PermissionPatch,
    responses((status = 200, description = "Updated", body = crate::envelope::Envelope<PermissionDto>), (status = 409, description = "PERMISSION_UPDATE_FAILED", body = crate::error::ErrorEnvelope)))]
pub async fn patch(
    mut db: Db,
    ctx: RequestContext,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<PermissionPatch>,
) -> ApiResult<Data<PermissionDto>> {
    crud::closed::<GrantScope>("scope", b.scope.as_deref())?;
    let status = status_for(b.scope.as_deref(), crud::status::<PermissionStatus>(b.status)?);
    let mut cols = Columns::default();
    cols.set_opt("resource", b.resource).set_opt("action", b.action).set_opt("scope", b.scope);
    cols.set_opt("description", b.description)
        .set_opt("status", status)
        .set_opt("metadata", crud::metadata(b.metadata)?);
    let mut client = db.connection().await?;
    let tx = db::begin_mutation(&mut client, &ctx, b.actor.as_ref(), b.audit_space_id.as_deref()).await?;
    crud::update(&*tx, &VIEW, &id, None, &cols).await?;
    crud::finish(tx, &VIEW, &id, None, dto).await.map(Data::ok)
}

#[utoipa::path(post, operation_id = "disable_permission", path = "/api/v1/permissions/{id}/disable", tag = "Core", params(("id" = String, Path)), request_body(content = Option<LifecycleBody>),
    responses((status = 200, description = "status = disabled", body = crate::envelope::Envelope<PermissionDto>), (status = 404, description = "PERMISSION_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn disable(
    mut db: Db,
    ctx: RequestContext,
    Path(id): Path<String>,
    OptionalJson(b): OptionalJson<LifecycleBody>,
) -> ApiResult<Data<PermissionDto>> {
    let mut cols = Columns::default();
    cols.set("status", "disabled".to_string());
    crud::set_status(&mut db, &ctx, b.actor.as_ref(), &VIEW, &id, None, cols, dto).await.map(Data::ok)
}
