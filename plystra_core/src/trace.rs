//! The decision document: the explain trace (which is also the audit row's snapshot) and the compact check
//! answer. Shapes and field names are Plystra v1.0's (docs/v1-reference.md §1.7).

use std::borrow::Cow;

use serde_json::{json, Value};

use crate::contract::{AuditSummary, CheckAnswer, Decision};
use crate::decide::Outcome;
use crate::jsonb::Doc;
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

fn group_doc(g: &Group) -> Doc<'_> {
    Doc::Obj(vec![
        ("id", Doc::str(&g.id)),
        ("space_id", Doc::str(&g.space_id)),
        ("path", Doc::str(&g.path)),
        ("status", Doc::str(&g.status)),
    ])
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

fn bounded(text: &str) -> Doc<'_> {
    if text.len() <= MAX_TRACE_TEXT_CHARS || text.chars().count() <= MAX_TRACE_TEXT_CHARS {
        return Doc::str(text);
    }
    let cut: String = text.chars().take(MAX_TRACE_TEXT_CHARS).collect();
    Doc::Str(Cow::Owned(format!("{cut}… (cut: {} characters in all)", text.chars().count())))
}

/// A member present only when the value is (v1.0's `omitempty` fields).
fn put_opt<'d>(members: &mut Vec<(&'static str, Doc<'d>)>, key: &'static str, value: Option<Doc<'d>>) {
    if let Some(v) = value {
        members.push((key, v));
    }
}

fn actor_doc(ctx: &Context) -> Doc<'_> {
    let a = &ctx.actor;
    Doc::Obj(vec![
        (
            "user",
            a.user.as_ref().map_or(Doc::Null, |u| {
                Doc::Obj(vec![("id", Doc::str(&u.id)), ("email", Doc::str(&u.email)), ("status", Doc::str(&u.status))])
            }),
        ),
        (
            "member",
            a.member.as_ref().map_or(Doc::Null, |m| {
                Doc::Obj(vec![
                    ("id", Doc::str(&m.id)),
                    ("space_id", Doc::str(&m.space_id)),
                    ("display_name", bounded(&m.display_name)),
                    ("status", Doc::str(&m.status)),
                ])
            }),
        ),
        (
            "user_member",
            a.user_member.as_ref().map_or(Doc::Null, |um| {
                Doc::Obj(vec![
                    ("id", Doc::str(&um.id)),
                    ("user_id", Doc::str(&um.user_id)),
                    ("member_id", Doc::str(&um.member_id)),
                    ("space_id", Doc::str(&um.space_id)),
                    ("relation_type", Doc::str(&um.relation_type)),
                    ("status", Doc::str(&um.status)),
                    ("is_primary", Doc::Bool(um.is_primary)),
                    ("expires_at", Doc::opt_str(um.expires_at.as_ref().map(|t| t.rfc3339.as_str()))),
                ])
            }),
        ),
        ("space", space_doc(ctx)),
    ])
}

fn space_doc(ctx: &Context) -> Doc<'_> {
    ctx.actor.space.as_ref().map_or(Doc::Null, |s| {
        Doc::Obj(vec![("id", Doc::str(&s.id)), ("name", bounded(&s.name)), ("status", Doc::str(&s.status))])
    })
}

fn target_doc<'d>(ctx: &'d Context, parts: &'d TraceParts<'_>) -> Doc<'d> {
    let Some(t) = ctx.target.as_ref() else {
        return Doc::Null;
    };
    let r = &t.resource;
    let mut res = vec![("id", Doc::str(&r.id))];
    put_opt(&mut res, "external_id", r.external_id.as_deref().map(bounded));
    res.push(("type", Doc::str(&r.resource_type)));
    res.push(("space_id", Doc::str(&r.space_id)));
    res.push(("group_id", Doc::str(r.group_id.as_deref().unwrap_or_default())));
    put_opt(&mut res, "group_path", t.group.as_ref().map(|g| Doc::str(&g.path)));
    res.push(("owner_member_id", Doc::str(r.owner_member_id.as_deref().unwrap_or_default())));
    put_opt(&mut res, "display_name", r.display_name.as_deref().map(bounded));
    put_opt(&mut res, "visibility", r.visibility.as_deref().map(Doc::str));
    put_opt(&mut res, "status", r.status.as_deref().map(Doc::str));
    put_opt(&mut res, "metadata", parts.resource_metadata.as_ref().map(Doc::from));
    Doc::Obj(vec![("resource", Doc::Obj(res)), ("group", t.group.as_ref().map_or(Doc::Null, group_doc))])
}

fn registry_doc<'d>(ctx: &'d Context, parts: &'d TraceParts<'_>) -> Doc<'d> {
    let reg = &ctx.registry;
    let rt = reg.resource_type.as_ref().map_or(Doc::Null, |t| {
        let mut m =
            vec![("id", Doc::str(&t.id)), ("key", Doc::str(&t.key)), ("display_name", bounded(&t.display_name))];
        put_opt(&mut m, "description", t.description.as_deref().map(bounded));
        m.push(("status", Doc::str(&t.status)));
        m.push(("source", Doc::str(&t.source)));
        put_opt(&mut m, "metadata", parts.type_metadata.as_ref().map(Doc::from));
        Doc::Obj(m)
    });
    let action = reg.action.as_ref().map_or(Doc::Null, |a| {
        let mut m = vec![
            ("id", Doc::str(&a.id)),
            ("resource_type_id", Doc::str(&a.resource_type_id)),
            ("key", Doc::str(&a.key)),
            ("display_name", bounded(&a.display_name)),
        ];
        put_opt(&mut m, "description", a.description.as_deref().map(bounded));
        m.push(("risk_level", Doc::str(&a.risk_level)));
        m.push(("audit_default", Doc::Bool(a.audit_default)));
        put_opt(&mut m, "metadata", parts.action_metadata.as_ref().map(Doc::from));
        Doc::Obj(m)
    });
    let mapping = reg.mapping.as_ref().map_or(Doc::Null, |mp| {
        let mut m = vec![
            ("id", Doc::str(&mp.id)),
            ("resource_type_id", Doc::str(&mp.resource_type_id)),
            ("storage_kind", Doc::str(&mp.storage_kind)),
        ];
        put_opt(&mut m, "table_name", mp.table_name.as_deref().map(Doc::str));
        m.push(("id_field", Doc::str(&mp.id_field)));
        m.push(("space_field", Doc::str(&mp.space_field)));
        put_opt(&mut m, "group_field", mp.group_field.as_deref().map(Doc::str));
        put_opt(&mut m, "owner_member_field", mp.owner_member_field.as_deref().map(Doc::str));
        put_opt(&mut m, "visibility_field", mp.visibility_field.as_deref().map(Doc::str));
        put_opt(&mut m, "metadata_field", mp.metadata_field.as_deref().map(Doc::str));
        m.push(("status", Doc::str(&mp.status)));
        put_opt(&mut m, "metadata", parts.mapping_metadata.as_ref().map(Doc::from));
        Doc::Obj(m)
    });
    Doc::Obj(vec![("resource_type", rt), ("action", action), ("mapping", mapping)])
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

fn candidates_doc<'d>(ctx: &'d Context, outcome: &'d Outcome) -> Doc<'d> {
    if !outcome.target_evaluated || ctx.candidates.is_empty() {
        // v1.0 serialises "no candidates" as null (a nil Go slice).
        return Doc::Null;
    }
    let items = shown_candidates(outcome)
        .into_iter()
        .filter_map(|i| Some((ctx.candidates.get(i)?, outcome.scope_checks.get(i)?)))
        .map(|(c, check): (&Candidate, _)| {
            let mut sc = vec![
                ("covered", Doc::Bool(check.covered)),
                ("rule", Doc::str(check.rule)),
                ("reason", Doc::str(&check.reason)),
            ];
            put_opt(&mut sc, "deny_code", check.deny_code.map(|d| Doc::str(d.as_str())));
            Doc::Obj(vec![
                (
                    "role",
                    Doc::Obj(vec![
                        ("id", Doc::str(&c.role.id)),
                        ("key", Doc::str(&c.role.key)),
                        ("space_id", Doc::str(&c.role.space_id)),
                    ]),
                ),
                (
                    "permission",
                    Doc::Obj(vec![
                        ("id", Doc::str(&c.permission.id)),
                        ("resource", Doc::str(&c.permission.resource)),
                        ("action", Doc::str(&c.permission.action)),
                        ("scope", Doc::str(&c.permission.scope)),
                    ]),
                ),
                ("scope_anchor", c.scope_anchor.as_ref().map_or(Doc::Null, group_doc)),
                ("scope_check", Doc::Obj(sc)),
                ("member_role_id", Doc::str(&c.member_role_id)),
                ("member_role_space_id", Doc::str(&c.member_role_space_id)),
            ])
        })
        .collect();
    Doc::Arr(items)
}

/// How many candidates the trace leaves out (0 when it shows them all).
fn omitted_candidates(ctx: &Context, outcome: &Outcome) -> usize {
    if !outcome.target_evaluated {
        return 0;
    }
    ctx.candidates.len().saturating_sub(MAX_TRACE_CANDIDATES)
}

fn context_mode_doc(mode: &ContextMode) -> Doc<'_> {
    let source = |inline: bool| Doc::str(if inline { "inline" } else { "core" });
    let mut m = vec![
        ("actor", source(mode.actor_inline)),
        ("target", source(mode.target_inline)),
        ("grants", source(mode.grants_inline)),
    ];
    if !mode.ignored.is_empty() {
        m.push(("ignored_inline_fields", Doc::Arr(mode.ignored.iter().map(|f| Doc::str(f)).collect())));
    }
    Doc::Obj(m)
}

/// How an actor named by its User alone was resolved (absent for a request that named the whole tuple).
fn actor_naming_doc(naming: ActorNaming) -> Option<Doc<'static>> {
    match naming {
        ActorNaming::Tuple => None,
        ActorNaming::ByUser | ActorNaming::Unbound => Some(Doc::str("by_user: no binding")),
        ActorNaming::Resolved => Some(Doc::str("by_user: binding resolved")),
        ActorNaming::Ambiguous => Some(Doc::str("by_user: several bindings, none primary")),
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

/// What a trace holds that the decision does not (its trace id, audit summary, and the redacted copies of the
/// metadata it shows): [`trace_doc`] borrows from it.
pub struct TraceParts<'a> {
    trace_id: String,
    audit: AuditSummary<'a>,
    resource_metadata: Option<Value>,
    type_metadata: Option<Value>,
    action_metadata: Option<Value>,
    mapping_metadata: Option<Value>,
}

impl<'a> TraceParts<'a> {
    pub fn new(
        req: &'a Request,
        ctx: &Context,
        outcome: &Outcome,
        id: &DecisionId,
        audit_log_id: Option<&'a str>,
    ) -> TraceParts<'a> {
        let reg = &ctx.registry;
        TraceParts {
            trace_id: id.trace_id(),
            audit: audit_summary(req, outcome, audit_log_id),
            resource_metadata: if outcome.target_evaluated {
                ctx.target.as_ref().and_then(|t| redacted(&t.resource.metadata))
            } else {
                None
            },
            type_metadata: reg.resource_type.as_ref().and_then(|t| redacted(&t.metadata)),
            action_metadata: reg.action.as_ref().and_then(|a| redacted(&a.metadata)),
            mapping_metadata: reg.mapping.as_ref().and_then(|m| redacted(&m.metadata)),
        }
    }
}

/// The full decision-time trace: what `plystra.explain` returns and what the audit row keeps. It borrows its text
/// from the decision and from `parts` ([`TraceParts::new`] for the same decision): the extension encodes it as
/// jsonb, or prints it for the audit writer, without building a `serde_json::Value` (whose maps and copied
/// strings were about half of an explain in profiles).
pub fn trace_doc<'d>(req: &'d Request, ctx: &'d Context, outcome: &'d Outcome, parts: &'d TraceParts<'_>) -> Doc<'d> {
    let mut requested = vec![
        ("user_id", Doc::str(&req.user_id)),
        ("member_id", Doc::str(&req.member_id)),
        ("user_member_id", Doc::str(&req.user_member_id)),
        ("space_id", Doc::str(&req.space_id)),
        ("resource_type", Doc::str(&req.resource_type)),
        ("resource_id", Doc::str(&req.resource_id)),
        ("action", Doc::str(&req.action)),
    ];
    put_opt(&mut requested, "actor_naming", actor_naming_doc(req.actor_naming));
    let mut doc = vec![
        ("trace_version", Doc::str(TRACE_VERSION)),
        ("trace_id", Doc::str(&parts.trace_id)),
        ("decision", Doc::str(decision_word(outcome))),
        ("deny_code", Doc::opt_str(outcome.deny_code.map(|d| d.as_str()))),
        ("actor", actor_doc(ctx)),
        ("space", space_doc(ctx)),
        ("target", if outcome.target_evaluated { target_doc(ctx, parts) } else { Doc::Null }),
        ("resource_registry", registry_doc(ctx, parts)),
        ("matched_candidates", candidates_doc(ctx, outcome)),
        (
            "request",
            Doc::Obj(vec![
                ("request_id", Doc::opt_str(req.context.request_id.as_deref())),
                ("ip", Doc::opt_str(req.context.ip.as_deref())),
                ("user_agent", Doc::opt_str(req.context.user_agent.as_deref())),
            ]),
        ),
        ("requested", Doc::Obj(requested)),
        ("reason", Doc::str(outcome.reason)),
        ("audit", parts.audit.to_doc()),
    ];
    // Only for Context Mode, so that every Core-only trace keeps v1.0's shape.
    put_opt(&mut doc, "context_mode", ctx.context_mode.as_ref().map(context_mode_doc));
    let omitted = omitted_candidates(ctx, outcome);
    if omitted > 0 {
        // Only when the bound applies, so that every ordinary trace keeps v1.0's shape.
        doc.push(("matched_candidates_omitted", Doc::Num((omitted as u64).into())));
    }
    Doc::Obj(doc)
}

/// [`trace_doc`] as a `serde_json::Value` (the REST front's answers, replay, tests).
pub fn explain_document(
    req: &Request,
    ctx: &Context,
    outcome: &Outcome,
    id: &DecisionId,
    audit_log_id: Option<&str>,
) -> Value {
    let parts = TraceParts::new(req, ctx, outcome, id, audit_log_id);
    trace_doc(req, ctx, outcome, &parts).into_value()
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
