//! Parsing a decision request (the JSON document given to `plystra.check` / `plystra.explain`). Every problem
//! names the field, so that SQL callers get SQLSTATE 22023 and HTTP callers a 400 that says what to fix.

use std::fmt;

use serde_json::{Map, Value};

use crate::model::{Request, RequestContext};

/// Longest accepted id, key or request id, in bytes. Ids in the schema are at most 256 characters.
pub const MAX_ID_BYTES: usize = 256;
pub const MAX_IP_BYTES: usize = 64;
pub const MAX_USER_AGENT_BYTES: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestError {
    /// The offending field as a dotted path (`actor.user_id`), or `request` for the whole document.
    pub field: String,
    pub problem: String,
}

impl RequestError {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        RequestError { field: field.into(), problem: problem.into() }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid request: {} {}", self.field, self.problem)
    }
}

impl std::error::Error for RequestError {}

/// A parsed request plus the flags that change what is returned, not what is decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedRequest {
    pub request: Request,
    pub explain: bool,
}

const TOP_LEVEL_FIELDS: &[&str] =
    &["actor", "resource_type", "resource_id", "resource", "action", "request", "explain"];
const ACTOR_FIELDS: &[&str] = &["user_id", "member_id", "user_member_id", "binding_id", "space_id"];
const RESOURCE_FIELDS: &[&str] = &["type", "id"];
const CONTEXT_FIELDS: &[&str] = &["request_id", "ip", "user_agent"];
/// v1.0's flat actor fields, removed from the API: named in the error so that old clients learn the new shape.
const FLAT_ACTOR_FIELDS: &[&str] = &["actor_user_id", "actor_member_id", "actor_user_member_id", "space_id"];

fn object<'a>(value: &'a Value, field: &str) -> Result<&'a Map<String, Value>, RequestError> {
    value.as_object().ok_or_else(|| RequestError::new(field, "must be a JSON object"))
}

fn reject_unknown(map: &Map<String, Value>, allowed: &[&str], prefix: &str) -> Result<(), RequestError> {
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            let field = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
            let problem = if prefix.is_empty() && FLAT_ACTOR_FIELDS.contains(&key.as_str()) {
                "is not accepted: give the actor as a nested object {\"actor\": {\"user_id\", \"member_id\", \"user_member_id\", \"space_id\"}}"
            } else {
                "is not a known field"
            };
            return Err(RequestError::new(field, problem));
        }
    }
    Ok(())
}

/// An optional string field: absent or null is `None`; anything but a string is an error.
fn opt_string(map: &Map<String, Value>, key: &str, field: &str, max: usize) -> Result<Option<String>, RequestError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            if s.len() > max {
                Err(RequestError::new(field, format!("is longer than {max} bytes")))
            } else if s.contains('\0') {
                Err(RequestError::new(field, "contains a NUL character"))
            } else {
                Ok(Some(s.clone()))
            }
        }
        Some(_) => Err(RequestError::new(field, "must be a string")),
    }
}

fn required(value: Option<String>, field: &str) -> Result<String, RequestError> {
    match value {
        Some(s) if !s.is_empty() => Ok(s),
        Some(_) => Err(RequestError::new(field, "must not be empty")),
        None => Err(RequestError::new(field, "is required")),
    }
}

/// Two spellings of one field (v1.0's aliases) must agree when both are given.
fn one_of(a: Option<String>, a_field: &str, b: Option<String>, b_field: &str) -> Result<Option<String>, RequestError> {
    match (a, b) {
        (Some(x), Some(y)) if x != y => Err(RequestError::new(b_field, format!("disagrees with {a_field}"))),
        (Some(x), _) => Ok(Some(x)),
        (None, y) => Ok(y),
    }
}

pub fn parse_request(doc: &Value) -> Result<ParsedRequest, RequestError> {
    let top = object(doc, "request")?;
    reject_unknown(top, TOP_LEVEL_FIELDS, "")?;

    let actor = top.get("actor").ok_or_else(|| RequestError::new("actor", "is required"))?;
    let actor = object(actor, "actor")?;
    reject_unknown(actor, ACTOR_FIELDS, "actor")?;
    let user_id = required(opt_string(actor, "user_id", "actor.user_id", MAX_ID_BYTES)?, "actor.user_id")?;
    let member_id = required(opt_string(actor, "member_id", "actor.member_id", MAX_ID_BYTES)?, "actor.member_id")?;
    let user_member_id = one_of(
        opt_string(actor, "user_member_id", "actor.user_member_id", MAX_ID_BYTES)?,
        "actor.user_member_id",
        opt_string(actor, "binding_id", "actor.binding_id", MAX_ID_BYTES)?,
        "actor.binding_id",
    )?;
    let user_member_id = required(user_member_id, "actor.user_member_id")?;
    let space_id = required(opt_string(actor, "space_id", "actor.space_id", MAX_ID_BYTES)?, "actor.space_id")?;

    let (res_type, res_id) = match top.get("resource") {
        None | Some(Value::Null) => (None, None),
        Some(v) => {
            let res = object(v, "resource")?;
            reject_unknown(res, RESOURCE_FIELDS, "resource")?;
            (
                opt_string(res, "type", "resource.type", MAX_ID_BYTES)?,
                opt_string(res, "id", "resource.id", MAX_ID_BYTES)?,
            )
        }
    };
    let resource_type = one_of(
        opt_string(top, "resource_type", "resource_type", MAX_ID_BYTES)?,
        "resource_type",
        res_type,
        "resource.type",
    )?;
    let resource_type = required(resource_type, "resource_type")?;
    let resource_id =
        one_of(opt_string(top, "resource_id", "resource_id", MAX_ID_BYTES)?, "resource_id", res_id, "resource.id")?;
    let resource_id = required(resource_id, "resource_id")?;
    let action = required(opt_string(top, "action", "action", MAX_ID_BYTES)?, "action")?;

    let context = match top.get("request") {
        None | Some(Value::Null) => RequestContext::default(),
        Some(v) => {
            let ctx = object(v, "request")?;
            reject_unknown(ctx, CONTEXT_FIELDS, "request")?;
            RequestContext {
                request_id: opt_string(ctx, "request_id", "request.request_id", MAX_ID_BYTES)?,
                ip: opt_string(ctx, "ip", "request.ip", MAX_IP_BYTES)?,
                user_agent: opt_string(ctx, "user_agent", "request.user_agent", MAX_USER_AGENT_BYTES)?,
            }
        }
    };
    let explain = match top.get("explain") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(RequestError::new("explain", "must be a boolean")),
    };

    Ok(ParsedRequest {
        request: Request { user_id, member_id, user_member_id, space_id, resource_type, resource_id, action, context },
        explain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn demo() -> Value {
        json!({
            "actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer",
                      "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
            "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"
        })
    }

    fn err(doc: Value) -> RequestError {
        parse_request(&doc).expect_err("expected a validation error")
    }

    #[test]
    fn canonical_request_parses() {
        let p = parse_request(&demo()).unwrap();
        assert_eq!(p.request.user_member_id, "um_alice_finance_reviewer");
        assert_eq!(p.request.action, "approve");
        assert!(!p.explain);
    }

    #[test]
    fn aliases_binding_id_and_nested_resource() {
        let p = parse_request(&json!({
            "actor": {"user_id": "u", "member_id": "m", "binding_id": "b", "space_id": "s"},
            "resource": {"type": "invoice", "id": "i"}, "action": "read", "explain": true,
            "request": {"request_id": "req_1", "ip": "127.0.0.1", "user_agent": "curl"}
        }))
        .unwrap();
        assert_eq!(p.request.user_member_id, "b");
        assert_eq!((p.request.resource_type.as_str(), p.request.resource_id.as_str()), ("invoice", "i"));
        assert!(p.explain);
        assert_eq!(p.request.context.request_id.as_deref(), Some("req_1"));
    }

    #[test]
    fn every_problem_names_its_field() {
        let mut d = demo();
        d["actor"].as_object_mut().unwrap().remove("user_id");
        assert_eq!(err(d).field, "actor.user_id");

        let mut d = demo();
        d["actor"]["space_id"] = json!(42);
        assert_eq!(err(d), RequestError::new("actor.space_id", "must be a string"));

        let mut d = demo();
        d["action"] = json!("");
        assert_eq!(err(d), RequestError::new("action", "must not be empty"));

        let mut d = demo();
        d["resource_id"] = json!(null);
        assert_eq!(err(d), RequestError::new("resource_id", "is required"));

        let mut d = demo();
        d["resource_type"] = json!("x".repeat(MAX_ID_BYTES + 1));
        assert_eq!(err(d).field, "resource_type");

        let mut d = demo();
        d["actor"]["binding_id"] = json!("another");
        assert_eq!(err(d).field, "actor.binding_id");

        let mut d = demo();
        d["resource"] = json!({"type": "contract"});
        assert_eq!(err(d).field, "resource.type");

        let mut d = demo();
        d["explain"] = json!("yes");
        assert_eq!(err(d).field, "explain");

        let mut d = demo();
        d["request"] = json!({"user_agent": "a".repeat(MAX_USER_AGENT_BYTES + 1)});
        assert_eq!(err(d).field, "request.user_agent");

        let mut d = demo();
        d["actor"]["user_email"] = json!("alice@example.com");
        assert_eq!(err(d).field, "actor.user_email");

        assert_eq!(err(json!([1, 2])).field, "request");
        assert_eq!(err(json!({})).field, "actor");
        assert_eq!(err(json!({"actor": "alice"})).field, "actor");
    }

    #[test]
    fn flat_actor_fields_are_refused_with_a_hint() {
        let mut d = demo();
        d["actor_user_id"] = json!("user_alice");
        let e = err(d);
        assert_eq!(e.field, "actor_user_id");
        assert!(e.problem.contains("nested object"));
        assert_eq!(
            e.to_string().split_whitespace().take(3).collect::<Vec<_>>(),
            ["invalid", "request:", "actor_user_id"]
        );
    }
}
