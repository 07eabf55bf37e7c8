//! Replay: an audited decision asked again against today's data. The audit row keeps the decision-time trace
//! (`trace::explain_document`); from it this module rebuilds the request as it was asked, and compares that trace
//! with today's to say what changed between the two: the actor's User, binding, Member and Space, the target and
//! its group, the Resource Registry entries, and each candidate grant (added, removed, or changed: its anchor or
//! its scope check). Pure functions over JSON, so that the comparison is tested without a database.

use serde_json::{json, Map, Value};

use crate::request::RequestError;

/// Why an audit row cannot be replayed (the extension raises it as SQLSTATE 22023).
fn refused(problem: &str) -> RequestError {
    RequestError { field: "audit_log_id".into(), problem: problem.into() }
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The request a decision's trace records, as a `plystra.check` request document: the actor as it acted (the
/// binding the decision resolved, or the User alone when none was resolved), the target (registered: by type and
/// id; described inline: the description the trace kept), and the action. A management or login row (no
/// `requested` object) and a decision whose actor or grants came inline (the caller's own facts, which today's
/// data does not hold) are refused.
pub fn request_from_trace(trace: &Value) -> Result<Value, RequestError> {
    let requested = trace
        .get("requested")
        .filter(|r| r.is_object())
        .ok_or_else(|| refused("names an audit row that is not an authorization decision (nothing to replay)"))?;
    if let Some(mode) = trace.get("context_mode") {
        if text(mode, "actor") == Some("inline") || text(mode, "grants") == Some("inline") {
            return Err(refused(
                "names a decision whose actor or grants came inline from an API key; today's data does not hold them",
            ));
        }
    }
    let mut actor = Map::new();
    for key in ["user_id", "member_id", "user_member_id", "space_id"] {
        if let Some(v) = text(requested, key) {
            actor.insert(key.into(), json!(v));
        }
    }
    // An actor named by its User alone that resolved to no binding is asked again the same way: the binding
    // resolved today (if any) is today's answer.
    if text(requested, "user_member_id").is_none() {
        actor.remove("member_id");
    }
    let (Some(_), Some(action)) = (text(requested, "user_id"), text(requested, "action")) else {
        return Err(refused("names a decision whose trace records no actor or action"));
    };
    let mut doc = json!({"actor": Value::Object(actor), "action": action});
    let target_inline = trace.get("context_mode").and_then(|m| text(m, "target")) == Some("inline");
    let resource = trace.pointer("/target/resource").filter(|r| r.is_object());
    match (target_inline, resource) {
        (true, Some(r)) => {
            let mut inline = Map::new();
            for key in [
                "type",
                "id",
                "external_id",
                "space_id",
                "group_id",
                "group_path",
                "owner_member_id",
                "display_name",
                "visibility",
                "status",
            ] {
                if let Some(v) = text(r, key) {
                    inline.insert(key.into(), json!(v));
                }
            }
            if let Some(m) = r.get("metadata").filter(|m| m.is_object()) {
                inline.insert("metadata".into(), m.clone());
            }
            doc["resource"] = Value::Object(inline);
        }
        _ => {
            let (Some(rt), Some(rid)) = (text(requested, "resource_type"), text(requested, "resource_id")) else {
                return Err(refused("names a decision whose trace records no resource"));
            };
            doc["resource_type"] = json!(rt);
            doc["resource_id"] = json!(rid);
        }
    }
    Ok(doc)
}

/// One difference between two traces: `kind` (user, binding, member, space, resource, group, resource_type,
/// action, mapping, grant), its `id`, `change` (added, removed, changed) and the `then` and `now` values.
fn change(kind: &str, id: &str, then: &Value, now: &Value) -> Value {
    let what = match (then.is_null(), now.is_null()) {
        (true, false) => "added",
        (false, true) => "removed",
        _ => "changed",
    };
    json!({"kind": kind, "id": id, "change": what, "then": then, "now": now})
}

fn id_of(v: &Value) -> String {
    text(v, "id").unwrap_or_default().to_string()
}

/// Compares one entity slot of the two traces (null when absent).
fn slot(out: &mut Vec<Value>, kind: &str, then: &Value, now: &Value, pointer: &str) {
    let a = then.pointer(pointer).cloned().unwrap_or(Value::Null);
    let b = now.pointer(pointer).cloned().unwrap_or(Value::Null);
    if a != b {
        let id = if a.is_null() { id_of(&b) } else { id_of(&a) };
        out.push(change(kind, &id, &a, &b));
    }
}

/// A candidate grant's identity across two traces: the MemberRole and the permission it carries.
fn grant_key(c: &Value) -> String {
    format!(
        "{}/{}",
        text(c, "member_role_id").unwrap_or_default(),
        c.pointer("/permission/id").and_then(Value::as_str).unwrap_or_default()
    )
}

fn candidates(trace: &Value) -> Vec<&Value> {
    trace.get("matched_candidates").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default()
}

/// What changed between the decision-time trace (`then`) and today's (`now`), in a fixed order: the actor's
/// User, binding, Member and Space, the target resource and its group, the registry entries, then the grants
/// (each anchor group that moved or changed status, and each grant added, removed or whose check changed).
pub fn changes(then: &Value, now: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    slot(&mut out, "user", then, now, "/actor/user");
    slot(&mut out, "binding", then, now, "/actor/user_member");
    slot(&mut out, "member", then, now, "/actor/member");
    slot(&mut out, "space", then, now, "/actor/space");
    slot(&mut out, "resource", then, now, "/target/resource");
    slot(&mut out, "group", then, now, "/target/group");
    slot(&mut out, "resource_type", then, now, "/resource_registry/resource_type");
    slot(&mut out, "action", then, now, "/resource_registry/action");
    slot(&mut out, "mapping", then, now, "/resource_registry/mapping");
    let (before, after) = (candidates(then), candidates(now));
    let mut anchors_seen = Vec::new();
    for a in &before {
        let key = grant_key(a);
        match after.iter().find(|b| grant_key(b) == key) {
            None => out.push(change("grant", &key, a, &Value::Null)),
            Some(b) => {
                let (anchor_a, anchor_b) = (&a["scope_anchor"], &b["scope_anchor"]);
                let anchor_id = id_of(anchor_a);
                if anchor_a != anchor_b && !anchor_a.is_null() && !anchors_seen.contains(&anchor_id) {
                    anchors_seen.push(anchor_id.clone());
                    out.push(change("group", &anchor_id, anchor_a, anchor_b));
                }
                if *a != *b {
                    out.push(change("grant", &key, a, b));
                }
            }
        }
    }
    for b in &after {
        let key = grant_key(b);
        if !before.iter().any(|a| grant_key(a) == key) {
            out.push(change("grant", &key, &Value::Null, b));
        }
    }
    out
}

/// The side of a replay: the decision, its deny code and reason, and the trace.
pub fn side(trace: &Value) -> Value {
    json!({
        "decision": trace.get("decision").cloned().unwrap_or(Value::Null),
        "deny_code": trace.get("deny_code").cloned().unwrap_or(Value::Null),
        "reason": trace.get("reason").cloned().unwrap_or(Value::Null),
        "trace": trace,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(decision: &str, binding_status: &str, grants: Value) -> Value {
        json!({
            "decision": decision,
            "deny_code": if decision == "deny" { json!("USER_MEMBER_REVOKED") } else { Value::Null },
            "actor": {"user": {"id": "u"}, "user_member": {"id": "um", "status": binding_status},
                      "member": {"id": "m"}, "space": {"id": "s"}},
            "target": {"resource": {"id": "r", "type": "invoice"}, "group": {"id": "g", "path": "finance.apac"}},
            "resource_registry": {"resource_type": {"id": "rt"}, "action": {"id": "ra"}, "mapping": null},
            "matched_candidates": grants,
            "requested": {"user_id": "u", "member_id": "m", "user_member_id": "um", "space_id": "s",
                          "resource_type": "invoice", "resource_id": "r", "action": "approve"},
        })
    }

    fn grant(mr: &str, anchor_path: &str, covered: bool) -> Value {
        json!({"member_role_id": mr, "permission": {"id": "p"}, "role": {"id": "role"},
               "scope_anchor": {"id": "g_anchor", "path": anchor_path},
               "scope_check": {"covered": covered}})
    }

    #[test]
    fn an_unchanged_trace_has_no_changes() {
        let t = trace("allow", "active", json!([grant("mr1", "finance", true)]));
        assert!(changes(&t, &t).is_empty());
    }

    #[test]
    fn a_revoked_binding_is_a_changed_binding() {
        let then = trace("allow", "active", json!([grant("mr1", "finance", true)]));
        let now = trace("deny", "revoked", Value::Null);
        let c = changes(&then, &now);
        assert_eq!(c[0]["kind"], "binding");
        assert_eq!(c[0]["change"], "changed");
        assert_eq!(c[0]["now"]["status"], "revoked");
        // The grant is no longer evaluated today (the actor check failed first): removed from the trace.
        assert!(c.iter().any(|x| x["kind"] == "grant" && x["change"] == "removed" && x["id"] == "mr1/p"));
    }

    #[test]
    fn a_new_grant_and_a_moved_anchor_are_reported() {
        let then = trace("deny", "active", json!([grant("mr1", "legal", false)]));
        let now = trace("allow", "active", json!([grant("mr1", "finance", true), grant("mr2", "finance", true)]));
        let c = changes(&then, &now);
        let kinds: Vec<(&str, &str)> =
            c.iter().map(|x| (x["kind"].as_str().unwrap(), x["change"].as_str().unwrap())).collect();
        assert_eq!(kinds, vec![("group", "changed"), ("grant", "changed"), ("grant", "added")]);
        assert_eq!(c[2]["id"], "mr2/p");
    }

    #[test]
    fn the_request_is_rebuilt_from_the_trace() {
        let t = trace("allow", "active", Value::Null);
        let doc = request_from_trace(&t).unwrap();
        assert_eq!(
            doc,
            json!({"actor": {"user_id": "u", "member_id": "m", "user_member_id": "um", "space_id": "s"},
                   "action": "approve", "resource_type": "invoice", "resource_id": "r"})
        );
    }

    #[test]
    fn an_inline_target_is_asked_again_as_described() {
        let mut t = trace("allow", "active", Value::Null);
        t["context_mode"] = json!({"actor": "core", "target": "inline", "grants": "core"});
        t["target"]["resource"] = json!({"id": "doc1", "type": "doc", "space_id": "s", "group_path": "finance",
                                         "group_id": "", "metadata": {"k": 1}});
        let doc = request_from_trace(&t).unwrap();
        assert_eq!(
            doc["resource"],
            json!({"id": "doc1", "type": "doc", "space_id": "s", "group_path": "finance",
                                           "metadata": {"k": 1}})
        );
        assert!(doc.get("resource_type").is_none());
    }

    #[test]
    fn rows_that_are_not_replayable_are_refused() {
        assert!(request_from_trace(&json!({"action": "user.created"})).is_err());
        let mut t = trace("allow", "active", Value::Null);
        t["context_mode"] = json!({"actor": "inline", "target": "inline", "grants": "inline"});
        assert!(request_from_trace(&t).is_err());
    }

    #[test]
    fn an_unresolved_actor_is_asked_by_its_user_again() {
        let mut t = trace("deny", "active", Value::Null);
        t["requested"]["user_member_id"] = json!("");
        t["requested"]["member_id"] = json!("");
        let doc = request_from_trace(&t).unwrap();
        assert_eq!(doc["actor"], json!({"user_id": "u", "space_id": "s"}));
    }
}
