//! The lookups, both directions, paginated: who may perform an action on a resource (`plystra.lookup_subjects`:
//! bindings, Members and Users, each with the grants that let it), and which resources of a type a binding may
//! act on (`plystra.lookup_resources` for that binding as the acting actor). The answers are the extension's,
//! decided by check's engine; no audit row is written. Both need `authz:read` on the whole Space in the path
//! (the route table): a lookup is an access review, showing who holds what anywhere in the Space, which a
//! credential that may only ask for decisions (`authz:check`) should not see.
//!
//! POST /api/v1/spaces/{space_id}/authz/simulate belongs with them: what `plystra.explain` would answer for any
//! binding of the Space on any of its resources (`plystra.simulate`), without an audit row. /authz/check and
//! /authz/explain let a session decide only as its own binding; asking as another binding is an access review
//! too, so it needs `authz:read` on the whole Space, and the binding and the resource must be the path's Space's
//! (one of another Space is not found, exactly as one that does not exist).

use axum::extract::Path;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use plystra_core::contract::{Actor, DecisionRequest, ExplainTrace};

use crate::api::authz::decision_context;
use crate::db::{self, Db};
use crate::db_errors;
use crate::envelope::{decode_cursor, page_from, page_limit, Data, Page};
use crate::error::{ApiError, ApiResult, Entity};
use crate::extract::{ApiJson, ApiQuery};
use crate::request_context::RequestContext;
use crate::store;

const SUBJECTS_ORDER: &str = "lookup_subjects.user_member_id";
const RESOURCES_ORDER: &str = "lookup_resources.id";
const DEFAULT_LIMIT: i64 = 50;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubjectsQuery {
    /// The action.
    #[param(required = true, min_length = 1)]
    pub action: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReachableQuery {
    /// The resource type.
    #[param(required = true, min_length = 1)]
    pub resource_type: Option<String>,
    /// The action.
    #[param(required = true, min_length = 1)]
    pub action: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// A binding that may act, with the grants that let it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectDto {
    pub user_member_id: String,
    pub member_id: String,
    pub user_id: String,
    /// Each grant whose scope covers the resource: member_role_id, role_id, role_key, permission_id, scope,
    /// scope_rule, anchor_group_id, anchor_group_path.
    #[schema(value_type = Vec<Object>)]
    pub grants: serde_json::Value,
}

/// A resource the binding may act on.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReachableResourceDto {
    pub resource_type: String,
    pub id: String,
}

fn required(value: Option<String>, field: &'static str) -> ApiResult<String> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| ApiError::validation(field, format!("{field} is required.")))
}

#[utoipa::path(get, operation_id = "lookup_subjects", path = "/api/v1/spaces/{space_id}/resources/{id}/subjects", tag = "Authz",
    params(("space_id" = String, Path), ("id" = String, Path), SubjectsQuery),
    responses((status = 200, description = "The bindings that may perform the action on the resource, in binding-id order, with the grants that let each",
               body = crate::envelope::ListEnvelope<SubjectDto>),
              (status = 404, description = "RESOURCE_NOT_FOUND: no resource with this id in this Space", body = crate::error::ErrorEnvelope)))]
pub async fn subjects(
    mut db: Db,
    Path((space_id, id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<SubjectsQuery>,
) -> ApiResult<Page<SubjectDto>> {
    let action = required(q.action, "action")?;
    let limit = page_limit(q.limit.as_deref(), DEFAULT_LIMIT);
    let after = decode_cursor(q.cursor.as_deref(), SUBJECTS_ORDER, 1)?.map(|mut k| k.remove(0));
    let client = db.connection().await?;
    // The resource must be in the path's Space (whose permission was checked): one in another Space is not found.
    let resource_type = store::resources::type_in_space(&client, &id, &space_id)
        .await
        .map_err(db::internal)?
        .ok_or_else(|| ApiError::not_found(Entity::Resource))?;
    let rows = store::lookups::subjects(&client, &resource_type, &id, &action, &after, (limit + 1) as i32)
        .await
        .map_err(db_errors::read_error)?;
    let items = rows
        .iter()
        .map(|r| SubjectDto {
            user_member_id: r.get(0),
            member_id: r.get(1),
            user_id: r.get(2),
            grants: r.try_get(3).unwrap_or_default(),
        })
        .collect();
    Ok(page_from(items, limit, SUBJECTS_ORDER, |s: &SubjectDto| vec![s.user_member_id.clone()]))
}

#[utoipa::path(get, operation_id = "lookup_resources", path = "/api/v1/spaces/{space_id}/user-members/{id}/resources", tag = "Authz",
    params(("space_id" = String, Path), ("id" = String, Path), ReachableQuery),
    responses((status = 200, description = "The resources of the type that the binding may perform the action on, in id order (empty when the binding is not usable)",
               body = crate::envelope::ListEnvelope<ReachableResourceDto>),
              (status = 404, description = "USER_MEMBER_NOT_FOUND: no binding with this id in this Space", body = crate::error::ErrorEnvelope)))]
pub async fn resources(
    mut db: Db,
    Path((space_id, id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ReachableQuery>,
) -> ApiResult<Page<ReachableResourceDto>> {
    let resource_type = required(q.resource_type, "resource_type")?;
    let action = required(q.action, "action")?;
    let limit = page_limit(q.limit.as_deref(), DEFAULT_LIMIT);
    let after = decode_cursor(q.cursor.as_deref(), RESOURCES_ORDER, 1)?.map(|mut k| k.remove(0));
    let mut client = db.connection().await?;
    let (user_id, member_id) = store::user_members::in_space(&client, &id, &space_id)
        .await
        .map_err(db::internal)?
        .ok_or_else(|| ApiError::not_found(Entity::UserMember))?;
    // The binding acts for this transaction only (plystra.set_actor's settings are transaction-local).
    let tx = client.transaction().await.map_err(db::internal)?;
    store::lookups::act_as(&tx, &user_id, &member_id, &id, &space_id).await.map_err(db_errors::read_error)?;
    let rows = store::lookups::resources(&tx, &resource_type, &action, &after, limit + 1)
        .await
        .map_err(db_errors::read_error)?;
    tx.commit().await.map_err(db::internal)?;
    let items =
        rows.iter().map(|r| ReachableResourceDto { resource_type: resource_type.clone(), id: r.get(0) }).collect();
    Ok(page_from(items, limit, RESOURCES_ORDER, |r: &ReachableResourceDto| vec![r.id.clone()]))
}

/// A simulated decision: the full trace `/authz/explain` answers, marked as simulated (no audit row was written,
/// so `audit.audit_log_id` is null).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuthzSimulation {
    /// Always true: this decision was asked, not acted on, and is in no audit log.
    pub simulated: bool,
    #[serde(flatten)]
    pub trace: ExplainTrace,
}

/// The binding the actor names in `space_id`: by its id (`user_member_id` or `binding_id`), or by its User and
/// Member. Any other field given must agree with the row. A binding of another Space is not found, exactly as one
/// that does not exist (no answer tells the caller whether an id exists elsewhere).
async fn binding_in_space(
    client: &deadpool_postgres::Object,
    actor: &Actor,
    space_id: &str,
) -> ApiResult<(String, String, String)> {
    let id = actor.user_member_id.clone().or_else(|| actor.binding_id.clone());
    if id.is_none() && (actor.user_id.is_none() || actor.member_id.is_none()) {
        return Err(ApiError::validation(
            "actor.user_member_id",
            "actor.user_member_id (or actor.user_id and actor.member_id) is required.",
        ));
    }
    let rows = store::user_members::matching_in_space(client, space_id, &id, &actor.user_id, &actor.member_id)
        .await
        .map_err(db::internal)?;
    // A User may hold several bindings to one Member (a delegate, a temporary one): which one acts is not guessed.
    if rows.len() > 1 {
        return Err(ApiError::validation(
            "actor.user_member_id",
            "actor.user_id and actor.member_id name more than one binding in this Space: give actor.user_member_id.",
        ));
    }
    let row = rows.into_iter().next();
    let in_space = actor.space_id.as_deref().is_none_or(|s| s == space_id);
    match row {
        Some(r)
            if in_space && actor.binding_id.as_ref().zip(actor.user_member_id.as_ref()).is_none_or(|(b, u)| b == u) =>
        {
            Ok((r.get(0), r.get(1), r.get(2)))
        }
        _ => Err(ApiError::not_found(Entity::UserMember)),
    }
}

/// A simulation: the binding, a registered resource of the Space, the action (no inline context).
// The document's schema only; the request is read as a `DecisionRequest`, whose inline context is refused here.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AuthzSimulationRequest)]
#[allow(dead_code)] // a schema only
pub struct SimulationRequest {
    actor: SimulatedActor,
    #[schema(min_length = 1)]
    resource_type: String,
    #[schema(min_length = 1)]
    resource_id: String,
    #[schema(min_length = 1)]
    action: String,
    explain: Option<bool>,
}

/// The binding a simulation asks about: by its id (`user_member_id`, or its alias `binding_id`), or by its User
/// and Member; every field given must agree with the binding, which must be the path's Space's.
pub struct SimulatedActor;

impl utoipa::PartialSchema for SimulatedActor {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
        let id = || ObjectBuilder::new().schema_type(Type::String).min_length(Some(1));
        let mut object = ObjectBuilder::new().additional_properties(Some(AdditionalProperties::FreeForm(false)));
        for field in ["user_member_id", "binding_id", "user_id", "member_id", "space_id"] {
            object = object.property(field, id());
        }
        let naming = crate::api::crud::schema::any_set_of(
            "user_member_id, binding_id, or user_id and member_id",
            &[&["user_member_id"], &["binding_id"], &["user_id", "member_id"]],
        );
        crate::api::crud::schema::all_of(object.into(), [naming])
    }
}

impl ToSchema for SimulatedActor {
    fn name() -> std::borrow::Cow<'static, str> {
        "AuthzSimulatedActor".into()
    }
}

#[utoipa::path(post, operation_id = "authz_simulate", path = "/api/v1/spaces/{space_id}/authz/simulate", tag = "Authz",
    params(("space_id" = String, Path)), request_body = SimulationRequest,
    responses((status = 200, description = "What /authz/explain would answer for the binding (the decision, its deny code and the full trace), marked simulated; no audit row is written",
               body = crate::envelope::Envelope<AuthzSimulation>),
              (status = 400, description = "VALIDATION_FAILED: a field is missing, or inline context (actor metadata, a resource description, grants) was given", body = crate::error::ErrorEnvelope),
              (status = 404, description = "USER_MEMBER_NOT_FOUND or RESOURCE_NOT_FOUND: no such binding or resource in this Space", body = crate::error::ErrorEnvelope)))]
pub async fn simulate(
    mut db: Db,
    ctx: RequestContext,
    Path(space_id): Path<String>,
    ApiJson(body): ApiJson<DecisionRequest>,
) -> ApiResult<Data<AuthzSimulation>> {
    // A simulation asks about Plystra's own bindings and resources: an answer built from facts the caller supplies
    // (Context Mode) is no answer about them.
    if body.uses_inline_context() {
        let field = if body.grants.is_some() {
            "grants"
        } else if body.resource.is_some() {
            "resource"
        } else {
            "actor"
        };
        return Err(ApiError::validation(
            field,
            "A simulation asks about the Space's own bindings and resources: inline actor metadata, resource \
             descriptions and grants are not accepted.",
        ));
    }
    let actor = body.actor.as_ref().ok_or_else(|| ApiError::required("actor"))?;
    let resource = body.resource.as_ref();
    let resource_type = body.resource_type.clone().or_else(|| resource.and_then(|r| r.resource_type.clone()));
    let resource_id = body.resource_id.clone().or_else(|| resource.and_then(|r| r.id.clone()));
    let resource_type = required(resource_type, "resource_type")?;
    let resource_id = required(resource_id, "resource_id")?;
    required(body.action.clone(), "action")?;
    let client = db.connection().await?;
    let (user_member_id, user_id, member_id) = binding_in_space(&client, actor, &space_id).await?;
    if !store::resources::exists_in_space(&client, &resource_id, &resource_type, &space_id)
        .await
        .map_err(db::internal)?
    {
        return Err(ApiError::not_found(Entity::Resource));
    }
    // The extension is asked about exactly the binding and the resource found in the path's Space.
    let named = DecisionRequest {
        actor: Some(Actor {
            user_id: Some(user_id),
            member_id: Some(member_id),
            user_member_id: Some(user_member_id),
            space_id: Some(space_id),
            ..Actor::default()
        }),
        resource_type: Some(resource_type),
        resource_id: Some(resource_id),
        action: body.action,
        ..DecisionRequest::default()
    };
    let answer = store::decisions::simulate(&client, &named.document(&decision_context(&ctx)))
        .await
        .map_err(db_errors::read_error)?;
    let simulation: AuthzSimulation = serde_json::from_value(answer).map_err(|e| {
        tracing::error!(error = %e, "the extension's simulation does not match the documented shape");
        ApiError::internal()
    })?;
    Ok(Data::ok(simulation))
}
