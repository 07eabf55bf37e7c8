//! AdminGrants (docs/v1-reference.md §1.11): list, create, get, revoke. Levels instance_super_admin, instance_admin,
//! space_admin, group_admin. Only a super admin creates or revokes instance-level grants, API keys never manage
//! grants, a caller grants only permission keys it holds on that scope, and the last active super admin cannot
//! be revoked (409 LAST_SUPER_ADMIN). Writes are audited by the database's triggers.

use axum::extract::Path;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::{IntoParams, ToSchema};

use crate::api::crud::{self, Columns};
use plystra_core::closed_sets::{AdminGrantStatus, AdminLevel};

use crate::auth::credential::Credential;
use crate::db::{self, Db, Filters, RowExt};
use crate::envelope::{Data, Page};
use crate::error::{code, ApiError, ApiResult, Entity, Operation};
use crate::extract::{ApiJson, ApiQuery, OptionalJson};
use crate::protection::{permission_on, RequestScope};
use crate::request_context::RequestContext;

pub use crate::store::admin_grants::VIEW;
use crate::store::{admin_grants, groups};

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminGrantDto {
    pub id: String,
    pub user_id: String,
    pub member_id: String,
    pub space_id: String,
    pub group_id: String,
    pub level: String,
    pub permission_key: String,
    pub status: String,
    pub granted_by_user_id: String,
    pub granted_by_member_id: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub revoked_reason: String,
    #[schema(value_type = Object)]
    pub metadata: crate::db::JsonDoc,
    pub created_at: String,
    pub updated_at: String,
}

pub fn dto(r: &Row) -> AdminGrantDto {
    AdminGrantDto {
        id: r.get("id"),
        user_id: r.get("user_id"),
        member_id: r.text("member_id"),
        space_id: r.text("space_id"),
        group_id: r.text("group_id"),
        level: r.get("level"),
        permission_key: r.get("permission_key"),
        status: r.get("status"),
        granted_by_user_id: r.text("granted_by_user_id"),
        granted_by_member_id: r.text("granted_by_member_id"),
        expires_at: r.opt_time("expires_at"),
        revoked_at: r.opt_time("revoked_at"),
        revoked_reason: r.text("revoked_reason"),
        metadata: r.json("metadata"),
        created_at: r.time("created_at"),
        updated_at: r.time("updated_at"),
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminGrantCreate {
    #[schema(schema_with = crate::api::crud::schema::row_id)]
    pub id: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, pattern = r"\S")]
    pub user_id: Option<String>,
    pub member_id: Option<String>,
    pub space_id: Option<String>,
    pub group_id: Option<String>,
    #[schema(required = true, schema_with = crate::api::crud::schema::admin_level_required)]
    pub level: Option<String>,
    /// `*` or `domain:action`; defaults to `*` for instance_super_admin.
    #[schema(required = true, value_type = String, min_length = 1, pattern = r"\S")]
    pub permission_key: Option<String>,
    #[schema(schema_with = crate::api::crud::schema::creatable_status)]
    pub status: Option<String>,
    pub expires_at: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminGrantRevoke {
    pub revoked_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminGrantQuery {
    pub user_id: Option<String>,
    pub level: Option<String>,
    pub space_id: Option<String>,
    pub group_id: Option<String>,
    pub status: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

fn instance_level(level: &str) -> bool {
    level.starts_with("instance_")
}

fn forbidden(permission: &str, message: &'static str) -> ApiError {
    ApiError::admin_permission_required(permission, message)
}

/// The caller must be a session holding an active instance_super_admin grant.
async fn require_super_admin(
    client: &(impl tokio_postgres::GenericClient + Sync),
    credential: &Credential,
    message: &'static str,
) -> ApiResult<()> {
    let Credential::Session(s) = credential else {
        return Err(forbidden("admin_grants:manage", message));
    };
    if admin_grants::is_super_admin(client, &s.user_id).await.map_err(db::internal)? {
        Ok(())
    } else {
        Err(forbidden("admin_grants:manage", message))
    }
}

#[utoipa::path(get, operation_id = "list_admin_grants", path = "/api/v1/admin/grants", tag = "Admin", params(AdminGrantQuery),
    responses((status = 200, description = "AdminGrants", body = crate::envelope::ListEnvelope<AdminGrantDto>)))]
pub async fn list(mut db: Db, ApiQuery(q): ApiQuery<AdminGrantQuery>) -> ApiResult<Page<AdminGrantDto>> {
    let mut f = Filters::default();
    f.push_opt("t.user_id = $", &q.user_id);
    f.push_opt("t.level = $", &q.level);
    f.push_opt("t.space_id = $", &q.space_id);
    f.push_opt("t.group_id = $", &q.group_id);
    f.push_opt("t.status = $", &q.status);
    let client = db.connection().await?;
    VIEW.list(&**client, f, None, q.limit.as_deref(), q.cursor.as_deref(), dto, |g| g.id.clone()).await
}

#[utoipa::path(get, operation_id = "get_admin_grant", path = "/api/v1/admin/grants/{id}", tag = "Admin", params(("id" = String, Path)),
    responses((status = 200, description = "The AdminGrant", body = crate::envelope::Envelope<AdminGrantDto>),
              (status = 404, description = "ADMIN_GRANT_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn get(mut db: Db, Path(id): Path<String>) -> ApiResult<Data<AdminGrantDto>> {
    let client = db.connection().await?;
    Ok(Data::ok(dto(&VIEW.fetch(&**client, &id, None).await?)))
}

#[utoipa::path(post, operation_id = "create_admin_grant", path = "/api/v1/admin/grants", tag = "Admin", request_body = AdminGrantCreate,
    responses((status = 201, description = "Created", body = crate::envelope::Envelope<AdminGrantDto>),
              (status = 400, description = "VALIDATION_FAILED", body = crate::error::ErrorEnvelope),
              (status = 403, description = "ADMIN_PERMISSION_REQUIRED", body = crate::error::ErrorEnvelope),
              (status = 409, description = "ADMIN_GRANT_CREATE_FAILED", body = crate::error::ErrorEnvelope)))]
pub async fn create(
    mut db: Db,
    ctx: RequestContext,
    ApiJson(b): ApiJson<AdminGrantCreate>,
) -> ApiResult<Data<AdminGrantDto>> {
    let credential = ctx.credential()?.clone();
    if matches!(credential, Credential::ApiKey(_)) {
        return Err(forbidden("admin_grants:manage", "API keys cannot create or revoke admin grants."));
    }
    let user_id = crud::required("user_id", b.user_id)?;
    let level = crud::required("level", b.level)?;
    crud::closed::<AdminLevel>("level", Some(&level))?;
    let permission_key = match b.permission_key.filter(|k| !k.is_empty()) {
        Some(k) => k,
        None if level == "instance_super_admin" => "*".to_string(),
        None => return Err(ApiError::required("permission_key")),
    };
    if !plystra_core::admin::valid_permission_key(&permission_key) {
        return Err(ApiError::validation("permission_key", "permission_key must be * or domain:action in lowercase."));
    }
    let space_id = b.space_id.filter(|s| !s.is_empty());
    let group_id = b.group_id.filter(|s| !s.is_empty());
    let mut client = db.connection().await?;
    let (space_id, group_id) = match level.as_str() {
        "instance_super_admin" | "instance_admin" => {
            if space_id.is_some() || group_id.is_some() {
                return Err(ApiError::validation("space_id", "Instance-level grants take no space_id or group_id."));
            }
            require_super_admin(
                &**client,
                &credential,
                "Only an instance super admin can create instance-level admin grants.",
            )
            .await?;
            (None, None)
        }
        "space_admin" => {
            let space = space_id.ok_or_else(|| ApiError::required("space_id"))?;
            if group_id.is_some() {
                return Err(ApiError::validation("group_id", "space_admin grants take no group_id."));
            }
            crud::require_space(&**client, &space).await?;
            (Some(space), None)
        }
        _ => {
            let group = group_id.ok_or_else(|| ApiError::required("group_id"))?;
            let derived = groups::space_of_live(&**client, &group)
                .await
                .map_err(db::internal)?
                .ok_or_else(|| ApiError::not_found(Entity::Group))?;
            if space_id.as_ref().is_some_and(|s| *s != derived) {
                return Err(ApiError::validation("space_id", "space_id must be the group's Space."));
            }
            (Some(derived), Some(group))
        }
    };
    // Delegation: a caller grants only what it holds itself on that scope.
    let scope = RequestScope { space_id: space_id.clone(), group_id: group_id.clone() };
    if !permission_on(&client, &credential, &permission_key, &scope).await? {
        return Err(forbidden(&permission_key, "A caller can only grant permission keys it holds on that scope."));
    }
    // Standing in a Space goes to its own users: another tenant's user (or an id no user has, answered alike)
    // needs an instance users:manage holder, as a binding does.
    if let Some(space) = space_id.as_deref() {
        super::user_members::require_known_in_space(
            &client,
            &credential,
            &user_id,
            space,
            "Granting admin standing in a Space to a user who has no binding in it needs users:manage at instance scope.",
        )
        .await?;
    }
    let expires_at = crud::time_field("expires_at", b.expires_at.as_deref())?;
    if expires_at.is_some_and(|t| t <= time::OffsetDateTime::now_utc()) {
        return Err(ApiError::validation("expires_at", "expires_at must be in the future."));
    }
    // Created active or disabled; revoked is what `revoke` writes.
    crud::closed_among("status", b.status.as_deref(), &[AdminGrantStatus::Active, AdminGrantStatus::Disabled])?;
    let id = b.id.unwrap_or_else(|| db::new_id("ag"));
    let (granted_by_user, granted_by_member) = match &credential {
        Credential::Session(s) => (Some(s.user_id.clone()), s.active_member_id.clone()),
        Credential::ApiKey(_) => (None, None),
    };
    let mut cols = Columns::default();
    cols.set("id", id.clone()).set("user_id", user_id).set_opt("member_id", b.member_id.filter(|m| !m.is_empty()));
    cols.set_opt("space_id", space_id).set_opt("group_id", group_id).set("level", level);
    cols.set("permission_key", permission_key).set_opt("status", b.status).set_opt("expires_at", expires_at);
    cols.set_opt("granted_by_user_id", granted_by_user).set_opt("granted_by_member_id", granted_by_member);
    cols.set_opt("metadata", crud::metadata(b.metadata)?);
    let tx = db::begin_mutation(&mut client, &ctx, None, None).await?;
    crud::insert(&*tx, &VIEW, &cols, Operation::Create).await?;
    crud::finish(tx, &VIEW, &id, None, dto).await.map(Data::created)
}

#[utoipa::path(post, operation_id = "revoke_admin_grant", path = "/api/v1/admin/grants/{id}/revoke", tag = "Admin", params(("id" = String, Path)),
    request_body(content = Option<AdminGrantRevoke>),
    responses((status = 200, description = "status = revoked (a revoked grant is answered unchanged)", body = crate::envelope::Envelope<AdminGrantDto>),
              (status = 403, description = "ADMIN_PERMISSION_REQUIRED", body = crate::error::ErrorEnvelope),
              (status = 404, description = "ADMIN_GRANT_NOT_FOUND", body = crate::error::ErrorEnvelope),
              (status = 409, description = "LAST_SUPER_ADMIN", body = crate::error::ErrorEnvelope)))]
pub async fn revoke(
    mut db: Db,
    ctx: RequestContext,
    Path(id): Path<String>,
    OptionalJson(b): OptionalJson<AdminGrantRevoke>,
) -> ApiResult<Data<AdminGrantDto>> {
    let credential = ctx.credential()?.clone();
    if matches!(credential, Credential::ApiKey(_)) {
        return Err(forbidden("admin_grants:manage", "API keys cannot create or revoke admin grants."));
    }
    let mut client = db.connection().await?;
    let tx = db::begin_mutation(&mut client, &ctx, None, None).await?;
    // Serializes revocations of super-admin grants, so two concurrent revokes cannot remove the last two.
    admin_grants::lock_super_admin_revocations(&*tx).await.map_err(db::internal)?;
    let row = VIEW.fetch(&*tx, &id, None).await?;
    let level: String = row.get("level");
    if instance_level(&level) {
        require_super_admin(&*tx, &credential, "Only an instance super admin can revoke instance-level admin grants.")
            .await?;
    }
    // Revoking is idempotent: a revoked grant keeps its first revoked_at and reason.
    if row.get::<_, Option<time::OffsetDateTime>>("revoked_at").is_some() {
        return crud::finish(tx, &VIEW, &id, None, dto).await.map(Data::ok);
    }
    let active = row.get::<_, String>("status") == "active"
        && row.get::<_, Option<time::OffsetDateTime>>("revoked_at").is_none();
    if level == "instance_super_admin" && active {
        let others = admin_grants::other_super_admins(&*tx, &id).await.map_err(db::internal)?;
        if others == 0 {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                code::LAST_SUPER_ADMIN,
                "The last active instance super admin grant cannot be revoked.",
            ));
        }
    }
    let mut cols = Columns::default();
    cols.set("status", "revoked".to_string());
    cols.set("revoked_at", time::OffsetDateTime::now_utc());
    cols.set_opt("revoked_reason", b.revoked_reason);
    crud::update(&*tx, &VIEW, &id, None, &cols).await.map_err(|e| {
        if e.status == StatusCode::CONFLICT {
            ApiError::new(StatusCode::CONFLICT, code::ADMIN_GRANT_REVOKE_FAILED, "AdminGrant could not be revoked.")
        } else {
            e
        }
    })?;
    crud::finish(tx, &VIEW, &id, None, dto).await.map(Data::ok)
}
