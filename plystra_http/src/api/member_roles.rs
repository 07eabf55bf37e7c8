//! MemberRoles: a Role granted to a Member, optionally anchored at a Group (the scope anchor). Create, read,
//! list (filters member_id, role_id, status), revoke; also under the alias segment `member-role-grants`.

use axum::extract::Path;
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::{IntoParams, ToSchema};

use crate::api::crud::{self, Columns, LifecycleBody};
use plystra_core::closed_sets::MemberRoleStatus;

use crate::db::{self, ActorContext, Db, Filters, RowExt};
use crate::envelope::{Data, Page};
use crate::error::{ApiResult, Operation};
use crate::extract::{ApiJson, ApiQuery, OptionalJson};
use crate::request_context::RequestContext;

pub use crate::store::member_roles::VIEW;

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberRoleDto {
    pub id: String,
    pub member_id: String,
    pub member_display_name: String,
    pub role_id: String,
    pub role_key: String,
    pub role_name: String,
    pub space_id: String,
    pub scope_anchor_group_id: String,
    pub scope_anchor_path: String,
    pub status: String,
    #[schema(value_type = Object)]
    pub metadata: crate::db::JsonDoc,
    pub created_at: String,
    pub updated_at: String,
}

pub fn dto(r: &Row) -> MemberRoleDto {
    MemberRoleDto {
        id: r.get("id"),
        member_id: r.get("member_id"),
        member_display_name: r.text("member_display_name"),
        role_id: r.get("role_id"),
        role_key: r.text("role_key"),
        role_name: r.text("role_name"),
        space_id: r.get("space_id"),
        scope_anchor_group_id: r.text("scope_anchor_group_id"),
        scope_anchor_path: r.text("scope_anchor_path"),
        status: r.get("status"),
        metadata: r.json("metadata"),
        created_at: r.time("created_at"),
        updated_at: r.time("updated_at"),
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRoleCreate {
    #[schema(schema_with = crate::api::crud::schema::row_id)]
    pub id: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, pattern = r"\S")]
    pub member_id: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, pattern = r"\S")]
    pub role_id: Option<String>,
    pub scope_anchor_group_id: Option<String>,
    #[schema(schema_with = crate::api::crud::schema::member_role_status)]
    pub status: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    pub actor: Option<ActorContext>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MemberRoleQuery {
    pub member_id: Option<String>,
    pub role_id: Option<String>,
    pub status: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

async fn list_in(db: &mut Db, space_id: &str, q: MemberRoleQuery) -> ApiResult<Page<MemberRoleDto>> {
    let mut f = Filters::default();
    f.push_opt("t.member_id = $", &q.member_id);
    f.push_opt("t.role_id = $", &q.role_id);
    f.push_opt("t.status = $", &q.status);
    let client = db.connection().await?;
    VIEW.list(&**client, f, Some(space_id), q.limit.as_deref(), q.cursor.as_deref(), dto, |m| m.id.clone()).await
}

async fn create_in(
    db: &mut Db,
    ctx: &RequestContext,
    space_id: &str,
    b: MemberRoleCreate,
) -> ApiResult<Data<MemberRoleDto>> {
    let member_id = crud::required("member_id", b.member_id)?;
    let role_id = crud::required("role_id", b.role_id)?;
    let id = b.id.unwrap_or_else(|| db::new_id("mr"));
    let mut cols = Columns::default();
    cols.set("id", id.clone())
        .set("space_id", space_id.to_string())
        .set("member_id", member_id)
        .set("role_id", role_id);
    cols.set_opt("scope_anchor_group_id", b.scope_anchor_group_id)
        .set_opt("status", crud::status::<MemberRoleStatus>(b.status)?);
    cols.set_opt("metadata", crud::metadata(b.metadata)?);
    let mut client = db.connection().await?;
    crud::require_space(&**client, space_id).await?;
    let tx = db::begin_mutation(&mut client, ctx, b.actor.as_ref(), Some(space_id)).await?;
    crud::insert(&*tx, &VIEW, &cols, Operation::Create).await?;
    crud::finish(tx, &VIEW, &id, Some(space_id), dto).await.map(Data::created)
}

async fn get_in(db: &mut Db, space_id: &str, id: &str) -> ApiResult<Data<MemberRoleDto>> {
    let client = db.connection().await?;
    Ok(Data::ok(dto(&VIEW.fetch(&**client, id, Some(space_id)).await?)))
}

async fn revoke_in(
    db: &mut Db,
    ctx: &RequestContext,
    space_id: &str,
    id: &str,
    b: LifecycleBody,
) -> ApiResult<Data<MemberRoleDto>> {
    let mut cols = Columns::default();
    cols.set("status", "revoked".to_string());
    crud::set_status(db, ctx, b.actor.as_ref(), &VIEW, id, Some(space_id), cols, dto).await.map(Data::ok)
}

#[utoipa::path(get, operation_id = "list_member_roles", path = "/api/v1/spaces/{space_id}/member-roles", tag = "Core", params(("space_id" = String, Path), MemberRoleQuery),
    responses((status = 200, description = "MemberRoles", body = crate::envelope::ListEnvelope<MemberRoleDto>)))]
pub async fn list(
    mut db: Db,
    Path(space_id): Path<String>,
    ApiQuery(q): ApiQuery<MemberRoleQuery>,
) -> ApiResult<Page<MemberRoleDto>> {
    list_in(&mut db, &space_id, q).await
}

#[utoipa::path(post, operation_id = "create_member_role", path = "/api/v1/spaces/{space_id}/member-roles", tag = "Core", params(("space_id" = String, Path)), request_body = MemberRoleCreate,
    responses((status = 201, description = "Created", body = crate::envelope::Envelope<MemberRoleDto>),
              (status = 400, description = "VALIDATION_FAILED, CROSS_SPACE_VIOLATION", body = crate::error::ErrorEnvelope),
              (status = 409, description = "MEMBER_ROLE_CREATE_FAILED", body = crate::error::ErrorEnvelope)))]
pub async fn create(
    mut db: Db,
    ctx: RequestContext,
    Path(space_id): Path<String>,
    ApiJson(b): ApiJson<MemberRoleCreate>,
) -> ApiResult<Data<MemberRoleDto>> {
    create_in(&mut db, &ctx, &space_id, b).await
}

#[utoipa::path(get, operation_id = "get_member_role", path = "/api/v1/spaces/{space_id}/member-roles/{id}", tag = "Core", params(("space_id" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "The MemberRole", body = crate::envelope::Envelope<MemberRoleDto>), (status = 404, description = "MEMBER_ROLE_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn get(mut db: Db, Path((space_id, id)): Path<(String, String)>) -> ApiResult<Data<MemberRoleDto>> {
    get_in(&mut db, &space_id, &id).await
}

#[utoipa::path(post, operation_id = "revoke_member_role", path = "/api/v1/spaces/{space_id}/member-roles/{id}/revoke", tag = "Core", params(("space_id" = String, Path), ("id" = String, Path)),
    request_body(content = Option<LifecycleBody>),
    responses((status = 200, description = "status = revoked", body = crate::envelope::Envelope<MemberRoleDto>), (status = 404, description = "MEMBER_ROLE_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn revoke(
    mut db: Db,
    ctx: RequestContext,
    Path((space_id, id)): Path<(String, String)>,
    OptionalJson(b): OptionalJson<LifecycleBody>,
) -> ApiResult<Data<MemberRoleDto>> {
    revoke_in(&mut db, &ctx, &space_id, &id, b).await
}

#[utoipa::path(get, operation_id = "list_member_role_grants", path = "/api/v1/spaces/{space_id}/member-role-grants", tag = "Core", params(("space_id" = String, Path), MemberRoleQuery),
    responses((status = 200, description = "MemberRoles (alias segment)", body = crate::envelope::ListEnvelope<MemberRoleDto>)))]
pub async fn list_grants(
    mut db: Db,
    Path(space_id): Path<String>,
    ApiQuery(q): ApiQuery<MemberRoleQuery>,
) -> ApiResult<Page<MemberRoleDto>> {
    list_in(&mut db, &space_id, q).await
}

#[utoipa::path(post, operation_id = "create_member_role_grant", path = "/api/v1/spaces/{space_id}/member-role-grants", tag = "Core", params(("space_id" = String, Path)), request_body = MemberRoleCreate,
    responses((status = 201, description = "Created (alias segment)", body = crate::envelope::Envelope<MemberRoleDto>)))]
pub async fn create_grant(
    mut db: Db,
    ctx: RequestContext,
    Path(space_id): Path<String>,
    ApiJson(b): ApiJson<MemberRoleCreate>,
) -> ApiResult<Data<MemberRoleDto>> {
    create_in(&mut db, &ctx, &space_id, b).await
}

#[utoipa::path(get, operation_id = "get_member_role_grant", path = "/api/v1/spaces/{space_id}/member-role-grants/{id}", tag = "Core", params(("space_id" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "The MemberRole (alias segment)", body = crate::envelope::Envelope<MemberRoleDto>)))]
pub async fn get_grant(mut db: Db, Path((space_id, id)): Path<(String, String)>) -> ApiResult<Data<MemberRoleDto>> {
    get_in(&mut db, &space_id, &id).await
}

#[utoipa::path(post, operation_id = "revoke_member_role_grant", path = "/api/v1/spaces/{space_id}/member-role-grants/{id}/revoke", tag = "Core", params(("space_id" = String, Path), ("id" = String, Path)),
    request_body(content = Option<LifecycleBody>),
    responses((status = 200, description = "status = revoked (alias segment)", body = crate::envelope::Envelope<MemberRoleDto>)))]
pub async fn revoke_grant(
    mut db: Db,
    ctx: RequestContext,
    Path((space_id, id)): Path<(String, String)>,
    OptionalJson(b): OptionalJson<LifecycleBody>,
) -> ApiResult<Data<MemberRoleDto>> {
    revoke_in(&mut db, &ctx, &space_id, &id, b).await
}
