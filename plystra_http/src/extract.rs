//! Extractors whose rejections use the error envelope. Bad input never reaches a handler: malformed JSON,
//! unknown fields, wrong types and missing required fields are 400 VALIDATION_FAILED with `details.field`
//! naming the field (a dotted path such as `actor.user_id`), and a body over the limit is 413.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::{code, ApiError};

/// The request body limit (1 MiB). A larger body is refused with 413 before it is parsed.
pub const BODY_LIMIT_BYTES: usize = 1024 * 1024;

/// A JSON body that must be present.
pub struct ApiJson<T>(pub T);

/// A JSON body that may be absent (lifecycle actions such as `/disable` take an optional `{actor, ...}`).
pub struct OptionalJson<T>(pub T);

/// 413 for a body over [`BODY_LIMIT_BYTES`].
pub fn payload_too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, code::PAYLOAD_TOO_LARGE, "Request body is larger than 1 MiB.")
        .with_details(json!({ "limit_bytes": BODY_LIMIT_BYTES }))
}

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            payload_too_large()
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, code::VALIDATION_FAILED, "Request body could not be read.")
        }
    })
}

/// Whether a JSON text holds the escape `\u0000` (a NUL character in a string), which PostgreSQL text and jsonb
/// cannot store: such a body is refused up front instead of failing in the database. An escaped backslash
/// followed by `u0000` (`\\u0000`, the six characters) is ordinary text.
pub fn has_nul_escape(bytes: &[u8]) -> bool {
    bytes
        .windows(5)
        .enumerate()
        .any(|(i, w)| w == b"u0000" && bytes[..i].iter().rev().take_while(|b| **b == b'\\').count() % 2 == 1)
}

/// 400 for a body holding `\u0000`.
pub fn nul_in_body() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        code::VALIDATION_FAILED,
        "Text must not contain the NUL character (\\u0000).",
    )
    .with_details(json!({ "field": null }))
}

/// Whether a URI component percent-decodes to UTF-8 text without a NUL.
fn decodes_to_usable_text(component: &str) -> bool {
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    !out.contains(&0) && std::str::from_utf8(&out).is_ok()
}

/// Middleware: a path or query string that percent-decodes to invalid UTF-8 or to a NUL is refused with 400 in
/// the envelope, before routing (axum's own path rejection is plain text, and PostgreSQL cannot store a NUL).
pub async fn reject_unusable_uri(request: Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let uri = request.uri();
    let (bad, field) = if !decodes_to_usable_text(uri.path()) {
        (true, "path")
    } else if uri.query().is_some_and(|q| !decodes_to_usable_text(q)) {
        (true, "query")
    } else {
        (false, "")
    };
    if bad {
        return ApiError::validation(
            field,
            format!("The request {field} must decode to UTF-8 text without NUL characters."),
        )
        .into_response();
    }
    next.run(request).await
}

/// Parses a JSON document into `T`, turning serde's complaint into a 400 that names the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if has_nul_escape(bytes) {
        return Err(nul_in_body());
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = match serde_path_to_error::deserialize(&mut de) {
        Ok(v) => v,
        Err(err) => return Err(json_error(err)),
    };
    de.end().map_err(|_| {
        ApiError::new(StatusCode::BAD_REQUEST, code::VALIDATION_FAILED, "Request body is invalid JSON.")
    })?;
    Ok(value)
}

fn json_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    use serde_json::error::Category;
    let path = err.path().to_string();
    let inner = err.inner();
    match inner.classify() {
        Category::Eof if inner.line() == 1 && inner.column() == 0 => {
            ApiError::new(StatusCode::BAD_REQUEST, code::VALIDATION_FAILED, "Request body is required.")
                .with_details(json!({ "field": null }))
        }
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::new(StatusCode::BAD_REQUEST, code::VALIDATION_FAILED, "Request body is invalid JSON.")
                .with_details(json!({ "field": null, "line": inner.line(), "column": inner.column() }))
        }
        Category::Data => {
            let message = inner.to_string();
            // serde reports a missing or unknown field by its name at the parent's path.
            let named =
                backticked_after(&message, "missing field `").or_else(|| backticked_after(&message, "unknown field `"));
            let field = match (path.as_str(), named) {
                (".", Some(name)) => name.to_string(),
                (p, Some(name)) if !p.ends_with(name) => format!("{p}.{name}"),
                (".", _) => "body".to_string(),
                (p, _) => p.to_string(),
            };
            let problem = message.split(" at line ").next().unwrap_or(&message).to_string();
            let text = if message.starts_with("missing field") {
                format!("{field} is required.")
            } else if message.starts_with("unknown field") {
                format!("{field} is not a known field.")
            } else {
                format!("{field}: {problem}.")
            };
            ApiError::validation(field, text)
        }
    }
}

fn backticked_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let start = message.find(prefix)? + prefix.len();
    let end = message[start..].find('`')? + start;
    Some(&message[start..end])
}

/// The body as read, or why it could not be read (a decision route answers a credential problem first, so it
/// takes the problem instead of being rejected with it).
pub struct BodyBytes(pub Result<Bytes, ApiError>);

impl<S: Send + Sync> FromRequest<S> for BodyBytes {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(BodyBytes(body_bytes(req, state).await))
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        // No body, or `null` (the document describes these bodies as optional and nullable), means "nothing to add".
        if bytes.iter().all(|b| b.is_ascii_whitespace()) || bytes.trim_ascii() == b"null" {
            return Ok(OptionalJson(T::default()));
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

/// Query parameters; a parameter of the wrong type is a 400 (unknown parameters are ignored, as in v1.0).
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state).await.map(|Query(v)| ApiQuery(v)).map_err(|rejection| {
            ApiError::validation("query", format!("Query string is invalid: {}", rejection.body_text()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[allow(dead_code)]
    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        user_id: String,
    }

    #[allow(dead_code)]
    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        actor: Inner,
        action: String,
        limit: Option<i32>,
    }

    fn field_of(body: &str) -> serde_json::Value {
        parse_json::<Outer>(body.as_bytes()).unwrap_err().details["field"].clone()
    }

    #[test]
    fn missing_fields_are_named_with_their_path() {
        assert_eq!(field_of(r#"{"actor":{"user_id":"u"}}"#), "action");
        assert_eq!(field_of(r#"{"actor":{},"action":"a"}"#), "actor.user_id");
    }

    #[test]
    fn unknown_fields_are_named() {
        assert_eq!(field_of(r#"{"actor":{"user_id":"u"},"action":"a","bogus":1}"#), "bogus");
        assert_eq!(field_of(r#"{"actor":{"user_id":"u","x":1},"action":"a"}"#), "actor.x");
    }

    #[test]
    fn wrong_types_are_named() {
        assert_eq!(field_of(r#"{"actor":{"user_id":5},"action":"a"}"#), "actor.user_id");
        assert_eq!(field_of(r#"{"actor":{"user_id":"u"},"action":"a","limit":"x"}"#), "limit");
    }

    #[test]
    fn a_nul_escape_is_refused_but_an_escaped_backslash_is_text() {
        assert!(has_nul_escape(br#"{"a":"x\u0000"}"#));
        assert!(has_nul_escape(br#"{"a":"\\\u0000"}"#));
        assert!(!has_nul_escape(br#"{"a":"\\u0000"}"#));
        assert!(!has_nul_escape(br#"{"a":"u0000"}"#));
        assert_eq!(parse_json::<serde_json::Value>(br#"{"a":"\u0000"}"#).unwrap_err().code, "VALIDATION_FAILED");
        assert!(parse_json::<serde_json::Value>(br#"{"a":"\\u0000"}"#).is_ok());
    }

    #[test]
    fn uri_components_must_decode_to_text_without_nul() {
        for ok in ["/api/v1/users/user_alice", "/a/%25", "/a/%", "/a/%2", "/a/%D0%B0", "q=%27%20OR", "x=%zz"] {
            assert!(decodes_to_usable_text(ok), "{ok}");
        }
        for bad in ["/a/%00", "/a/x%00y", "/a/%FF%FE", "q=%C3", "q=%c3%28"] {
            assert!(!decodes_to_usable_text(bad), "{bad}");
        }
    }

    #[test]
    fn malformed_json_is_a_validation_error() {
        let e = parse_json::<Outer>(b"{\"actor\":").unwrap_err();
        assert_eq!(e.code, "VALIDATION_FAILED");
        assert_eq!(e.message, "Request body is invalid JSON.");
        let e = parse_json::<Outer>(b"").unwrap_err();
        assert_eq!(e.message, "Request body is required.");
        let e = parse_json::<Outer>(br#"{"actor":{"user_id":"u"},"action":"a"} trailing"#).unwrap_err();
        assert_eq!(e.message, "Request body is invalid JSON.");
    }
}
