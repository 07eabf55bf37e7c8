//! UserMembers: the binding through which a User acts as a Member of a Space. Create, read, list (filters
//! user_id, member_id, status, relation_type), patch, revoke, and the alias GET /api/v1/user-members/{id}.
//!
//! Users are instance-wide, Spaces are tenants (security review F11): binding a user who has no binding in the
//! Space yet needs `users:manage` at instance scope; `is_primary` (which binding a login acts through by default)
//! is set only by the user's own session or by an instance credential holding `users:manage`; and a user's
//! e-mail is shown only to credentials holding `users:read` at instance scope.

use axum::extract::Path;
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::{IntoParams, ToSchema};

use crate::api::crud::{self, Columns, LifecycleBody};
use plystra_core::closed_sets::UserMemberStatus;

use crate::auth::credential::Credential;
use crate::db::{self, ActorContext, Db, Filters, RowExt};
use crate::envelope::{Data, Page};
use crate::error::{ApiError, ApiResult, Operation};
use crate::extract::{ApiJson, ApiQuery, OptionalJson};
use crate::protection::{permission_on, RequestScope};
use crate::request_context::RequestContext;

pub use crate::store::user_members::VIEW;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserMemberDto {
    pub id: String,
    pub user_id: String,
    pub email: String,
    pub member_id: String,
    pub member_display_name: String,
    pub space_id: String,
    pub relation_type: String,
    pub status: String,
    pub is_primary: bool,
    pub expires_at: Option<String>,
    pub linked_by_member_id: String,
    pub linked_at: Option<String>,
    pub revoked_at: Option<String>,
    pub revoked_reason: String,
    #[schema(value_type = Object)]
    pub metadata: crate::db::JsonDoc,
    pub created_at: String,
    pub updated_at: String,
}

pub fn dto(r: &Row) -> UserMemberDto {
    UserMemberDto {
        id: r.get("id"),
        user_id: r.get("user_id"),
        email: r.text("email"),
        member_id: r.get("member_id"),
        member_display_name: r.text("member_display_name"),
        space_id: r.get("space_id"),
        relation_type: r.get("relation_type"),
        status: r.get("status"),
        is_primary: r.get("is_primary"),
        expires_at: r.opt_time("expires_at"),
        linked_by_member_id: r.text("linked_by_member_id"),
        linked_at: r.opt_time("linked_at"),
        revoked_at: r.opt_time("revoked_at"),
        revoked_reason: r.text("revoked_reason"),
        metadata: r.json("metadata"),
        created_at: r.time("created_at"),
        updated_at: r.time("updated_at"),
    }
}

/// Whether the request's credential holds `permission` at instance scope.
async fn instance_permission(
    client: &impl deadpool_postgres::GenericClient,
    credential: &Credential,
    permission: &str,
) -> ApiResult<bool> {
    permission_on(client, credential, permission, &RequestScope::default()).await
}

/// The row mapper of answers: the user's e-mail only for instance `users:read` holders.
async fn mapper(
    client: &impl deadpool_postgres::GenericClient,
    credential: &Credential,
) -> ApiResult<impl Fn(&Row) -> UserMemberDto> {
    let email_visible = instance_permission(client, credential, "users:read").await?;
    Ok(move |r: &Row| {
        let mut d = dto(r);
        if !email_visible {
            d.email.clear();
        }
        d
    })
}

fn binding_refused(message: &'static str) -> ApiError {
    ApiError::admin_permission_required("users:manage", message)
}

/// `is_primary: true` is the user's own choice (their session) or an instance `users:manage` holder's.
async fn require_primary_allowed(
    client: &impl deadpool_postgres::GenericClient,
    credential: &Credential,
    user_id: &str,
) -> ApiResult<()> {
    if let Credential::Session(s) = credential {
        if s.user_id == user_id {
            return Ok(());
        }
    }
    if instance_permission(client, credential, "users:manage").await? {
        return Ok(());
    }
    Err(binding_refused(
        "is_primary is set only by the user's own session or an instance credential holding users:manage.",
    ))
}

/// A user with no binding in the Space yet (of any status, not deleted) is bound only by an instance
/// `users:manage` holder: a Space admin does not pull instance users into its tenant.
async fn require_bindable(
    client: &impl deadpool_postgres::GenericClient,
    credential: &Credential,
    user_id: &str,
    space_id: &str,
) -> ApiResult<()> {
    require_known_in_space(
        client,
        credential,
        user_id,
        space_id,
        "Binding a user who has no binding in this Space needs users:manage at instance scope.",
    )
    .await
}

/// The rule of [`require_bindable`] for anything that brings a user into a Space's affairs (a binding, an admin
/// grant on the Space or one of its groups): a user with no binding in the Space (of any status, not deleted), or
/// no such user at all, is refused alike unless the credential holds `users:manage` at instance scope, so that a
/// Space admin neither pulls another tenant's users in nor learns which user ids exist.
pub(crate) async fn require_known_in_space(
    client: &impl deadpool_postgres::GenericClient,
    credential: &Credential,
    user_id: &str,
    space_id: &str,
    message: &'static str,
) -> ApiResult<()> {
    let known =
        crate::store::user_members::user_known_in_space(client, user_id, space_id).await.map_err(db::internal)?;
    if known || instance_permission(client, credential, "users:manage").await? {
        return Ok(());
    }
    Err(binding_refused(message))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserMemberCreate {
    #[schema(schema_with = crate::api::crud::schema::row_id)]
    pub id: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, pattern = r"\S")]
    pub user_id: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, pattern = r"\S")]
    pub member_id: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, pattern = r"\S")]
    pub relation_type: Option<String>,
    #[schema(schema_with = crate::api::crud::schema::user_member_status)]
    pub status: Option<String>,
    pub is_primary: Option<bool>,
    /// RFC 3339.
    pub expires_at: Option<String>,
    pub linked_by_member_id: Option<String>,
    /// RFC 3339 (default now).
    pub linked_at: Option<String>,
    pub revoked_reason: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    pub actor: Option<ActorContext>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserMemberPatch {
    pub relation_type: Option<String>,
    #[schema(schema_with = crate::api::crud::schema::user_member_status)]
    pub status: Option<String>,
    pub is_primary: Option<bool>,
    pub expires_at: Option<String>,
    pub linked_by_member_id: Option<String>,
    pub revoked_reason: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    pub actor: Option<ActorContext>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserMemberQuery {
    pub user_id: Option<String>,
    pub member_id: Option<String>,
    pub status: Option<String>,
    pub relation_type: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, operation_id = "list_user_members", path = "/api/v1/spaces/{space_id}/user-members", tag = "Core", params(("space_id" = String, Path), UserMemberQuery),
    responses((status = 200, description = "UserMembers", body = crate::envelope::ListEnvelope<UserMemberDto>)))]
pub async fn list(
    mut db: Db,
    ctx: RequestContext,
    Path(space_id): Path<String>,
    ApiQuery(q): ApiQuery<UserMemberQuery>,
) -> ApiResult<Page<UserMemberDto>> {
    let mut f = Filters::default();
    f.push_opt("t.user_id = $", &q.user_id);
    f.push_opt("t.member_id = $", &q.member_id);
    f.push_opt("t.status = $", &q.status);
    f.push_opt("t.relation_type = $", &q.relation_type);
    let client = db.connection().await?;
    let map = mapper(&client, ctx.credential()?).await?;
    VIEW.list(&**client, f, Some(&space_id), q.limit.as_deref(), q.cursor.as_deref(), map, |m| m.id.clone()).await
}

#[utoipa::path(post, operation_id = "create_user_member", path = "/api/v1/spaces/{space_id}/user-members", tag = "Core", params(("space_id" = String, Path)), request_body = UserMemberCreate,
    responses((status = 201, description = "Created", body = crate::envelope::Envelope<UserMemberDto>),
              (status = 400, description = "VALIDATION_FAILED, CROSS_SPACE_VIOLATION", body = crate::error::ErrorEnvelope),
              (status = 404, description = "SPACE_NOT_FOUND", body = crate::error::ErrorEnvelope),
              (status = 409, description = "USER_MEMBER_CREATE_FAILED", body = crate::error::ErrorEnvelope)))]
pub async fn create(
    mut db: Db,
    ctx: RequestContext,
    Path(space_id): Path<String>,
    ApiJson(b): ApiJson<UserMemberCreate>,
) -> ApiResult<Data<UserMemberDto>> {
    let user_id = crud::required("user_id", b.user_id)?;
    let member_id = crud::required("member_id", b.member_id)?;
    let relation_type = crud::required("relation_type", b.relation_type)?;
    let id = b.id.unwrap_or_else(|| db::new_id("um"));
    let mut cols = Columns::default();
    cols.set("id", id.clone()).set("space_id", space_id.clone()).set("user_id", user_id.clone());
    cols.set("member_id", member_id);
    cols.set("relation_type", relation_type)
        .set_opt("status", crud::status::<UserMemberStatus>(b.status)?)
        .set_opt("is_primary", b.is_primary);
    cols.set_opt("expires_at", crud::time_field("expires_at", b.expires_at.as_deref())?);
    cols.set_opt("linked_by_member_id", b.linked_by_member_id);
    cols.set_opt("linked_at", crud::time_field("linked_at", b.linked_at.as_deref())?);
    cols.set_opt("revoked_reason", b.revoked_reason).set_opt("metadata", crud::metadata(b.metadata)?);
    let mut client = db.connection().await?;
    crud::require_space(&**client, &space_id).await?;
    let map = mapper(&client, ctx.credential()?).await?;
    let tx = db::begin_mutation(&mut client, &ctx, b.actor.as_ref(), Some(&space_id)).await?;
    require_bindable(&tx, ctx.credential()?, &user_id, &space_id).await?;
    if b.is_primary == Some(true) {
        require_primary_allowed(&tx, ctx.credential()?, &user_id).await?;
    }
    crud::insert(&*tx, &VIEW, &cols, Operation::Create).await?;
    crud::finish(tx, &VIEW, &id, Some(&space_id), map).await.map(Data::created)
}

#[utoipa::path(get, operation_id = "get_user_member", path = "/api/v1/spaces/{space_id}/user-members/{id}", tag = "Core", params(("space_id" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "The UserMember", body = crate::envelope::Envelope<UserMemberDto>), (status = 404, description = "USER_MEMBER_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn get(
    mut db: Db,
    ctx: RequestContext,
    Path((space_id, id)): Path<(String, String)>,
) -> ApiResult<Data<UserMemberDto>> {
    let client = db.connection().await?;
    let map = mapper(&client, ctx.credential()?).await?;
    Ok(Data::ok(map(&VIEW.fetch(&**client, &id, Some(&space_id)).await?)))
}

#[utoipa::path(get, operation_id = "get_user_member_by_id", path = "/api/v1/user-members/{id}", tag = "Core", params(("id" = String, Path)),
    responses((status = 200, description = "The UserMember (read-only alias)", body = crate::envelope::Envelope<UserMemberDto>), (status = 404, description = "USER_MEMBER_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn get_alias(mut db: Db, ctx: RequestContext, Path(id): Path<String>) -> ApiResult<Data<UserMemberDto>> {
    let client = db.connection().await?;
    let map = mapper(&client, ctx.credential()?).await?;
    Ok(Data::ok(map(&VIEW.fetch(&**client, &id, None).await?)))
}

#[utoipa::path(patch, operation_id = "update_user_member", path = "/api/v1/spaces/{space_id}/user-members/{id}", tag = "Core", params(("space_id" = String, Path), ("id" = String, Path)),
    request_body = UserMemberPatch,
    responses((status = 200, description = "Updated", body = crate::envelope::Envelope<UserMemberDto>), (status = 404, description = "USER_MEMBER_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn patch(
    mut db: Db,
    ctx: RequestContext,
    Path((space_id, id)): Path<(String, String)>,
    ApiJson(b): ApiJson<UserMemberPatch>,
) -> ApiResult<Data<UserMemberDto>> {
    let mut cols = Columns::default();
    cols.set_opt("relation_type", b.relation_type)
        .set_opt("status", crud::status::<UserMemberStatus>(b.status)?)
        .set_opt("is_primary", b.is_primary);
    cols.set_opt("expires_at", crud::time_field("expires_at", b.expires_at.as_deref())?);
    cols.set_opt("linked_by_member_id", b.linked_by_member_id).set_opt("revoked_reason", b.revoked_reason);
    cols.set_opt("metadata", crud::metadata(b.metadata)?);
    let mut client = db.connection().await?;
    let map = mapper(&client, ctx.credential()?).await?;
    let tx = db::begin_mutation(&mut client, &ctx, b.actor.as_ref(), Some(&space_id)).await?;
    if b.is_primary == Some(true) {
        let user_id: String = VIEW.fetch(&*tx, &id, Some(&space_id)).await?.get("user_id");
        require_primary_allowed(&tx, ctx.credential()?, &user_id).await?;
    }
    crud::update(&*tx, &VIEW, &id, Some(&space_id), &cols).await?;
    crud::finish(tx, &VIEW, &id, Some(&space_id), map).await.map(Data::ok)
}

#[utoipa::path(post, operation_id = "revoke_user_member", path = "/api/v1/spaces/{space_id}/user-members/{id}/revoke", tag = "Core", params(("space_id" = String, Path), ("id" = String, Path)),
    request_body(content = Option<LifecycleBody>),
    responses((status = 200, description = "status = revoked, revoked_at = now, revoked_reason from the body", body = crate::envelope::Envelope<UserMemberDto>),
              (status = 404, description = "USER_MEMBER_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn revoke(
    mut db: Db,
    ctx: RequestContext,
    Path((space_id, id)): Path<(String, String)>,
    OptionalJson(b): OptionalJson<LifecycleBody>,
) -> ApiResult<Data<UserMemberDto>> {
    let mut cols = Columns::default();
    cols.set("status", "revoked".to_string()).set("revoked_at", time::OffsetDateTime::now_utc());
    cols.set_opt("revoked_reason", b.revoked_reason.or(b.reason));
    let mut client = db.connection().await?;
    let map = mapper(&client, ctx.credential()?).await?;
    let tx = db::begin_mutation(&mut client, &ctx, b.actor.as_ref(), Some(&space_id)).await?;
    crud::update(&*tx, &VIEW, &id, Some(&space_id), &cols).await?;
    crud::finish(tx, &VIEW, &id, Some(&space_id), map).await.map(Data::ok)
}
