//! The test oracle of `loader`: the same context, loaded by one SQL statement through SPI (the loader of
//! extension 1.2.0). `loader` reads by index probes; a pg_test loads every request of a varied dataset both ways
//! and requires equal contexts, so the two readings of "which rows count" cannot drift apart.

use pgrx::spi::{SpiClient, SpiHeapTupleData};
use plystra_core::model::Timestamp;
use plystra_core::model::*;
use serde_json::Value;

use crate::kept;

/// Columns by ordinal (1-based), grouped as in the query.
const LOAD_CONTEXT_SQL: &str = r#"
SELECT
    (extract(epoch FROM statement_timestamp()) * 1000000)::int8,
    u.id, u.email, u.status,
    m.id, m.space_id, m.display_name, m.status,
    um.id, um.user_id, um.member_id, um.space_id, um.relation_type, um.status, um.is_primary,
    (extract(epoch FROM um.expires_at) * 1000000)::int8,
    to_char(um.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    s.id, s.name, s.status,
    rt.id, rt.key, rt.display_name, rt.description, rt.status, rt.source, rt.metadata::text,
    ra.id, ra.resource_type_id, ra.key, ra.display_name, ra.description, ra.risk_level, ra.audit_default, ra.metadata::text,
    rm.id, rm.resource_type_id, rm.storage_kind, rm.table_name, rm.id_field, rm.space_field, rm.group_field,
    rm.owner_member_field, rm.visibility_field, rm.metadata_field, rm.status, rm.metadata::text,
    r.id, r.external_id, r.resource_type, r.space_id, r.group_id, r.owner_member_id, r.display_name, r.visibility,
    r.status, r.metadata::text,
    g.id, g.space_id, g.path, g.status,
    c.member_role_id, c.role_id, c.role_key, c.role_space_id, c.permission_id, c.resource, c.action, c.scope,
    c.member_role_space_id, c.anchor_id, c.anchor_space_id, c.anchor_path, c.anchor_status
FROM (VALUES (1)) AS one (x)
LEFT JOIN plystra.users u ON u.id = $1 AND u.deleted_at IS NULL
LEFT JOIN plystra.members m ON m.id = $2 AND m.deleted_at IS NULL
LEFT JOIN plystra.user_members um ON um.id = $3 AND um.deleted_at IS NULL
LEFT JOIN plystra.spaces s ON s.id = $4 AND s.deleted_at IS NULL
LEFT JOIN plystra.resource_types rt ON rt.key = $5
LEFT JOIN plystra.resource_actions ra ON ra.resource_type_id = rt.id AND ra.key = $7
LEFT JOIN plystra.resource_mappings rm ON rm.resource_type_id = rt.id
-- Only live rows place and scope a decision: an archived resource is not found, a deleted or inactive target
-- group is missing (TARGET_GROUP_MISSING), a deleted or inactive anchor confers nothing (SCOPE_ANCHOR_MISSING).
LEFT JOIN plystra.resources r ON r.id = $6 AND r.resource_type = $5 AND r.deleted_at IS NULL AND r.status = 'active'
LEFT JOIN plystra.groups g ON g.id = r.group_id AND g.deleted_at IS NULL AND g.status = 'active'
LEFT JOIN LATERAL (
    -- Candidate grants: only active, not-deleted MemberRoles, Roles, RolePermissions and Permissions count.
    SELECT mr.id AS member_role_id, ro.id AS role_id, ro.key AS role_key, ro.space_id AS role_space_id,
           p.id AS permission_id, p.resource, p.action, p.scope, mr.space_id AS member_role_space_id,
           ag.id AS anchor_id, ag.space_id AS anchor_space_id, ag.path AS anchor_path, ag.status AS anchor_status
    FROM plystra.member_roles mr
    JOIN plystra.roles ro ON ro.id = mr.role_id AND ro.status = 'active' AND ro.deleted_at IS NULL
    JOIN plystra.role_permissions rp ON rp.role_id = ro.id AND rp.deleted_at IS NULL
    JOIN plystra.permissions p ON p.id = rp.permission_id AND p.status = 'active' AND p.deleted_at IS NULL
                               AND p.resource = $5 AND p.action = $7
    LEFT JOIN plystra.groups ag ON ag.id = mr.scope_anchor_group_id AND ag.deleted_at IS NULL AND ag.status = 'active'
    WHERE mr.member_id = $2 AND mr.status = 'active' AND mr.deleted_at IS NULL
) c ON true
ORDER BY c.role_key, c.resource, c.action, c.scope, c.member_role_id
"#;

fn text(row: &SpiHeapTupleData<'_>, ordinal: usize) -> Option<String> {
    row.get::<String>(ordinal).expect("plystra loader: column type is text")
}

fn text_or_empty(row: &SpiHeapTupleData<'_>, ordinal: usize) -> String {
    text(row, ordinal).unwrap_or_default()
}

/// Metadata, read as text: a value nested deeper than serde reads (PostgreSQL allows far more) is shown as a
/// note in the trace instead of failing the decision.
fn json(row: &SpiHeapTupleData<'_>, ordinal: usize) -> Option<Value> {
    let text = text(row, ordinal)?;
    Some(serde_json::from_str(&text).unwrap_or_else(|_| Value::from("(metadata too deeply nested to show)")))
}

fn int8(row: &SpiHeapTupleData<'_>, ordinal: usize) -> Option<i64> {
    row.get::<i64>(ordinal).expect("plystra loader: column type is int8")
}

fn boolean(row: &SpiHeapTupleData<'_>, ordinal: usize) -> bool {
    row.get::<bool>(ordinal).expect("plystra loader: column type is boolean").unwrap_or(false)
}

fn fixed_parts(row: &SpiHeapTupleData<'_>, with_metadata: bool) -> Context {
    // Metadata only feeds the trace: a decision that builds none (audit off, no explain) never parses it.
    let json = |row: &SpiHeapTupleData<'_>, n| if with_metadata { json(row, n) } else { None };
    let user = text(row, 2).map(|id| User { id, email: text_or_empty(row, 3), status: text_or_empty(row, 4) });
    let member = text(row, 5).map(|id| Member {
        id,
        space_id: text_or_empty(row, 6),
        display_name: text_or_empty(row, 7),
        status: text_or_empty(row, 8),
    });
    let user_member = text(row, 9).map(|id| UserMember {
        id,
        user_id: text_or_empty(row, 10),
        member_id: text_or_empty(row, 11),
        space_id: text_or_empty(row, 12),
        relation_type: text_or_empty(row, 13),
        status: text_or_empty(row, 14),
        is_primary: boolean(row, 15),
        expires_at: int8(row, 16).map(|unix_micros| Timestamp { unix_micros, rfc3339: text_or_empty(row, 17) }),
    });
    let space = text(row, 18).map(|id| Space { id, name: text_or_empty(row, 19), status: text_or_empty(row, 20) });
    let resource_type = text(row, 21).map(|id| ResourceType {
        id,
        key: text_or_empty(row, 22),
        display_name: text_or_empty(row, 23),
        description: text(row, 24),
        status: text_or_empty(row, 25),
        source: text_or_empty(row, 26),
        metadata: json(row, 27),
    });
    let action = text(row, 28).map(|id| ResourceAction {
        id,
        resource_type_id: text_or_empty(row, 29),
        key: text_or_empty(row, 30),
        display_name: text_or_empty(row, 31),
        description: text(row, 32),
        risk_level: text_or_empty(row, 33),
        audit_default: boolean(row, 34),
        metadata: json(row, 35),
    });
    let mapping = text(row, 36).map(|id| ResourceMapping {
        id,
        resource_type_id: text_or_empty(row, 37),
        storage_kind: text_or_empty(row, 38),
        table_name: text(row, 39),
        id_field: text_or_empty(row, 40),
        space_field: text_or_empty(row, 41),
        group_field: text(row, 42),
        owner_member_field: text(row, 43),
        visibility_field: text(row, 44),
        metadata_field: text(row, 45),
        status: text_or_empty(row, 46),
        metadata: json(row, 47),
    });
    let group = text(row, 58).map(|id| Group {
        id,
        space_id: text_or_empty(row, 59),
        path: text_or_empty(row, 60),
        status: text_or_empty(row, 61),
    });
    let target = text(row, 48).map(|id| Target {
        resource: Resource {
            id,
            external_id: text(row, 49),
            resource_type: text_or_empty(row, 50),
            space_id: text_or_empty(row, 51),
            group_id: text(row, 52),
            owner_member_id: text(row, 53),
            display_name: text(row, 54),
            visibility: text(row, 55),
            status: text(row, 56),
            metadata: json(row, 57),
        },
        group,
    });
    Context {
        actor: Actor { user, member, user_member, space }.into(),
        registry: Registry { resource_type, action, mapping },
        target,
        candidates: Vec::new(),
        now_micros: int8(row, 1).unwrap_or_default(),
        context_mode: None,
    }
}

fn candidate(row: &SpiHeapTupleData<'_>) -> Option<Candidate> {
    let member_role_id = text(row, 62)?;
    Some(Candidate {
        member_role_id,
        role: Role { id: text_or_empty(row, 63), key: text_or_empty(row, 64), space_id: text_or_empty(row, 65) },
        permission: Permission {
            id: text_or_empty(row, 66),
            resource: text_or_empty(row, 67),
            action: text_or_empty(row, 68),
            scope: text_or_empty(row, 69),
        },
        member_role_space_id: text_or_empty(row, 70),
        scope_anchor: text(row, 71).map(|id| Group {
            id,
            space_id: text_or_empty(row, 72),
            path: text_or_empty(row, 73),
            status: text_or_empty(row, 74),
        }),
    })
}

/// Loads everything `req` needs, in one round trip through SPI.
/// `with_metadata`: whether the metadata of the target and registry entries is read (only traces show it).
pub fn load_context_by_sql(client: &SpiClient<'_>, req: &Request, with_metadata: bool) -> Context {
    let args = [
        req.user_id.as_str().into(),
        req.member_id.as_str().into(),
        req.user_member_id.as_str().into(),
        req.space_id.as_str().into(),
        req.resource_type.as_str().into(),
        req.resource_id.as_str().into(),
        req.action.as_str().into(),
    ];
    kept::select(client, LOAD_CONTEXT_SQL, &[kept::TEXT; 7], None, &args, |table| {
        let mut ctx: Option<Context> = None;
        for row in table {
            let ctx = ctx.get_or_insert_with(|| fixed_parts(&row, with_metadata));
            if let Some(c) = candidate(&row) {
                ctx.candidates.push(c);
            }
        }
        ctx.expect("plystra loader: the context query returns at least one row")
    })
}
