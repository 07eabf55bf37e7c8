//! The error envelope and every error code the front answers with (docs/v1-reference.md §1.8), in one place.
//!
//! `{"error": {code, message, details, request_id[, deny_code, trace_id, audit_log_id]}, "request_id"}` with
//! the header `X-Plystra-Error-Code`. Messages are written for clients; database errors are logged, never sent.

use std::borrow::Cow;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::envelope;

pub const ERROR_CODE_HEADER: &str = "x-plystra-error-code";
/// The `Retry-After` every 503 carries, in seconds.
pub const RETRY_AFTER_SECONDS: &str = "1";

/// Error codes that are not tied to an entity. Entity codes (`USER_NOT_FOUND`, `ROLE_CREATE_FAILED`, ...) come
/// from [`Entity`].
pub mod code {
    pub const VALIDATION_FAILED: &str = "VALIDATION_FAILED";
    pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
    pub const ROUTE_NOT_FOUND: &str = "ROUTE_NOT_FOUND";
    pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    pub const INTERNAL_ERROR: &str = "INTERNAL_ERROR";
    pub const NOT_READY: &str = "NOT_READY";
    pub const FEATURE_DISABLED: &str = "FEATURE_DISABLED";
    pub const NOT_IMPLEMENTED: &str = "NOT_IMPLEMENTED";
    pub const METRICS_TOKEN_REQUIRED: &str = "METRICS_TOKEN_REQUIRED";
    pub const INLINE_CONTEXT_REQUIRES_API_KEY: &str = "INLINE_CONTEXT_REQUIRES_API_KEY";
    pub const DATABASE_UNAVAILABLE: &str = "DATABASE_UNAVAILABLE";
    pub const AUDIT_UNAVAILABLE: &str = "AUDIT_UNAVAILABLE";
    pub const REQUEST_TIMEOUT: &str = "REQUEST_TIMEOUT";
    pub const SERVER_BUSY: &str = "SERVER_BUSY";
    // Credentials (docs/v1-reference.md §1.8, §1.11).
    pub const AUTHENTICATION_REQUIRED: &str = "AUTHENTICATION_REQUIRED";
    pub const SESSION_EXPIRED: &str = "SESSION_EXPIRED";
    pub const ADMIN_PERMISSION_REQUIRED: &str = "ADMIN_PERMISSION_REQUIRED";
    pub const ACTIVE_MEMBER_REQUIRED: &str = "ACTIVE_MEMBER_REQUIRED";
    pub const ACTOR_USER_INACTIVE: &str = "ACTOR_USER_INACTIVE";
    pub const LAST_SUPER_ADMIN: &str = "LAST_SUPER_ADMIN";
    pub const LOGIN_LOCKED: &str = "LOGIN_LOCKED";
    pub const LOGIN_THROTTLED: &str = "LOGIN_THROTTLED";
    pub const ADMIN_GRANT_REVOKE_FAILED: &str = "ADMIN_GRANT_REVOKE_FAILED";
    pub const API_KEY_REVOKE_FAILED: &str = "API_KEY_REVOKE_FAILED";
    // Database invariants, named after the rule they protect (see `db_errors`).
    pub const CROSS_SPACE_VIOLATION: &str = "CROSS_SPACE_VIOLATION";
    pub const GROUP_PATH_INVALID: &str = "GROUP_PATH_INVALID";
    pub const GROUP_PATH_PARENT_MISMATCH: &str = "GROUP_PATH_PARENT_MISMATCH";
    pub const GROUP_PATH_IMMUTABLE: &str = "GROUP_PATH_IMMUTABLE";
    pub const SPACE_IMMUTABLE: &str = "SPACE_IMMUTABLE";
    pub const ID_IMMUTABLE: &str = "ID_IMMUTABLE";
    pub const SOFT_DELETE_ONLY: &str = "SOFT_DELETE_ONLY";
}

/// The Core entities, for entity-named codes: `<ENTITY>_NOT_FOUND`, `<ENTITY>_CREATE_FAILED`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    User,
    Space,
    Group,
    Member,
    UserMember,
    Role,
    MemberRole,
    Permission,
    RolePermission,
    Resource,
    ResourceType,
    ResourceAction,
    ResourceMapping,
    AuditLog,
    AdminGrant,
    ApiKey,
}

impl Entity {
    pub fn code_prefix(self) -> &'static str {
        match self {
            Entity::User => "USER",
            Entity::Space => "SPACE",
            Entity::Group => "GROUP",
            Entity::Member => "MEMBER",
            Entity::UserMember => "USER_MEMBER",
            Entity::Role => "ROLE",
            Entity::MemberRole => "MEMBER_ROLE",
            Entity::Permission => "PERMISSION",
            Entity::RolePermission => "ROLE_PERMISSION",
            Entity::Resource => "RESOURCE",
            Entity::ResourceType => "RESOURCE_TYPE",
            Entity::ResourceAction => "RESOURCE_ACTION",
            Entity::ResourceMapping => "RESOURCE_MAPPING",
            Entity::AuditLog => "AUDIT_LOG",
            Entity::AdminGrant => "ADMIN_GRANT",
            Entity::ApiKey => "API_KEY",
        }
    }

    /// How the entity is named in messages ("UserMember was not found.").
    pub fn display(self) -> &'static str {
        match self {
            Entity::User => "User",
            Entity::Space => "Space",
            Entity::Group => "Group",
            Entity::Member => "Member",
            Entity::UserMember => "UserMember",
            Entity::Role => "Role",
            Entity::MemberRole => "MemberRole",
            Entity::Permission => "Permission",
            Entity::RolePermission => "RolePermission",
            Entity::Resource => "Resource",
            Entity::ResourceType => "ResourceType",
            Entity::ResourceAction => "ResourceAction",
            Entity::ResourceMapping => "ResourceMapping",
            Entity::AuditLog => "AuditLog",
            Entity::AdminGrant => "AdminGrant",
            Entity::ApiKey => "ApiKey",
        }
    }
}

/// What a failed write was doing, for `<ENTITY>_CREATE_FAILED` / `_UPDATE_FAILED` / `_UPSERT_FAILED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Upsert,
}

impl Operation {
    fn suffix(self) -> &'static str {
        match self {
            Operation::Create => "CREATE_FAILED",
            Operation::Update => "UPDATE_FAILED",
            Operation::Upsert => "UPSERT_FAILED",
        }
    }
}

/// The decision references an error may carry (docs/v1-reference.md §1.8: added when details is a decision).
#[derive(Debug, Clone, Default)]
pub struct DecisionRefs {
    pub deny_code: Option<String>,
    pub trace_id: Option<String>,
    pub audit_log_id: Option<String>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: Cow<'static, str>,
    pub details: Value,
    /// Boxed: rarely set, and it would otherwise double the size of every `Result<_, ApiError>`.
    pub decision: Option<Box<DecisionRefs>>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<Cow<'static, str>>, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError { status, code: code.into(), message: message.into(), details: json!({}), decision: None }
    }

    /// Sets `details`. It is always an object on the wire (`{}` when there is nothing to add): a value that is
    /// not an object is kept under `value`, so that clients generated from the document never meet a null.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = as_object(details);
        self
    }

    /// 400 VALIDATION_FAILED naming the offending field in `details.field`.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        ApiError::new(StatusCode::BAD_REQUEST, code::VALIDATION_FAILED, message.into())
            .with_details(json!({ "field": field }))
    }

    pub fn required(field: &str) -> Self {
        ApiError::validation(field, format!("{field} is required."))
    }

    pub fn not_found(entity: Entity) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{}_NOT_FOUND", entity.code_prefix()),
            format!("{} was not found.", entity.display()),
        )
    }

    pub fn conflict(entity: Entity, op: Operation) -> Self {
        let verb = match op {
            Operation::Create => "created",
            Operation::Update => "updated",
            Operation::Upsert => "saved",
        };
        ApiError::new(
            StatusCode::CONFLICT,
            format!("{}_{}", entity.code_prefix(), op.suffix()),
            format!("{} could not be {verb}: it conflicts with an existing row.", entity.display()),
        )
    }

    pub fn internal() -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code::INTERNAL_ERROR, "Request handling failed.")
    }

    pub fn feature_disabled(feature: &str) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, code::FEATURE_DISABLED, format!("{feature} is disabled."))
            .with_details(json!({ "feature": feature }))
    }

    pub fn route_not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, code::ROUTE_NOT_FOUND, "No route matches the request path.")
    }

    pub fn method_not_allowed() -> Self {
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, code::METHOD_NOT_ALLOWED, "Method is not allowed for this route.")
    }

    /// 403 ADMIN_PERMISSION_REQUIRED with `details.permission` (docs/v1-reference.md §1.8).
    pub fn admin_permission_required(permission: &str, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, code::ADMIN_PERMISSION_REQUIRED, message)
            .with_details(json!({ "permission": permission }))
    }

    pub fn database_unavailable() -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code::DATABASE_UNAVAILABLE, "The database is not reachable.")
    }

    /// 503 when the database rolled the request's transaction back for a concurrent one (`db::internal`): nothing
    /// changed, and the request may be sent again.
    pub fn concurrent_conflict() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code::DATABASE_UNAVAILABLE,
            "The request met a concurrent one in the database and changed nothing. Try again.",
        )
        .with_details(json!({ "reason": "concurrent_conflict" }))
    }

    /// 503 when every pooled connection stayed busy for DATABASE_POOL_WAIT_TIMEOUT (the pool is exhausted).
    pub fn database_busy() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code::DATABASE_UNAVAILABLE,
            "No database connection became free in time. Try again later.",
        )
        .with_details(json!({ "reason": "pool_exhausted" }))
    }
}

/// `details` as it goes on the wire: always an object.
fn as_object(details: Value) -> Value {
    match details {
        Value::Object(_) => details,
        Value::Null => json!({}),
        other => json!({ "value": other }),
    }
}

/// The error body as the OpenAPI document describes it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code (`VALIDATION_FAILED`, `USER_NOT_FOUND`, ...); also in the
    /// `X-Plystra-Error-Code` header.
    pub code: String,
    pub message: String,
    /// Always an object, `{}` when there is nothing to add: `field` names the offending request field, `allowed`
    /// lists the accepted values of a closed set, `rule` names a database rule that was broken.
    #[schema(value_type = Object)]
    pub details: Value,
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deny_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_log_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
    pub request_id: String,
}

impl IntoResponse for ApiError {
    /// The envelope without its request_id, which the request-id middleware writes in
    /// ([`crate::envelope::Unstamped`]): an error is built wherever it happens, far from the request.
    fn into_response(self) -> Response {
        let decision = self.decision.map(|d| *d).unwrap_or_default();
        let body = ErrorBody {
            code: self.code.to_string(),
            message: self.message.to_string(),
            details: as_object(self.details),
            request_id: String::new(),
            deny_code: decision.deny_code,
            trace_id: decision.trace_id,
            audit_log_id: decision.audit_log_id,
        };
        let mut response = envelope::unstamped(self.status, envelope::Unstamped::Error(Box::new(body)));
        if let Ok(value) = HeaderValue::from_str(&self.code) {
            response.headers_mut().insert(ERROR_CODE_HEADER, value);
        }
        // Every 503 is temporary (database down or busy, not ready, a request over its deadline): say when to
        // try again, so that clients back off instead of hammering the server.
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_is_always_an_object() {
        assert_eq!(ApiError::internal().details, json!({}));
        assert_eq!(ApiError::internal().with_details(Value::Null).details, json!({}));
        assert_eq!(ApiError::internal().with_details(json!(3)).details, json!({"value": 3}));
        assert_eq!(as_object(Value::Null), json!({}));
    }

    #[test]
    fn entity_codes_follow_the_reference() {
        assert_eq!(ApiError::not_found(Entity::UserMember).code, "USER_MEMBER_NOT_FOUND");
        assert_eq!(ApiError::not_found(Entity::AuditLog).code, "AUDIT_LOG_NOT_FOUND");
        assert_eq!(ApiError::conflict(Entity::RolePermission, Operation::Create).code, "ROLE_PERMISSION_CREATE_FAILED");
        assert_eq!(ApiError::conflict(Entity::Space, Operation::Update).code, "SPACE_UPDATE_FAILED");
        assert_eq!(ApiError::conflict(Entity::ResourceType, Operation::Upsert).code, "RESOURCE_TYPE_UPSERT_FAILED");
    }
}
