//! Success envelopes (reference 1.8): `{data, request_id}` and, for lists,
//! `{data, pagination{limit, cursor, has_more}, request_id}`. One top-level request_id, no `meta`.
//!
//! List cursors are opaque to clients: base64url of the sort key of the last row returned, tagged with the
//! list's ordering so a cursor from one list is refused by another instead of silently skipping rows.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::request_context;

#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    pub data: T,
    pub request_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
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
        let body = Envelope { data: self.data, request_id: request_context::current_request_id() };
        (self.status, Json(body)).into_response()
    }
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
        let body = ListEnvelope {
            data: self.items,
            pagination: Pagination { limit: self.limit, cursor: self.next_cursor, has_more },
            request_id: request_context::current_request_id(),
        };
        (StatusCode::OK, Json(body)).into_response()
    }
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
