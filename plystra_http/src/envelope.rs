//! Success envelopes (docs/v1-reference.md §1.8): `{data, request_id}` and, for lists,
//! `{data, pagination{limit, cursor, has_more}, request_id}`. One top-level request_id, no `meta`.
//!
//! List cursors are opaque to clients: base64url of the sort key of the last row returned, tagged with the
//! list's ordering so a cursor from one list is refused by another instead of silently skipping rows.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody, ErrorEnvelope};

#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    pub data: T,
    pub request_id: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Pagination {
    pub limit: i64,
    pub cursor: Option<String>,
    pub has_more: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListEnvelope<T> {
    pub data: Vec<T>,
    pub pagination: Pagination,
    pub request_id: String,
}

/// A success answer: `{data, request_id}` with a status (200, or 201 for creations).
pub struct Data<T> {
    pub status: StatusCode,
    pub data: T,
}

impl<T> Data<T> {
    pub fn ok(data: T) -> Self {
        Data { status: StatusCode::OK, data }
    }

    pub fn created(data: T) -> Self {
        Data { status: StatusCode::CREATED, data }
    }
}

impl<T: Serialize> IntoResponse for Data<T> {
    fn into_response(self) -> Response {
        match serde_json::value::to_raw_value(&self.data) {
            Ok(data) => unstamped(self.status, Unstamped::Data(data)),
            Err(e) => unserializable(e),
        }
    }
}

/// A success answer (200) whose `data` is a document already written as JSON (a decision as the extension
/// wrote it): sent as it is, not parsed and serialized again.
pub fn raw_ok(data: Box<RawValue>) -> Response {
    unstamped(StatusCode::OK, Unstamped::Data(data))
}

/// One page of a list.
pub struct Page<T> {
    pub items: Vec<T>,
    pub limit: i64,
    pub next_cursor: Option<String>,
}

impl<T: Serialize> IntoResponse for Page<T> {
    fn into_response(self) -> Response {
        let has_more = self.next_cursor.is_some();
        let pagination = Pagination { limit: self.limit, cursor: self.next_cursor, has_more };
        match serde_json::value::to_raw_value(&self.items) {
            Ok(items) => unstamped(StatusCode::OK, Unstamped::Page(items, pagination)),
            Err(e) => unserializable(e),
        }
    }
}

/// An envelope whose `request_id` is not written yet, carried as an extension of its answer (whose body is empty
/// until then). Envelopes are built where the request is out of sight (an [`ApiError`] returned with `?`, an
/// extractor's rejection, a fallback, the panic handler, the body and time limits), so the request-id middleware
/// ([`crate::request_context::middleware`], outside everything) writes the body, with the request's id, as the
/// answer passes it ([`stamp`]).
#[derive(Debug, Clone)]
pub enum Unstamped {
    /// `{data, request_id}`: `data` as serialized by the handler.
    Data(Box<RawValue>),
    /// `{data, pagination, request_id}`.
    Page(Box<RawValue>, Pagination),
    /// `{error, request_id}`: the error's own `request_id` is written too.
    Error(Box<ErrorBody>),
}

/// An answer with `status` whose JSON body `body` is written by [`stamp`].
pub fn unstamped(status: StatusCode, body: Unstamped) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.extensions_mut().insert(body);
    response
}

/// A success answer that does not serialize (a programming error): logged, answered 500 in the envelope.
fn unserializable(e: serde_json::Error) -> Response {
    tracing::error!(error = %e, "an answer could not be serialized");
    ApiError::internal().into_response()
}

/// [`ListEnvelope`] on the wire, its items already serialized.
#[derive(Serialize)]
struct PageEnvelope {
    data: Box<RawValue>,
    pagination: Pagination,
    request_id: String,
}

/// Writes the body of an [`Unstamped`] answer with `request_id` (other answers are left alone).
pub fn stamp(response: &mut Response, request_id: &str) {
    let Some(unstamped) = response.extensions_mut().remove::<Unstamped>() else { return };
    let request_id = request_id.to_string();
    let body = match unstamped {
        Unstamped::Data(data) => serde_json::to_vec(&Envelope { data, request_id }),
        Unstamped::Page(data, pagination) => serde_json::to_vec(&PageEnvelope { data, pagination, request_id }),
        Unstamped::Error(error) => {
            let error = ErrorBody { request_id: request_id.clone(), ..*error };
            serde_json::to_vec(&ErrorEnvelope { error, request_id })
        }
    };
    // A length worked out from the empty body on the way out would be wrong now (hyper takes the body's own).
    response.headers_mut().remove(header::CONTENT_LENGTH);
    // Already-serialized JSON, strings and objects: this cannot fail, but it would never panic if it did.
    *response.body_mut() = Body::from(body.unwrap_or_else(|e| {
        tracing::error!(error = %e, "an envelope could not be serialized");
        Vec::new()
    }));
}

/// The `limit` query parameter: 1..=200 is honoured, anything else falls back to the list's default, as in the
/// reference (a bad limit is not an error there, and clients rely on that).
pub fn page_limit(raw: Option<&str>, default: i64) -> i64 {
    match raw.and_then(|v| v.trim().parse::<i64>().ok()) {
        Some(n) if (1..=200).contains(&n) => n,
        _ => default,
    }
}

#[derive(Serialize, Deserialize)]
struct CursorBody {
    /// Which ordering the key belongs to.
    o: String,
    /// The sort key of the last row returned.
    k: Vec<String>,
}

pub fn encode_cursor(ordering: &str, key: Vec<String>) -> String {
    let body = CursorBody { o: ordering.to_string(), k: key };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&body).unwrap_or_default())
}

/// Decodes a cursor issued for `ordering` carrying `arity` key parts; anything else is a 400 naming `cursor`.
pub fn decode_cursor(raw: Option<&str>, ordering: &str, arity: usize) -> Result<Option<Vec<String>>, ApiError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let invalid = || ApiError::validation("cursor", "cursor is not a cursor issued by this list.");
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    let body: CursorBody = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if body.o != ordering || body.k.len() != arity {
        return Err(invalid());
    }
    Ok(Some(body.k))
}

/// Builds a page from `limit + 1` fetched rows: the extra row only tells that there is more.
pub fn page_from<T>(mut rows: Vec<T>, limit: i64, ordering: &str, key_of: impl Fn(&T) -> Vec<String>) -> Page<T> {
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit.max(0) as usize);
    let next_cursor = if has_more { rows.last().map(|last| encode_cursor(ordering, key_of(last))) } else { None };
    Page { items: rows, limit, next_cursor }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn stamped(mut response: Response, id: &str) -> serde_json::Value {
        stamp(&mut response, id);
        assert_eq!(response.headers().get(header::CONTENT_LENGTH), None, "no stale length");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn the_request_id_is_written_into_every_envelope_and_nothing_else() {
        let data = stamped(Data::created(serde_json::json!({"a": 1})).into_response(), "req_a").await;
        assert_eq!(data, serde_json::json!({"data": {"a": 1}, "request_id": "req_a"}));
        let page = page_from(vec![1, 2, 3], 2, "n", |n| vec![n.to_string()]).into_response();
        let page = stamped(page, "req_b").await;
        assert_eq!(page["data"], serde_json::json!([1, 2]));
        assert_eq!(page["pagination"]["has_more"], true);
        assert_eq!(page["request_id"], "req_b");
        let mut error = ApiError::not_found(crate::error::Entity::User).into_response();
        // A length some layer took from the still-empty body is dropped.
        error.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        let error = stamped(error, "req_c").await;
        assert_eq!(error["error"]["code"], "USER_NOT_FOUND");
        assert_eq!(error["error"]["request_id"], "req_c");
        assert_eq!(error["request_id"], "req_c");
        // Until stamped, an envelope has no body; an answer that is not one is left alone.
        let unstamped = Data::ok(1).into_response();
        assert_eq!(axum::body::HttpBody::size_hint(unstamped.body()).exact(), Some(0));
        let mut other = "plain".into_response();
        stamp(&mut other, "req_d");
        let bytes = axum::body::to_bytes(other.into_body(), usize::MAX).await.unwrap();
        assert_eq!(&bytes[..], b"plain");
    }

    #[test]
    fn limits_outside_1_to_200_fall_back_to_the_default() {
        assert_eq!(page_limit(None, 50), 50);
        assert_eq!(page_limit(Some("0"), 50), 50);
        assert_eq!(page_limit(Some("201"), 50), 50);
        assert_eq!(page_limit(Some("abc"), 200), 200);
        assert_eq!(page_limit(Some("1"), 50), 1);
        assert_eq!(page_limit(Some("200"), 50), 200);
    }

    #[test]
    fn cursors_round_trip_and_refuse_other_orderings() {
        let c = encode_cursor("users.id", vec!["user_alice".into()]);
        assert_eq!(decode_cursor(Some(&c), "users.id", 1).unwrap(), Some(vec!["user_alice".to_string()]));
        assert!(decode_cursor(Some(&c), "roles.id", 1).is_err());
        assert!(decode_cursor(Some(&c), "users.id", 2).is_err());
        assert!(decode_cursor(Some("!!!"), "users.id", 1).is_err());
        assert_eq!(decode_cursor(None, "users.id", 1).unwrap(), None);
    }

    #[test]
    fn a_page_has_more_only_when_an_extra_row_came_back() {
        let p = page_from(vec![1, 2, 3], 2, "n", |n| vec![n.to_string()]);
        assert_eq!(p.items, vec![1, 2]);
        assert!(p.next_cursor.is_some());
        let p = page_from(vec![1, 2], 2, "n", |n| vec![n.to_string()]);
        assert!(p.next_cursor.is_none());
    }
}
