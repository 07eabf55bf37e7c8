//! `plystra.replay(audit_log_id)`: an audited decision asked again against today's data, then and now side by
//! side. The request is rebuilt from the row's decision-time trace (plystra_core::replay), decided by the same
//! engine as `plystra.explain`, and the two traces are compared. It reads: no audit row is written unless the
//! caller asks (`audit => true`, and then as `plystra.audit_mode` says, like any decision).

use pgrx::prelude::*;
use pgrx::JsonB;
use plystra_core::replay::{changes, request_from_trace, side};
use plystra_core::request::RequestError;
use plystra_core::trace::explain_document;
use serde_json::{json, Value};

use crate::api::{parse, run_audited, Asker};
use crate::error::raise_invalid_request;

const FUNCTION: &str = "plystra.replay";

/// The audit row's decision-time trace, when it was written, and the statement's time, in one document.
const ROW_SQL: &str = "SELECT jsonb_build_object('trace', trace, 'decided_at', created_at, \
     'replayed_at', statement_timestamp()) FROM plystra.audit_logs WHERE id = $1";

/// An audit row id as the extension writes them (`audit_` and hex for decisions); anything that could never be
/// one is bad input, not an unknown row.
fn valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && bytes[0].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// Then and now for the decision audit row `audit_log_id`, or NULL when no such row exists.
#[pg_extern(volatile, security_definer, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn replay(audit_log_id: Option<&str>, audit: default!(Option<bool>, false)) -> Option<JsonB> {
    let invalid = |problem: &str| {
        raise_invalid_request(&RequestError { field: "audit_log_id".into(), problem: problem.into() }, FUNCTION)
    };
    let Some(id) = audit_log_id else { invalid("is required") };
    if !valid_id(id) {
        invalid("is not an audit row id (1 to 128 letters, digits, '_', '.', ':' or '-')");
    }
    let row = Spi::get_one_with_args::<JsonB>(ROW_SQL, &[id.into()]).ok().flatten()?.0;
    let then = &row["trace"];
    let doc = match request_from_trace(then) {
        Ok(doc) => doc,
        Err(e) => raise_invalid_request(&e, FUNCTION),
    };
    let mut req = parse(&doc, FUNCTION, Asker::default());
    // An audited replay's row carries the caller's request context, as a decision asked in this transaction would.
    req.context = crate::actor_reach::request_context_from_settings();
    let (req, ctx, outcome, trace_id, written) = run_audited(req, true, audit.unwrap_or(false));
    let now = explain_document(&req, &ctx, &outcome, &trace_id, written.as_deref());
    let then_side = side(then);
    let mut now_side = side(&now);
    now_side["audit_log_id"] = json!(written);
    let decision_changed = then_side["decision"] != now_side["decision"];
    let deny_code_changed = then_side["deny_code"] != now_side["deny_code"];
    Some(JsonB(json!({
        "audit_log_id": id,
        "decided_at": row["decided_at"],
        "replayed_at": row["replayed_at"],
        "request": doc,
        "then": then_side,
        "now": now_side,
        "decision_changed": decision_changed,
        "deny_code_changed": deny_code_changed,
        "changes": Value::Array(changes(then, &now)),
    })))
}
