//! The SQL API of decisions: `plystra.check`, `plystra.explain` and the typed `plystra.allowed`.
//! Each is load (one query) → decide (pure) → audit (per `plystra.audit_mode`).

use pgrx::prelude::*;
use pgrx::JsonB;
use plystra_core::contract::BatchAnswer;
use plystra_core::jsonb::Doc;
use plystra_core::model::{Context, Request};
use plystra_core::request::{parse_batch, parse_request, RequestError};
use plystra_core::trace::{check_answer, check_document, explain_document, trace_doc, DecisionId, TraceParts};
use plystra_core::{decide, Outcome};

use crate::error::raise_invalid_request;
use crate::guc::{AuditMode, AUDIT_MODE};
use crate::{audit, loader};

/// `n` decision ids, each 8 unpredictable bytes as 16 hex digits (the shared part of `trc_…` and `audit_…`).
///
/// Each is the first 8 bytes of SHA-256(key ‖ counter): the key is 32 bytes of PostgreSQL's strong random source,
/// drawn once per backend process (again after a fork: the process id is kept with it), the counter counts the ids
/// the backend has made. Without the key the ids cannot be predicted or told apart from random ones; drawing from
/// the strong source for every decision cost about 4% of a decision's time (a call into OpenSSL each).
fn new_decision_ids(n: usize) -> Vec<DecisionId> {
    use sha2::{Digest, Sha256};
    thread_local! {
        static STREAM: std::cell::Cell<Option<(i32, [u8; 32], u64)>> = const { std::cell::Cell::new(None) };
    }
    // SAFETY: the process id is set at process start.
    let pid = unsafe { pg_sys::MyProcPid };
    STREAM.with(|stream| {
        let (key, mut counter) = match stream.get() {
            Some((owner, key, counter)) if owner == pid => (key, counter),
            _ => {
                let mut key = [0u8; 32];
                // SAFETY: the buffer holds exactly 32 writable bytes.
                if !unsafe { pg_sys::pg_strong_random(key.as_mut_ptr().cast(), key.len()) } {
                    pgrx::error!("plystra: could not generate random decision ids");
                }
                (key, 0)
            }
        };
        let ids = (0..n)
            .map(|_| {
                counter += 1;
                let digest = Sha256::new().chain_update(key).chain_update(counter.to_le_bytes()).finalize();
                DecisionId::from_hex(hex::encode(&digest[..8]))
            })
            .collect();
        stream.set(Some((pid, key, counter)));
        ids
    })
}

fn new_decision_id() -> DecisionId {
    new_decision_ids(1).pop().expect("one id was drawn")
}

struct Decided {
    req: Request,
    ctx: Context,
    outcome: Outcome,
    id: DecisionId,
    audit_log_id: Option<String>,
}

/// A jsonb argument's text as a JSON value. The text comes from a jsonb value, so it is valid JSON; what can
/// still fail is depth (serde's recursion limit) or a number no f64 holds. Neither is a request Plystra can
/// read: 22023 naming `field`, never an internal error.
pub(crate) fn read_json(text: Option<&str>, field: &str, function: &'static str) -> serde_json::Value {
    let Some(text) = text else { refuse_json(field, "is required", function) };
    match serde_json::from_str(text) {
        Ok(doc) => doc,
        Err(_) => refuse_json(field, UNREADABLE_JSON, function),
    }
}

const UNREADABLE_JSON: &str = "is nested too deeply or holds an unreadable number";

fn refuse_json(field: &str, problem: &str, function: &'static str) -> ! {
    raise_invalid_request(&RequestError { field: field.into(), problem: problem.into() }, function)
}

/// Who asks, for the two rules of a request that depend on it.
#[derive(Clone, Copy, Default)]
pub(crate) struct Asker<'a> {
    /// Inline grants and actor metadata ("pure inline": the caller supplies the actor and its grants, so the
    /// answer is the caller's own) are accepted only from a server-side API key, through the REST front's gate.
    /// A SQL caller may describe a target inline; Core supplies the actor and the grants.
    pub pure_inline: bool,
    /// Where an actor named by its User alone is resolved when the request names no Space (a Space- or
    /// Group-scoped API key's Space).
    pub home_space: Option<&'a str>,
}

pub(crate) fn parse(doc: &serde_json::Value, function: &'static str, asker: Asker<'_>) -> Request {
    let mut req = match parse_request(doc) {
        Ok(parsed) => parsed.request,
        Err(e) => raise_invalid_request(&e, function),
    };
    refuse_pure_inline(&req, function, asker);
    loader::resolve_binding(&mut req, asker.home_space);
    req
}

fn refuse_pure_inline(req: &Request, function: &'static str, asker: Asker<'_>) {
    let Some(inline) = req.inline.as_deref().filter(|i| i.is_pure() && !asker.pure_inline) else { return };
    let field = if inline.grants.is_some() { "grants" } else { "actor" };
    let problem = "is accepted only from a server-side API key through the REST front (inline grants and actor \
                   metadata supply the answer's own facts); in SQL, describe the target inline and Core supplies \
                   the actor and its grants";
    raise_invalid_request(&RequestError { field: field.into(), problem: problem.into() }, function)
}

/// Loads, decides and writes the audit row when the mode says so.
fn run(req: Request, explain: bool) -> Decided {
    run_inner(req, explain, true)
}

/// `run`, writing the audit row only when `audit` is asked (and the mode says so): a replay reads unless its
/// caller asks for a row. Returns the request, context, outcome, trace id and the row written, if any.
pub(crate) fn run_audited(
    req: Request,
    explain: bool,
    audit: bool,
) -> (Request, Context, Outcome, DecisionId, Option<String>) {
    let d = run_inner(req, explain, audit);
    (d.req, d.ctx, d.outcome, d.id, d.audit_log_id)
}

fn run_inner(req: Request, explain: bool, audit: bool) -> Decided {
    load(req, explain, audit).decide(audit)
}

/// A request with its context loaded and not yet decided: the REST front's gate places the request's objects
/// from the context (`gate.rs`) before it lets the decision be made and audited.
pub(crate) struct Loaded {
    req: Request,
    ctx: Context,
    explain: bool,
}

/// Loads the context of `req`, with what a trace needs when one may be built (`explain`, or an audit row).
pub(crate) fn load(req: Request, explain: bool, audit: bool) -> Loaded {
    let trace_possible = explain || (audit && AUDIT_MODE.get() != AuditMode::Off);
    let ctx = loader::load_context(&req, trace_possible);
    Loaded { req, ctx, explain }
}

impl Loaded {
    pub(crate) fn request(&self) -> &Request {
        &self.req
    }

    pub(crate) fn ctx(&self) -> &Context {
        &self.ctx
    }

    /// Decides, and writes the audit row when `audit` is asked and the mode says so.
    fn decide(self, audit: bool) -> Decided {
        let Loaded { req, ctx, explain: _ } = self;
        let outcome = decide(&req, &ctx);
        let id = new_decision_id();
        let audit_log_id = (audit && AUDIT_MODE.get().writes(outcome.allow)).then(|| id.audit_log_id());
        if let Some(audit_id) = &audit_log_id {
            let parts = TraceParts::new(&req, &ctx, &outcome, &id, Some(audit_id));
            audit::write_decision(audit_id, &req, &outcome, trace_doc(&req, &ctx, &outcome, &parts));
        }
        Decided { req, ctx, outcome, id, audit_log_id }
    }

    /// [`answer_parsed`]'s answer for the request loaded (`load(req, explain, true)`).
    pub(crate) fn answer(self, function: &'static str, asker: Asker<'_>) -> serde_json::Value {
        refuse_pure_inline(&self.req, function, asker);
        let explain = self.explain;
        decided_document(self.decide(true), explain)
    }
}

/// A batch document (`plystra.check_batch`) decided, its audit rows written: for each item in order, its request,
/// decision id, outcome and audit row id.
pub(crate) struct DecidedBatch {
    requests: Vec<Request>,
    ids: Vec<DecisionId>,
    outcomes: Vec<(Outcome, Option<String>)>,
}

impl DecidedBatch {
    /// The answer, `{"results": [...]}`: for each item in order exactly what `plystra.check` answers for it.
    pub(crate) fn answer(&self) -> BatchAnswer<'_> {
        let results = self
            .requests
            .iter()
            .zip(&self.outcomes)
            .zip(&self.ids)
            .map(|((req, (outcome, audit_log_id)), id)| check_answer(req, outcome, id, audit_log_id.as_deref()))
            .collect();
        BatchAnswer { results }
    }
}

/// Decides a batch document: one snapshot and one load of the actor for the whole batch (registry entries and
/// candidates once per resource type and action, each group once); each item is decided on its own and audited
/// as its own decision per `plystra.audit_mode` (own trace id and row, the row check would write), and the rows
/// are handed to the audit writer together.
pub(crate) fn decide_batch(doc: &serde_json::Value, function: &'static str, asker: Asker<'_>) -> DecidedBatch {
    let mut requests = match parse_batch(doc) {
        Ok(requests) => requests,
        Err(e) => raise_invalid_request(&e, function),
    };
    // One actor for every item: resolved once, then named the same way by each.
    let mut first = requests[0].clone();
    loader::resolve_binding(&mut first, asker.home_space);
    for req in &mut requests {
        req.user_id.clone_from(&first.user_id);
        req.member_id.clone_from(&first.member_id);
        req.user_member_id.clone_from(&first.user_member_id);
        req.space_id.clone_from(&first.space_id);
        req.actor_naming = first.actor_naming;
    }
    let mode = AUDIT_MODE.get();
    let ids = new_decision_ids(requests.len());
    // Every item is loaded into the loader's one context and decided at once; an audited item's trace (the
    // only part of the answer that needs its context) is made then too. Every context under one snapshot, the
    // reading closed before any row is written.
    let mut outcomes = Vec::with_capacity(requests.len());
    let mut traces = Vec::new();
    {
        let mut loader = loader::ActorLoader::begin(&requests[0], mode != AuditMode::Off);
        for (req, id) in requests.iter().zip(&ids) {
            let ctx = loader.load(req);
            let outcome = decide(req, ctx);
            let audit_log_id = mode.writes(outcome.allow).then(|| id.audit_log_id());
            if let Some(audit_id) = audit_log_id.as_deref() {
                traces.push(explain_document(req, ctx, &outcome, id, Some(audit_id)));
            }
            outcomes.push((outcome, audit_log_id));
        }
    }
    let mut traces = traces.iter();
    let rows = requests
        .iter()
        .zip(&outcomes)
        .filter_map(|(req, (outcome, audit_log_id))| {
            let id = audit_log_id.clone()?;
            let trace = traces.next().expect("one trace per audited item");
            Some(audit::DecisionRow { id, req, outcome, trace: Doc::from(trace) })
        })
        .collect();
    audit::write_decisions(rows);
    DecidedBatch { requests, ids, outcomes }
}

/// [`decide_batch`]'s answer as a JSON value (the REST front's gate embeds it in its own answer).
pub(crate) fn batch_value(doc: &serde_json::Value, function: &'static str, asker: Asker<'_>) -> serde_json::Value {
    decide_batch(doc, function, asker).answer().to_doc().into_value()
}

/// The answer to a request given as text: the compact answer, or the full trace when `explain`.
fn answer(request: Option<&str>, explain: bool) -> JsonB {
    let function = if explain { "plystra.explain" } else { "plystra.check" };
    JsonB(answer_value(&read_json(request, "request", function), explain, function, Asker::default()))
}

/// The compact answer, or the full trace when `explain`, to a request document (`function` names the SQL
/// function in a 22023 for a malformed request).
pub(crate) fn answer_value(
    request: &serde_json::Value,
    explain: bool,
    function: &'static str,
    asker: Asker<'_>,
) -> serde_json::Value {
    decided_value(parse(request, function, asker), explain)
}

/// [`answer_value`] for a request the caller has already read and resolved (the REST front's gate reads it once
/// to place its scopes): refused as `parse` refuses it when it is pure inline from a caller that may not send it.
pub(crate) fn answer_parsed(
    req: Request,
    explain: bool,
    function: &'static str,
    asker: Asker<'_>,
) -> serde_json::Value {
    refuse_pure_inline(&req, function, asker);
    decided_value(req, explain)
}

fn decided_value(req: Request, explain: bool) -> serde_json::Value {
    decided_document(run(req, explain), explain)
}

fn decided_document(d: Decided, explain: bool) -> serde_json::Value {
    if explain {
        explain_document(&d.req, &d.ctx, &d.outcome, &d.id, d.audit_log_id.as_deref())
    } else {
        check_document(&d.req, &d.outcome, &d.id, d.audit_log_id.as_deref())
    }
}

/// The same engine as `plystra.check`/`plystra.explain`, taking the request as text (kept for callers of 1.2.0).
#[pg_extern(security_definer, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn decide_request(request: Option<&str>, explain: bool) -> JsonB {
    answer(request, explain)
}

/// `plystra.check(jsonb)` and `plystra.explain(jsonb)` are C-language functions over these two entry points
/// (sql/api.sql), not SQL wrappers: PostgreSQL 15 parses and plans a SQL function's body again in every
/// statement that calls it, which cost a decision about a sixth of its time. The request is read from jsonb's
/// binary form and the answer written in it (`crate::jsonb`): printed as text for serde and the answer's text
/// parsed again by `jsonb_in`, the two conversions were about a seventh of a check in a profile.
///
/// # Safety
/// Called by PostgreSQL's function manager with a valid `fcinfo` for a call of `(jsonb) RETURNS jsonb`.
unsafe fn jsonb_entry(fcinfo: pg_sys::FunctionCallInfo, explain: bool) -> pg_sys::Datum {
    let function = if explain { "plystra.explain" } else { "plystra.check" };
    // SAFETY: argument 0 of a one-argument `(jsonb)` call.
    let request = read_jsonb(unsafe { crate::jsonb::jsonb_arg_value(fcinfo, 0) }, "request", function);
    let d = run(parse(&request, function, Asker::default()), explain);
    if explain {
        let parts = TraceParts::new(&d.req, &d.ctx, &d.outcome, &d.id, d.audit_log_id.as_deref());
        crate::jsonb::to_jsonb_datum(&trace_doc(&d.req, &d.ctx, &d.outcome, &parts))
    } else {
        crate::jsonb::to_jsonb_datum(&check_answer(&d.req, &d.outcome, &d.id, d.audit_log_id.as_deref()).to_doc())
    }
}

/// A jsonb argument read from its binary form ([`crate::jsonb::jsonb_arg_value`]), refused as [`read_json`]
/// refuses the same document's text: missing, or nested too deeply or holding a number serde cannot read.
pub(crate) fn read_jsonb(
    doc: Option<Result<serde_json::Value, plystra_core::jsonb::DecodeError>>,
    field: &str,
    function: &'static str,
) -> serde_json::Value {
    match doc {
        Some(Ok(doc)) => doc,
        None => refuse_json(field, "is required", function),
        Some(Err(_)) => refuse_json(field, UNREADABLE_JSON, function),
    }
}

/// Declares the version-1 calling convention of a C entry point (what `PG_FUNCTION_INFO_V1` does in C).
macro_rules! function_info_v1 {
    ($finfo:ident) => {
        #[unsafe(no_mangle)]
        #[doc(hidden)]
        pub extern "C" fn $finfo() -> &'static pg_sys::Pg_finfo_record {
            const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }
    };
}
pub(crate) use function_info_v1;

function_info_v1!(pg_finfo_plystra_check_jsonb);

/// The C entry point of `plystra.check(jsonb)`.
///
/// # Safety
/// Only PostgreSQL calls it, through the function manager.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn plystra_check_jsonb(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    unsafe { jsonb_entry(fcinfo, false) }
}

function_info_v1!(pg_finfo_plystra_explain_jsonb);

/// The C entry point of `plystra.explain(jsonb)`.
///
/// # Safety
/// Only PostgreSQL calls it, through the function manager.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn plystra_explain_jsonb(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    unsafe { jsonb_entry(fcinfo, true) }
}

function_info_v1!(pg_finfo_plystra_simulate_jsonb);

/// The C entry point of `plystra.simulate(jsonb)`: the decision and full trace of `plystra.explain`, asked by an
/// administrator about any binding ("what would this binding be answered?"). It is a question, not a decision
/// anyone acted on, so it never writes an audit row whatever `plystra.audit_mode` says (the path
/// `plystra.replay` reads through), and the answer says `"simulated": true` so that it cannot be taken for an
/// audited decision. No pure-inline context, as in `plystra.explain`.
///
/// # Safety
/// Only PostgreSQL calls it, through the function manager.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn plystra_simulate_jsonb(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: argument 0 of a one-argument `(jsonb)` call.
    let request = read_jsonb(unsafe { crate::jsonb::jsonb_arg_value(fcinfo, 0) }, "request", SIMULATE);
    crate::jsonb::to_jsonb_datum(&Doc::from(&simulated_value(&request, Asker::default())))
}

const SIMULATE: &str = "plystra.simulate";

/// `plystra.simulate`'s answer to a request document: `plystra.explain`'s trace, decided without an audit row,
/// marked `"simulated": true`.
pub(crate) fn simulated_value(request: &serde_json::Value, asker: Asker<'_>) -> serde_json::Value {
    let req = parse(request, SIMULATE, asker);
    let (req, ctx, outcome, id, written) = run_audited(req, true, false);
    debug_assert!(written.is_none(), "a simulation writes no audit row");
    let mut doc = explain_document(&req, &ctx, &outcome, &id, None);
    if let serde_json::Value::Object(map) = &mut doc {
        map.insert("simulated".into(), serde_json::Value::Bool(true));
    }
    doc
}

function_info_v1!(pg_finfo_plystra_check_batch_jsonb);

/// The C entry point of `plystra.check_batch(jsonb)`: a C-language function for the reason `plystra.check` is
/// one. Its argument is read from jsonb's binary form straight into a JSON value (a batch document is kilobytes:
/// printing it as text and parsing the text was a twentieth of the call); what serde would refuse in the text
/// (nesting too deep, a number it cannot hold) is refused the same way, 22023.
///
/// # Safety
/// Only PostgreSQL calls it, through the function manager.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn plystra_check_batch_jsonb(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    const FUNCTION: &str = "plystra.check_batch";
    // SAFETY: argument 0 of a one-argument `(jsonb)` call.
    let doc = read_jsonb(unsafe { crate::jsonb::jsonb_arg_value(fcinfo, 0) }, "request", FUNCTION);
    let batch = decide_batch(&doc, FUNCTION, Asker::default());
    // A hundred results are tens of kB of JSON: written as jsonb directly from the outcomes, never built as
    // JSON values, printed and parsed again.
    crate::jsonb::to_jsonb_datum(&batch.answer().to_doc())
}

/// The typed form for WHERE clauses. Builds no JSON unless an audit row is written.
#[pg_extern(security_definer, parallel_unsafe, strict)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::too_many_arguments)]
fn allowed(
    user_id: &str,
    member_id: &str,
    user_member_id: &str,
    space_id: &str,
    resource_type: &str,
    resource_id: &str,
    action: &str,
) -> bool {
    let req = Request {
        // The typed form's request context comes from plystra.set_request_context, as for management audit.
        context: crate::actor_reach::request_context_from_settings(),
        ..Request::about((user_id, member_id, user_member_id, space_id), resource_type, resource_id, action)
    };
    if let Err(e) = plystra_core::request::typed_request_check(&req) {
        crate::error::raise_invalid_request(&e, "plystra.allowed");
    }
    run(req, false).outcome.allow
}
