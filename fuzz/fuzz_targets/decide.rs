//! Byte-driven decision contexts: deciding, explaining and reaching never panic, and the answers hold together:
//! allow has no deny code, an allow needs a usable actor, and the explain document names the same decision.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plystra_core::model::*;
use plystra_core::reach::reach;
use plystra_core::trace::{explain_document, DecisionId};
use plystra_core::decide;
use plystra_core::decide::actor_usable;

struct Bytes<'a>(&'a [u8], usize);

impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        let b = self.0.get(self.1).copied().unwrap_or(0);
        self.1 += 1;
        b
    }
    fn pick<'s>(&mut self, options: &[&'s str]) -> &'s str {
        options[self.next() as usize % options.len()]
    }
    fn flag(&mut self) -> bool {
        self.next() % 4 != 0
    }
}

const SPACES: &[&str] = &["s0", "s0", "s0", "s1"];
const PATHS: &[&str] = &["fin", "fin.a", "fin_ops", "finx.a", "fin.a.b", "legal", "fin_ops.x", "a.b.c.d.e.f.g.h"];
const STATUSES: &[&str] = &["active", "active", "active", "disabled", "revoked", ""];
const SCOPES: &[&str] = &["self", "group", "group_tree", "space", "global", "", "group_tree ", "GROUP"];

fn group(b: &mut Bytes<'_>) -> Group {
    let path = b.pick(PATHS);
    Group { id: format!("g_{path}"), space_id: b.pick(SPACES).into(), path: path.into(), status: b.pick(STATUSES).into() }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data, 0);
    let req = Request {
        user_id: "u".into(), member_id: "m".into(), user_member_id: "um".into(), space_id: "s0".into(),
        resource_type: "doc".into(), resource_id: "r".into(), action: "read".into(), context: RequestContext::default(),
        ..Request::default()
    };
    let actor = Actor {
        user: b.flag().then(|| User { id: "u".into(), email: "e".into(), status: b.pick(STATUSES).into() }),
        member: b.flag().then(|| Member { id: "m".into(), space_id: b.pick(SPACES).into(), display_name: String::new(), status: b.pick(STATUSES).into() }),
        user_member: b.flag().then(|| UserMember {
            id: "um".into(), user_id: b.pick(&["u", "u", "x"]).into(), member_id: b.pick(&["m", "m", "x"]).into(),
            space_id: b.pick(SPACES).into(), relation_type: String::new(), status: b.pick(STATUSES).into(), is_primary: false,
            expires_at: (b.next() % 5 == 0).then(|| Timestamp { unix_micros: i64::from(b.next()) - 128, rfc3339: String::new() }),
        }),
        space: b.flag().then(|| Space { id: "s0".into(), name: String::new(), status: b.pick(STATUSES).into() }),
    };
    let target = b.flag().then(|| {
        let g = b.flag().then(|| group(&mut b));
        Target {
            resource: Resource {
                id: "r".into(), external_id: None, resource_type: "doc".into(), space_id: b.pick(SPACES).into(),
                group_id: g.as_ref().map(|g| g.id.clone()), owner_member_id: b.flag().then(|| b.pick(&["m", "x"]).to_string()),
                display_name: None, visibility: None, status: None, metadata: None,
            },
            group: g,
        }
    });
    let n = b.next() % 6;
    let candidates = (0..n)
        .map(|i| Candidate {
            member_role_id: format!("mr{i}"),
            role: Role { id: format!("r{i}"), key: format!("k{}", b.next() % 3), space_id: b.pick(SPACES).into() },
            permission: Permission { id: format!("p{i}"), resource: "doc".into(), action: "read".into(), scope: b.pick(SCOPES).into() },
            scope_anchor: b.flag().then(|| group(&mut b)),
            member_role_space_id: b.pick(SPACES).into(),
        })
        .collect();
    let registry = Registry {
        resource_type: b.flag().then(|| ResourceType { id: "rt".into(), key: "doc".into(), display_name: String::new(),
            description: None, status: "active".into(), source: "core".into(), metadata: None }),
        action: b.flag().then(|| ResourceAction { id: "ra".into(), resource_type_id: "rt".into(), key: "read".into(),
            display_name: String::new(), description: None, risk_level: "low".into(), audit_default: true, metadata: None }),
        mapping: None,
    };
    let ctx = Context { actor: actor.into(), registry, target, candidates, now_micros: 0, context_mode: None };

    let out = decide(&req, &ctx);
    assert_eq!(out.allow, out.deny_code.is_none());
    if out.allow {
        assert!(actor_usable(&req, &ctx.actor, ctx.now_micros));
    }
    let doc = explain_document(&req, &ctx, &out, &DecisionId::from_hex("0123456789abcdef".into()), None);
    assert_eq!(doc["decision"] == "allow", out.allow);
    assert_eq!(doc["deny_code"].as_str(), out.deny_code.map(|c| c.as_str()));
    if reach(&req, &ctx).is_some() {
        assert!(actor_usable(&req, &ctx.actor, ctx.now_micros));
    }
});
