//! Roles (Space-scoped, unique key per Space): create, read, list, patch, disable, alias GET /api/v1/roles/{id}.

use axum::extract::Path;
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::{IntoParams, ToSchema};

use crate::api::crud::{self, Columns, LifecycleBody};
use plystra_core::closed_sets::RoleStatus;

use crate::db::{self, ActorContext, Db, Filters, RowExt};
use crate::envelope::{Data, Page};
use crate::error::{ApiResult, Operation};
use crate::extract::{ApiJson, ApiQuery, OptionalJson};
use crate::request_context::RequestContext;

pub use crate::store::roles::VIEW;

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleDto {
    pub id: String,
    pub space_id: String,
    pub key: String,
    pub name: String,
    pub description: String,
    pub status: String,
    #[schema(value_type = Object)]
    pub metadata: crate::db::JsonDoc,
    pub created_at: String,
    pub updated_at: String,
}

pub fn dto(r: &Row) -> RoleDto {
    RoleDto {
        id: r.get("id"),
        space_id: r.get("space_id"),
        key: r.get("key"),
        name: r.get("name"),
        description: r.text("description"),
        status: r.get("status"),
        metadata: r.json("metadata"),
        created_at: r.time("created_at"),
        updated_at: r.time("updated_at"),
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleCreate {
    #[schema(schema_with = crate::api::crud::schema::row_id)]
    pub id: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, pattern = r"\S")]
    pub key: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    #[schema(schema_with = crate::api::crud::schema::role_status)]
    pub status: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    pub actor: Option<ActorContext>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolePatch {
    pub key: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    #[schema(schema_with = crate::api::crud::schema::role_status)]
    pub status: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    pub actor: Option<ActorContext>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RoleQuery {
    pub status: Option<String>,
    pub key: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, operation_id = "list_roles", path = "/api/v1/spaces/{space_id}/roles", tag = "Core", params(("space_id" = String, Path), RoleQuery),
    responses((status = 200, description = "Roles", body = crate::envelope::ListEnvelope<RoleDto>)))]
pub async fn list(
    mut db: Db,
    Path(space_id): Path<String>,
    ApiQuery(q): ApiQuery<RoleQuery>,
) -> ApiResult<Page<RoleDto>> {
    let mut f = Filters::default();
    f.push_opt("t.status = $", &q.status);
    f.push_opt("t.key = $", &q.key);
    let client = db.connection().await?;
    VIEW.list(&**client, f, Some(&space_id), q.limit.as_deref(), q.cursor.as_deref(), dto, |r| r.id.clone()).await
}

#[utoipa::path(post, operation_id = "create_role", path = "/api/v1/spaces/{space_id}/roles", tag = "Core", params(("space_id" = String, Path)), request_body = RoleCreate,
    responses((status = 201, description = "Created", body = crate::envelope::Envelope<RoleDto>),
              (status = 404, description = "SPACE_NOT_FOUND", body = crate::error::ErrorEnvelope),
              (status = 409, description = "ROLE_CREATE_FAILED", body = crate::error::ErrorEnvelope)))]
pub async fn create(
    mut db: Db,
    ctx: RequestContext,
    Path(space_id): Path<String>,
    ApiJson(b): ApiJson<RoleCreate>,
) -> ApiResult<Data<RoleDto>> {
    let key = crud::required("key", b.key)?;
    let name = b.name.filter(|n| !n.is_empty()).unwrap_or_else(|| crud::title_case(&key));
    let id = b.id.unwrap_or_else(|| db::new_id("role"));
    let mut cols = Columns::default();
    cols.set("id", id.clone()).set("space_id", space_id.clone()).set("key", key).set("name", name);
    cols.set_opt("description", b.description)
        .set_opt("status", crud::status::<RoleStatus>(b.status)?)
        .set_opt("metadata", crud::metadata(b.metadata)?);
    let mut client = db.connection().await?;
    crud::require_space(&**client, &space_id).await?;
    let tx = db::begin_mutation(&mut client, &ctx, b.actor.as_ref(), Some(&space_id)).await?;
    crud::insert(&*tx, &VIEW, &cols, Operation::Create).await?;
    crud::finish(tx, &VIEW, &id, Some(&space_id), dto).await.map(Data::created)
}

#[utoipa::path(get, operation_id = "get_role", path = "/api/v1/spaces/{space_id}/roles/{id}", tag = "Core", params(("space_id" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "The Role", body = crate::envelope::Envelope<RoleDto>), (status = 404, description = "ROLE_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn get(mut db: Db, Path((space_id, id)): Path<(String, String)>) -> ApiResult<Data<RoleDto>> {
    let client = db.connection().await?;
    Ok(Data::ok(dto(&VIEW.fetch(&**client, &id, Some(&space_id)).await?)))
}

#[utoipa::path(get, operation_id = "get_role_by_id", path = "/api/v1/roles/{id}", tag = "Core", params(("id" = String, Path)),
    responses((status = 200, description = "The Role (read-only alias)", body = crate::envelope::Envelope<RoleDto>), (status = 404, description = "ROLE_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn get_alias(mut db: Db, Path(id): Path<String>) -> ApiResult<Data<RoleDto>> {
    let client = db.connection().await?;
    Ok(Data::ok(dto(&VIEW.fetch(&**client, &id, None).await?)))
}

#[utoipa::path(patch, operation_id = "update_role", path = "/api/v1/spaces/{space_id}/roles/{id}", tag = "Core", params(("space_id" = String, Path), ("id" = String, Path)), request_body = RolePatch,
    responses((status = 200, description = "Updated", body = crate::envelope::Envelope<RoleDto>),
              (status = 404, description = "ROLE_NOT_FOUND", body = crate::error::ErrorEnvelope),
              (status = 409, description = "ROLE_UPDATE_FAILED", body = crate::error::ErrorEnvelope)))]
pub async fn patch(
    mut db: Db,
    ctx: RequestContext,
    Path((space_id, id)): Path<(String, String)>,
    ApiJson(b): ApiJson<RolePatch>,
) -> ApiResult<Data<RoleDto>> {
    let mut cols = Columns::default();
    cols.set_opt("key", b.key)
        .set_opt("name", b.name)
        .set_opt("description", b.description)
        .set_opt("status", crud::status::<RoleStatus>(b.status)?);
    cols.set_opt("metadata", crud::metadata(b.metadata)?);
    let mut client = db.connection().await?;
    let tx = db::begin_mutation(&mut client, &ctx, b.actor.as_ref(), Some(&space_id)).await?;
    crud::update(&*tx, &VIEW, &id, Some(&space_id), &cols).await?;
    crud::finish(tx, &VIEW, &id, Some(&space_id), dto).await.map(Data::ok)
}

#[utoipa::path(post, operation_id = "disable_role", path = "/api/v1/spaces/{space_id}/roles/{id}/disable", tag = "Core", params(("space_id" = String, Path), ("id" = String, Path)),
    request_body(content = Option<LifecycleBody>),
    responses((status = 200, description = "status = disabled", body = crate::envelope::Envelope<RoleDto>), (status = 404, description = "ROLE_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn disable(
    mut db: Db,
    ctx: RequestContext,
    Path((space_id, id)): Path<(String, String)>,
    OptionalJson(b): OptionalJson<LifecycleBody>,
) -> ApiResult<Data<RoleDto>> {
    let mut cols = Columns::default();
    cols.set("status", "disabled".to_string());
    crud::set_status(&mut db, &ctx, b.actor.as_ref(), &VIEW, &id, Some(&space_id), cols, dto).await.map(Data::ok)
}
