//! The protection seam. Every route passes through [`guard`] with the access it declares in the route table;
//! this is the only place that will change when credentials (sessions, admin grants, API keys) arrive, so that
//! switching protection on changes no handler.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

/// What a route needs from the caller (reference 1.8 public routes, 1.11 admin permission keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credential (health, readiness, version, metrics with its own token).
    Public,
    /// An admin credential holding this permission key (`users:read`, `authz:check`, ...).
    Admin(&'static str),
}

impl Access {
    pub fn permission(self) -> Option<&'static str> {
        match self {
            Access::Public => None,
            Access::Admin(p) => Some(p),
        }
    }
}

/// Credentials are a separate, later issue: for now every route is served. When they land, an `Admin` route
/// will authenticate the caller here, check the permission against its grants (scoped by the path's Space or
/// Group), and hand the resolved actor to handlers as a request extension.
pub async fn guard(access: Access, request: Request, next: Next) -> Response {
    let _ = access;
    next.run(request).await
}
