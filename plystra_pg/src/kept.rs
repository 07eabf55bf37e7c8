//! Statements planned once per backend and kept (`SPI_keepplan`). Every query the extension reads with per
//! call goes through here (the audit insert keeps its own, as it writes): parsing and planning a query string on each call showed in profiles of the REST front's
//! hot path (`SPI_execute_with_args`). PostgreSQL's plan cache re-plans a kept statement when the tables it
//! reads change shape, so a kept plan is never stale. All the queries name their tables with the schema.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use pgrx::datum::DatumWithOid;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiTupleTable};
use pgrx::{PgBuiltInOids, PgOid};

thread_local! {
    // Keyed by the text's address, not its contents: hashing the 3 kB context query on every decision would
    // be work on the hot path. The texts are `'static`; should the same text sit at two addresses, it is
    // merely prepared twice.
    static KEPT: RefCell<HashMap<(usize, bool), Rc<OwnedPreparedStatement>>> = RefCell::new(HashMap::new());
}

pub const TEXT: PgOid = PgOid::BuiltIn(PgBuiltInOids::TEXTOID);
pub const TEXT_ARRAY: PgOid = PgOid::BuiltIn(PgBuiltInOids::TEXTARRAYOID);
pub const BOOL: PgOid = PgOid::BuiltIn(PgBuiltInOids::BOOLOID);

/// The kept statement for `sql` with parameter `types`, prepared on first use in this backend: `writing` selects the
/// variant SPI runs read-write (see [`select`]).
fn statement(client: &SpiClient<'_>, sql: &'static str, types: &[PgOid], writing: bool) -> Rc<OwnedPreparedStatement> {
    let key = (sql.as_ptr() as usize, writing);
    if let Some(kept) = KEPT.with(|k| k.borrow().get(&key).cloned()) {
        return kept;
    }
    // Prepared outside any borrow of the map: planning may run code that asks for another kept statement.
    let prepared = if writing { client.prepare_mut(sql, types) } else { client.prepare(sql, types) };
    let prepared = Rc::new(prepared.expect("plystra: a kept statement must prepare").keep());
    KEPT.with(|k| k.borrow_mut().insert(key, prepared.clone()));
    prepared
}

/// Runs the kept statement for `sql` (at most `limit` rows) and hands its rows to `read`.
///
/// It reads what a decision reads (`probe::Reader::begin`): in a transaction that has written (its top level has a
/// transaction id), SPI's read-write mode, which advances the command counter and takes the transaction's snapshot
/// again, so the transaction's own writes and, in READ COMMITTED, what others committed since the statement began
/// are seen; otherwise the statement's snapshot. pgrx alone chooses by the current subtransaction's id, so inside
/// a savepoint or an EXCEPTION block that had not written, in a transaction that had, these reads took the
/// statement's older snapshot while the decision's probes took a fresh one (found by an attack: a group deactivated
/// by another session during the statement was still in `reachable_group_ids` while `allowed_row` denied it). A
/// statement prepared as mutating never runs read-only; it writes nothing here (every kept statement is a SELECT).
pub fn select<R>(
    client: &SpiClient<'_>,
    sql: &'static str,
    types: &[PgOid],
    limit: Option<i64>,
    args: &[DatumWithOid<'_>],
    read: impl FnOnce(SpiTupleTable<'_>) -> R,
) -> R {
    let stmt = statement(client, sql, types, crate::probe::transaction_has_written());
    read(client.select(&*stmt, limit, args).expect("plystra: a kept statement must run"))
}

/// Runs `f` (kept statements) under generic plans: `plan_cache_mode = force_generic_plan` for its duration only
/// (restored when it returns; an error restores it with the (sub)transaction's abort, and so does the GUC level of
/// a calling SQL function that pins its search_path). For a statement whose custom plans PostgreSQL estimates so
/// much cheaper than its generic one that it never switches: it is then planned again on every execution (the
/// reachable groups' statement: 0 generic and 10 custom plans in `pg_prepared_statements` after 10 executions).
pub fn generic_plans<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: a GUC nest level set and popped in this backend, as a function's SET clause does.
    let level = unsafe {
        let level = pgrx::pg_sys::NewGUCNestLevel();
        pgrx::pg_sys::set_config_option(
            c"plan_cache_mode".as_ptr(),
            c"force_generic_plan".as_ptr(),
            pgrx::pg_sys::GucContext::PGC_USERSET,
            pgrx::pg_sys::GucSource::PGC_S_SESSION,
            pgrx::pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        level
    };
    let answer = f();
    // SAFETY: pops the level pushed above, in the same backend, as the end of a function with a SET clause does.
    unsafe { pgrx::pg_sys::AtEOXact_GUC(true, level) };
    answer
}
