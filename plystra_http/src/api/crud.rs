//! What every Core management route shares: reading one row through an entity's view, paging a list,
//! inserting and updating with the acting context set, and lifecycle actions (disable, restore, revoke,
//! archive, soft delete) which are plain UPDATEs that the database audits.
//! The SQL itself is in [`crate::store::crud`]; this module keeps what a request brings (bodies, field checks).

use plystra_core::closed_sets::ClosedSet;
use serde::Deserialize;
use tokio_postgres::Row;

use crate::db::{self, ActorContext, Db};
use crate::error::{ApiError, ApiResult};
use crate::request_context::RequestContext;
pub use crate::store::crud::{finish, insert, require_space, update, upsert, Columns, Param, View};

/// A status change (disable, restore, revoke, archive) with optional extra columns, audited by the database.
#[allow(clippy::too_many_arguments)]
pub async fn set_status<T>(
    db: &mut Db,
    ctx: &RequestContext,
    actor: Option<&ActorContext>,
    view: &View,
    id: &str,
    space_id: Option<&str>,
    cols: Columns,
    map: impl Fn(&Row) -> T,
) -> ApiResult<T> {
    let mut client = db.connection().await?;
    let tx = db::begin_mutation(&mut client, ctx, actor, None).await?;
    update(&*tx, view, id, space_id, &cols).await?;
    finish(tx, view, id, space_id, map).await
}

/// The body of lifecycle actions: everything optional, so an empty body is fine.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LifecycleBody {
    pub actor: Option<ActorContext>,
    pub revoked_reason: Option<String>,
    pub reason: Option<String>,
}

/// `metadata` must be a JSON object (the schema's rule, checked early for a clear message) whose numbers
/// can be read back (see [`unreadable_number`]).
pub fn metadata(value: Option<serde_json::Value>) -> ApiResult<Option<serde_json::Value>> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v @ serde_json::Value::Object(_)) => match unreadable_number(&v, "metadata") {
            Some(path) => Err(ApiError::validation(
                "metadata",
                format!(
                    "{path} is a number too large to be read back: PostgreSQL keeps it as an integer of over 300 \
                     digits, which JSON readers that use doubles refuse. Store it as a string."
                ),
            )
            .with_details(serde_json::json!({ "field": "metadata", "path": path }))),
            None => Ok(Some(v)),
        },
        Some(_) => Err(ApiError::validation("metadata", "metadata must be a JSON object.")),
    }
}

/// The path of the first number in `value` that would not read back once stored. PostgreSQL keeps a JSON
/// number exactly and prints it without an exponent: 1.7976931348623157e308 comes back as a 309-digit integer,
/// which a double-based reader (serde_json's, among others) refuses as out of range. Each number is printed
/// here as PostgreSQL will print it and parsed as a reader will.
fn unreadable_number(value: &serde_json::Value, path: &str) -> Option<String> {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => {
            let printed = plain_decimal(&n.to_string());
            serde_json::from_str::<serde_json::Value>(&printed).is_err().then(|| path.to_string())
        }
        serde_json::Value::Array(items) => {
            items.iter().enumerate().find_map(|(i, v)| unreadable_number(v, &format!("{path}[{i}]")))
        }
        serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| unreadable_number(v, &format!("{path}.{k}"))),
        _ => None,
    }
}

/// A JSON number as PostgreSQL's `numeric` prints it: every digit, no exponent (`1.5e3` -> `1500`,
/// `-2e-3` -> `-0.002`).
fn plain_decimal(number: &str) -> String {
    let (sign, unsigned) = number.strip_prefix('-').map_or(("", number), |rest| ("-", rest));
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().unwrap_or(0)),
        None => return number.to_string(),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int_part}{frac_part}");
    // Where the decimal point falls in `digits`.
    let point = int_part.len() as i64 + exponent;
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
    };
    format!("{sign}{body}")
}

/// An optional field whose value must be one of a closed set ([`plystra_core::closed_sets`]): anything else is
/// 400 VALIDATION_FAILED naming the field and listing the allowed values in `details.allowed`.
pub fn closed<T: ClosedSet>(field: &str, value: Option<&str>) -> ApiResult<Option<T>> {
    let Some(v) = value else { return Ok(None) };
    T::parse(v).map(Some).ok_or_else(|| {
        let allowed = T::names();
        ApiError::validation(field, format!("{field} must be one of: {}.", allowed.join(", ")))
            .with_details(serde_json::json!({ "field": field, "allowed": allowed }))
    })
}

/// Like [`closed`], when only some of the set's values may be written here (`allowed`).
pub fn closed_among<T: ClosedSet + PartialEq>(field: &str, value: Option<&str>, allowed: &[T]) -> ApiResult<Option<T>> {
    let Some(v) = value else { return Ok(None) };
    T::parse(v).filter(|p| allowed.contains(p)).map(Some).ok_or_else(|| {
        let names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
        ApiError::validation(field, format!("{field} must be one of: {}.", names.join(", ")))
            .with_details(serde_json::json!({ "field": field, "allowed": names }))
    })
}

/// Like [`closed`], for a `status` field: the checked value as text, ready for its column.
pub fn status<T: ClosedSet>(value: Option<String>) -> ApiResult<Option<String>> {
    Ok(closed::<T>("status", value.as_deref())?.map(|v| v.as_str().to_string()))
}

/// The OpenAPI schema of an optional field of a closed set: its values, or null (absent).
pub fn closed_schema<T: ClosedSet>() -> utoipa::openapi::Object {
    values_schema(T::NAME, &T::names(), true)
}

/// The OpenAPI schema of a required field of a closed set: one of its values.
pub fn required_closed_schema<T: ClosedSet>() -> utoipa::openapi::Object {
    values_schema(T::NAME, &T::names(), false)
}

/// `"string"`, or `["string", "null"]` for a field that may be null.
fn string_type(nullable: bool) -> utoipa::openapi::schema::SchemaType {
    use utoipa::openapi::schema::{SchemaType, Type};
    if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    }
}

pub(crate) fn values_schema(name: &str, names: &[&str], nullable: bool) -> utoipa::openapi::Object {
    let mut values: Vec<serde_json::Value> = names.iter().map(|n| serde_json::Value::from(*n)).collect();
    if nullable {
        values.push(serde_json::Value::Null);
    }
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(string_type(nullable))
        .enum_values(Some(values))
        .description(Some(format!("{name}: one of {}.", names.join(", "))))
        .build()
}

/// The schema functions `#[schema(schema_with = ...)]` names, one per closed set the request bodies use.
pub mod schema {
    use plystra_core::closed_sets::*;
    use utoipa::openapi::Object;

    macro_rules! schemas {
        ($($f:ident => $t:ty),+ $(,)?) => {
            $(pub fn $f() -> Object { super::closed_schema::<$t>() })+
        };
    }

    schemas!(
        user_status => UserStatus,
        space_status => SpaceStatus,
        group_status => GroupStatus,
        member_status => MemberStatus,
        user_member_status => UserMemberStatus,
        role_status => RoleStatus,
        member_role_status => MemberRoleStatus,
        permission_status => PermissionStatus,
        resource_type_status => ResourceTypeStatus,
        resource_mapping_status => ResourceMappingStatus,
        resource_status => ResourceStatus,
        admin_grant_status => AdminGrantStatus,
        api_key_status => ApiKeyStatus,
        grant_scope => GrantScope,
        risk_level => RiskLevel,
        admin_level => AdminLevel,
        api_key_level => ApiKeyLevel,
    );

    pub fn grant_scope_required() -> Object {
        super::required_closed_schema::<GrantScope>()
    }
    pub fn admin_level_required() -> Object {
        super::required_closed_schema::<AdminLevel>()
    }
    pub fn api_key_level_required() -> Object {
        super::required_closed_schema::<ApiKeyLevel>()
    }

    /// Formats the database refuses otherwise (the CHECK constraints of migrations/001_core_schema.sql; the
    /// `formats_are_the_database_checks` test holds each equal to its constraint), written into the document so
    /// that a client, or a generator of requests, learns them before a 400 does.
    pub const ROW_ID: &str = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$";
    /// An API key's id: no `.` (it separates the id from the secret in the key) and no `:`.
    pub const API_KEY_ID: &str = "^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$";
    pub const EMAIL: &str = r"^[^@\s]+@[^@\s]+$";
    pub const EMAIL_MAX: usize = 320;
    /// A resource type's or action's key.
    pub const REGISTRY_KEY: &str = "^[a-z][a-z0-9_-]{0,63}$";
    pub const GROUP_PATH: &str = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$";
    pub const GROUP_PATH_MAX: usize = 1024;
    /// `*`, or domain:action (or domain:*) in lowercase: `plystra_core::admin::valid_permission_key`.
    pub const PERMISSION_KEY: &str = r"^(\*|[a-z0-9_-]+:(\*|[a-z0-9_-]+))$";

    fn text(pattern: &str, max_length: Option<usize>, nullable: bool, description: &str) -> Object {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(super::string_type(nullable))
            .pattern(Some(pattern))
            .min_length(Some(1))
            .max_length(max_length)
            .description(Some(description))
            .build()
    }
    /// The id a row is created with (optional: the server makes one).
    pub fn row_id() -> Object {
        text(ROW_ID, Some(128), true, "Optional; made by the server when absent.")
    }
    pub fn api_key_id() -> Object {
        text(API_KEY_ID, Some(128), true, "Optional; made by the server when absent.")
    }
    pub fn email_required() -> Object {
        text(EMAIL, Some(EMAIL_MAX), false, "An e-mail address (unique, case-insensitively).")
    }
    pub fn email() -> Object {
        text(EMAIL, Some(EMAIL_MAX), true, "An e-mail address (unique, case-insensitively).")
    }
    pub fn registry_key_required() -> Object {
        text(REGISTRY_KEY, Some(64), false, "Lowercase: a letter, then letters, digits, _ or -.")
    }
    pub fn group_path_required() -> Object {
        text(GROUP_PATH, Some(GROUP_PATH_MAX), false, "Lowercase labels separated by dots (e.g. finance.apac).")
    }
    pub fn permission_keys_required() -> utoipa::openapi::Array {
        utoipa::openapi::ArrayBuilder::new()
            .items(text(PERMISSION_KEY, None, false, "* or domain:action in lowercase."))
            .min_items(Some(1))
            .build()
    }

    use utoipa::openapi::{RefOr, Schema};

    /// `base` and, besides, each of `rules` (an `allOf`): for the rules a struct's fields cannot state, such as
    /// "one of these fields" or "here or in every item".
    pub fn all_of(base: RefOr<Schema>, rules: impl IntoIterator<Item = Schema>) -> RefOr<Schema> {
        rules
            .into_iter()
            .fold(utoipa::openapi::schema::AllOfBuilder::new().item(base), |all, rule| all.item(rule))
            .into()
    }

    /// An object that holds every field of at least one of `sets` (each set a list of required fields).
    pub fn any_set_of(description: &str, sets: &[&[&str]]) -> Schema {
        let any = utoipa::openapi::schema::AnyOfBuilder::new().description(Some(description));
        let any = sets.iter().fold(any, |any, set| {
            any.item(set.iter().fold(utoipa::openapi::ObjectBuilder::new(), |o, field| o.required(*field)))
        });
        Schema::AnyOf(any.build())
    }

    /// A request body whose rules its fields cannot state; the document describes it as [`Ruled`] says.
    pub trait RequestRules: utoipa::ToSchema {
        fn rules() -> Vec<Schema>;
    }

    /// The document's schema of `T`: its fields and its rules (`all_of`), under `T`'s own name.
    pub struct Ruled<T>(std::marker::PhantomData<T>);

    impl<T: RequestRules> utoipa::PartialSchema for Ruled<T> {
        fn schema() -> RefOr<Schema> {
            all_of(T::schema(), T::rules())
        }
    }

    impl<T: RequestRules> utoipa::ToSchema for Ruled<T> {
        fn name() -> std::borrow::Cow<'static, str> {
            T::name()
        }
        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            T::schemas(schemas);
        }
    }

    /// The status an AdminGrant or API key is created with (revoked is what `revoke` writes).
    pub fn creatable_status() -> Object {
        super::values_schema(
            "status at creation",
            &[AdminGrantStatus::Active.as_str(), AdminGrantStatus::Disabled.as_str()],
            true,
        )
    }
}

/// A required, non-empty string field.
pub fn required(field: &str, value: Option<String>) -> ApiResult<String> {
    match value.map(|v| v.trim().to_string()) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(ApiError::required(field)),
    }
}

/// An optional 32-bit integer, as JSON Schema's `integer` has it: a number without a fractional part, written
/// with or without one (`3` or `3.0`); serde's `i32` refuses the second form.
pub fn integral_i32<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    use serde::de::Error;
    use serde::Deserialize;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else { return Ok(None) };
    let whole = match (n.as_i64(), n.as_f64()) {
        (Some(i), _) => Some(i),
        (None, Some(f)) if f.fract() == 0.0 && f.abs() <= i64::MAX as f64 => Some(f as i64),
        _ => None,
    };
    match whole.map(i32::try_from) {
        Some(Ok(i)) => Ok(Some(i)),
        Some(Err(_)) => Err(D::Error::custom(format!("{n} is out of range (a 32-bit integer)"))),
        None => Err(D::Error::custom(format!("{n} is not an integer"))),
    }
}

/// An optional RFC 3339 time field.
pub fn time_field(field: &str, value: Option<&str>) -> ApiResult<Option<time::OffsetDateTime>> {
    value.filter(|v| !v.is_empty()).map(|v| db::parse_time(field, v)).transpose()
}

/// "finance_approver" -> "Finance Approver", as v1.0 names a Role or Group without one.
pub fn title_case(key: &str) -> String {
    key.split(['_', '-', '.', ' '])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_integer_may_be_written_with_a_zero_fraction() {
        #[derive(serde::Deserialize)]
        struct Body {
            #[serde(default, deserialize_with = "integral_i32")]
            n: Option<i32>,
        }
        let read = |json: &str| serde_json::from_str::<Body>(json).map(|b| b.n).map_err(|e| e.to_string());
        assert_eq!(read(r#"{"n": 3}"#), Ok(Some(3)));
        assert_eq!(read(r#"{"n": -13482378.0}"#), Ok(Some(-13482378)));
        assert_eq!(read(r#"{"n": null}"#), Ok(None));
        assert_eq!(read("{}"), Ok(None));
        assert_eq!(read(r#"{"n": -2147483648}"#), Ok(Some(i32::MIN)));
        assert!(read(r#"{"n": 2147483648}"#).unwrap_err().contains("out of range"));
        assert!(read(r#"{"n": 2147483648.0}"#).unwrap_err().contains("out of range"));
        assert!(read(r#"{"n": 1e300}"#).unwrap_err().contains("not an integer"));
        assert!(read(r#"{"n": 1.5}"#).unwrap_err().contains("not an integer"));
        assert!(read(r#"{"n": "3"}"#).is_err());
    }

    /// The document's formats are the database's: each pattern is the regular expression of the CHECK constraint
    /// that refuses a row otherwise (PostgreSQL's and ECMA-262's syntax agree for these), so the two cannot drift.
    #[test]
    fn formats_are_the_database_checks() {
        use schema::*;
        let sql = include_str!("../../../migrations/001_core_schema.sql");
        let check = |constraint: &str, column: &str, pattern: &str| {
            let text = format!("{constraint} CHECK ({column} ~ '{pattern}'");
            assert!(sql.contains(&text), "migrations/001_core_schema.sql has no {text:?}");
        };
        for table in [
            "users",
            "spaces",
            "groups",
            "members",
            "user_members",
            "roles",
            "permissions",
            "member_roles",
            "role_permissions",
            "resource_types",
            "resource_actions",
            "resource_mappings",
            "admin_grants",
        ] {
            check(&format!("{table}_id_format"), "id", ROW_ID);
        }
        check("api_keys_id_format", "id", API_KEY_ID);
        check("users_email_format", "email", EMAIL);
        assert!(sql.contains(&format!("length(email) <= {EMAIL_MAX}")));
        check("resource_types_key_format", "key", REGISTRY_KEY);
        check("resource_actions_key_format", "key", REGISTRY_KEY);
        assert!(sql.contains(&format!(
            "groups_path_format\n                        CHECK (path ~ '{GROUP_PATH}' AND length(path) <= {GROUP_PATH_MAX})"
        )));
    }

    /// PERMISSION_KEY describes what `valid_permission_key` accepts (no database constraint holds it): the
    /// validator's answers on the pattern's edges, each written out with what the pattern says of it.
    #[test]
    fn permission_key_pattern_is_the_validator() {
        assert_eq!(schema::PERMISSION_KEY, r"^(\*|[a-z0-9_-]+:(\*|[a-z0-9_-]+))$");
        let matches_pattern =
            ["*", "groups:manage", "groups:*", "a-b:c_d", "9:0", "_:-", "audit:read", "users:disable"];
        let outside_pattern = [
            "",
            "**",
            "*:*",
            "*:read",
            "groups",
            "groups:",
            ":read",
            "groups:read:x",
            "Groups:read",
            "groups:Read",
            "groups :read",
            "groups:re ad",
            "groups.read",
            "groups:read\n",
            "grüße:read",
        ];
        for key in matches_pattern {
            assert!(plystra_core::admin::valid_permission_key(key), "{key:?} matches the pattern");
        }
        for key in outside_pattern {
            assert!(!plystra_core::admin::valid_permission_key(key), "{key:?} is outside the pattern");
        }
    }

    #[test]
    fn numbers_print_as_postgresql_prints_them() {
        assert_eq!(plain_decimal("1.5e3"), "1500");
        assert_eq!(plain_decimal("-2e-3"), "-0.002");
        assert_eq!(plain_decimal("1.25e1"), "12.5");
        assert_eq!(plain_decimal("42"), "42");
        assert_eq!(plain_decimal("1.7976931348623157e308").len(), 309);
    }

    #[test]
    fn metadata_numbers_that_would_not_read_back_are_refused_with_their_path() {
        let ok = serde_json::json!({"a": 1.5, "b": [1e300, -1e-300], "c": u64::MAX, "d": "1e999"});
        assert!(metadata(Some(ok)).is_ok());
        for (v, path) in [
            (serde_json::json!({"max": f64::MAX}), "metadata.max"),
            (serde_json::json!({"n": {"list": [0, -f64::MAX]}}), "metadata.n.list[1]"),
        ] {
            let e = metadata(Some(v)).unwrap_err();
            assert_eq!(e.details["field"], "metadata");
            assert_eq!(e.details["path"], path);
        }
    }

    #[test]
    fn names_default_to_the_title_cased_key() {
        assert_eq!(title_case("finance_approver"), "Finance Approver");
        assert_eq!(title_case("apac"), "Apac");
    }
}
