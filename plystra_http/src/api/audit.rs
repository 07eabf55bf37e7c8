//! AuditLog reads (docs/v1-reference.md §1.9). The log is append-only: there is no update or delete route, and the database
//! refuses those statements anyway.

use axum::extract::Path;
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::{IntoParams, ToSchema};

use crate::db::{self, Db, Filters, RowExt};
use crate::db_errors;
use crate::envelope::{decode_cursor, page_from, page_limit, Data, Page};
use crate::error::{ApiError, ApiResult, Entity};
use crate::extract::ApiQuery;
use crate::store;

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditLogItem {
    pub id: String,
    pub space_id: String,
    pub actor_user_id: String,
    pub actor_member_id: String,
    pub actor_user_member_id: String,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub decision: String,
    pub deny_code: String,
    pub request_id: String,
    pub ip_address: String,
    pub user_agent: String,
    pub created_at: String,
    #[serde(skip)]
    seq: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditLogDetail {
    #[serde(flatten)]
    pub item: AuditLogItem,
    #[schema(value_type = Object)]
    pub trace: crate::db::JsonDoc,
}

fn item(row: &Row) -> AuditLogItem {
    AuditLogItem {
        id: row.get("id"),
        space_id: row.text("space_id"),
        actor_user_id: row.text("actor_user_id"),
        actor_member_id: row.text("actor_member_id"),
        actor_user_member_id: row.text("actor_user_member_id"),
        action: row.get("action"),
        resource_type: row.text("resource_type"),
        resource_id: row.text("resource_id"),
        decision: row.get("decision"),
        deny_code: row.text("deny_code"),
        request_id: row.text("request_id"),
        ip_address: row.text("ip_address"),
        user_agent: row.text("user_agent"),
        created_at: row.time("created_at"),
        seq: row.get("seq"),
    }
}

/// Every filter of docs/v1-reference.md §1.9, plus paging.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditLogSpaceQuery {
    /// Only this Space's rows.
    pub space_id: Option<String>,
}

/// The filters of both audit lists (the Space-scoped one takes its Space from the path).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditLogFilters {
    pub actor_user_id: Option<String>,
    pub actor_member_id: Option<String>,
    pub actor_user_member_id: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub decision: Option<String>,
    pub deny_code: Option<String>,
    pub request_id: Option<String>,
    /// RFC 3339, inclusive.
    #[param(format = DateTime)]
    pub created_at_from: Option<String>,
    /// RFC 3339, inclusive.
    #[param(format = DateTime)]
    pub created_at_to: Option<String>,
    /// 1..200 (default 50).
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

const ORDERING: &str = "audit_logs.created_desc";

async fn list_logs(db: &mut Db, q: AuditLogFilters, space_id: Option<String>) -> ApiResult<Page<AuditLogItem>> {
    let limit = page_limit(q.limit.as_deref(), 50);
    let mut f = Filters::default();
    // A Space-scoped route fixes the space; a `space_id` query cannot widen it.
    f.push_opt("space_id = $", &space_id);
    f.push_opt("actor_user_id = $", &q.actor_user_id);
    f.push_opt("actor_member_id = $", &q.actor_member_id);
    f.push_opt("actor_user_member_id = $", &q.actor_user_member_id);
    f.push_opt("resource_type = $", &q.resource_type);
    f.push_opt("resource_id = $", &q.resource_id);
    f.push_opt("decision = $", &q.decision);
    f.push_opt("deny_code = $", &q.deny_code);
    f.push_opt("request_id = $", &q.request_id);
    if let Some(from) = q.created_at_from.as_deref().filter(|s| !s.is_empty()) {
        f.push("created_at >= $", db::parse_time("created_at_from", from)?);
    }
    if let Some(to) = q.created_at_to.as_deref().filter(|s| !s.is_empty()) {
        f.push("created_at <= $", db::parse_time("created_at_to", to)?);
    }
    if let Some(key) = decode_cursor(q.cursor.as_deref(), ORDERING, 1)? {
        let seq: i64 = key[0]
            .parse()
            .map_err(|_| ApiError::validation("cursor", "cursor is not a cursor issued by this list."))?;
        f.push_many(store::audit::AFTER_SEQ, vec![Box::new(seq)]);
    }
    let client = db.connection().await?;
    let rows = store::audit::logs(&**client, &f, limit + 1).await.map_err(db_errors::read_error)?;
    Ok(page_from(rows.iter().map(item).collect(), limit, ORDERING, |i| vec![i.seq.to_string()]))
}

async fn get_log(db: &mut Db, id: &str, space_id: Option<&str>) -> ApiResult<Data<AuditLogDetail>> {
    let client = db.connection().await?;
    let row = store::audit::log_by_id(&**client, id, space_id)
        .await
        .map_err(db_errors::read_error)?
        .ok_or_else(|| ApiError::not_found(Entity::AuditLog))?;
    Ok(Data::ok(AuditLogDetail { item: item(&row), trace: row.json("trace") }))
}

#[utoipa::path(get, operation_id = "list_audit_logs", path = "/api/v1/audit/logs", tag = "Audit", params(AuditLogSpaceQuery, AuditLogFilters),
    responses((status = 200, description = "Audit rows, newest first", body = crate::envelope::ListEnvelope<AuditLogItem>),
              (status = 400, description = "VALIDATION_FAILED (bad date or cursor)", body = crate::error::ErrorEnvelope)))]
pub async fn list(
    mut db: Db,
    ApiQuery(space): ApiQuery<AuditLogSpaceQuery>,
    ApiQuery(q): ApiQuery<AuditLogFilters>,
) -> ApiResult<Page<AuditLogItem>> {
    list_logs(&mut db, q, space.space_id).await
}

#[utoipa::path(get, operation_id = "get_audit_log", path = "/api/v1/audit/logs/{id}", tag = "Audit", params(("id" = String, Path)),
    responses((status = 200, description = "One audit row with its trace", body = crate::envelope::Envelope<AuditLogDetail>),
              (status = 404, description = "AUDIT_LOG_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn get(mut db: Db, Path(id): Path<String>) -> ApiResult<Data<AuditLogDetail>> {
    get_log(&mut db, &id, None).await
}

#[utoipa::path(get, operation_id = "list_space_audit_logs", path = "/api/v1/spaces/{space_id}/audit-logs", tag = "Audit",
    params(("space_id" = String, Path), AuditLogFilters),
    responses((status = 200, description = "The Space's audit rows, newest first", body = crate::envelope::ListEnvelope<AuditLogItem>)))]
pub async fn list_in_space(
    mut db: Db,
    Path(space_id): Path<String>,
    ApiQuery(q): ApiQuery<AuditLogFilters>,
) -> ApiResult<Page<AuditLogItem>> {
    list_logs(&mut db, q, Some(space_id)).await
}

#[utoipa::path(get, operation_id = "get_space_audit_log", path = "/api/v1/spaces/{space_id}/audit-logs/{id}", tag = "Audit",
    params(("space_id" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "One audit row of the Space", body = crate::envelope::Envelope<AuditLogDetail>),
              (status = 404, description = "AUDIT_LOG_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn get_in_space(mut db: Db, Path((space_id, id)): Path<(String, String)>) -> ApiResult<Data<AuditLogDetail>> {
    get_log(&mut db, &id, Some(&space_id)).await
}

/// What a replay may ask for on top of the answer.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayBody {
    /// Write the replayed decision's own audit row (per the audit mode, like any decision). Default false: a
    /// replay reads. Asking for a row needs `authz:check` on the row's Space as well as `audit:read`.
    pub audit: Option<bool>,
}

#[utoipa::path(post, operation_id = "replay_audit_log", path = "/api/v1/audit/logs/{id}/replay", tag = "Audit",
    params(("id" = String, Path, pattern = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")),
    request_body(content = Option<ReplayBody>),
    responses((status = 200, description = "The decision then (the row's trace) and now (today's data), side by side, \
                                            with every grant, binding, group or registry entry that changed", body = crate::envelope::Envelope<Object>),
              (status = 400, description = "VALIDATION_FAILED (a malformed id; a row that is not a replayable decision)", body = crate::error::ErrorEnvelope),
              (status = 403, description = "ADMIN_PERMISSION_REQUIRED", body = crate::error::ErrorEnvelope),
              (status = 404, description = "AUDIT_LOG_NOT_FOUND", body = crate::error::ErrorEnvelope)))]
pub async fn replay(
    mut db: Db,
    ctx: crate::request_context::RequestContext,
    Path(id): Path<String>,
    crate::extract::OptionalJson(body): crate::extract::OptionalJson<ReplayBody>,
) -> ApiResult<Data<crate::db::JsonDoc>> {
    let audit = body.audit.unwrap_or(false);
    let credential = ctx.credential()?;
    let mut client = db.connection().await?;
    // What is checked, what is answered and what is written come from one snapshot: a resource registered in
    // another Space between the check and the replay cannot slip into the answer or the new row.
    let tx =
        db::begin_mutation_at(&mut client, &ctx, None, None, tokio_postgres::IsolationLevel::RepeatableRead).await?;
    let row_space = store::audit::space_of_log(&*tx, &id).await.map_err(db_errors::read_error)?;
    let read = store::audit::replay(&*tx, &id, false).await.map_err(db_errors::read_error)?;
    let read = read.ok_or_else(|| ApiError::not_found(Entity::AuditLog))?;
    // The route table checked audit:read on the row's Space. Today's data may place the replayed request
    // elsewhere (an id the row's decision did not find, registered since in another Space; a grant or group of
    // another Space): the answer shows those objects, so the credential must read the audit of every Space they
    // lie in, as it would need the permission there to ask the decision itself.
    let spaces = spaces_named_now(read.as_str())?;
    for space in spaces.iter().filter(|s| Some(s.as_str()) != row_space.as_deref()) {
        let scope = crate::protection::RequestScope { space_id: Some(space.clone()), group_id: None };
        if !crate::protection::permission_on(&tx, credential, "audit:read", &scope).await? {
            return Err(ApiError::admin_permission_required(
                "audit:read",
                "The replayed decision now reaches another Space, whose audit this credential may not read.",
            ));
        }
    }
    let doc = if audit {
        // Writing a decision row is deciding: the credential must also hold authz:check where the row lies (a row
        // of no Space: at instance scope) and in every other Space it reaches.
        let others = spaces.iter().filter(|s| Some(s.as_str()) != row_space.as_deref()).cloned().map(Some);
        for space_id in std::iter::once(row_space.clone()).chain(others) {
            let scope = crate::protection::RequestScope { space_id, group_id: None };
            if !crate::protection::permission_on(&tx, credential, "authz:check", &scope).await? {
                return Err(ApiError::admin_permission_required(
                    "authz:check",
                    "Writing a replay's audit row needs authz:check on the row's Space and every Space it reaches.",
                ));
            }
        }
        store::audit::replay(&*tx, &id, true).await.map_err(db_errors::read_error)?.unwrap_or(read)
    } else {
        read
    };
    tx.commit().await.map_err(db::internal)?;
    Ok(Data::ok(doc))
}

/// Every Space a replay's answer names on its "now" side and in its changes: the value of every member whose
/// name ends in `space_id` (a resource's, a group's, a Role's, a grant's `member_role_space_id`, ...), at any
/// depth. Numbers and other scalars are skipped unread (metadata may hold numbers no f64 holds).
fn spaces_named_now(answer: &str) -> ApiResult<std::collections::BTreeSet<String>> {
    use serde_json::value::RawValue;
    use std::collections::{BTreeSet, HashMap};
    fn walk(raw: &RawValue, under: Option<&str>, out: &mut BTreeSet<String>) -> serde_json::Result<()> {
        match raw.get().trim_start().as_bytes().first() {
            Some(b'{') => {
                let members: HashMap<String, &RawValue> = serde_json::from_str(raw.get())?;
                for (name, value) in members {
                    walk(value, Some(&name), out)?;
                }
            }
            Some(b'[') => {
                for value in serde_json::from_str::<Vec<&RawValue>>(raw.get())? {
                    walk(value, under, out)?;
                }
            }
            Some(b'"') if under.is_some_and(|n| n.ends_with("space_id")) => {
                let space: String = serde_json::from_str(raw.get())?;
                if !space.is_empty() {
                    out.insert(space);
                }
            }
            _ => {}
        }
        Ok(())
    }
    let read = || -> serde_json::Result<BTreeSet<String>> {
        let top: HashMap<String, &RawValue> = serde_json::from_str(answer)?;
        let mut out = BTreeSet::new();
        for part in ["now", "changes"] {
            if let Some(value) = top.get(part) {
                walk(value, None, &mut out)?;
            }
        }
        Ok(out)
    };
    read().map_err(|e| {
        tracing::error!(error = %e, "a replay's answer did not read as JSON");
        ApiError::internal()
    })
}

/// A Space's audit hash chain, verified now (`plystra.verify_audit_chain`).
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditChainStatus {
    pub space_id: String,
    /// intact, broken, or problem (rows left unsealed too long, a chain cut short).
    pub status: String,
    pub sealed_rows: i64,
    pub unsealed_rows: i64,
    pub broken_at_position: Option<i64>,
    pub broken_audit_id: Option<String>,
    pub problem: Option<String>,
}

#[utoipa::path(post, operation_id = "verify_space_audit_chain", path = "/api/v1/spaces/{space_id}/audit-chain/verify", tag = "Audit",
    params(("space_id" = String, Path)),
    responses((status = 200, description = "The Space's chain verified now: intact, or the first broken position", body = crate::envelope::Envelope<AuditChainStatus>)))]
pub async fn verify_chain(mut db: Db, Path(space_id): Path<String>) -> ApiResult<Data<AuditChainStatus>> {
    let client = db.connection().await?;
    let row = store::audit::verify_chain(&**client, &space_id).await.map_err(db_errors::read_error)?;
    // A Space with no audited row yet has no chain: nothing to break, reported as intact with no rows.
    let (sealed_rows, unsealed_rows, broken_at_position, broken_audit_id, problem) = match &row {
        Some(r) => (
            r.get("sealed_rows"),
            r.get("unsealed_rows"),
            r.get("broken_at_position"),
            r.get("broken_audit_id"),
            r.get("problem"),
        ),
        None => (0, 0, None, None, None),
    };
    let status = match (&broken_at_position, &problem) {
        (Some(_), _) => "broken",
        (None, Some(_)) => "problem",
        (None, None) => "intact",
    };
    Ok(Data::ok(AuditChainStatus {
        space_id,
        status: status.into(),
        sealed_rows,
        unsealed_rows,
        broken_at_position,
        broken_audit_id,
        problem,
    }))
}

#[cfg(test)]
mod tests {
    /// The replay path's id pattern (a literal, as the annotation needs one) is the row-id format, which the
    /// extension's `plystra.replay` checks.
    #[test]
    fn a_replays_spaces_are_read_from_now_and_changes_at_any_depth() {
        let answer = r#"{"then": {"space_id": "space_then"}, "request": {"space_id": "space_request"},
            "now": {"trace": {"target": {"resource": {"space_id": "space_a", "metadata": {"n": 1e999, "space_id": 7}}},
                    "candidates": [{"member_role_space_id": "space_b", "role": {"space_id": ""}}]}},
            "changes": [{"now": {"space_id": "space_c"}, "then": null}]}"#;
        let spaces = super::spaces_named_now(answer).expect("reads");
        assert_eq!(spaces.into_iter().collect::<Vec<_>>(), ["space_a", "space_b", "space_c"]);
        assert!(super::spaces_named_now("{\"now\": [1, ").is_err());
    }

    #[test]
    fn replay_id_pattern_is_the_row_id_format() {
        let doc = serde_json::to_value(crate::app::openapi_document()).expect("the document serialises");
        let params = doc["paths"]["/api/v1/audit/logs/{id}/replay"]["post"]["parameters"].as_array().cloned();
        let id = params.unwrap_or_default().into_iter().find(|p| p["name"] == "id").expect("the id parameter");
        assert_eq!(id["schema"]["pattern"], crate::api::crud::schema::ROW_ID);
    }
}
