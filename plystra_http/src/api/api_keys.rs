//! API keys (docs/v1-reference.md §1.11): list, create, get, revoke. The plaintext `ply_ak_<id>.<64 hex>` is returned once,
//! at creation; the database keeps only its HMAC-SHA256 under PLYSTRA_API_KEY_SECRET. Levels instance, space,
//! group; a key carries only permission keys its creator holds on the key's scope.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::{IntoParams, ToSchema};

use crate::api::crud::{self, Columns};
use plystra_core::admin::MAX_PERMISSION_KEYS;
use plystra_core::closed_sets::{ApiKeyLevel, ApiKeyStatus, ClosedSet};

use crate::app::AppState;
use crate::auth::credential::Credential;
use crate::auth::secrets;
use crate::db::{self, Db, Filters, RowExt};
use crate::envelope::{Data, Page};
use crate::error::{code, ApiError, ApiResult, Entity, Operation};
use crate::extract::{ApiJson, ApiQuery, OptionalJson};
use crate::protection::{permission_on, RequestScope};
use crate::request_context::RequestContext;

pub use crate::store::api_keys::VIEW;
use crate::store::{api_keys, groups};

/// An API key as the API shows it: never its hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyDto {
    pub id: String,
    pub name: String,
    pub key_prefix: String,
    pub level: String,
    pub space_id: String,
    pub group_id: String,
    pub permission_keys: Vec<String>,
    pub status: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub created_by_user_id: String,
    pub created_by_member_id: String,
    pub revoked_at: Option<String>,
    pub revoked_by_user_id: String,
    pub revoked_reason: String,
    #[schema(value_type = Object)]
    pub metadata: crate::db::JsonDoc,
    pub created_at: String,
    pub updated_at: String,
}

pub fn dto(r: &Row) -> ApiKeyDto {
    // The keys were checked when written (strings of a fixed form); a document that does not read is no keys.
    let keys = r.try_get::<_, Option<serde_json::Value>>("permission_keys").ok().flatten().unwrap_or_default();
    ApiKeyDto {
        id: r.get("id"),
        name: r.get("name"),
        key_prefix: r.get("key_prefix"),
        level: r.get("level"),
        space_id: r.text("space_id"),
        group_id: r.text("group_id"),
        permission_keys: serde_json::from_value(keys).unwrap_or_default(),
        status: r.get("status"),
        expires_at: r.opt_time("expires_at"),
        last_used_at: r.opt_time("last_used_at"),
        created_by_user_id: r.text("created_by_user_id"),
        created_by_member_id: r.text("created_by_member_id"),
        revoked_at: r.opt_time("revoked_at"),
        revoked_by_user_id: r.text("revoked_by_user_id"),
        revoked_reason: r.text("revoked_reason"),
        metadata: r.json("metadata"),
        created_at: r.time("created_at"),
        updated_at: r.time("updated_at"),
    }
}

/// The creation answer: the key row plus its plaintext, shown this once (`api_key` in v1.0's code,
/// `key` in its OpenAPI document; both are given).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyCreated {
    #[serde(flatten)]
    pub row: ApiKeyDto,
    pub api_key: String,
    pub key: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyCreate {
    #[schema(schema_with = crate::api::crud::schema::api_key_id)]
    pub id: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, pattern = r"\S")]
    pub name: Option<String>,
    #[schema(required = true, schema_with = crate::api::crud::schema::api_key_level_required)]
    pub level: Option<String>,
    pub space_id: Option<String>,
    pub group_id: Option<String>,
    #[schema(required = true, schema_with = crate::api::crud::schema::permission_keys_required)]
    pub permission_keys: Option<Vec<String>>,
    #[schema(schema_with = crate::api::crud::schema::creatable_status)]
    pub status: Option<String>,
    pub expires_at: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

/// `ApiKeyCreate` with its rules, as the document states it (an alias: the route annotation takes a plain path).
type ApiKeyCreateRuled = crud::schema::Ruled<ApiKeyCreate>;

/// What each level takes: an instance key no Space or group, a Space key its `space_id` and no group, a group key
/// its `group_id` (its Space then being the group's).
impl crud::schema::RequestRules for ApiKeyCreate {
    fn rules() -> Vec<utoipa::openapi::Schema> {
        use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, SchemaType, Type};
        let value = |v: &str| ObjectBuilder::new().schema_type(Type::String).enum_values(Some([v]));
        let given = || ObjectBuilder::new().schema_type(Type::String).min_length(Some(1));
        let none = || {
            ObjectBuilder::new()
                .schema_type(SchemaType::AnyValue)
                .enum_values(Some([serde_json::Value::Null, serde_json::Value::from("")]))
        };
        let levels = AnyOfBuilder::new()
            .description(Some("what each level takes"))
            .item(
                ObjectBuilder::new()
                    .property("level", value(ApiKeyLevel::Instance.as_str()))
                    .property("space_id", none())
                    .property("group_id", none()),
            )
            .item(
                ObjectBuilder::new()
                    .required("space_id")
                    .property("level", value(ApiKeyLevel::Space.as_str()))
                    .property("space_id", given())
                    .property("group_id", none()),
            )
            .item(
                ObjectBuilder::new()
                    .required("group_id")
                    .property("level", value(ApiKeyLevel::Group.as_str()))
                    .property("group_id", given()),
            )
            .build();
        vec![utoipa::openapi::Schema::AnyOf(levels)]
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRevoke {
    pub revoked_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApiKeyQuery {
    pub level: Option<String>,
    pub space_id: Option<String>,
    pub group_id: Option<String>,
    pub status: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, operation_id = "list_api_keys", path = "/api/v1/api-keys", tag = "Admin", params(ApiKeyQuery),
    responses((status = 200, description = "API keys (never their hashes)", body = crate::envelope::ListEnvelope<ApiKeyDto>)))]
pub async fn list(mut db: Db, ApiQuery(q): ApiQuery<ApiKeyQuery>) -> ApiResult<Page<ApiKeyDto>> {
    let mut f = Filters::default();
    f.push_opt("t.level = $", &q.level);
    f.push_opt("t.space_id = $", &q.space_id);
    f.push_opt("t.group_id = $", &q.group_id);
    f.push_opt("t.status = $", &q.status);
    let client = db.connection().await?;
    VIEW.list(&**client, f, None, q.limit.as_deref(), q.cursor.as_deref(), dto, |k| k.id.clone()).await
}

#[utoipa::path(get, operation_id = "get_api_key", path = "/api/v1/api-keys/{id}", tag = "Admin", params(("id" = String, Path)),
    responses((status = 200, description = "The API key", body = crate::envelope::Envelope<ApiKeyDto>),
              (status = 404, description = "API_KEY_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn get(mut db: Db, Path(id): Path<String>) -> ApiResult<Data<ApiKeyDto>> {
    let client = db.connection().await?;
    Ok(Data::ok(dto(&VIEW.fetch(&**client, &id, None).await?)))
}

#[utoipa::path(post, operation_id = "create_api_key", path = "/api/v1/api-keys", tag = "Admin", request_body = ApiKeyCreateRuled,
    responses((status = 201, description = "Created; the plaintext key is in `api_key` (and `key`) this once", body = crate::envelope::Envelope<ApiKeyCreated>),
              (status = 400, description = "VALIDATION_FAILED", body = crate::error::ErrorEnvelope),
              (status = 403, description = "ADMIN_PERMISSION_REQUIRED: a permission the creator does not hold", body = crate::error::ErrorEnvelope),
              (status = 409, description = "API_KEY_CREATE_FAILED", body = crate::error::ErrorEnvelope)))]
pub async fn create(
    State(state): State<AppState>,
    mut db: Db,
    ctx: RequestContext,
    ApiJson(b): ApiJson<ApiKeyCreate>,
) -> ApiResult<Data<ApiKeyCreated>> {
    let credential = ctx.credential()?.clone();
    let Some(secret) = state.config.api_key_secret.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "API_KEY_CREATE_FAILED",
            "PLYSTRA_API_KEY_SECRET is required before API keys can be created.",
        ));
    };
    let name = crud::required("name", b.name)?;
    let level = crud::required("level", b.level)?;
    crud::closed::<ApiKeyLevel>("level", Some(&level))?;
    let permission_keys = b.permission_keys.unwrap_or_default();
    if permission_keys.is_empty() {
        return Err(ApiError::required("permission_keys"));
    }
    // The schema's bound (api_keys_permission_keys_strings), answered before any permission is asked.
    if permission_keys.len() > MAX_PERMISSION_KEYS {
        return Err(ApiError::validation(
            "permission_keys",
            format!("permission_keys holds at most {MAX_PERMISSION_KEYS} permission keys."),
        ));
    }
    for key in &permission_keys {
        if !plystra_core::admin::valid_permission_key(key) {
            return Err(ApiError::validation(
                "permission_keys",
                format!("{key:?} is not a permission key (* or domain:action in lowercase)."),
            ));
        }
    }
    // Created active or disabled; revoked is what `revoke` writes.
    crud::closed_among("status", b.status.as_deref(), &[ApiKeyStatus::Active, ApiKeyStatus::Disabled])?;
    let mut expires_at = crud::time_field("expires_at", b.expires_at.as_deref())?;
    if expires_at.is_some_and(|t| t <= time::OffsetDateTime::now_utc()) {
        return Err(ApiError::validation("expires_at", "expires_at must be in the future."));
    }
    let space_id = b.space_id.filter(|s| !s.is_empty());
    let group_id = b.group_id.filter(|s| !s.is_empty());
    let mut client = db.connection().await?;
    // A key made by a key never outlives it: without an expiry it gets its parent's, a later one is refused
    // (the extension refuses it too, and revokes it with its parent).
    let parent_key = match &credential {
        Credential::ApiKey(k) => Some(k.id.clone()),
        Credential::Session(_) => None,
    };
    if let Some(parent) = &parent_key {
        if let Some(parent_expiry) = api_keys::expiry_of(&**client, parent).await.map_err(db::internal)? {
            match expires_at {
                None => expires_at = Some(parent_expiry),
                Some(t) if t > parent_expiry => {
                    return Err(ApiError::validation(
                        "expires_at",
                        format!(
                            "A key created by an API key cannot outlive it: expires_at must be at or before {}.",
                            db::rfc3339(parent_expiry)
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
    }
    let (space_id, group_id) = match level.as_str() {
        "instance" => {
            if space_id.is_some() || group_id.is_some() {
                return Err(ApiError::validation("space_id", "Instance keys take no space_id or group_id."));
            }
            (None, None)
        }
        "space" => {
            let space = space_id.ok_or_else(|| ApiError::required("space_id"))?;
            if group_id.is_some() {
                return Err(ApiError::validation("group_id", "Space keys take no group_id."));
            }
            crud::require_space(&**client, &space).await?;
            (Some(space), None)
        }
        "group" => {
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
        // Checked above; kept so that the match is total.
        _ => return Err(ApiError::validation("level", "level must be one of instance, space, group.")),
    };
    // Delegation: each key must be one the creator holds on the key's scope (the extension decides).
    let scope = RequestScope { space_id: space_id.clone(), group_id: group_id.clone() };
    for key in &permission_keys {
        if !permission_on(&client, &credential, key, &scope).await? {
            return Err(ApiError::admin_permission_required(
                key,
                "An API key can only carry permission keys its creator holds on that scope.",
            ));
        }
    }
    let id = b.id.filter(|i| !i.is_empty()).unwrap_or_else(|| db::new_id("ak"));
    if !(id.len() <= 128 && id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')) {
        return Err(ApiError::validation("id", "id may contain only letters, digits, _ and -."));
    }
    let key_prefix = format!("{}{id}", secrets::API_KEY_PREFIX);
    let plaintext = format!("{key_prefix}.{}", secrets::random_hex(32));
    let key_hash = secrets::hmac_hex(&secret, &plaintext);
    let (created_by_user, created_by_member) = match &credential {
        Credential::Session(s) => (Some(s.user_id.clone()), s.active_member_id.clone()),
        Credential::ApiKey(k) => (k.created_by_user_id.clone(), k.created_by_member_id.clone()),
    };
    let mut cols = Columns::default();
    cols.set("id", id.clone()).set("name", name).set("key_prefix", key_prefix).set("key_hash", key_hash);
    cols.set("level", level).set_opt("space_id", space_id).set_opt("group_id", group_id);
    cols.set("permission_keys", serde_json::json!(permission_keys)).set_opt("status", b.status);
    cols.set_opt("expires_at", expires_at).set_opt("created_by_user_id", created_by_user);
    cols.set_opt("created_by_member_id", created_by_member).set_opt("metadata", crud::metadata(b.metadata)?);
    cols.set_opt("created_by_api_key_id", parent_key);
    let tx = db::begin_mutation(&mut client, &ctx, None, None).await?;
    crud::insert(&*tx, &VIEW, &cols, Operation::Create).await?;
    let row = crud::finish(tx, &VIEW, &id, None, dto).await?;
    Ok(Data::created(ApiKeyCreated { row, api_key: plaintext.clone(), key: plaintext }))
}

#[utoipa::path(post, operation_id = "revoke_api_key", path = "/api/v1/api-keys/{id}/revoke", tag = "Admin", params(("id" = String, Path)),
    request_body(content = Option<ApiKeyRevoke>),
    responses((status = 200, description = "status = revoked; the key stops working, and so do the keys it created. Revoking a revoked key changes nothing", body = crate::envelope::Envelope<ApiKeyDto>),
              (status = 404, description = "API_KEY_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn revoke(
    mut db: Db,
    ctx: RequestContext,
    Path(id): Path<String>,
    OptionalJson(b): OptionalJson<ApiKeyRevoke>,
) -> ApiResult<Data<ApiKeyDto>> {
    let credential = ctx.credential()?.clone();
    let mut cols = Columns::default();
    cols.set("status", "revoked".to_string());
    cols.set("revoked_at", time::OffsetDateTime::now_utc());
    cols.set_opt("revoked_by_user_id", credential.user_id().map(str::to_string));
    cols.set_opt("revoked_reason", b.revoked_reason);
    let mut client = db.connection().await?;
    let tx = db::begin_mutation(&mut client, &ctx, None, None).await?;
    let row = VIEW.fetch(&*tx, &id, None).await?;
    // Revoking is idempotent: a revoked key keeps its first revoked_at, revoker and reason.
    if row.get::<_, Option<time::OffsetDateTime>>("revoked_at").is_some() {
        return crud::finish(tx, &VIEW, &id, None, dto).await.map(Data::ok);
    }
    crud::update(&*tx, &VIEW, &id, None, &cols).await.map_err(|e| {
        if e.status == StatusCode::CONFLICT {
            ApiError::new(StatusCode::CONFLICT, code::API_KEY_REVOKE_FAILED, "ApiKey could not be revoked.")
        } else {
            e
        }
    })?;
    crud::finish(tx, &VIEW, &id, None, dto).await.map(Data::ok)
}
