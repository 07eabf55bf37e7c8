//! Users (instance-level, not Space-scoped): create, read, list, patch, disable, restore. Every change of an
//! existing account is bounded by standing ([`crate::standing`]): nobody changes an account whose standing is
//! equal to or above their own (a user changes their own; a super admin changes anyone), and API keys never set
//! passwords.

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::{IntoParams, ToSchema};

use crate::api::crud::{self, Columns, LifecycleBody};
use plystra_core::closed_sets::UserStatus;

use crate::app::AppState;
use crate::db::{self, ActorContext, Db, Filters, RowExt};
use crate::envelope::{Data, Page};
use crate::error::{ApiError, ApiResult, Operation};
use crate::extract::{ApiJson, ApiQuery, OptionalJson};
use crate::request_context::RequestContext;
use crate::standing::{self, UserChange};

pub use crate::store::users::VIEW;

/// A User as the API shows it. The password hash never leaves the database.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDto {
    pub id: String,
    pub email: String,
    pub username: String,
    pub phone: String,
    pub status: String,
    #[schema(value_type = Object)]
    pub metadata: crate::db::JsonDoc,
    pub password_changed_at: Option<String>,
    pub last_login_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

pub fn dto(r: &Row) -> UserDto {
    UserDto {
        id: r.get("id"),
        email: r.get("email"),
        username: r.text("username"),
        phone: r.text("phone"),
        status: r.get("status"),
        metadata: r.json("metadata"),
        password_changed_at: r.opt_time("password_changed_at"),
        last_login_at: r.opt_time("last_login_at"),
        created_at: r.time("created_at"),
        updated_at: r.time("updated_at"),
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserCreate {
    #[schema(schema_with = crate::api::crud::schema::row_id)]
    pub id: Option<String>,
    #[schema(required = true, schema_with = crate::api::crud::schema::email_required)]
    pub email: Option<String>,
    pub username: Option<String>,
    pub phone: Option<String>,
    /// An Argon2id hash (`argon2id$v=19$...`); other formats are refused.
    pub password_hash: Option<String>,
    /// A plaintext password (at least PLYSTRA_PASSWORD_MIN_LENGTH characters), hashed here with Argon2id.
    pub password: Option<String>,
    #[schema(schema_with = crate::api::crud::schema::user_status)]
    pub status: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// The Space to file the audit row under (Users belong to no Space).
    pub audit_space_id: Option<String>,
    pub actor: Option<ActorContext>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[schema(schema_with = crate::api::crud::schema::email)]
    pub email: Option<String>,
    pub username: Option<String>,
    pub phone: Option<String>,
    pub password_hash: Option<String>,
    /// A new plaintext password; changing the password revokes the user's sessions.
    pub password: Option<String>,
    #[schema(schema_with = crate::api::crud::schema::user_status)]
    pub status: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    pub audit_space_id: Option<String>,
    pub actor: Option<ActorContext>,
}

/// API keys never set a password (creating a user or changing one): a password is set by the user or by an
/// administrator's session (standing rule, [`crate::standing`]).
fn refuse_password_from_key(ctx: &RequestContext) -> ApiResult<()> {
    if matches!(ctx.credential, Some(crate::auth::Credential::ApiKey(_))) {
        return Err(ApiError::admin_permission_required(
            "users:manage",
            "API keys never set passwords; a password is set by the user or by an administrator's session.",
        ));
    }
    Ok(())
}

fn argon2id_only(hash: Option<String>) -> ApiResult<Option<String>> {
    match hash {
        Some(h) if !crate::auth::password::is_supported(&h) => {
            Err(ApiError::validation("password_hash", "password_hash must be an Argon2id hash."))
        }
        other => Ok(other),
    }
}

/// The stored hash from `password` (hashed here) or `password_hash` (checked), not both.
async fn password_column(
    state: &AppState,
    password: Option<String>,
    hash: Option<String>,
) -> ApiResult<Option<String>> {
    match (password, hash) {
        (Some(_), Some(_)) => Err(ApiError::validation("password", "Give password or password_hash, not both.")),
        (Some(p), None) => {
            let min = state.config.password_min_length;
            if p.chars().count() < min {
                return Err(ApiError::validation("password", format!("password must be at least {min} characters.")));
            }
            if p.len() > 4096 {
                return Err(ApiError::validation("password", "password is longer than 4096 bytes."));
            }
            let hash = tokio::task::spawn_blocking(move || crate::auth::password::hash(&p))
                .await
                .map_err(|_| ApiError::internal())?;
            Ok(Some(hash))
        }
        (None, h) => argon2id_only(h),
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    pub status: Option<String>,
    pub email: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, operation_id = "list_users", path = "/api/v1/users", tag = "Core", params(UserQuery),
    responses((status = 200, description = "Users", body = crate::envelope::ListEnvelope<UserDto>)))]
pub async fn list(mut db: Db, ApiQuery(q): ApiQuery<UserQuery>) -> ApiResult<Page<UserDto>> {
    let mut f = Filters::default();
    f.push_opt("t.status = $", &q.status);
    f.push_opt("lower(t.email) = lower($)", &q.email);
    let client = db.connection().await?;
    VIEW.list(&**client, f, None, q.limit.as_deref(), q.cursor.as_deref(), dto, |u| u.id.clone()).await
}

#[utoipa::path(post, operation_id = "create_user", path = "/api/v1/users", tag = "Core", request_body = UserCreate,
    responses((status = 201, description = "Created", body = crate::envelope::Envelope<UserDto>),
              (status = 400, description = "VALIDATION_FAILED", body = crate::error::ErrorEnvelope),
              (status = 409, description = "USER_CREATE_FAILED", body = crate::error::ErrorEnvelope)))]
pub async fn create(
    State(state): State<AppState>,
    mut db: Db,
    ctx: RequestContext,
    ApiJson(b): ApiJson<UserCreate>,
) -> ApiResult<Data<UserDto>> {
    let email = crud::required("email", b.email)?;
    if b.password.is_some() || b.password_hash.is_some() {
        refuse_password_from_key(&ctx)?;
    }
    let id = b.id.unwrap_or_else(|| db::new_id("user"));
    let mut cols = Columns::default();
    cols.set("id", id.clone()).set("email", email).set_opt("username", b.username).set_opt("phone", b.phone);
    cols.set_opt("password_hash", password_column(&state, b.password, b.password_hash).await?)
        .set_opt("status", crud::status::<UserStatus>(b.status)?);
    cols.set_opt("metadata", crud::metadata(b.metadata)?);
    let mut client = db.connection().await?;
    let tx = db::begin_mutation(&mut client, &ctx, b.actor.as_ref(), b.audit_space_id.as_deref()).await?;
    crud::insert(&*tx, &VIEW, &cols, Operation::Create).await?;
    crud::finish(tx, &VIEW, &id, None, dto).await.map(Data::created)
}

#[utoipa::path(get, operation_id = "get_user", path = "/api/v1/users/{id}", tag = "Core", params(("id" = String, Path)),
    responses((status = 200, description = "The User", body = crate::envelope::Envelope<UserDto>), (status = 404, description = "USER_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn get(mut db: Db, Path(id): Path<String>) -> ApiResult<Data<UserDto>> {
    let client = db.connection().await?;
    Ok(Data::ok(dto(&VIEW.fetch(&**client, &id, None).await?)))
}

#[utoipa::path(patch, operation_id = "update_user", path = "/api/v1/users/{id}", tag = "Core", params(("id" = String, Path)), request_body = UserPatch,
    responses((status = 200, description = "Updated", body = crate::envelope::Envelope<UserDto>),
              (status = 404, description = "USER_NOT_FOUND", body = crate::error::ErrorEnvelope),
              (status = 409, description = "USER_UPDATE_FAILED", body = crate::error::ErrorEnvelope)))]
pub async fn patch(
    State(state): State<AppState>,
    mut db: Db,
    ctx: RequestContext,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<UserPatch>,
) -> ApiResult<Data<UserDto>> {
    let change = UserChange { sets_password: b.password.is_some() || b.password_hash.is_some() };
    let mut client = db.connection().await?;
    let tx = db::begin_mutation(&mut client, &ctx, b.actor.as_ref(), b.audit_space_id.as_deref()).await?;
    // Standing first (inside the transaction that writes): a refused caller learns nothing from the validation.
    standing::require_over_user(&tx, ctx.credential()?, &id, change).await?;
    let mut cols = Columns::default();
    cols.set_opt("email", b.email).set_opt("username", b.username).set_opt("phone", b.phone);
    cols.set_opt("password_hash", password_column(&state, b.password, b.password_hash).await?)
        .set_opt("status", crud::status::<UserStatus>(b.status)?);
    cols.set_opt("metadata", crud::metadata(b.metadata)?);
    crud::update(&*tx, &VIEW, &id, None, &cols).await?;
    crud::finish(tx, &VIEW, &id, None, dto).await.map(Data::ok)
}

async fn set_status(
    db: &mut Db,
    ctx: &RequestContext,
    id: &str,
    body: LifecycleBody,
    status: &'static str,
) -> ApiResult<Data<UserDto>> {
    let mut cols = Columns::default();
    cols.set("status", status.to_string());
    let mut client = db.connection().await?;
    let tx = db::begin_mutation(&mut client, ctx, body.actor.as_ref(), None).await?;
    standing::require_over_user(&tx, ctx.credential()?, id, UserChange { sets_password: false }).await?;
    crud::update(&*tx, &VIEW, id, None, &cols).await?;
    crud::finish(tx, &VIEW, id, None, dto).await.map(Data::ok)
}

#[utoipa::path(post, operation_id = "disable_user", path = "/api/v1/users/{id}/disable", tag = "Core", params(("id" = String, Path)), request_body(content = Option<LifecycleBody>),
    responses((status = 200, description = "status = disabled", body = crate::envelope::Envelope<UserDto>), (status = 404, description = "USER_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn disable(
    mut db: Db,
    ctx: RequestContext,
    Path(id): Path<String>,
    OptionalJson(b): OptionalJson<LifecycleBody>,
) -> ApiResult<Data<UserDto>> {
    set_status(&mut db, &ctx, &id, b, "disabled").await
}

#[utoipa::path(post, operation_id = "restore_user", path = "/api/v1/users/{id}/restore", tag = "Core", params(("id" = String, Path)), request_body(content = Option<LifecycleBody>),
    responses((status = 200, description = "status = active", body = crate::envelope::Envelope<UserDto>), (status = 404, description = "USER_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn restore(
    mut db: Db,
    ctx: RequestContext,
    Path(id): Path<String>,
    OptionalJson(b): OptionalJson<LifecycleBody>,
) -> ApiResult<Data<UserDto>> {
    set_status(&mut db, &ctx, &id, b, "active").await
}
