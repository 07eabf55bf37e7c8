//! The Plystra Console: an admin web application under `/console`, server-rendered HTML (maud escapes every
//! value it interpolates), one stylesheet and one small script embedded in the binary, no inline script.
//!
//! Every read and change goes through the REST API with the signed-in session's own token: a Console handler
//! builds a request with `Authorization: Bearer <token>` and runs it through the API's router in process
//! ([`Api::call`]), so what the Console may see and do is exactly what the API allows that session (the
//! protection seam decides; nothing is re-implemented here). The session rides in an HttpOnly, SameSite=Strict
//! cookie (Secure when SERVER_PUBLIC_URL is https); every form POST carries a CSRF token bound to the session.
//! Enabled by CONSOLE_ENABLED (on in development and test, off in production unless set).

mod forms;
mod pages;
mod svg;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde_json::Value;
use tower::ServiceExt;

use crate::app::AppState;
use crate::auth::secrets;

pub const PREFIX: &str = "/console";
const SESSION_COOKIE: &str = "plystra_console";
/// The login form's double-submit token (there is no session to bind it to yet).
const LOGIN_COOKIE: &str = "plystra_console_login";
/// The largest API answer the Console reads.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// Every Console answer carries these: no script but the Console's own file, no framing, no sniffing, and
/// nothing cached (pages hold tenant data).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The API's router (every route with its middleware, without the Console), for in-process calls.
#[derive(Clone)]
pub struct Api(pub Router);

/// What a Console request brings along to the API: the session token from its cookie, and the caller's
/// address, user agent and request id, so that the API's audit rows and logs name the real client.
pub struct Caller {
    pub token: Option<String>,
    peer: Option<ConnectInfo<SocketAddr>>,
    user_agent: Option<HeaderValue>,
    login_nonce: Option<String>,
    secure_cookies: bool,
    session_secret: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let state = parts.extensions.get::<AppState>().cloned();
        let (secure_cookies, session_secret) = match &state {
            Some(s) => (s.config.public_url.starts_with("https://"), s.config.session_secret().to_string()),
            None => (false, String::new()),
        };
        Ok(Caller {
            token: cookie(&parts.headers, SESSION_COOKIE),
            peer: parts.extensions.get::<ConnectInfo<SocketAddr>>().cloned(),
            user_agent: parts.headers.get(header::USER_AGENT).cloned(),
            login_nonce: cookie(&parts.headers, LOGIN_COOKIE),
            secure_cookies,
            session_secret,
        })
    }
}

impl Caller {
    /// The CSRF token of this session: an HMAC of the session token under the server's session secret, so it
    /// needs no storage and dies with the session.
    pub fn csrf(&self) -> String {
        let token = self.token.as_deref().unwrap_or_default();
        secrets::hmac_hex(&self.session_secret, &format!("plystra-console-csrf:{token}"))
    }

    /// Whether a form's token is this session's (constant time).
    pub fn csrf_ok(&self, presented: &str) -> bool {
        self.token.is_some() && secrets::matches_any(presented, &[self.csrf()])
    }

    fn cookie_attributes(&self) -> &'static str {
        if self.secure_cookies {
            "; Path=/console; HttpOnly; SameSite=Strict; Secure"
        } else {
            "; Path=/console; HttpOnly; SameSite=Strict"
        }
    }

    pub fn session_cookie(&self, token: &str, max_age_seconds: i64) -> HeaderValue {
        let value = format!("{SESSION_COOKIE}={token}; Max-Age={}{}", max_age_seconds.max(0), self.cookie_attributes());
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    pub fn clear_session_cookie(&self) -> HeaderValue {
        HeaderValue::from_str(&format!("{SESSION_COOKIE}=; Max-Age=0{}", self.cookie_attributes()))
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    pub fn login_cookie(&self, nonce: &str) -> HeaderValue {
        HeaderValue::from_str(&format!("{LOGIN_COOKIE}={nonce}; Max-Age=3600{}", self.cookie_attributes()))
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    pub fn login_nonce_ok(&self, presented: &str) -> bool {
        match &self.login_nonce {
            Some(n) if !n.is_empty() => secrets::matches_any(presented, std::slice::from_ref(n)),
            _ => false,
        }
    }
}

/// A cookie's value from the request's Cookie headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

/// An API answer: its status and JSON body (Null when the body was not JSON).
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }
    /// The error envelope's code and message, for showing to the user.
    pub fn error(&self) -> (String, String) {
        let e = &self.body["error"];
        (
            e["code"].as_str().unwrap_or("ERROR").to_string(),
            e["message"].as_str().unwrap_or("The API refused the request.").to_string(),
        )
    }
}

impl Api {
    /// Runs one API request in process with the caller's session token.
    pub async fn call(&self, caller: &Caller, method: Method, path: &str, body: Option<&Value>) -> Reply {
        self.call_as(caller, caller.token.as_deref(), method, path, body).await
    }

    pub async fn call_as(
        &self,
        caller: &Caller,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(ua) = &caller.user_agent {
            builder = builder.header(header::USER_AGENT, ua.clone());
        }
        let body = match body {
            Some(b) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let Ok(mut request) = builder.body(body) else {
            return Reply { status: 400, body: Value::Null };
        };
        if let Some(peer) = &caller.peer {
            request.extensions_mut().insert(*peer);
        }
        let response = match self.0.clone().oneshot(request).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES).await.unwrap_or_default();
        Reply { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }
}

/// Why a page could not be shown: no (or an expired) session, or the API's refusal.
pub enum PageError {
    SignIn { expired: bool, clear: HeaderValue },
    Refused(Reply),
    BadForm,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn { expired, clear } => {
                let to = if expired { "/console/login?expired=1" } else { "/console/login" };
                let mut r = Redirect::to(to).into_response();
                r.headers_mut().insert(header::SET_COOKIE, clear);
                r
            }
            PageError::Refused(reply) => {
                let (code, message) = reply.error();
                let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_GATEWAY);
                (status, pages::error_page(status.as_u16(), &code, &message)).into_response()
            }
            PageError::BadForm => (
                StatusCode::FORBIDDEN,
                pages::error_page(
                    403,
                    "CSRF_TOKEN_INVALID",
                    "The form is stale or forged: reload the page and try again.",
                ),
            )
                .into_response(),
        }
    }
}

/// The page's data from an API answer: 401 sends the user to sign in (the session expired or was revoked).
pub fn need(caller: &Caller, reply: Reply) -> Result<Value, PageError> {
    match reply.status {
        200..=299 => Ok(reply.body),
        401 => Err(PageError::SignIn { expired: caller.token.is_some(), clear: caller.clear_session_cookie() }),
        _ => Err(PageError::Refused(reply)),
    }
}

/// A signed-in caller, or the sign-in page.
pub fn signed_in(caller: &Caller) -> Result<(), PageError> {
    if caller.token.is_some() {
        Ok(())
    } else {
        Err(PageError::SignIn { expired: false, clear: caller.clear_session_cookie() })
    }
}

/// Security headers on every Console answer.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("console.css")).into_response()
}

async fn js() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], include_str!("console.js")).into_response()
}

/// The Console's routes (merged into the app's router when CONSOLE_ENABLED).
pub fn router(api: Router) -> Router<AppState> {
    Router::new()
        .route("/console", get(pages::home))
        .route("/console/", get(pages::home))
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(js))
        .route("/console/login", get(pages::login_page).post(pages::login))
        .route("/console/logout", post(pages::logout))
        .route("/console/events", get(pages::events))
        .route("/console/spaces/{space_id}", get(pages::space))
        .route("/console/spaces/{space_id}/change/{collection}/{id}/{verb}", post(pages::change))
        .route("/console/new/space", get(forms::new_space_form).post(forms::create_space))
        .route("/console/spaces/{space_id}/new/{what}", get(forms::new_form).post(forms::create))
        .route("/console/spaces/{space_id}/edit/{what}/{id}", get(forms::edit_form).post(forms::edit))
        .route("/console/spaces/{space_id}/ask", get(pages::ask_form).post(pages::ask))
        .route("/console/spaces/{space_id}/who-can", get(pages::who_can))
        .route("/console/spaces/{space_id}/audit", get(pages::audit_list))
        .route("/console/spaces/{space_id}/audit/{id}", get(pages::audit_row))
        .route("/console/spaces/{space_id}/audit/{id}/trace.json", get(pages::trace_json))
        .route("/console/spaces/{space_id}/audit/{id}/replay", post(pages::replay))
        .route("/console/spaces/{space_id}/chain/verify", post(pages::verify_chain))
        .layer(middleware::from_fn(security_headers))
        .layer(Extension(Api(api)))
}
