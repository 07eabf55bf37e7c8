//! A decision's trace drawn as an SVG picture: User → binding → Member → each candidate grant → its anchor →
//! the scope check against the target's group path. The deciding path is drawn strong (class `on`), a failed
//! step red with its deny code (class `fail`). Built with maud, so every label is escaped like any page text.

use maud::{html, Markup};
use serde_json::Value;

const BOX_W: i64 = 168;
const BOX_H: i64 = 48;
const ROW_H: i64 = 64;
const COLS: [i64; 6] = [8, 192, 376, 560, 744, 928];
const WIDTH: i64 = 1104;

/// A label cut to fit a box (by characters, never inside one); the whole text stays in the box's title.
fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

#[derive(Clone, Copy, PartialEq)]
enum Mark {
    Plain,
    On,
    Fail,
}

impl Mark {
    fn class(self) -> &'static str {
        match self {
            Mark::Plain => "node",
            Mark::On => "node on",
            Mark::Fail => "node fail",
        }
    }
}

fn node(x: i64, y: i64, title: &str, line1: &str, line2: &str, mark: Mark) -> Markup {
    html! {
        g class=(mark.class()) {
            title { (title) }
            rect x=(x) y=(y) width=(BOX_W) height=(BOX_H) rx="6" {}
            text x=(x + 8) y=(y + 19) class="k" { (fit(line1, 24)) }
            text x=(x + 8) y=(y + 38) { (fit(line2, 24)) }
        }
    }
}

fn edge(x1: i64, y1: i64, x2: i64, y2: i64, mark: Mark) -> Markup {
    let class = match mark {
        Mark::On => "edge on",
        Mark::Fail => "edge fail",
        Mark::Plain => "edge",
    };
    let mid = (x1 + x2) / 2;
    html! { path class=(class) d=(format!("M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}")) {} }
}

/// Which actor step a deny code belongs to (None: a grant, scope or registry deny).
fn actor_step(code: &str) -> Option<usize> {
    if code.starts_with("USER_MEMBER") || code.starts_with("ACTOR_BINDING") {
        Some(1)
    } else if code.starts_with("MEMBER_") {
        Some(2)
    } else if code.starts_with("USER_") || code.starts_with("ACTOR_") {
        Some(0)
    } else if code.starts_with("SPACE_") || code == "CROSS_SPACE_DENIED" {
        Some(2)
    } else {
        None
    }
}

/// The picture of `trace` (an explain document or an audit row's trace).
pub fn trace_picture(trace: &Value) -> Markup {
    let allow = s(trace, "/decision") == "allow";
    let deny_code = s(trace, "/deny_code");
    let failed_actor = if allow { None } else { actor_step(deny_code) };
    let candidates: Vec<&Value> =
        trace.get("matched_candidates").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default();
    let rows = candidates.len().max(1) as i64;
    let height = rows * ROW_H + 24;
    let actor_y = 12;
    let step_mark = |i: usize| match failed_actor {
        Some(f) if f == i => Mark::Fail,
        Some(f) if f < i => Mark::Plain,
        _ if allow => Mark::On,
        _ => Mark::Plain,
    };
    let user_id = s(trace, "/requested/user_id");
    let binding = s(trace, "/actor/user_member/id");
    let binding = if binding.is_empty() { s(trace, "/requested/user_member_id") } else { binding };
    let member = s(trace, "/actor/member/display_name");
    let member_id = s(trace, "/requested/member_id");
    let target_path = s(trace, "/target/group/path");
    let target = format!("{}:{}", s(trace, "/requested/resource_type"), s(trace, "/requested/resource_id"));
    let code_or = |mark: Mark, fallback: &str| {
        if mark == Mark::Fail {
            deny_code.to_string()
        } else {
            fallback.to_string()
        }
    };
    let (m0, m1, m2) = (step_mark(0), step_mark(1), step_mark(2));
    let cy = actor_y + BOX_H / 2;
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="trace" role="img" viewBox=(format!("0 0 {WIDTH} {height}"))
            aria-label=(format!("Decision trace: {} {}", if allow { "allow" } else { "deny" }, deny_code)) {
            (node(COLS[0], actor_y, &format!("User {user_id} ({})", s(trace, "/actor/user/status")), "User",
                  &code_or(m0, user_id), m0))
            (edge(COLS[0] + BOX_W, cy, COLS[1], cy, m1))
            (node(COLS[1], actor_y, &format!("Binding {binding} ({})", s(trace, "/actor/user_member/status")), "Binding",
                  &code_or(m1, binding), m1))
            (edge(COLS[1] + BOX_W, cy, COLS[2], cy, m2))
            (node(COLS[2], actor_y, &format!("Member {member_id}: {member}"), "Member",
                  &code_or(m2, if member.is_empty() { member_id } else { member }), m2))
            @if candidates.is_empty() {
                @let mark = if failed_actor.is_none() && !allow { Mark::Fail } else { Mark::Plain };
                (edge(COLS[2] + BOX_W, cy, COLS[3], cy, mark))
                (node(COLS[3], actor_y, "No candidate grant was evaluated", "No grant",
                      if failed_actor.is_none() && !allow { deny_code } else { "not reached" }, mark))
            }
            @for (i, c) in candidates.iter().enumerate() {
                @let y = actor_y + i as i64 * ROW_H;
                @let row_y = y + BOX_H / 2;
                @let covered = c.pointer("/scope_check/covered").and_then(Value::as_bool).unwrap_or(false);
                @let code = s(c, "/scope_check/deny_code");
                @let mark = if covered && allow { Mark::On } else if !code.is_empty() { Mark::Fail } else { Mark::Plain };
                @let grant = format!("{} · {}:{}", s(c, "/role/key"), s(c, "/permission/resource"), s(c, "/permission/action"));
                @let scope = s(c, "/permission/scope");
                @let anchor = s(c, "/scope_anchor/path");
                (edge(COLS[2] + BOX_W, cy, COLS[3], row_y, mark))
                (node(COLS[3], y, &format!("Grant {} (MemberRole {}): {grant}, scope {scope}", s(c, "/permission/id"), s(c, "/member_role_id")),
                      &grant, &format!("scope {scope}"), mark))
                (edge(COLS[3] + BOX_W, row_y, COLS[4], row_y, mark))
                (node(COLS[4], y, &format!("Anchor group {} ({})", anchor, s(c, "/scope_anchor/id")), "Anchor",
                      if anchor.is_empty() { "(none)" } else { anchor }, mark))
                (edge(COLS[4] + BOX_W, row_y, COLS[5], row_y, mark))
                (node(COLS[5], y, &format!("{} — target {target} at {target_path}", s(c, "/scope_check/reason")),
                      if covered { "covers target" } else { "does not cover" },
                      if code.is_empty() { target_path } else { code }, mark))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_are_escaped_and_cut_by_characters() {
        let trace = json!({
            "decision": "deny", "deny_code": "USER_MEMBER_REVOKED",
            "requested": {"user_id": "<script>alert(1)</script>", "resource_type": "invoice", "resource_id": "x"},
            "actor": {"member": {"display_name": "\"><img src=x onerror=alert(1)>"}, "user_member": {"id": "um"}},
        });
        let svg = trace_picture(&trace).into_string();
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(!svg.contains("<img"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.contains("node fail"), "the revoked binding is marked");
        assert_eq!(fit("אבגדהוזחטיכלמנסעפצקרשת", 5), "אבגד…");
    }

    #[test]
    fn an_allow_highlights_the_covering_grant() {
        let trace = json!({
            "decision": "allow",
            "requested": {"user_id": "u"},
            "matched_candidates": [
                {"role": {"key": "approver"}, "permission": {"resource": "invoice", "action": "approve", "scope": "group_tree"},
                 "scope_anchor": {"path": "finance"}, "scope_check": {"covered": true}},
                {"role": {"key": "other"}, "permission": {"resource": "invoice", "action": "approve", "scope": "self"},
                 "scope_anchor": null, "scope_check": {"covered": false, "deny_code": "SCOPE_OUT_OF_BOUNDS"}}
            ]
        });
        let svg = trace_picture(&trace).into_string();
        assert!(svg.contains("node on"));
        assert!(svg.contains("SCOPE_OUT_OF_BOUNDS"));
    }
}
