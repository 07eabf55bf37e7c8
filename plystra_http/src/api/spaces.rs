//! Spaces: create, read, list, patch, disable, restore.

use axum::extract::Path;
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::{IntoParams, ToSchema};

use crate::api::crud::{self, Columns, LifecycleBody};
use plystra_core::closed_sets::SpaceStatus;

use crate::db::{self, ActorContext, Db, Filters, RowExt};
use crate::envelope::{Data, Page};
use crate::error::{ApiResult, Operation};
use crate::extract::{ApiJson, ApiQuery, OptionalJson};
use crate::request_context::RequestContext;

pub use crate::store::spaces::VIEW;

#[derive(Debug, Serialize, ToSchema)]
pub struct SpaceDto {
    pub id: String,
    pub name: String,
    pub slug: String,
    #[serde(rename = "type")]
    pub space_type: String,
    pub status: String,
    #[schema(value_type = Object)]
    pub metadata: crate::db::JsonDoc,
    pub created_at: String,
    pub updated_at: String,
}

pub fn dto(r: &Row) -> SpaceDto {
    SpaceDto {
        id: r.get("id"),
        name: r.get("name"),
        slug: r.text("slug"),
        space_type: r.get("type"),
        status: r.get("status"),
        metadata: r.json("metadata"),
        created_at: r.time("created_at"),
        updated_at: r.time("updated_at"),
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpaceCreate {
    #[schema(schema_with = crate::api::crud::schema::row_id)]
    pub id: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, pattern = r"\S")]
    pub name: Option<String>,
    pub slug: Option<String>,
    #[serde(rename = "type")]
    pub space_type: Option<String>,
    #[schema(schema_with = crate::api::crud::schema::space_status)]
    pub status: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    pub actor: Option<ActorContext>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpacePatch {
    pub name: Option<String>,
    pub slug: Option<String>,
    #[serde(rename = "type")]
    pub space_type: Option<String>,
    #[schema(schema_with = crate::api::crud::schema::space_status)]
    pub status: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    pub actor: Option<ActorContext>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SpaceQuery {
    pub status: Option<String>,
    pub slug: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, operation_id = "list_spaces", path = "/api/v1/spaces", tag = "Core", params(SpaceQuery), responses((status = 200, description = "Spaces", body = crate::envelope::ListEnvelope<SpaceDto>)))]
pub async fn list(mut db: Db, ApiQuery(q): ApiQuery<SpaceQuery>) -> ApiResult<Page<SpaceDto>> {
    let mut f = Filters::default();
    f.push_opt("t.status = $", &q.status);
    f.push_opt("t.slug = $", &q.slug);
    let client = db.connection().await?;
    VIEW.list(&**client, f, None, q.limit.as_deref(), q.cursor.as_deref(), dto, |s| s.id.clone()).await
}

#[utoipa::path(post, operation_id = "create_space", path = "/api/v1/spaces", tag = "Core", request_body = SpaceCreate,
    responses((status = 201, description = "Created", body = crate::envelope::Envelope<SpaceDto>), (status = 409, description = "SPACE_CREATE_FAILED", body = crate::error::ErrorEnvelope)))]
pub async fn create(mut db: Db, ctx: RequestContext, ApiJson(b): ApiJson<SpaceCreate>) -> ApiResult<Data<SpaceDto>> {
    let name = crud::required("name", b.name)?;
    let id = b.id.unwrap_or_else(|| db::new_id("space"));
    let mut cols = Columns::default();
    cols.set("id", id.clone()).set("name", name).set_opt("slug", b.slug);
    cols.set("type", b.space_type.unwrap_or_else(|| "custom".into()))
        .set_opt("status", crud::status::<SpaceStatus>(b.status)?);
    cols.set_opt("metadata", crud::metadata(b.metadata)?);
    let mut client = db.connection().await?;
    let tx = db::begin_mutation(&mut client, &ctx, b.actor.as_ref(), None).await?;
    crud::insert(&*tx, &VIEW, &cols, Operation::Create).await?;
    crud::finish(tx, &VIEW, &id, None, dto).await.map(Data::created)
}

#[utoipa::path(get, operation_id = "get_space", path = "/api/v1/spaces/{space_id}", tag = "Core", params(("space_id" = String, Path)),
    responses((status = 200, description = "The Space", body = crate::envelope::Envelope<SpaceDto>), (status = 404, description = "SPACE_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn get(mut db: Db, Path(id): Path<String>) -> ApiResult<Data<SpaceDto>> {
    let client = db.connection().await?;
    Ok(Data::ok(dto(&VIEW.fetch(&**client, &id, None).await?)))
}

#[utoipa::path(patch, operation_id = "update_space", path = "/api/v1/spaces/{space_id}", tag = "Core", params(("space_id" = String, Path)), request_body = SpacePatch,
    responses((status = 200, description = "Updated", body = crate::envelope::Envelope<SpaceDto>), (status = 409, description = "SPACE_UPDATE_FAILED", body = crate::error::ErrorEnvelope)))]
pub async fn patch(
    mut db: Db,
    ctx: RequestContext,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<SpacePatch>,
) -> ApiResult<Data<SpaceDto>> {
    let mut cols = Columns::default();
    cols.set_opt("name", b.name)
        .set_opt("slug", b.slug)
        .set_opt("type", b.space_type)
        .set_opt("status", crud::status::<SpaceStatus>(b.status)?);
    cols.set_opt("metadata", crud::metadata(b.metadata)?);
    let mut client = db.connection().await?;
    let tx = db::begin_mutation(&mut client, &ctx, b.actor.as_ref(), Some(&id)).await?;
    crud::update(&*tx, &VIEW, &id, None, &cols).await?;
    crud::finish(tx, &VIEW, &id, None, dto).await.map(Data::ok)
}

async fn set_status(
    db: &mut Db,
    ctx: &RequestContext,
    id: &str,
    body: LifecycleBody,
    status: &'static str,
) -> ApiResult<Data<SpaceDto>> {
    let mut cols = Columns::default();
    cols.set("status", status.to_string());
    crud::set_status(db, ctx, body.actor.as_ref(), &VIEW, id, None, cols, dto).await.map(Data::ok)
}

#[utoipa::path(post, operation_id = "disable_space", path = "/api/v1/spaces/{space_id}/disable", tag = "Core", params(("space_id" = String, Path)), request_body(content = Option<LifecycleBody>),
    responses((status = 200, description = "status = disabled", body = crate::envelope::Envelope<SpaceDto>), (status = 404, description = "SPACE_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn disable(
    mut db: Db,
    ctx: RequestContext,
    Path(id): Path<String>,
    OptionalJson(b): OptionalJson<LifecycleBody>,
) -> ApiResult<Data<SpaceDto>> {
    set_status(&mut db, &ctx, &id, b, "disabled").await
}

#[utoipa::path(post, operation_id = "restore_space", path = "/api/v1/spaces/{space_id}/restore", tag = "Core", params(("space_id" = String, Path)), request_body(content = Option<LifecycleBody>),
    responses((status = 200, description = "status = active", body = crate::envelope::Envelope<SpaceDto>), (status = 404, description = "SPACE_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn restore(
    mut db: Db,
    ctx: RequestContext,
    Path(id): Path<String>,
    OptionalJson(b): OptionalJson<LifecycleBody>,
) -> ApiResult<Data<SpaceDto>> {
    set_status(&mut db, &ctx, &id, b, "active").await
}
