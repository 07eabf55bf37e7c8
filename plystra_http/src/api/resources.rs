//! Resources (governed objects, Space-scoped, optionally in a Group and owned by a Member): create, read,
//! list (filter resource_type), patch, archive; the cross-space /api/v1/resources list and create; and the
//! lookup by type and id.

use axum::extract::Path;
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::{IntoParams, ToSchema};

use crate::api::crud::{self, Columns, LifecycleBody};
use plystra_core::closed_sets::ResourceStatus;

use crate::db::{self, ActorContext, Db, Filters, RowExt};
use crate::db_errors;
use crate::envelope::{Data, Page};
use crate::error::{ApiError, ApiResult, Entity, Operation};
use crate::extract::{ApiJson, ApiQuery, OptionalJson};
use crate::request_context::RequestContext;

pub use crate::store::resources::VIEW;

#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceDto {
    pub id: String,
    pub resource_type: String,
    pub external_id: String,
    pub space_id: String,
    pub space_name: String,
    pub group_id: String,
    pub group_path: String,
    pub owner_member_id: String,
    pub owner_member_display_name: String,
    pub display_name: String,
    pub visibility: String,
    pub status: String,
    #[schema(value_type = Object)]
    pub metadata: crate::db::JsonDoc,
    pub created_at: String,
    pub updated_at: String,
}

pub fn dto(r: &Row) -> ResourceDto {
    ResourceDto {
        id: r.get("id"),
        resource_type: r.get("resource_type"),
        external_id: r.text("external_id"),
        space_id: r.get("space_id"),
        space_name: r.text("space_name"),
        group_id: r.text("group_id"),
        group_path: r.text("group_path"),
        owner_member_id: r.text("owner_member_id"),
        owner_member_display_name: r.text("owner_member_display_name"),
        display_name: r.text("display_name"),
        visibility: r.get("visibility"),
        status: r.get("status"),
        metadata: r.json("metadata"),
        created_at: r.time("created_at"),
        updated_at: r.time("updated_at"),
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceCreate {
    #[schema(schema_with = crate::api::crud::schema::row_id)]
    pub id: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, pattern = r"\S")]
    pub resource_type: Option<String>,
    // The document shows it on /api/v1/resources only, where it is required; the Space-scoped route takes the
    // Space from its path (and refuses a different one here).
    pub space_id: Option<String>,
    pub external_id: Option<String>,
    pub group_id: Option<String>,
    pub owner_member_id: Option<String>,
    pub display_name: Option<String>,
    pub visibility: Option<String>,
    #[schema(schema_with = crate::api::crud::schema::resource_status)]
    pub status: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    pub actor: Option<ActorContext>,
}

/// `ResourceCreate` as the document states it on each route: without `space_id` on the Space-scoped one, with it
/// required on /api/v1/resources.
pub struct ResourceCreateIn<const SPACE_IN_BODY: bool>;

impl<const SPACE_IN_BODY: bool> utoipa::PartialSchema for ResourceCreateIn<SPACE_IN_BODY> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        let mut schema = <ResourceCreate as utoipa::PartialSchema>::schema();
        if let utoipa::openapi::RefOr::T(utoipa::openapi::Schema::Object(object)) = &mut schema {
            if SPACE_IN_BODY {
                object.required.push("space_id".into());
                let space = utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::Type::String)
                    .min_length(Some(1))
                    .description(Some("The Space the resource is created in."));
                object.properties.insert("space_id".into(), space.into());
            } else {
                object.properties.shift_remove("space_id");
            }
        }
        schema
    }
}

impl<const SPACE_IN_BODY: bool> ToSchema for ResourceCreateIn<SPACE_IN_BODY> {
    fn name() -> std::borrow::Cow<'static, str> {
        if SPACE_IN_BODY { "ResourceCreateWithSpace" } else { "ResourceCreate" }.into()
    }
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::Schema>)>) {
        <ResourceCreate as ToSchema>::schemas(schemas);
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourcePatch {
    pub external_id: Option<String>,
    pub group_id: Option<String>,
    pub owner_member_id: Option<String>,
    pub display_name: Option<String>,
    pub visibility: Option<String>,
    #[schema(schema_with = crate::api::crud::schema::resource_status)]
    pub status: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    pub actor: Option<ActorContext>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResourceQuery {
    pub resource_type: Option<String>,
    /// Only on /api/v1/resources.
    pub space_id: Option<String>,
    pub group_id: Option<String>,
    pub status: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

async fn list_in(db: &mut Db, space_id: Option<String>, q: ResourceQuery) -> ApiResult<Page<ResourceDto>> {
    let mut f = Filters::default();
    f.push_opt("t.resource_type = $", &q.resource_type);
    f.push_opt("t.group_id = $", &q.group_id);
    f.push_opt("t.status = $", &q.status);
    let space = space_id.or(q.space_id);
    let client = db.connection().await?;
    VIEW.list(&**client, f, space.as_deref(), q.limit.as_deref(), q.cursor.as_deref(), dto, |r| r.id.clone()).await
}

async fn create_in(
    db: &mut Db,
    ctx: &RequestContext,
    space_id: String,
    b: ResourceCreate,
) -> ApiResult<Data<ResourceDto>> {
    let resource_type = crud::required("resource_type", b.resource_type)?;
    let id = b.id.unwrap_or_else(|| db::new_id(&resource_type));
    let mut cols = Columns::default();
    cols.set("id", id.clone()).set("space_id", space_id.clone()).set("resource_type", resource_type);
    cols.set_opt("external_id", b.external_id)
        .set_opt("group_id", b.group_id)
        .set_opt("owner_member_id", b.owner_member_id);
    cols.set_opt("display_name", b.display_name).set("visibility", b.visibility.unwrap_or_else(|| "private".into()));
    cols.set_opt("status", crud::status::<ResourceStatus>(b.status)?).set_opt("metadata", crud::metadata(b.metadata)?);
    let mut client = db.connection().await?;
    crud::require_space(&**client, &space_id).await?;
    let tx = db::begin_mutation(&mut client, ctx, b.actor.as_ref(), Some(&space_id)).await?;
    crud::insert(&*tx, &VIEW, &cols, Operation::Create).await?;
    crud::finish(tx, &VIEW, &id, Some(&space_id), dto).await.map(Data::created)
}

#[utoipa::path(get, operation_id = "list_resources", path = "/api/v1/spaces/{space_id}/resources", tag = "Core", params(("space_id" = String, Path), ResourceQuery),
    responses((status = 200, description = "Resources", body = crate::envelope::ListEnvelope<ResourceDto>)))]
pub async fn list(
    mut db: Db,
    Path(space_id): Path<String>,
    ApiQuery(q): ApiQuery<ResourceQuery>,
) -> ApiResult<Page<ResourceDto>> {
    list_in(&mut db, Some(space_id), q).await
}

#[utoipa::path(post, operation_id = "create_resource", path = "/api/v1/spaces/{space_id}/resources", tag = "Core", params(("space_id" = String, Path)), request_body = ResourceCreateIn<false>,
    responses((status = 201, description = "Created", body = crate::envelope::Envelope<ResourceDto>),
              (status = 400, description = "VALIDATION_FAILED, CROSS_SPACE_VIOLATION", body = crate::error::ErrorEnvelope),
              (status = 409, description = "RESOURCE_CREATE_FAILED", body = crate::error::ErrorEnvelope)))]
pub async fn create(
    mut db: Db,
    ctx: RequestContext,
    Path(space_id): Path<String>,
    ApiJson(b): ApiJson<ResourceCreate>,
) -> ApiResult<Data<ResourceDto>> {
    if b.space_id.as_deref().is_some_and(|s| s != space_id) {
        return Err(ApiError::validation("space_id", "space_id must match the Space in the path."));
    }
    create_in(&mut db, &ctx, space_id, b).await
}

#[utoipa::path(get, operation_id = "get_resource", path = "/api/v1/spaces/{space_id}/resources/{id}", tag = "Core", params(("space_id" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "The Resource", body = crate::envelope::Envelope<ResourceDto>), (status = 404, description = "RESOURCE_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn get(mut db: Db, Path((space_id, id)): Path<(String, String)>) -> ApiResult<Data<ResourceDto>> {
    let client = db.connection().await?;
    Ok(Data::ok(dto(&VIEW.fetch(&**client, &id, Some(&space_id)).await?)))
}

#[utoipa::path(patch, operation_id = "update_resource", path = "/api/v1/spaces/{space_id}/resources/{id}", tag = "Core", params(("space_id" = String, Path), ("id" = String, Path)), request_body = ResourcePatch,
    responses((status = 200, description = "Updated", body = crate::envelope::Envelope<ResourceDto>), (status = 404, description = "RESOURCE_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn patch(
    mut db: Db,
    ctx: RequestContext,
    Path((space_id, id)): Path<(String, String)>,
    ApiJson(b): ApiJson<ResourcePatch>,
) -> ApiResult<Data<ResourceDto>> {
    let mut cols = Columns::default();
    cols.set_opt("external_id", b.external_id)
        .set_opt("group_id", b.group_id)
        .set_opt("owner_member_id", b.owner_member_id);
    cols.set_opt("display_name", b.display_name)
        .set_opt("visibility", b.visibility)
        .set_opt("status", crud::status::<ResourceStatus>(b.status)?);
    cols.set_opt("metadata", crud::metadata(b.metadata)?);
    let mut client = db.connection().await?;
    let tx = db::begin_mutation(&mut client, &ctx, b.actor.as_ref(), Some(&space_id)).await?;
    crud::update(&*tx, &VIEW, &id, Some(&space_id), &cols).await?;
    crud::finish(tx, &VIEW, &id, Some(&space_id), dto).await.map(Data::ok)
}

#[utoipa::path(post, operation_id = "archive_resource", path = "/api/v1/spaces/{space_id}/resources/{id}/archive", tag = "Core", params(("space_id" = String, Path), ("id" = String, Path)),
    request_body(content = Option<LifecycleBody>),
    responses((status = 200, description = "status = archived", body = crate::envelope::Envelope<ResourceDto>), (status = 404, description = "RESOURCE_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn archive(
    mut db: Db,
    ctx: RequestContext,
    Path((space_id, id)): Path<(String, String)>,
    OptionalJson(b): OptionalJson<LifecycleBody>,
) -> ApiResult<Data<ResourceDto>> {
    let mut cols = Columns::default();
    cols.set("status", "archived".to_string());
    crud::set_status(&mut db, &ctx, b.actor.as_ref(), &VIEW, &id, Some(&space_id), cols, dto).await.map(Data::ok)
}

#[utoipa::path(get, operation_id = "list_resources_in_all_spaces", path = "/api/v1/resources", tag = "Core", params(ResourceQuery),
    responses((status = 200, description = "Resources across Spaces (filter space_id, resource_type)", body = crate::envelope::ListEnvelope<ResourceDto>)))]
pub async fn list_all(mut db: Db, ApiQuery(q): ApiQuery<ResourceQuery>) -> ApiResult<Page<ResourceDto>> {
    list_in(&mut db, None, q).await
}

#[utoipa::path(post, operation_id = "create_resource_in_body_space", path = "/api/v1/resources", tag = "Core", request_body = ResourceCreateIn<true>,
    responses((status = 201, description = "Created (space_id required in the body)", body = crate::envelope::Envelope<ResourceDto>),
              (status = 400, description = "VALIDATION_FAILED", body = crate::error::ErrorEnvelope)))]
pub async fn create_any(
    mut db: Db,
    ctx: RequestContext,
    ApiJson(mut b): ApiJson<ResourceCreate>,
) -> ApiResult<Data<ResourceDto>> {
    let space_id = crud::required("space_id", b.space_id.take())?;
    create_in(&mut db, &ctx, space_id, b).await
}

#[utoipa::path(get, operation_id = "get_resource_by_type", path = "/api/v1/resources/{resource_type}/{resource_id}", tag = "Core", params(("resource_type" = String, Path), ("resource_id" = String, Path)),
    responses((status = 200, description = "The Resource of that type and id", body = crate::envelope::Envelope<ResourceDto>), (status = 404, description = "RESOURCE_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn get_by_type(
    mut db: Db,
    Path((resource_type, id)): Path<(String, String)>,
) -> ApiResult<Data<ResourceDto>> {
    let client = db.connection().await?;
    let sql = format!("{} WHERE t.deleted_at IS NULL AND t.resource_type = $1 AND t.id = $2", VIEW.select);
    let row = client
        .query_opt(&sql, &[&resource_type, &id])
        .await
        .map_err(db_errors::read_error)?
        .ok_or_else(|| ApiError::not_found(Entity::Resource))?;
    Ok(Data::ok(dto(&row)))
}
