//! Groups (Space-scoped, a tree by materialized path): create, read, list, tree, patch, disable, and the
//! read-only alias GET /api/v1/groups/{id}. The path rules (format, parent + one label, immutability) are the
//! database's; their violations come back as GROUP_PATH_* codes.

use axum::extract::Path;
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::{IntoParams, ToSchema};

use crate::api::crud::{self, Columns, LifecycleBody};
use plystra_core::closed_sets::GroupStatus;

use crate::db::{self, ActorContext, Db, Filters, RowExt};
use crate::envelope::{Data, Page};
use crate::error::{ApiResult, Operation};
use crate::extract::{ApiJson, ApiQuery, OptionalJson};
use crate::request_context::RequestContext;

pub use crate::store::groups::VIEW;

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupDto {
    pub id: String,
    pub space_id: String,
    pub parent_group_id: String,
    /// Same as parent_group_id (v1.0 prints both).
    pub parent_id: String,
    pub name: String,
    pub display_name: String,
    pub path: String,
    pub depth: i32,
    pub sort_order: i32,
    pub status: String,
    #[schema(value_type = Object)]
    pub metadata: crate::db::JsonDoc,
    pub created_at: String,
    pub updated_at: String,
}

pub fn dto(r: &Row) -> GroupDto {
    GroupDto {
        id: r.get("id"),
        space_id: r.get("space_id"),
        parent_group_id: r.text("parent_group_id"),
        parent_id: r.text("parent_group_id"),
        name: r.get("name"),
        display_name: r.text("display_name"),
        path: r.get("path"),
        depth: r.get("depth"),
        sort_order: r.get("sort_order"),
        status: r.get("status"),
        metadata: r.json("metadata"),
        created_at: r.time("created_at"),
        updated_at: r.time("updated_at"),
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupCreate {
    #[schema(schema_with = crate::api::crud::schema::row_id)]
    pub id: Option<String>,
    #[schema(required = true, schema_with = crate::api::crud::schema::group_path_required)]
    pub path: Option<String>,
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub parent_group_id: Option<String>,
    /// Alias of parent_group_id.
    pub parent_id: Option<String>,
    #[serde(default, deserialize_with = "crate::api::crud::integral_i32")]
    #[schema(minimum = -2147483648, maximum = 2147483647)]
    pub sort_order: Option<i32>,
    #[schema(schema_with = crate::api::crud::schema::group_status)]
    pub status: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    pub actor: Option<ActorContext>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupPatch {
    pub name: Option<String>,
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "crate::api::crud::integral_i32")]
    #[schema(minimum = -2147483648, maximum = 2147483647)]
    pub sort_order: Option<i32>,
    #[schema(schema_with = crate::api::crud::schema::group_status)]
    pub status: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// Immutable: accepted only so that a change is refused with GROUP_PATH_IMMUTABLE rather than ignored.
    pub path: Option<String>,
    pub actor: Option<ActorContext>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GroupQuery {
    pub status: Option<String>,
    pub parent_group_id: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

async fn list_groups(db: &mut Db, space_id: &str, q: GroupQuery) -> ApiResult<Page<GroupDto>> {
    let mut f = Filters::default();
    f.push_opt("t.status = $", &q.status);
    f.push_opt("t.parent_group_id = $", &q.parent_group_id);
    let client = db.connection().await?;
    VIEW.list(&**client, f, Some(space_id), q.limit.as_deref(), q.cursor.as_deref(), dto, |g| g.path.clone()).await
}

#[utoipa::path(get, operation_id = "list_groups", path = "/api/v1/spaces/{space_id}/groups", tag = "Core", params(("space_id" = String, Path), GroupQuery),
    responses((status = 200, description = "Groups ordered by path", body = crate::envelope::ListEnvelope<GroupDto>)))]
pub async fn list(
    mut db: Db,
    Path(space_id): Path<String>,
    ApiQuery(q): ApiQuery<GroupQuery>,
) -> ApiResult<Page<GroupDto>> {
    list_groups(&mut db, &space_id, q).await
}

#[utoipa::path(get, operation_id = "get_group_tree", path = "/api/v1/spaces/{space_id}/groups/tree", tag = "Core", params(("space_id" = String, Path), GroupQuery),
    responses((status = 200, description = "The tree as a flat list ordered by path (as v1.0 answers)", body = crate::envelope::ListEnvelope<GroupDto>)))]
pub async fn tree(
    mut db: Db,
    Path(space_id): Path<String>,
    ApiQuery(q): ApiQuery<GroupQuery>,
) -> ApiResult<Page<GroupDto>> {
    list_groups(&mut db, &space_id, q).await
}

#[utoipa::path(post, operation_id = "create_group", path = "/api/v1/spaces/{space_id}/groups", tag = "Core", params(("space_id" = String, Path)), request_body = GroupCreate,
    responses((status = 201, description = "Created", body = crate::envelope::Envelope<GroupDto>),
              (status = 400, description = "VALIDATION_FAILED, GROUP_PATH_INVALID, GROUP_PATH_PARENT_MISMATCH, CROSS_SPACE_VIOLATION", body = crate::error::ErrorEnvelope),
              (status = 404, description = "SPACE_NOT_FOUND", body = crate::error::ErrorEnvelope),
              (status = 409, description = "GROUP_CREATE_FAILED", body = crate::error::ErrorEnvelope)))]
pub async fn create(
    mut db: Db,
    ctx: RequestContext,
    Path(space_id): Path<String>,
    ApiJson(b): ApiJson<GroupCreate>,
) -> ApiResult<Data<GroupDto>> {
    let path = crud::required("path", b.path)?;
    let name =
        b.name.filter(|n| !n.is_empty()).unwrap_or_else(|| crud::title_case(path.rsplit('.').next().unwrap_or(&path)));
    let id = b.id.unwrap_or_else(|| db::new_id("group"));
    let mut cols = Columns::default();
    cols.set("id", id.clone()).set("space_id", space_id.clone()).set("path", path).set("name", name);
    cols.set_opt("display_name", b.display_name).set_opt("parent_group_id", b.parent_group_id.or(b.parent_id));
    cols.set_opt("sort_order", b.sort_order)
        .set_opt("status", crud::status::<GroupStatus>(b.status)?)
        .set_opt("metadata", crud::metadata(b.metadata)?);
    let mut client = db.connection().await?;
    crud::require_space(&**client, &space_id).await?;
    let tx = db::begin_mutation(&mut client, &ctx, b.actor.as_ref(), Some(&space_id)).await?;
    crud::insert(&*tx, &VIEW, &cols, Operation::Create).await?;
    crud::finish(tx, &VIEW, &id, Some(&space_id), dto).await.map(Data::created)
}

#[utoipa::path(get, operation_id = "get_group", path = "/api/v1/spaces/{space_id}/groups/{group_id}", tag = "Core", params(("space_id" = String, Path), ("group_id" = String, Path)),
    responses((status = 200, description = "The Group", body = crate::envelope::Envelope<GroupDto>), (status = 404, description = "GROUP_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn get(mut db: Db, Path((space_id, id)): Path<(String, String)>) -> ApiResult<Data<GroupDto>> {
    let client = db.connection().await?;
    Ok(Data::ok(dto(&VIEW.fetch(&**client, &id, Some(&space_id)).await?)))
}

#[utoipa::path(get, operation_id = "get_group_by_id", path = "/api/v1/groups/{id}", tag = "Core", params(("id" = String, Path)),
    responses((status = 200, description = "The Group (read-only alias)", body = crate::envelope::Envelope<GroupDto>), (status = 404, description = "GROUP_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn get_alias(mut db: Db, Path(id): Path<String>) -> ApiResult<Data<GroupDto>> {
    let client = db.connection().await?;
    Ok(Data::ok(dto(&VIEW.fetch(&**client, &id, None).await?)))
}

#[utoipa::path(patch, operation_id = "update_group", path = "/api/v1/spaces/{space_id}/groups/{group_id}", tag = "Core", params(("space_id" = String, Path), ("group_id" = String, Path)), request_body = GroupPatch,
    responses((status = 200, description = "Updated", body = crate::envelope::Envelope<GroupDto>),
              (status = 404, description = "GROUP_NOT_FOUND", body = crate::error::ErrorEnvelope),
              (status = 409, description = "GROUP_UPDATE_FAILED, GROUP_PATH_IMMUTABLE", body = crate::error::ErrorEnvelope)))]
pub async fn patch(
    mut db: Db,
    ctx: RequestContext,
    Path((space_id, id)): Path<(String, String)>,
    ApiJson(b): ApiJson<GroupPatch>,
) -> ApiResult<Data<GroupDto>> {
    let mut cols = Columns::default();
    cols.set_opt("name", b.name).set_opt("display_name", b.display_name).set_opt("sort_order", b.sort_order);
    cols.set_opt("status", crud::status::<GroupStatus>(b.status)?)
        .set_opt("metadata", crud::metadata(b.metadata)?)
        .set_opt("path", b.path);
    let mut client = db.connection().await?;
    let tx = db::begin_mutation(&mut client, &ctx, b.actor.as_ref(), Some(&space_id)).await?;
    crud::update(&*tx, &VIEW, &id, Some(&space_id), &cols).await?;
    crud::finish(tx, &VIEW, &id, Some(&space_id), dto).await.map(Data::ok)
}

#[utoipa::path(post, operation_id = "disable_group", path = "/api/v1/spaces/{space_id}/groups/{group_id}/disable", tag = "Core", params(("space_id" = String, Path), ("group_id" = String, Path)),
    request_body(content = Option<LifecycleBody>),
    responses((status = 200, description = "status = disabled", body = crate::envelope::Envelope<GroupDto>), (status = 404, description = "GROUP_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn disable(
    mut db: Db,
    ctx: RequestContext,
    Path((space_id, id)): Path<(String, String)>,
    OptionalJson(b): OptionalJson<LifecycleBody>,
) -> ApiResult<Data<GroupDto>> {
    let mut cols = Columns::default();
    cols.set("status", "disabled".to_string());
    crud::set_status(&mut db, &ctx, b.actor.as_ref(), &VIEW, &id, Some(&space_id), cols, dto).await.map(Data::ok)
}
