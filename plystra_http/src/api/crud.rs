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

fn values_schema(name: &str, names: &[&str], nullable: bool) -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    let mut values: Vec<serde_json::Value> = names.iter().map(|n| serde_json::Value::from(*n)).collect();
    let mut types = vec![Type::String];
    if nullable {
        values.push(serde_json::Value::Null);
        types.push(Type::Null);
    }
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(SchemaType::from_iter(types))
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
