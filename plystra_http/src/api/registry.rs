//! The Resource Registry: resource types (upsert by key), their actions (upsert by type and key) and their one
//! storage mapping. The decision engine reads these to validate a request's type and action.

use axum::extract::Path;
use serde::{Deserialize, Serialize};
use tokio_postgres::{GenericClient, Row};
use utoipa::{IntoParams, ToSchema};

use crate::api::crud::{self, Columns};
use plystra_core::closed_sets::{ClosedSet, ResourceMappingStatus, ResourceTypeStatus, RiskLevel};

use crate::db::{self, ActorContext, Db, Filters, RowExt};
use crate::db_errors;
use crate::envelope::{Data, Page};
use crate::error::{ApiError, ApiResult, Entity, Operation};
use crate::extract::{ApiJson, ApiQuery};
use crate::request_context::RequestContext;

pub use crate::store::registry::TYPES;

pub use crate::store::registry::ACTIONS;

pub use crate::store::registry::MAPPINGS;

#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceTypeDto {
    pub id: String,
    pub key: String,
    pub display_name: String,
    pub description: String,
    pub status: String,
    pub source: String,
    #[schema(value_type = Object)]
    pub metadata: crate::db::JsonDoc,
    pub created_at: String,
    pub updated_at: String,
}

fn type_dto(r: &Row) -> ResourceTypeDto {
    ResourceTypeDto {
        id: r.get("id"),
        key: r.get("key"),
        display_name: r.get("display_name"),
        description: r.text("description"),
        status: r.get("status"),
        source: r.get("source"),
        metadata: r.json("metadata"),
        created_at: r.time("created_at"),
        updated_at: r.time("updated_at"),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceActionDto {
    pub id: String,
    pub resource_type_id: String,
    pub resource_type: String,
    pub key: String,
    pub display_name: String,
    pub description: String,
    pub risk_level: String,
    pub audit_default: bool,
    #[schema(value_type = Object)]
    pub metadata: crate::db::JsonDoc,
    pub created_at: String,
    pub updated_at: String,
}

fn action_dto(r: &Row) -> ResourceActionDto {
    ResourceActionDto {
        id: r.get("id"),
        resource_type_id: r.get("resource_type_id"),
        resource_type: r.text("resource_type"),
        key: r.get("key"),
        display_name: r.get("display_name"),
        description: r.text("description"),
        risk_level: r.get("risk_level"),
        audit_default: r.get("audit_default"),
        metadata: r.json("metadata"),
        created_at: r.time("created_at"),
        updated_at: r.time("updated_at"),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceMappingDto {
    pub id: String,
    pub resource_type_id: String,
    pub resource_type: String,
    pub storage_kind: String,
    pub table_name: String,
    pub id_field: String,
    pub space_field: String,
    pub group_field: String,
    pub owner_member_field: String,
    pub visibility_field: String,
    pub metadata_field: String,
    pub status: String,
    #[schema(value_type = Object)]
    pub metadata: crate::db::JsonDoc,
    pub created_at: String,
    pub updated_at: String,
}

fn mapping_dto(r: &Row) -> ResourceMappingDto {
    ResourceMappingDto {
        id: r.get("id"),
        resource_type_id: r.get("resource_type_id"),
        resource_type: r.text("resource_type"),
        storage_kind: r.get("storage_kind"),
        table_name: r.text("table_name"),
        id_field: r.get("id_field"),
        space_field: r.get("space_field"),
        group_field: r.text("group_field"),
        owner_member_field: r.text("owner_member_field"),
        visibility_field: r.text("visibility_field"),
        metadata_field: r.text("metadata_field"),
        status: r.get("status"),
        metadata: r.json("metadata"),
        created_at: r.time("created_at"),
        updated_at: r.time("updated_at"),
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceTypeUpsert {
    #[schema(schema_with = crate::api::crud::schema::row_id)]
    pub id: Option<String>,
    #[schema(required = true, schema_with = crate::api::crud::schema::registry_key_required)]
    pub key: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, pattern = r"\S")]
    pub display_name: Option<String>,
    pub description: Option<String>,
    #[schema(schema_with = crate::api::crud::schema::resource_type_status)]
    pub status: Option<String>,
    pub source: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    pub audit_space_id: Option<String>,
    pub actor: Option<ActorContext>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceActionUpsert {
    #[schema(schema_with = crate::api::crud::schema::row_id)]
    pub id: Option<String>,
    #[schema(required = true, schema_with = crate::api::crud::schema::registry_key_required)]
    pub key: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, pattern = r"\S")]
    pub display_name: Option<String>,
    pub description: Option<String>,
    /// low, normal (default), high or critical.
    #[schema(schema_with = crate::api::crud::schema::risk_level)]
    pub risk_level: Option<String>,
    pub audit_default: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    pub audit_space_id: Option<String>,
    pub actor: Option<ActorContext>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceMappingUpsert {
    #[schema(schema_with = crate::api::crud::schema::row_id)]
    pub id: Option<String>,
    pub storage_kind: Option<String>,
    pub table_name: Option<String>,
    pub id_field: Option<String>,
    pub space_field: Option<String>,
    pub group_field: Option<String>,
    pub owner_member_field: Option<String>,
    pub visibility_field: Option<String>,
    pub metadata_field: Option<String>,
    #[schema(schema_with = crate::api::crud::schema::resource_mapping_status)]
    pub status: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    pub audit_space_id: Option<String>,
    pub actor: Option<ActorContext>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RegistryQuery {
    pub status: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

async fn type_id_of<C: GenericClient + Sync>(client: &C, key: &str) -> ApiResult<String> {
    crate::store::registry::type_id_of(client, key)
        .await
        .map_err(db_errors::read_error)?
        .ok_or_else(|| ApiError::not_found(Entity::ResourceType))
}

#[utoipa::path(get, operation_id = "list_resource_types", path = "/api/v1/resource-types", tag = "Registry", params(RegistryQuery),
    responses((status = 200, description = "Resource types ordered by key", body = crate::envelope::ListEnvelope<ResourceTypeDto>)))]
pub async fn list_types(mut db: Db, ApiQuery(q): ApiQuery<RegistryQuery>) -> ApiResult<Page<ResourceTypeDto>> {
    let mut f = Filters::default();
    f.push_opt("t.status = $", &q.status);
    let client = db.connection().await?;
    TYPES.list(&**client, f, None, q.limit.as_deref(), q.cursor.as_deref(), type_dto, |t| t.key.clone()).await
}

#[utoipa::path(post, operation_id = "upsert_resource_type", path = "/api/v1/resource-types", tag = "Registry", request_body = ResourceTypeUpsert,
    responses((status = 201, description = "Created or updated (upsert by key)", body = crate::envelope::Envelope<ResourceTypeDto>),
              (status = 409, description = "RESOURCE_TYPE_UPSERT_FAILED", body = crate::error::ErrorEnvelope)))]
pub async fn upsert_type(
    mut db: Db,
    ctx: RequestContext,
    ApiJson(b): ApiJson<ResourceTypeUpsert>,
) -> ApiResult<Data<ResourceTypeDto>> {
    let key = crud::required("key", b.key)?;
    let display_name = crud::required("display_name", b.display_name)?;
    let mut cols = Columns::default();
    cols.set("id", b.id.unwrap_or_else(|| db::new_id("rt"))).set("key", key).set("display_name", display_name);
    cols.set_opt("description", b.description)
        .set_opt("status", crud::status::<ResourceTypeStatus>(b.status)?)
        .set_opt("source", b.source);
    cols.set_opt("metadata", crud::metadata(b.metadata)?);
    let mut client = db.connection().await?;
    let tx = db::begin_mutation(&mut client, &ctx, b.actor.as_ref(), b.audit_space_id.as_deref()).await?;
    let id = crud::upsert(&*tx, &TYPES, &cols, &["key"], "", Operation::Upsert).await?;
    crud::finish(tx, &TYPES, &id, None, type_dto).await.map(Data::created)
}

#[utoipa::path(get, operation_id = "get_resource_type", path = "/api/v1/resource-types/{key}", tag = "Registry", params(("key" = String, Path)),
    responses((status = 200, description = "The resource type", body = crate::envelope::Envelope<ResourceTypeDto>), (status = 404, description = "RESOURCE_TYPE_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn get_type(mut db: Db, Path(key): Path<String>) -> ApiResult<Data<ResourceTypeDto>> {
    let client = db.connection().await?;
    Ok(Data::ok(type_dto(&TYPES.fetch_by(&**client, "t.key = $1", &[&key]).await?)))
}

#[utoipa::path(get, operation_id = "list_resource_actions", path = "/api/v1/resource-types/{key}/actions", tag = "Registry", params(("key" = String, Path), RegistryQuery),
    responses((status = 200, description = "The type's actions ordered by key", body = crate::envelope::ListEnvelope<ResourceActionDto>),
              (status = 404, description = "RESOURCE_TYPE_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn list_actions(
    mut db: Db,
    Path(key): Path<String>,
    ApiQuery(q): ApiQuery<RegistryQuery>,
) -> ApiResult<Page<ResourceActionDto>> {
    let client = db.connection().await?;
    let type_id = type_id_of(&**client, &key).await?;
    let mut f = Filters::default();
    f.push("t.resource_type_id = $", type_id);
    ACTIONS.list(&**client, f, None, q.limit.as_deref(), q.cursor.as_deref(), action_dto, |a| a.key.clone()).await
}

#[utoipa::path(post, operation_id = "upsert_resource_action", path = "/api/v1/resource-types/{key}/actions", tag = "Registry", params(("key" = String, Path)), request_body = ResourceActionUpsert,
    responses((status = 201, description = "Created or updated (upsert by type and key)", body = crate::envelope::Envelope<ResourceActionDto>),
              (status = 404, description = "RESOURCE_TYPE_NOT_FOUND", body = crate::error::ErrorEnvelope),
              (status = 409, description = "RESOURCE_ACTION_UPSERT_FAILED", body = crate::error::ErrorEnvelope)))]
pub async fn upsert_action(
    mut db: Db,
    ctx: RequestContext,
    Path(key): Path<String>,
    ApiJson(b): ApiJson<ResourceActionUpsert>,
) -> ApiResult<Data<ResourceActionDto>> {
    let action_key = crud::required("key", b.key)?;
    let display_name = crud::required("display_name", b.display_name)?;
    let mut client = db.connection().await?;
    let type_id = type_id_of(&**client, &key).await?;
    let mut cols = Columns::default();
    cols.set("id", b.id.unwrap_or_else(|| db::new_id("ra"))).set("resource_type_id", type_id).set("key", action_key);
    cols.set("display_name", display_name).set_opt("description", b.description);
    let risk_level = crud::closed::<RiskLevel>("risk_level", b.risk_level.as_deref())?.unwrap_or(RiskLevel::Normal);
    cols.set("risk_level", risk_level.as_str().to_string()).set("audit_default", b.audit_default.unwrap_or(true));
    cols.set_opt("metadata", crud::metadata(b.metadata)?);
    let tx = db::begin_mutation(&mut client, &ctx, b.actor.as_ref(), b.audit_space_id.as_deref()).await?;
    let id = crud::upsert(&*tx, &ACTIONS, &cols, &["resource_type_id", "key"], "", Operation::Upsert).await?;
    crud::finish(tx, &ACTIONS, &id, None, action_dto).await.map(Data::created)
}

#[utoipa::path(get, operation_id = "get_resource_mapping", path = "/api/v1/resource-types/{key}/mapping", tag = "Registry", params(("key" = String, Path)),
    responses((status = 200, description = "The type's storage mapping", body = crate::envelope::Envelope<ResourceMappingDto>),
              (status = 404, description = "RESOURCE_TYPE_NOT_FOUND or RESOURCE_MAPPING_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn get_mapping(mut db: Db, Path(key): Path<String>) -> ApiResult<Data<ResourceMappingDto>> {
    let client = db.connection().await?;
    let type_id = type_id_of(&**client, &key).await?;
    Ok(Data::ok(mapping_dto(&MAPPINGS.fetch_by(&**client, "t.resource_type_id = $1", &[&type_id]).await?)))
}

async fn upsert_mapping(
    db: &mut Db,
    ctx: &RequestContext,
    key: &str,
    b: ResourceMappingUpsert,
) -> ApiResult<Data<ResourceMappingDto>> {
    let mut client = db.connection().await?;
    let type_id = type_id_of(&**client, key).await?;
    let mut cols = Columns::default();
    cols.set("id", b.id.unwrap_or_else(|| db::new_id("rm"))).set("resource_type_id", type_id);
    cols.set("storage_kind", b.storage_kind.unwrap_or_else(|| "internal_table".into()))
        .set_opt("table_name", b.table_name);
    cols.set("id_field", b.id_field.unwrap_or_else(|| "id".into()))
        .set("space_field", b.space_field.unwrap_or_else(|| "space_id".into()));
    cols.set_opt("group_field", b.group_field).set_opt("owner_member_field", b.owner_member_field);
    cols.set_opt("visibility_field", b.visibility_field).set_opt("metadata_field", b.metadata_field);
    cols.set_opt("status", crud::status::<ResourceMappingStatus>(b.status)?)
        .set_opt("metadata", crud::metadata(b.metadata)?);
    let tx = db::begin_mutation(&mut client, ctx, b.actor.as_ref(), b.audit_space_id.as_deref()).await?;
    let id = crud::upsert(&*tx, &MAPPINGS, &cols, &["resource_type_id"], "", Operation::Upsert).await?;
    crud::finish(tx, &MAPPINGS, &id, None, mapping_dto).await.map(Data::ok)
}

#[utoipa::path(post, operation_id = "create_resource_mapping", path = "/api/v1/resource-types/{key}/mapping", tag = "Registry", params(("key" = String, Path)), request_body = ResourceMappingUpsert,
    responses((status = 200, description = "The mapping, created or replaced (one per type)", body = crate::envelope::Envelope<ResourceMappingDto>),
              (status = 404, description = "RESOURCE_TYPE_NOT_FOUND", body = crate::error::ErrorEnvelope),
              (status = 409, description = "RESOURCE_MAPPING_UPSERT_FAILED", body = crate::error::ErrorEnvelope)))]
pub async fn post_mapping(
    mut db: Db,
    ctx: RequestContext,
    Path(key): Path<String>,
    ApiJson(b): ApiJson<ResourceMappingUpsert>,
) -> ApiResult<Data<ResourceMappingDto>> {
    upsert_mapping(&mut db, &ctx, &key, b).await
}

#[utoipa::path(patch, operation_id = "update_resource_mapping", path = "/api/v1/resource-types/{key}/mapping", tag = "Registry", params(("key" = String, Path)), request_body = ResourceMappingUpsert,
    responses((status = 200, description = "The mapping, created or replaced", body = crate::envelope::Envelope<ResourceMappingDto>)))]
pub async fn patch_mapping(
    mut db: Db,
    ctx: RequestContext,
    Path(key): Path<String>,
    ApiJson(b): ApiJson<ResourceMappingUpsert>,
) -> ApiResult<Data<ResourceMappingDto>> {
    upsert_mapping(&mut db, &ctx, &key, b).await
}

#[utoipa::path(put, operation_id = "replace_resource_mapping", path = "/api/v1/resource-types/{key}/mapping", tag = "Registry", params(("key" = String, Path)), request_body = ResourceMappingUpsert,
    responses((status = 200, description = "The mapping, created or replaced", body = crate::envelope::Envelope<ResourceMappingDto>)))]
pub async fn put_mapping(
    mut db: Db,
    ctx: RequestContext,
    Path(key): Path<String>,
    ApiJson(b): ApiJson<ResourceMappingUpsert>,
) -> ApiResult<Data<ResourceMappingDto>> {
    upsert_mapping(&mut db, &ctx, &key, b).await
}
