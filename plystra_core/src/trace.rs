//! The decision document: the explain trace (which is also the audit row's snapshot) and the compact check
//! answer. Shapes and field names are Plystra v1.0's (docs/v1-reference.md §1.7).

use std::borrow::Cow;

use serde_json::{json, Map, Value};

use crate::contract::{AuditSummary, CheckAnswer, Decision};
use crate::decide::Outcome;
use crate::model::{ActorNaming, Candidate, Context, ContextMode, Group, Request};
use crate::redact::redact;

pub const TRACE_VERSION: &str = "1.0";

/// At most this many candidates are shown in a trace (the deciding ones first); the rest are counted in
/// `matched_candidates_omitted`. A member with 20,000 grants must not make every decision write a 10 MB row.
pub const MAX_TRACE_CANDIDATES: usize = 32;

/// A metadata object larger than this (as JSON text) is replaced in the trace by a note of its size: it is
/// tenant-controlled, and the trace (the audit row) must stay small whatever a tenant stores.
pub const MAX_TRACE_METADATA_BYTES: usize = 8 * 1024;

/// The random part shared by a decision's trace id and audit row id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionId {
    hex: String,
}

impl DecisionId {
    /// `hex` must be 16 lowercase hex digits (8 random bytes).
    pub fn from_hex(hex: String) -> Self {
        debug_assert!(hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
        DecisionId { hex }
    }
    pub fn trace_id(&self) -> String {
        format!("trc_{}", self.hex)
    }
    pub fn audit_log_id(&self) -> String {
        format!("audit_{}", self.hex)
    }
}

fn decision_word(outcome: &Outcome) -> &'static str {
    Decision::from_allow(outcome.allow).as_str()
}

/// The audit action name: `<resource_type>.<action>`.
pub fn audit_action(req: &Request) -> String {
    format!("{}.{}", req.resource_type, req.action)
}

fn group_json(g: &Group) -> Value {
    json!({"id": g.id, "space_id": g.space_id, "path": g.path, "status": g.status})
}

fn redacted(metadata: &Option<Value>) -> Option<Value> {
    metadata.as_ref().map(|m| {
        let mut m = m.clone();
        redact(&mut m);
        let bytes = m.to_string().len();
        if bytes > MAX_TRACE_METADATA_BYTES {
            return json!({"_omitted": "metadata larger than the trace keeps", "bytes": bytes});
        }
        m
    })
}

/// Free text a tenant controls (display names, descriptions, external ids) longer than this many characters is cut
/// in the trace, with a mark: together with the candidate and metadata bounds it keeps every trace small.
pub const MAX_TRACE_TEXT_CHARS: usize = 1024;

fn bounded(text: &str) -> Value {
    if text.chars().count() <= MAX_TRACE_TEXT_CHARS {
        return Value::from(text);
    }
    let cut: String = text.chars().take(MAX_TRACE_TEXT_CHARS).collect();
    Value::from(format!("{cut}… (cut: {} characters in all)", text.chars().count()))
}

/// Inserts `key: value` only when the value is present (v1.0's `omitempty` fields).
fn put_opt(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        map.insert(key.to_string(), v);
    }
}

fn actor_json(ctx: &Context) -> Value {
    let a = &ctx.actor;
    json!({
        "user": a.user.as_ref().map(|u| json!({"id": u.id, "email": u.email, "status": u.status})),
        "member": a.member.as_ref().map(|m| json!({
            "id": m.id, "space_id": m.space_id, "display_name": bounded(&m.display_name), "status": m.status})),
        "user_member": a.user_member.as_ref().map(|um| json!({
            "id": um.id, "user_id": um.user_id, "member_id": um.member_id, "space_id": um.space_id,
            "relation_type": um.relation_type, "status": um.status, "is_primary": um.is_primary,
            "expires_at": um.expires_at.as_ref().map(|t| t.rfc3339.clone())})),
        "space": space_json(ctx),
    })
}

fn space_json(ctx: &Context) -> Value {
    ctx.actor
        .space
        .as_ref()
        .map(|s| json!({"id": s.id, "name": bounded(&s.name), "status": s.status}))
        .unwrap_or(Value::Null)
}

fn target_json(ctx: &Context) -> Value {
    let Some(t) = ctx.target.as_ref() else {
        return Value::Null;
    };
    let r = &t.resource;
    let mut res = Map::new();
    res.insert("id".into(), json!(r.id));
    put_opt(&mut res, "external_id", r.external_id.as_deref().map(bounded));
    res.insert("type".into(), json!(r.resource_type));
    res.insert("space_id".into(), json!(r.space_id));
    res.insert("group_id".into(), json!(r.group_id.clone().unwrap_or_default()));
    put_opt(&mut res, "group_path", t.group.as_ref().map(|g| Value::from(g.path.clone())));
    res.insert("owner_member_id".into(), json!(r.owner_member_id.clone().unwrap_or_default()));
    put_opt(&mut res, "display_name", r.display_name.as_deref().map(bounded));
    put_opt(&mut res, "visibility", r.visibility.clone().map(Value::from));
    put_opt(&mut res, "status", r.status.clone().map(Value::from));
    put_opt(&mut res, "metadata", redacted(&r.metadata));
    json!({"resource": Value::Object(res), "group": t.group.as_ref().map(group_json)})
}

fn registry_json(ctx: &Context) -> Value {
    let reg = &ctx.registry;
    let rt = reg.resource_type.as_ref().map(|t| {
        let mut m = Map::new();
        m.insert("id".into(), json!(t.id));
        m.insert("key".into(), json!(t.key));
        m.insert("display_name".into(), bounded(&t.display_name));
        put_opt(&mut m, "description", t.description.as_deref().map(bounded));
        m.insert("status".into(), json!(t.status));
        m.insert("source".into(), json!(t.source));
        put_opt(&mut m, "metadata", redacted(&t.metadata));
        Value::Object(m)
    });
    let action = reg.action.as_ref().map(|a| {
        let mut m = Map::new();
        m.insert("id".into(), json!(a.id));
        m.insert("resource_type_id".into(), json!(a.resource_type_id));
        m.insert("key".into(), json!(a.key));
        m.insert("display_name".into(), bounded(&a.display_name));
        put_opt(&mut m, "description", a.description.as_deref().map(bounded));
        m.insert("risk_level".into(), json!(a.risk_level));
        m.insert("audit_default".into(), json!(a.audit_default));
        put_opt(&mut m, "metadata", redacted(&a.metadata));
        Value::Object(m)
    });
    let mapping = reg.mapping.as_ref().map(|mp| {
        let mut m = Map::new();
        m.insert("id".into(), json!(mp.id));
        m.insert("resource_type_id".into(), json!(mp.resource_type_id));
        m.insert("storage_kind".into(), json!(mp.storage_kind));
        put_opt(&mut m, "table_name", mp.table_name.clone().map(Value::from));
        m.insert("id_field".into(), json!(mp.id_field));
        m.insert("space_field".into(), json!(mp.space_field));
        put_opt(&mut m, "group_field", mp.group_field.clone().map(Value::from));
        put_opt(&mut m, "owner_member_field", mp.owner_member_field.clone().map(Value::from));
        put_opt(&mut m, "visibility_field", mp.visibility_field.clone().map(Value::from));
        put_opt(&mut m, "metadata_field", mp.metadata_field.clone().map(Value::from));
        m.insert("status".into(), json!(mp.status));
        put_opt(&mut m, "metadata", redacted(&mp.metadata));
        Value::Object(m)
    });
    json!({"resource_type": rt, "action": action, "mapping": mapping})
}

/// Which candidates a trace shows, in the order shown: all of them when there are at most
/// `MAX_TRACE_CANDIDATES`; otherwise the deciding ones first (those that cover the target on an allow, the first
/// one with a deny code on a scope deny), then the others in candidate order, up to the bound.
pub fn shown_candidates(outcome: &Outcome) -> Vec<usize> {
    let n = outcome.scope_checks.len();
    if n <= MAX_TRACE_CANDIDATES {
        return (0..n).collect();
    }
    let checks = &outcome.scope_checks;
    let deciding: Vec<usize> = if outcome.allow {
        (0..n).filter(|&i| checks[i].covered).take(MAX_TRACE_CANDIDATES).collect()
    } else {
        (0..n).find(|&i| checks[i].deny_code.is_some()).into_iter().collect()
    };
    let mut shown = deciding.clone();
    shown.extend((0..n).filter(|i| !deciding.contains(i)).take(MAX_TRACE_CANDIDATES - deciding.len()));
    shown
}

fn candidates_json(ctx: &Context, outcome: &Outcome) -> Value {
    if !outcome.target_evaluated || ctx.candidates.is_empty() {
        // v1.0 serialises "no candidates" as null (a nil Go slice).
        return Value::Null;
    }
    let items = shown_candidates(outcome)
        .into_iter()
        .filter_map(|i| Some((ctx.candidates.get(i)?, outcome.scope_checks.get(i)?)))
        .map(|(c, check): (&Candidate, _)| {
            let mut sc = Map::new();
            sc.insert("covered".into(), json!(check.covered));
            sc.insert("rule".into(), json!(check.rule));
            sc.insert("reason".into(), json!(check.reason));
            put_opt(&mut sc, "deny_code", check.deny_code.map(|d| Value::from(d.as_str())));
            json!({
                "role": {"id": c.role.id, "key": c.role.key, "space_id": c.role.space_id},
                "permission": {"id": c.permission.id, "resource": c.permission.resource,
                               "action": c.permission.action, "scope": c.permission.scope},
                "scope_anchor": c.scope_anchor.as_ref().map(group_json),
                "scope_check": Value::Object(sc),
                "member_role_id": c.member_role_id,
                "member_role_space_id": c.member_role_space_id,
            })
        })
        .collect();
    Value::Array(items)
}

/// How many candidates the trace leaves out (0 when it shows them all).
fn omitted_candidates(ctx: &Context, outcome: &Outcome) -> usize {
    if !outcome.target_evaluated {
        return 0;
    }
    ctx.candidates.len().saturating_sub(MAX_TRACE_CANDIDATES)
}

fn context_mode_json(mode: &ContextMode) -> Value {
    let source = |inline: bool| if inline { "inline" } else { "core" };
    let mut m = Map::new();
    m.insert("actor".into(), json!(source(mode.actor_inline)));
    m.insert("target".into(), json!(source(mode.target_inline)));
    m.insert("grants".into(), json!(source(mode.grants_inline)));
    if !mode.ignored.is_empty() {
        m.insert("ignored_inline_fields".into(), json!(mode.ignored));
    }
    Value::Object(m)
}

/// How an actor named by its User alone was resolved (absent for a request that named the whole tuple).
fn actor_naming_json(naming: ActorNaming) -> Option<Value> {
    match naming {
        ActorNaming::Tuple => None,
        ActorNaming::ByUser | ActorNaming::Unbound => Some(json!("by_user: no binding")),
        ActorNaming::Resolved => Some(json!("by_user: binding resolved")),
        ActorNaming::Ambiguous => Some(json!("by_user: several bindings, none primary")),
    }
}

/// The audit summary shared by the trace and the compact answer.
pub fn audit_json(req: &Request, outcome: &Outcome, audit_log_id: Option<&str>) -> Value {
    audit_summary(req, outcome, audit_log_id).to_doc().into_value()
}

/// The audit summary of a decision, borrowing its text from the request.
pub fn audit_summary<'a>(req: &'a Request, outcome: &Outcome, audit_log_id: Option<&'a str>) -> AuditSummary<'a> {
    AuditSummary {
        audit_log_id: audit_log_id.map(Cow::Borrowed),
        actor_user_id: Some(Cow::Borrowed(&req.user_id)),
        actor_member_id: Some(Cow::Borrowed(&req.member_id)),
        actor_user_member_id: Some(Cow::Borrowed(&req.user_member_id)),
        space_id: Some(Cow::Borrowed(&req.space_id)),
        action: Some(Cow::Owned(audit_action(req))),
        resource_type: Some(Cow::Borrowed(&req.resource_type)),
        resource_id: Some(Cow::Borrowed(&req.resource_id)),
        decision: Decision::from_allow(outcome.allow),
        deny_code: outcome.deny_code,
        request_id: req.context.request_id.as_deref().map(Cow::Borrowed),
    }
}

/// The full decision-time trace: what `plystra.explain` returns and what the audit row keeps.
/// `audit_log_id` is the id of the row written for this decision, if one is.
pub fn explain_document(
    req: &Request,
    ctx: &Context,
    outcome: &Outcome,
    id: &DecisionId,
    audit_log_id: Option<&str>,
) -> Value {
    let (target, resource_registry) =
        (if outcome.target_evaluated { target_json(ctx) } else { Value::Null }, registry_json(ctx));
    let mut doc = json!({
        "trace_version": TRACE_VERSION,
        "trace_id": id.trace_id(),
        "decision": decision_word(outcome),
        "deny_code": outcome.deny_code.map(|d| d.as_str()),
        "actor": actor_json(ctx),
        "space": space_json(ctx),
        "target": target,
        "resource_registry": resource_registry,
        "matched_candidates": candidates_json(ctx, outcome),
        "request": {"request_id": req.context.request_id, "ip": req.context.ip, "user_agent": req.context.user_agent},
        "requested": {"user_id": req.user_id, "member_id": req.member_id, "user_member_id": req.user_member_id,
                      "space_id": req.space_id, "resource_type": req.resource_type,
                      "resource_id": req.resource_id, "action": req.action},
        "reason": outcome.reason,
        "audit": audit_json(req, outcome, audit_log_id),
    });
    if let Some(mode) = &ctx.context_mode {
        // Only for Context Mode, so that every Core-only trace keeps v1.0's shape.
        doc["context_mode"] = context_mode_json(mode);
    }
    if let Some(naming) = actor_naming_json(req.actor_naming) {
        doc["requested"]["actor_naming"] = naming;
    }
    let omitted = omitted_candidates(ctx, outcome);
    if omitted > 0 {
        // Only when the bound applies, so that every ordinary trace keeps v1.0's shape.
        doc["matched_candidates_omitted"] = json!(omitted);
    }
    doc
}

/// The compact answer of `plystra.check`.
pub fn check_document(req: &Request, outcome: &Outcome, id: &DecisionId, audit_log_id: Option<&str>) -> Value {
    check_answer(req, outcome, id, audit_log_id).to_doc().into_value()
}

/// [`check_document`] as the contract's type, borrowing from the request: a batch encodes a hundred of them as
/// jsonb ([`CheckAnswer::to_doc`]) without building (and dropping) a `serde_json::Value` for each.
pub fn check_answer<'a>(
    req: &'a Request,
    outcome: &Outcome,
    id: &DecisionId,
    audit_log_id: Option<&'a str>,
) -> CheckAnswer<'a> {
    CheckAnswer {
        allow: outcome.allow,
        decision: Decision::from_allow(outcome.allow),
        deny_code: outcome.deny_code,
        reason: Cow::Borrowed(outcome.reason),
        trace_id: Cow::Owned(id.trace_id()),
        audit_log_id: audit_log_id.map(Cow::Borrowed),
        audit: audit_summary(req, outcome, audit_log_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deny::{DenyCode, ALLOW_REASON};
    use crate::model::RequestContext;

    /// The compact answer and the audit summary as they were written before they became borrowed documents:
    /// the shape every client has seen, kept as the reference.
    fn reference_check(req: &Request, outcome: &Outcome, id: &DecisionId, audit_log_id: Option<&str>) -> Value {
        json!({
            "allow": outcome.allow,
            "decision": decision_word(outcome),
            "deny_code": outcome.deny_code.map(|d| d.as_str()),
            "reason": outcome.reason,
            "trace_id": id.trace_id(),
            "audit_log_id": audit_log_id,
            "audit": {
                "audit_log_id": audit_log_id,
                "actor_user_id": req.user_id,
                "actor_member_id": req.member_id,
                "actor_user_member_id": req.user_member_id,
                "space_id": req.space_id,
                "action": audit_action(req),
                "resource_type": req.resource_type,
                "resource_id": req.resource_id,
                "decision": decision_word(outcome),
                "deny_code": outcome.deny_code.map(|d| d.as_str()),
                "request_id": req.context.request_id,
            },
        })
    }

    #[test]
    fn the_compact_answer_keeps_its_shape() {
        let mut req = Request {
            user_id: "user_alice".into(),
            member_id: "member_finance_reviewer".into(),
            user_member_id: "um_alice".into(),
            space_id: "space_acme".into(),
            resource_type: "invoice".into(),
            resource_id: "invoice_\"é\"".into(),
            action: "approve".into(),
            ..Request::default()
        };
        let id = DecisionId::from_hex("0123456789abcdef".into());
        let allow = Outcome {
            allow: true,
            deny_code: None,
            reason: ALLOW_REASON,
            scope_checks: Vec::new(),
            target_evaluated: true,
        };
        let deny = Outcome {
            allow: false,
            deny_code: Some(DenyCode::ScopeOutOfBounds),
            reason: DenyCode::ScopeOutOfBounds.reason(),
            scope_checks: Vec::new(),
            target_evaluated: true,
        };
        for context in
            [RequestContext::default(), RequestContext { request_id: Some("req_1".into()), ..Default::default() }]
        {
            req.context = context;
            for outcome in [&allow, &deny] {
                for audit_log_id in [None, Some("audit_0123456789abcdef")] {
                    let expected = reference_check(&req, outcome, &id, audit_log_id);
                    assert_eq!(check_document(&req, outcome, &id, audit_log_id), expected);
                    assert_eq!(audit_json(&req, outcome, audit_log_id), expected["audit"]);
                }
            }
        }
    }
}
