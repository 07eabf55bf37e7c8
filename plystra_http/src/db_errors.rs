//! How database refusals become client errors: the ONE table from constraint names and SQLSTATEs to HTTP
//! status and code. The database enforces the invariants (same Space, group path rules, immutability, soft
//! delete); the front only names the rule that was broken. No database message or detail is sent to clients.

use axum::http::StatusCode;
use serde_json::json;
use tokio_postgres::error::SqlState;

use crate::db;
use crate::error::{code, ApiError, Entity, Operation};

/// Rules enforced by triggers and CHECK constraints, by constraint name (exact, or a `*_suffix` family).
/// Order matters: the first match wins.
const INVARIANT_RULES: &[(&str, StatusCode, &str, &str)] = &[
    (
        "resource_types_key_reserved",
        StatusCode::BAD_REQUEST,
        code::VALIDATION_FAILED,
        "This key is reserved: auth and audit_partition begin the audit actions Plystra writes itself.",
    ),
    (
        "groups_path_format",
        StatusCode::BAD_REQUEST,
        code::GROUP_PATH_INVALID,
        "Group path must be lowercase labels separated by dots (e.g. finance.apac).",
    ),
    (
        "groups_path_parent",
        StatusCode::BAD_REQUEST,
        code::GROUP_PATH_PARENT_MISMATCH,
        "A child group's path must be its parent's path plus one label.",
    ),
    ("groups_path_immutable", StatusCode::CONFLICT, code::GROUP_PATH_IMMUTABLE, "A group's path cannot change."),
    (
        "*_same_space",
        StatusCode::BAD_REQUEST,
        code::CROSS_SPACE_VIOLATION,
        "Referenced rows must belong to the same Space.",
    ),
    ("*_space_immutable", StatusCode::CONFLICT, code::SPACE_IMMUTABLE, "A row cannot move to another Space."),
    ("*_id_immutable", StatusCode::CONFLICT, code::ID_IMMUTABLE, "An id cannot change."),
    ("last_super_admin", StatusCode::CONFLICT, code::LAST_SUPER_ADMIN, "The instance must keep an active super admin."),
    (
        "api_keys_parent_active",
        StatusCode::FORBIDDEN,
        code::ADMIN_PERMISSION_REQUIRED,
        "Only an active API key can create API keys.",
    ),
    (
        "api_keys_child_outlives_parent",
        StatusCode::BAD_REQUEST,
        code::VALIDATION_FAILED,
        "An API key created by an API key must expire no later than the key that creates it.",
    ),
    (
        "api_keys_child_exceeds_parent",
        StatusCode::FORBIDDEN,
        code::ADMIN_PERMISSION_REQUIRED,
        "An API key can only carry permission keys, on a scope, that the key creating it holds.",
    ),
    (
        "api_keys_lineage_depth",
        StatusCode::FORBIDDEN,
        code::ADMIN_PERMISSION_REQUIRED,
        "An API key can be created by a chain of at most 15 API keys; create it with a session.",
    ),
    (
        "api_keys_permission_keys_strings",
        StatusCode::BAD_REQUEST,
        code::VALIDATION_FAILED,
        "permission_keys holds at most 256 permission keys.",
    ),
    (
        "*_soft_delete_only",
        StatusCode::CONFLICT,
        code::SOFT_DELETE_ONLY,
        "Core entities referenced by AuditLog are soft-delete-only.",
    ),
];

/// References to Space-scoped rows: (foreign key, the same-Space rule of that reference). A reference to a row
/// that does not exist fails the foreign key; one to a row of another Space fails the same-Space rule. Both are
/// answered as the same-Space rule, so that an answer never tells a tenant whether an id exists in another
/// Space (ids are instance-wide).
const SPACE_SCOPED_REFERENCES: &[(&str, &str)] = &[
    ("user_members_member_id_fkey", "user_members_member_same_space"),
    ("user_members_linked_by_member_id_fkey", "user_members_linked_by_same_space"),
    ("member_roles_member_id_fkey", "member_roles_member_same_space"),
    ("member_roles_role_id_fkey", "member_roles_role_same_space"),
    ("member_roles_scope_anchor_group_id_fkey", "member_roles_anchor_same_space"),
    ("resources_group_id_fkey", "resources_group_same_space"),
    ("resources_owner_member_id_fkey", "resources_owner_same_space"),
    ("groups_parent_group_id_fkey", "groups_parent_same_space"),
    ("admin_grants_member_id_fkey", "admin_grants_member_same_space"),
    ("admin_grants_group_id_fkey", "admin_grants_group_same_space"),
    ("api_keys_group_id_fkey", "api_keys_group_same_space"),
];

/// Core tables, longest first so that `user_members_x` is not read as `users_...`.
const TABLES: &[&str] = &[
    "resource_mappings",
    "role_permissions",
    "resource_actions",
    "resource_types",
    "member_roles",
    "user_members",
    "admin_grants",
    "permissions",
    "audit_logs",
    "resources",
    "api_keys",
    "sessions",
    "members",
    "spaces",
    "groups",
    "roles",
    "users",
];

/// The entity a reference column points at (`user_id`, `granted_by_user_id` -> User; `resource_type` -> the
/// registry's ResourceType, by key). Longest suffixes first: `user_member_id` is not a Member.
fn referenced_entity(column: &str) -> Option<Entity> {
    const SUFFIXES: &[(&str, Entity)] = &[
        ("user_member_id", Entity::UserMember),
        ("api_key_id", Entity::ApiKey),
        ("resource_type_id", Entity::ResourceType),
        ("resource_type", Entity::ResourceType),
        ("permission_id", Entity::Permission),
        ("member_id", Entity::Member),
        ("space_id", Entity::Space),
        ("group_id", Entity::Group),
        ("role_id", Entity::Role),
        ("user_id", Entity::User),
    ];
    SUFFIXES.iter().find(|(suffix, _)| column == *suffix || column.ends_with(&format!("_{suffix}"))).map(|(_, e)| *e)
}

/// 404 `<REFERENCED>_NOT_FOUND` for a field that names a row that does not exist.
fn missing_reference(field: &str, target: Entity) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("{}_NOT_FOUND", target.code_prefix()),
        format!("{field} refers to a {} that does not exist.", target.display()),
    )
    .with_details(json!({ "field": field }))
}

fn rule_for(constraint: &str) -> Option<&'static (&'static str, StatusCode, &'static str, &'static str)> {
    INVARIANT_RULES.iter().find(|(name, ..)| match name.strip_prefix('*') {
        Some(suffix) => constraint.ends_with(suffix),
        None => constraint == *name,
    })
}

/// The column a `<table>_<column>_<kind>` constraint is about (`users_email_format` -> `email`).
fn column_of(constraint: &str, kinds: &[&str]) -> Option<String> {
    let table = TABLES.iter().find(|t| constraint.starts_with(&format!("{t}_")))?;
    let rest = &constraint[table.len() + 1..];
    kinds.iter().find_map(|k| rest.strip_suffix(&format!("_{k}"))).map(str::to_string)
}

/// Maps a failed write on `entity` (doing `op`) to the client error.
pub fn write_error(e: tokio_postgres::Error, entity: Entity, op: Operation) -> ApiError {
    let Some(db) = e.as_db_error() else {
        return db::internal(e);
    };
    let constraint = db.constraint().unwrap_or("");
    let state = db.code();
    if let Some((_, status, code, message)) = rule_for(constraint) {
        if *state == SqlState::CHECK_VIOLATION
            || *state == SqlState::INTEGRITY_CONSTRAINT_VIOLATION
            || *state == SqlState::RESTRICT_VIOLATION
        {
            let mut err = ApiError::new(*status, *code, *message).with_details(json!({ "rule": constraint }));
            if *code == code::GROUP_PATH_INVALID {
                err.details["field"] = json!("path");
            } else if let Some(column) = db.column() {
                err.details["field"] = json!(column);
            }
            return err;
        }
    }
    if *state == SqlState::UNIQUE_VIOLATION {
        let mut err = ApiError::conflict(entity, op);
        err.details = json!({ "rule": constraint });
        return err;
    }
    if *state == SqlState::FOREIGN_KEY_VIOLATION {
        if let Some((_, rule)) = SPACE_SCOPED_REFERENCES.iter().find(|(fk, _)| *fk == constraint) {
            let (_, status, code, message) = rule_for(rule).expect("a same-Space rule");
            return ApiError::new(*status, *code, *message)
                .with_details(json!({ "rule": rule, "field": column_of(constraint, &["fkey"]) }));
        }
        let field = column_of(constraint, &["fkey"]);
        let referencing = db.table().is_some_and(|t| constraint.starts_with(&format!("{t}_")));
        return match (field, referencing) {
            // The row written names a row that does not exist: `<REFERENCED>_NOT_FOUND`, naming the field.
            (Some(field), true) => match referenced_entity(&field) {
                Some(target) => missing_reference(&field, target),
                None => ApiError::validation(field.clone(), format!("{field} refers to a row that does not exist.")),
            },
            // A row still referenced elsewhere (ids do not change and rows are soft-deleted, so this is rare).
            (field, _) => ApiError::conflict(entity, op).with_details(json!({ "field": field })),
        };
    }
    if *state == SqlState::CHECK_VIOLATION {
        if let Some(field) = column_of(constraint, &["format", "nonempty", "known", "object", "array"]) {
            return ApiError::validation(field.clone(), format!("{field} is not valid."));
        }
        return ApiError::new(StatusCode::BAD_REQUEST, code::VALIDATION_FAILED, "The change violates a database rule.")
            .with_details(json!({ "rule": constraint }));
    }
    if *state == SqlState::NOT_NULL_VIOLATION {
        let field = db.column().unwrap_or("").to_string();
        return ApiError::validation(field.clone(), format!("{field} is required."));
    }
    read_error(e)
}

/// Maps a failed read or function call: invalid parameters are 400, everything else a logged 500.
pub fn read_error(e: tokio_postgres::Error) -> ApiError {
    if let Some(db) = e.as_db_error() {
        let state = db.code();
        if let Some(retry) = retryable(state) {
            return retry;
        }
        if *state == SqlState::INVALID_PARAMETER_VALUE {
            // The extension's contract: message `invalid request: <field> <problem>`, DETAIL = the field path.
            let field = db.detail().unwrap_or("").to_string();
            let message = db.message().strip_prefix("invalid request: ").unwrap_or("request is invalid");
            return ApiError::validation(field, format!("{message}."));
        }
        if *state == SqlState::INVALID_TEXT_REPRESENTATION
            // Text PostgreSQL cannot store (a NUL, an unsupported escape), too long for an index or a column.
            || *state == SqlState::CHARACTER_NOT_IN_REPERTOIRE
            || *state == SqlState::UNTRANSLATABLE_CHARACTER
            || *state == SqlState::PROGRAM_LIMIT_EXCEEDED
            || *state == SqlState::STRING_DATA_RIGHT_TRUNCATION
            || *state == SqlState::INVALID_DATETIME_FORMAT
            || *state == SqlState::DATETIME_FIELD_OVERFLOW
            || *state == SqlState::NUMERIC_VALUE_OUT_OF_RANGE
        {
            return ApiError::new(StatusCode::BAD_REQUEST, code::VALIDATION_FAILED, "A value has the wrong format.");
        }
    }
    db::internal(e)
}

/// A condition to retry: the audit writer could not record the decision now (the extension's SQLSTATE 57P03,
/// cannot connect now), so no decision was given. 503 AUDIT_UNAVAILABLE, with the Retry-After every 503 carries.
pub fn retryable(state: &SqlState) -> Option<ApiError> {
    (*state == SqlState::CANNOT_CONNECT_NOW).then(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code::AUDIT_UNAVAILABLE,
            "The decision could not be recorded in the audit trail now, so it was not given; retry.",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audit_writer_that_cannot_record_is_a_503_to_retry() {
        let e = retryable(&SqlState::CANNOT_CONNECT_NOW).expect("57P03 is retryable");
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.code, code::AUDIT_UNAVAILABLE);
        assert!(retryable(&SqlState::INTERNAL_ERROR).is_none());
        assert!(retryable(&SqlState::INVALID_PARAMETER_VALUE).is_none());
    }

    #[test]
    fn every_invariant_named_in_the_contract_has_a_rule() {
        for (constraint, expected) in [
            ("user_members_member_same_space", code::CROSS_SPACE_VIOLATION),
            ("member_roles_anchor_same_space", code::CROSS_SPACE_VIOLATION),
            ("resources_group_same_space", code::CROSS_SPACE_VIOLATION),
            ("groups_parent_same_space", code::CROSS_SPACE_VIOLATION),
            ("groups_path_parent", code::GROUP_PATH_PARENT_MISMATCH),
            ("groups_path_format", code::GROUP_PATH_INVALID),
            ("groups_path_immutable", code::GROUP_PATH_IMMUTABLE),
            ("members_space_immutable", code::SPACE_IMMUTABLE),
            ("roles_id_immutable", code::ID_IMMUTABLE),
            ("users_soft_delete_only", code::SOFT_DELETE_ONLY),
            ("last_super_admin", code::LAST_SUPER_ADMIN),
            ("api_keys_parent_active", code::ADMIN_PERMISSION_REQUIRED),
            ("api_keys_child_outlives_parent", code::VALIDATION_FAILED),
            ("api_keys_child_exceeds_parent", code::ADMIN_PERMISSION_REQUIRED),
            ("api_keys_lineage_depth", code::ADMIN_PERMISSION_REQUIRED),
            ("api_keys_permission_keys_strings", code::VALIDATION_FAILED),
        ] {
            assert_eq!(rule_for(constraint).map(|r| r.2), Some(expected), "{constraint}");
        }
        assert!(rule_for("users_email_format").is_none());
    }

    #[test]
    fn a_missing_space_scoped_reference_reads_like_one_in_another_space() {
        for (fk, rule) in SPACE_SCOPED_REFERENCES {
            assert_eq!(rule_for(rule).map(|r| r.2), Some(code::CROSS_SPACE_VIOLATION), "{rule}");
            assert!(column_of(fk, &["fkey"]).is_some(), "{fk}");
        }
    }

    /// Every reference in the migrations (`<column> text ... REFERENCES plystra.<table>`) is answered with the
    /// NOT_FOUND code of the table it points at.
    #[test]
    fn every_reference_in_the_schema_names_the_entity_it_points_at() {
        let entity_of_table = |t: &str| match t {
            "users" => Entity::User,
            "spaces" => Entity::Space,
            "groups" => Entity::Group,
            "members" => Entity::Member,
            "user_members" => Entity::UserMember,
            "roles" => Entity::Role,
            "permissions" => Entity::Permission,
            "resource_types" => Entity::ResourceType,
            "api_keys" => Entity::ApiKey,
            other => panic!("a reference to {other}: add it to referenced_entity"),
        };
        let mut seen = 0;
        for sql in
            [include_str!("../../migrations/001_core_schema.sql"), include_str!("../../migrations/006_trust.sql")]
        {
            for line in sql.lines().filter(|l| l.contains("REFERENCES plystra.")) {
                let words: Vec<&str> = line.split_whitespace().collect();
                let column = match words.iter().position(|w| *w == "COLUMN") {
                    Some(i) => words[i + 1],
                    None => words[0],
                };
                let table = line.split("REFERENCES plystra.").nth(1).unwrap().split([' ', '(']).next().unwrap();
                assert_eq!(referenced_entity(column), Some(entity_of_table(table)), "{line}");
                seen += 1;
            }
        }
        assert!(seen > 30, "{seen} references found");
        let e = missing_reference("permission_id", Entity::Permission);
        assert_eq!((e.status, e.code.as_ref()), (StatusCode::NOT_FOUND, "PERMISSION_NOT_FOUND"));
    }

    #[test]
    fn column_names_come_from_constraint_names() {
        assert_eq!(column_of("users_email_format", &["format"]).as_deref(), Some("email"));
        assert_eq!(column_of("resource_actions_risk_level_known", &["known"]).as_deref(), Some("risk_level"));
        assert_eq!(column_of("user_members_relation_type_nonempty", &["nonempty"]).as_deref(), Some("relation_type"));
        assert_eq!(column_of("user_members_user_id_fkey", &["fkey"]).as_deref(), Some("user_id"));
        assert_eq!(
            column_of("member_roles_scope_anchor_group_id_fkey", &["fkey"]).as_deref(),
            Some("scope_anchor_group_id")
        );
    }
}
