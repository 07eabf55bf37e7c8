//! Members (Space-scoped actors): create, read, list, patch, disable, and the alias GET /api/v1/members/{id}.

use axum::extract::Path;
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::{IntoParams, ToSchema};

use crate::api::crud::{self, Columns, LifecycleBody};
use plystra_core::closed_sets::MemberStatus;

use crate::db::{self, ActorContext, Db, Filters, RowExt};
use crate::envelope::{Data, Page};
use crate::error::{ApiResult, Operation};
use crate::extract::{ApiJson, ApiQuery, OptionalJson};
use crate::request_context::RequestContext;

pub use crate::store::members::VIEW;

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberDto {
    pub id: String,
    pub space_id: String,
    pub display_name: String,
    pub member_type: String,
    pub status: String,
    #[schema(value_type = Object)]
    pub metadata: crate::db::JsonDoc,
    pub created_at: String,
    pub updated_at: String,
}

pub fn dto(r: &Row) -> MemberDto {
    MemberDto {
        id: r.get("id"),
        space_id: r.get("space_id"),
        display_name: r.get("display_name"),
        member_type: r.get("member_type"),
        status: r.get("status"),
        metadata: r.json("metadata"),
        created_at: r.time("created_at"),
        updated_at: r.time("updated_at"),
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberCreate {
    #[schema(schema_with = crate::api::crud::schema::row_id)]
    pub id: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, pattern = r"\S")]
    pub display_name: Option<String>,
    pub member_type: Option<String>,
    #[schema(schema_with = crate::api::crud::schema::member_status)]
    pub status: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    pub actor: Option<ActorContext>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberPatch {
    pub display_name: Option<String>,
    pub member_type: Option<String>,
    #[schema(schema_with = crate::api::crud::schema::member_status)]
    pub status: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    pub actor: Option<ActorContext>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MemberQuery {
    pub status: Option<String>,
    pub member_type: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, operation_id = "list_members", path = "/api/v1/spaces/{space_id}/members", tag = "Core", params(("space_id" = String, Path), MemberQuery),
    responses((status = 200, description = "Members", body = crate::envelope::ListEnvelope<MemberDto>)))]
pub async fn list(
    mut db: Db,
    Path(space_id): Path<String>,
    ApiQuery(q): ApiQuery<MemberQuery>,
) -> ApiResult<Page<MemberDto>> {
    let mut f = Filters::default();
    f.push_opt("t.status = $", &q.status);
    f.push_opt("t.member_type = $", &q.member_type);
    let client = db.connection().await?;
    VIEW.list(&**client, f, Some(&space_id), q.limit.as_deref(), q.cursor.as_deref(), dto, |m| m.id.clone()).await
}

#[utoipa::path(post, operation_id = "create_member", path = "/api/v1/spaces/{space_id}/members", tag = "Core", params(("space_id" = String, Path)), request_body = MemberCreate,
    responses((status = 201, description = "Created", body = crate::envelope::Envelope<MemberDto>),
              (status = 404, description = "SPACE_NOT_FOUND", body = crate::error::ErrorEnvelope),
              (status = 409, description = "MEMBER_CREATE_FAILED", body = crate::error::ErrorEnvelope)))]
pub async fn create(
    mut db: Db,
    ctx: RequestContext,
    Path(space_id): Path<String>,
    ApiJson(b): ApiJson<MemberCreate>,
) -> ApiResult<Data<MemberDto>> {
    let display_name = crud::required("display_name", b.display_name)?;
    let id = b.id.unwrap_or_else(|| db::new_id("member"));
    let mut cols = Columns::default();
    cols.set("id", id.clone()).set("space_id", space_id.clone()).set("display_name", display_name);
    cols.set("member_type", b.member_type.unwrap_or_else(|| "human".into()))
        .set_opt("status", crud::status::<MemberStatus>(b.status)?);
    cols.set_opt("metadata", crud::metadata(b.metadata)?);
    let mut client = db.connection().await?;
    crud::require_space(&**client, &space_id).await?;
    let tx = db::begin_mutation(&mut client, &ctx, b.actor.as_ref(), Some(&space_id)).await?;
    crud::insert(&*tx, &VIEW, &cols, Operation::Create).await?;
    crud::finish(tx, &VIEW, &id, Some(&space_id), dto).await.map(Data::created)
}

#[utoipa::path(get, operation_id = "get_member", path = "/api/v1/spaces/{space_id}/members/{id}", tag = "Core", params(("space_id" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "The Member", body = crate::envelope::Envelope<MemberDto>), (status = 404, description = "MEMBER_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn get(mut db: Db, Path((space_id, id)): Path<(String, String)>) -> ApiResult<Data<MemberDto>> {
    let client = db.connection().await?;
    Ok(Data::ok(dto(&VIEW.fetch(&**client, &id, Some(&space_id)).await?)))
}

#[utoipa::path(get, operation_id = "get_member_by_id", path = "/api/v1/members/{id}", tag = "Core", params(("id" = String, Path)),
    responses((status = 200, description = "The Member (read-only alias)", body = crate::envelope::Envelope<MemberDto>), (status = 404, description = "MEMBER_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn get_alias(mut db: Db, Path(id): Path<String>) -> ApiResult<Data<MemberDto>> {
    let client = db.connection().await?;
    Ok(Data::ok(dto(&VIEW.fetch(&**client, &id, None).await?)))
}

#[utoipa::path(patch, operation_id = "update_member", path = "/api/v1/spaces/{space_id}/members/{id}", tag = "Core", params(("space_id" = String, Path), ("id" = String, Path)), request_body = MemberPatch,
    responses((status = 200, description = "Updated", body = crate::envelope::Envelope<MemberDto>), (status = 404, description = "MEMBER_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn patch(
    mut db: Db,
    ctx: RequestContext,
    Path((space_id, id)): Path<(String, String)>,
    ApiJson(b): ApiJson<MemberPatch>,
) -> ApiResult<Data<MemberDto>> {
    let mut cols = Columns::default();
    cols.set_opt("display_name", b.display_name)
        .set_opt("member_type", b.member_type)
        .set_opt("status", crud::status::<MemberStatus>(b.status)?);
    cols.set_opt("metadata", crud::metadata(b.metadata)?);
    let mut client = db.connection().await?;
    let tx = db::begin_mutation(&mut client, &ctx, b.actor.as_ref(), Some(&space_id)).await?;
    crud::update(&*tx, &VIEW, &id, Some(&space_id), &cols).await?;
    crud::finish(tx, &VIEW, &id, Some(&space_id), dto).await.map(Data::ok)
}

#[utoipa::path(post, operation_id = "disable_member", path = "/api/v1/spaces/{space_id}/members/{id}/disable", tag = "Core", params(("space_id" = String, Path), ("id" = String, Path)),
    request_body(content = Option<LifecycleBody>),
    responses((status = 200, description = "status = disabled", body = crate::envelope::Envelope<MemberDto>), (status = 404, description = "MEMBER_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn disable(
    mut db: Db,
    ctx: RequestContext,
    Path((space_id, id)): Path<(String, String)>,
    OptionalJson(b): OptionalJson<LifecycleBody>,
) -> ApiResult<Data<MemberDto>> {
    let mut cols = Columns::default();
    cols.set("status", "disabled".to_string());
    crud::set_status(&mut db, &ctx, b.actor.as_ref(), &VIEW, &id, Some(&space_id), cols, dto).await.map(Data::ok)
}
