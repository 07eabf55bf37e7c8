//! The protection seam. Every route passes through [`guard`] with the access it declares in the route table.
//! For an `Admin` route it authenticates the caller (bearer session or API key), resolves the Space or Group the
//! request is about, and asks the extension whether the credential holds the route's permission there
//! (`plystra.admin_permission` / `plystra.api_key_permission`: the decision is the database's). Handlers never
//! see an unauthorized request; they read the accepted credential from their [`RequestContext`] extractor
//! (`ctx.credential()`), where the seam puts it, and get the connection the seam used from their [`Db`]
//! extractor (parked in the request's extensions: one pool checkout a request).
//! A `Decision` route (authz check and explain) is authorized by the extension in the same statement that
//! decides (`plystra.decide_with_credential`): the seam only hands its handler the route's permission.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use deadpool_postgres::GenericClient;
use serde_json::Value;

use crate::app::AppState;
use crate::auth::credential::{self, Credential};
use crate::db::{self, Db};
use crate::error::ApiError;
use crate::extract::BODY_LIMIT_BYTES;
use crate::request_context::RequestContext;
use crate::store::standing::{self, Holder};
use crate::store::{api_keys, scopes};

/// What a route needs from the caller (docs/v1-reference.md §1.8 public routes, §1.11 admin permission keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credential (health, readiness, version; metrics with its own token).
    Public,
    /// The handler checks its own credential (login, refresh, logout, auth/me, actor context and switch).
    Own,
    /// An admin credential holding this permission key (`users:read`, `groups:manage`, ...) on the scope the
    /// request is about, found as the second field says; the seam checks it before the handler runs.
    Admin(&'static str, ScopeFrom),
    /// A decision route: an admin credential holding this permission key on every scope the request's body
    /// touches, checked by the extension in the same statement as the decision
    /// (`plystra.decide_with_credential`), so that a decision is one database round trip. The seam hands the
    /// permission to the handler as a [`DecisionPermission`].
    Decision(&'static str),
}

impl Access {
    pub fn permission(self) -> Option<&'static str> {
        match self {
            Access::Public | Access::Own => None,
            Access::Admin(p, _) | Access::Decision(p) => Some(p),
        }
    }
}

/// Where the seam finds the scope (Space or Group) an admin route's permission is checked on. The route table
/// says it for every route, so no rule here reads a path string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeFrom {
    /// The instance: the route names no Space (users, permissions, the registry, cross-space creations).
    Instance,
    /// The path's `{space_id}`, narrowed to its `{group_id}` when the path names a group of that Space (a group
    /// of another Space, or none, leaves the Space alone; the handler then answers 404).
    PathSpace,
    /// The row the path's `{id}` names: its Space and Group. No such row is the instance scope.
    PathRow(Row),
    /// The Resource the path's `{resource_type}/{resource_id}` names. No such Resource is the instance scope.
    PathResource,
    /// The `space_id` query parameter, given exactly once (the cross-space lists); otherwise the instance.
    QuerySpace,
    /// The `space_id` and `group_id` the body's new object names (admin grants, API keys).
    BodyCreation,
    /// An AuthZEN subject search: the Space of the registered resource its body names.
    SubjectSearch,
    /// An AuthZEN resource search: the Space of the binding its body's subject acts through.
    ResourceSearch,
}

impl ScopeFrom {
    /// Whether the scope comes from a row the request names, so that "in another Space" and "no such row" must
    /// be refused alike.
    fn names_a_row(self) -> bool {
        matches!(self, ScopeFrom::PathRow(_) | ScopeFrom::PathResource)
    }

    /// Whether the seam reads the body to find the scope.
    fn reads_body(self) -> bool {
        matches!(self, ScopeFrom::BodyCreation | ScopeFrom::SubjectSearch | ScopeFrom::ResourceSearch)
    }

    /// How the OpenAPI document names it (`x-plystra-scope`).
    pub fn describe(self) -> String {
        match self {
            ScopeFrom::Instance => "instance".into(),
            ScopeFrom::PathSpace => "path:space".into(),
            ScopeFrom::PathRow(row) => format!("row:{}", row.table()),
            ScopeFrom::PathResource => "row:resources".into(),
            ScopeFrom::QuerySpace => "query:space_id".into(),
            ScopeFrom::BodyCreation => "body:space_id,group_id".into(),
            ScopeFrom::SubjectSearch => "body:resource".into(),
            ScopeFrom::ResourceSearch => "body:subject".into(),
        }
    }
}

/// The tables whose rows, named by a path's `{id}`, carry the scope of the routes about them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    Group,
    Member,
    UserMember,
    Role,
    AuditLog,
    AdminGrant,
    ApiKey,
}

impl Row {
    pub fn table(self) -> &'static str {
        match self {
            Row::Group => "groups",
            Row::Member => "members",
            Row::UserMember => "user_members",
            Row::Role => "roles",
            Row::AuditLog => "audit_logs",
            Row::AdminGrant => "admin_grants",
            Row::ApiKey => "api_keys",
        }
    }
}

/// The permission a decision route requires (from the route table), for its handler.
#[derive(Debug, Clone, Copy)]
pub struct DecisionPermission(pub &'static str);

/// The scope a request is about: a Group (its Space derived by the extension), a Space, or the instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestScope {
    pub space_id: Option<String>,
    pub group_id: Option<String>,
}

impl RequestScope {
    fn space(space_id: Option<String>) -> Self {
        RequestScope { space_id, group_id: None }
    }
    pub fn is_instance(&self) -> bool {
        self.space_id.is_none() && self.group_id.is_none()
    }
}

pub async fn guard(access: Access, mut request: Request, next: Next) -> Response {
    let (permission, scope_from) = match access {
        Access::Admin(permission, scope_from) => (permission, scope_from),
        Access::Decision(permission) => {
            request.extensions_mut().insert(DecisionPermission(permission));
            return next.run(request).await;
        }
        Access::Public | Access::Own => return next.run(request).await,
    };
    match authorize(permission, scope_from, request).await {
        // The handler gets the connection the seam used (one checkout a request: its `Db` takes it from the
        // extensions) and the accepted credential (in its `RequestContext`).
        Ok((credential, mut request, client)) => {
            if let Some(context) = request.extensions_mut().get_mut::<RequestContext>() {
                context.credential = Some(credential);
            }
            Db::hand_over(client, request.extensions_mut());
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}

async fn authorize(
    permission: &'static str,
    scope_from: ScopeFrom,
    mut request: Request,
) -> Result<(Credential, Request, deadpool_postgres::Object), ApiError> {
    let state = request.extensions().get::<AppState>().cloned().ok_or_else(ApiError::internal)?;
    // The request's own `Db` (a routed read's replica included); the handler's is made from the same extensions.
    let mut db = Db::of_lane_request(request.extensions_mut(), &state);
    let client = db.connection().await?;
    let credential = credential::authenticate(&client, &state.config, request.headers()).await?;
    let (mut parts, body) = request.into_parts();
    let (scope, body) = if scope_from.reads_body() {
        // The body names the scope: read it once and put it back for the handler.
        let bytes = axum::body::to_bytes(body, BODY_LIMIT_BYTES).await.map_err(|_| {
            ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                crate::error::code::PAYLOAD_TOO_LARGE,
                "Request body is larger than 1 MiB.",
            )
        })?;
        if crate::extract::has_nul_escape(&bytes) {
            return Err(crate::extract::nul_in_body());
        }
        let doc: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let scope = match scope_from {
            ScopeFrom::SubjectSearch | ScopeFrom::ResourceSearch => {
                // The handler reads what was found here (the resource's Space, the subject's binding).
                let subject = scope_from == ScopeFrom::SubjectSearch;
                let (scope, placement) = crate::api::authzen::search_scope(&client, &credential, subject, &doc).await?;
                parts.extensions.insert(placement);
                scope
            }
            _ => {
                // What is being created names its scope: a group (its Space derived) or a Space.
                let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
                RequestScope { space_id: text(&doc["space_id"]), group_id: text(&doc["group_id"]) }
            }
        };
        (scope, Body::from(bytes))
    } else {
        (path_scope(&client, &mut parts, scope_from).await?, body)
    };
    if !permission_on(&client, &credential, permission, &scope).await? {
        let scoped_credential = match &credential {
            Credential::ApiKey(k) => k.level != "instance",
            Credential::Session(_) => false,
        };
        let searched = matches!(scope_from, ScopeFrom::SubjectSearch | ScopeFrom::ResourceSearch);
        let message = if searched && scoped_credential {
            // One answer whether what the search names lies in another Space or nowhere (as the decision gate
            // answers), so that a search cannot tell which ids exist elsewhere.
            "Scoped credentials may ask only about actors, resources and groups inside their scope."
        } else if scope.is_instance() && scoped_credential && !scope_from.names_a_row() {
            "Scoped credentials must provide or resolve a Space or Group for this route."
        } else {
            // A route about a row reads the same whether the row lies in another Space or does not exist, so
            // that a scoped credential cannot tell which ids exist elsewhere.
            "The credential does not hold the admin permission this route requires."
        };
        return Err(ApiError::admin_permission_required(permission, message));
    }
    if let Credential::ApiKey(k) = &credential {
        record_last_use(&state, &db, &client, &k.id).await;
    }
    Ok((credential, Request::from_parts(parts, body), client))
}

/// `last_used_at` is kept at minute resolution: the UPDATE writes only when the stored time is more than a
/// minute old, so a busy key does not write on every request (`store::api_keys::record_last_use`).
const LAST_USE_RESOLUTION: Duration = Duration::from_secs(60);
/// Past this many remembered keys, the ones written more than a minute ago are forgotten.
const LAST_USE_PRUNE_AT: usize = 4096;

/// When this server last wrote each API key's `last_used_at`, or found it written by someone else. Within a
/// minute of that the UPDATE cannot write (the stored time is at least that recent), so it is not sent at all. Bookkeeping only: the
/// key itself is looked up on every request, so a revoked or expired key is refused at once.
#[derive(Default)]
pub struct LastUse {
    written: Mutex<HashMap<String, Instant>>,
}

impl LastUse {
    /// Whether the UPDATE might write for `key_id` at `now` (false only within a minute of this server's write).
    pub fn due(&self, key_id: &str, now: Instant) -> bool {
        let written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        written.get(key_id).is_none_or(|t| now.saturating_duration_since(*t) >= LAST_USE_RESOLUTION)
    }

    /// Notes that the UPDATE sent at `sent` (no later than the database's `now()`) wrote `key_id`.
    pub fn wrote(&self, key_id: &str, sent: Instant) {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        if written.len() >= LAST_USE_PRUNE_AT {
            written.retain(|_, t| sent.saturating_duration_since(*t) < LAST_USE_RESOLUTION);
        }
        written.insert(key_id.to_string(), sent);
    }
}

/// Records the key's use (at most once a minute a key). A failure is only logged: a role that may not write it
/// (read-only deployments) still serves the request, and the next request tries again. A request a read
/// replica answers writes it on the primary (`client` is then the replica's connection, which cannot write).
pub(crate) async fn record_last_use(state: &AppState, db: &Db, client: &deadpool_postgres::Object, key_id: &str) {
    let last_use = &state.api_key_last_use;
    let sent = Instant::now();
    if !last_use.due(key_id, sent) {
        return;
    }
    let written = if db.on_replica() {
        match db.primary().get().await {
            Ok(primary) => api_keys::record_last_use(&primary, key_id).await,
            Err(e) => {
                tracing::warn!(error = %e, api_key_id = %key_id, "could not record the API key's last use (no primary connection)");
                return;
            }
        }
    } else {
        api_keys::record_last_use(client, key_id).await
    };
    match written {
        // Written; or nothing to write, because someone recorded it within the minute (another server, or this
        // one before a restart). Either way the stored time is no older than a minute before `sent`, so this
        // server asks again a minute from now: the stored time then lags the key's last use by under two
        // minutes, and a busy key costs no second statement on every request of every server but the last
        // writer.
        Ok(_) => last_use.wrote(key_id, sent),
        Err(e) => tracing::warn!(error = %e, api_key_id = %key_id, "could not record the API key's last use"),
    }
}

/// Asks the extension. NULL space and group = instance scope; a group derives its Space.
pub async fn permission_on(
    client: &impl GenericClient,
    credential: &Credential,
    permission: &str,
    scope: &RequestScope,
) -> Result<bool, ApiError> {
    let holder = match credential {
        Credential::Session(s) => Holder::User(&s.user_id),
        Credential::ApiKey(k) => Holder::ApiKey(&k.id),
    };
    let answer = standing::permission(client, holder, permission, &scope.space_id, &scope.group_id)
        .await
        .map_err(db::internal)?;
    Ok(answer["allowed"].as_bool() == Some(true))
}

/// The scope of a request found from its path or query string, as the route table says (`scope_from`).
async fn path_scope(
    client: &impl GenericClient,
    parts: &mut Parts,
    scope_from: ScopeFrom,
) -> Result<RequestScope, ApiError> {
    let params: Vec<(String, String)> = match RawPathParams::from_request_parts(parts, &()).await {
        Ok(p) => p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        Err(_) => Vec::new(),
    };
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let row_scope = |found: Option<(Option<String>, Option<String>)>| {
        found.map(|(space_id, group_id)| RequestScope { space_id, group_id }).unwrap_or_default()
    };
    match scope_from {
        ScopeFrom::PathSpace => {
            let space_id = param("space_id");
            if let (Some(group_id), Some(space)) = (param("group_id"), space_id.as_deref()) {
                // A group of another Space (or none) scopes to the Space alone; the handler answers 404.
                if scopes::group_in_space(client, &group_id, space).await.map_err(db::internal)? {
                    return Ok(RequestScope { space_id, group_id: Some(group_id) });
                }
            }
            Ok(RequestScope::space(space_id))
        }
        ScopeFrom::PathResource => {
            let found = scopes::of_resource(client, &param("resource_type"), &param("resource_id"))
                .await
                .map_err(db::internal)?;
            Ok(row_scope(found))
        }
        ScopeFrom::PathRow(row) => {
            let found = scopes::of_row(client, row, &param("id")).await.map_err(db::internal)?;
            Ok(row_scope(found))
        }
        ScopeFrom::QuerySpace => {
            // Decoded as the handler decodes it; a repeated space_id resolves to no scope (fail closed).
            let pairs = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
                .map(|q| q.0)
                .unwrap_or_default();
            let mut values = pairs.into_iter().filter(|(k, _)| k == "space_id").map(|(_, v)| v);
            let space_id = match (values.next(), values.next()) {
                (Some(v), None) if !v.is_empty() => Some(v),
                _ => None,
            };
            Ok(RequestScope::space(space_id))
        }
        ScopeFrom::Instance | ScopeFrom::BodyCreation | ScopeFrom::SubjectSearch | ScopeFrom::ResourceSearch => {
            Ok(RequestScope::default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_use_is_due_again_a_minute_after_this_servers_write() {
        let last_use = LastUse::default();
        let t0 = Instant::now();
        assert!(last_use.due("ak_a", t0), "a key never written is due");
        last_use.wrote("ak_a", t0);
        assert!(!last_use.due("ak_a", t0));
        assert!(!last_use.due("ak_a", t0 + Duration::from_secs(59)));
        assert!(last_use.due("ak_a", t0 + LAST_USE_RESOLUTION));
        assert!(last_use.due("ak_b", t0), "keys are remembered one by one");
        last_use.wrote("ak_a", t0 + LAST_USE_RESOLUTION);
        assert!(!last_use.due("ak_a", t0 + Duration::from_secs(61)));
    }

    #[test]
    fn last_use_forgets_old_writes_when_it_grows() {
        let last_use = LastUse::default();
        let t0 = Instant::now();
        for i in 0..LAST_USE_PRUNE_AT {
            last_use.wrote(&format!("ak_{i}"), t0);
        }
        let later = t0 + LAST_USE_RESOLUTION;
        last_use.wrote("ak_fresh", later);
        let written = last_use.written.lock().unwrap();
        assert_eq!(written.len(), 1, "the writes a minute old are dropped");
        assert!(written.contains_key("ak_fresh"));
    }
}
