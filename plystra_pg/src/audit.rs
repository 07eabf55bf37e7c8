//! Writing a decision's audit row: the third step after loading and deciding. The row's `trace` is the
//! decision-time snapshot (the explain document), so later changes to roles, groups or bindings never change
//! what an old row says.

use std::cell::OnceCell;

use pgrx::spi::{OwnedPreparedStatement, SpiClient};
use pgrx::{JsonB, PgBuiltInOids, PgOid};
use plystra_core::audit_chain::AuditRecord;
use plystra_core::jsonb::Doc;
use plystra_core::model::Request;
use plystra_core::trace::audit_action;
use plystra_core::Outcome;

use crate::audit_writer::{self, Delivery};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

const INSERT_AUDIT_SQL: &str = "INSERT INTO plystra.audit_logs (id, space_id, actor_user_id, actor_member_id, \
     actor_user_member_id, action, resource_type, resource_id, decision, deny_code, trace, request_id, ip_address, \
     user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

thread_local! {
    static INSERT_AUDIT: OnceCell<OwnedPreparedStatement> = const { OnceCell::new() };
}

/// One decision's audit row: its id, request, outcome and trace.
pub struct DecisionRow<'a> {
    pub id: String,
    pub req: &'a Request,
    pub outcome: &'a Outcome,
    pub trace: Doc<'a>,
}

/// A decision's audit record for the audit writer (`plystra_core::audit_chain::AuditRecord`): its text columns
/// borrowed from the decision and its trace written once, in jsonb's binary form, here in the backend, so the
/// single writer neither parses nor encodes it.
fn record(row: &DecisionRow<'_>) -> Vec<u8> {
    let (req, outcome, ctx) = (row.req, row.outcome, &row.req.context);
    let action = audit_action(req);
    let trace = crate::jsonb::to_jsonb_bytes(&row.trace);
    let record = AuditRecord {
        id: &row.id,
        space_id: Some(&req.space_id),
        actor_user_id: Some(&req.user_id),
        actor_member_id: Some(&req.member_id),
        actor_user_member_id: Some(&req.user_member_id),
        action: &action,
        resource_type: Some(&req.resource_type),
        resource_id: Some(&req.resource_id),
        decision: if outcome.allow { "allow" } else { "deny" },
        deny_code: outcome.deny_code.map(|c| c.as_str()),
        request_id: ctx.request_id.as_deref(),
        ip_address: ctx.ip.as_deref(),
        user_agent: ctx.user_agent.as_deref(),
        trace: &trace,
    };
    // `encode` writes only records the writer reads back, so a defect fails this decision here instead of
    // stopping the writer, and every decision waiting on it, when it drains the record.
    let Some(bytes) = record.encode() else {
        ErrorReport::new(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            "plystra: this decision's audit record cannot be written",
            "plystra.check",
        )
        .set_hint("The decision was not made. Report this with the request.")
        .report(PgLogLevel::ERROR);
        unreachable!("ERROR-level reports do not return")
    };
    bytes
}

pub fn write_decision<'a>(id: &str, req: &'a Request, outcome: &'a Outcome, trace: Doc<'a>) {
    write_decisions(vec![DecisionRow { id: id.to_string(), req, outcome, trace }]);
}

/// Writes the audit rows of one or more decisions (a batch's, in item order), each its own row, as one
/// delivery to the audit writer.
pub fn write_decisions(rows: Vec<DecisionRow<'_>>) {
    if rows.is_empty() {
        return;
    }
    // Before anything is queued: a value no index of the log can hold would fail the writer's whole batch.
    for row in &rows {
        if let Err(e) = plystra_core::request::audit_row_bounds(row.req) {
            crate::error::raise_invalid_request(&e, "plystra audit");
        }
    }
    // Preferably through the audit writer: the row then survives this transaction's rollback and is durable
    // before the decision returns. Where no writer serves this database, the row is part of this transaction.
    match audit_writer::deliver_all(|| rows.iter().map(record).collect()) {
        Delivery::Committed => return,
        // Other rows' refusals pushed these rows' fate out of the queue's memory: each is in the log or was
        // refused. Only a row found there is answered.
        Delivery::Unconfirmed(lost) => {
            if all_in_log(lost.iter().map(|&at| rows[at].id.as_str())) {
                return;
            }
            audit_writer::refusal_forgotten()
        }
        Delivery::NotAvailable => {}
        // Traces are bounded (candidates, metadata), so this does not happen to a decision over data; if it
        // ever does, fail rather than write a row that the caller's rollback would erase.
        Delivery::TooLarge(bytes) => ErrorReport::new(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!("plystra: this decision's audit record is {bytes} bytes, over the audit writer's limit"),
            "plystra.check",
        )
        .set_hint("The decision was not made. Its trace should be bounded; report this with the request.")
        .report(PgLogLevel::ERROR),
    }
    // A read-only transaction (or a hot standby) cannot hold the row: refuse clearly rather than let the
    // write fail deep inside (on a standby that would be an internal error about transaction ids).
    if unsafe { pgrx::pg_sys::XactReadOnly } {
        ErrorReport::new(
            PgSqlErrorCode::ERRCODE_READ_ONLY_SQL_TRANSACTION,
            "plystra: cannot record this decision's audit row in a read-only transaction",
            "plystra.check",
        )
        .set_hint(
            "Decide on the primary in a read-write transaction, run the audit writer (shared_preload_libraries), \
             or use the set-based lookups, which write nothing.",
        )
        .report(PgLogLevel::ERROR);
    }
    pgrx::spi::Spi::connect_mut(|client| {
        for row in rows {
            insert_in_transaction(client, &row.id, row.req, row.outcome, row.trace);
        }
    });
}

/// Whether every audit row of `ids` is committed: its key row (`plystra.audit_log_keys`, written with it) under one
/// snapshot taken now, since the writer committed after this statement began.
fn all_in_log<'a>(mut ids: impl Iterator<Item = &'a str>) -> bool {
    let reader = crate::probe::Reader::latest();
    reader.has_relation(c"audit_log_keys")
        && ids.all(|id| reader.one(c"audit_log_keys", c"audit_logs_id_key", &[id], |_| Some(())).is_some())
}

fn insert_in_transaction(client: &mut SpiClient<'_>, id: &str, req: &Request, outcome: &Outcome, trace: Doc<'_>) {
    INSERT_AUDIT.with(|cell| {
        let stmt = cell.get_or_init(|| {
            let text = PgOid::BuiltIn(PgBuiltInOids::TEXTOID);
            let jsonb = PgOid::BuiltIn(PgBuiltInOids::JSONBOID);
            let mut types = [text; 14];
            types[10] = jsonb;
            client.prepare_mut(INSERT_AUDIT_SQL, &types).expect("plystra audit: the insert must prepare").keep()
        });
        let ctx = &req.context;
        let args = [
            id.into(),
            req.space_id.as_str().into(),
            req.user_id.as_str().into(),
            req.member_id.as_str().into(),
            req.user_member_id.as_str().into(),
            audit_action(req).into(),
            req.resource_type.as_str().into(),
            req.resource_id.as_str().into(),
            (if outcome.allow { "allow" } else { "deny" }).into(),
            outcome.deny_code.map(|c| c.as_str()).into(),
            JsonB(trace.into_value()).into(),
            ctx.request_id.as_deref().into(),
            ctx.ip.as_deref().into(),
            ctx.user_agent.as_deref().into(),
        ];
        client.update(stmt, None, &args).expect("plystra audit: the insert must run");
    })
}
