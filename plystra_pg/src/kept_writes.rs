//! Whether a transaction that has written may still use what the backends keep.
//!
//! Every tier of kept rows (`catalog`, `actor_kept`, `actor_shared`, `group_shared`) is sound for a snapshot that
//! shows committed rows only of the tables it keeps: each committed change to those rows moved a version row, and an
//! entry is used only under the version it was read under. A transaction's own writes move the version only at the
//! end of their statement (an AFTER STATEMENT trigger), so a decision made later in that same statement (a writable
//! CTE, a row trigger, a function called per row) would see the old version and be answered from rows the
//! transaction has already changed. Until 1.19.0 a transaction that had written anything therefore read the tables
//! for every decision: an application that inserts its own rows and then selects under the example policy loaded the
//! actor and the catalog from the tables at every statement.
//!
//! Since 1.19.0 (migration 023) every statement that writes a kept table or a version row fires, before it changes
//! any row, a BEFORE STATEMENT trigger (`plystra.tg_kept_rows_written`, ENABLE ALWAYS, so under
//! `session_replication_role = replica` too; foreign-key actions and writes from other triggers are statements of
//! their own and fire it as well) that marks the transaction in this backend by calling
//! `plystra.mark_kept_rows_written()` (this library's; the trigger is a migration's plpgsql, SECURITY DEFINER, so
//! that the migrations still apply without the library and no role needs the right to call the mark itself).
//! Nothing unmarks a transaction but its end: a caller can only mark its own transaction, which makes its decisions
//! read the tables.
//!
//! The rule: a transaction that has written but is not marked has changed no row of a kept table, so for those
//! tables its snapshot shows exactly the committed rows, as a read-only transaction's does, and the tiers' rule holds
//! for it unchanged. The mark stays until the transaction ends (a savepoint rolled back keeps it, which only costs
//! the tiers) and is cleared at commit, abort or PREPARE (`transaction_end`). It is per backend: PostgreSQL 15 runs
//! no writes in parallel workers, but a worker may decide (through a wrapper wrongly declared PARALLEL SAFE:
//! decisions themselves are parallel unsafe) while its leader is inside a statement that writes kept rows, and the
//! worker has the leader's transaction id without its mark. So a parallel worker of a transaction that has written
//! uses no tier at all (`probe::Reader::begin`). (Found by an attack: a worker's decision in the RETURNING of the
//! leader's revoke allowed, and a rolled-back grant read by a worker was shared with every backend.)
//!
//! A schema without the trigger function (a library newer than its schema, before ALTER EXTENSION UPDATE) marks
//! nothing, so there a transaction that has written uses no tier, as before. The update cannot leave a transaction
//! that wrote kept rows before the triggers existed unmarked: in another session, that transaction holds a ROW
//! EXCLUSIVE lock on the table it wrote, which the update's CREATE TRIGGER waits for, so the update commits only
//! after it has ended; in the update's own transaction, the migration's last statement (on a version table) marks
//! it. Outside the rule, as for the version triggers: a write made while the triggers are disabled or dropped, or
//! through a parent table a kept table was made to inherit from (the owner's acts; the README says to move the
//! versions by hand after one).

use std::cell::Cell;

use pgrx::pg_sys;
use pgrx::prelude::*;

thread_local! {
    /// Whether this backend's transaction has written a kept table (or a version row).
    static MARKED: Cell<bool> = const { Cell::new(false) };
}

/// The trigger function's name, looked up to know whether the schema marks writes.
const TRIGGER_FUNCTION: &std::ffi::CStr = c"tg_kept_rows_written";

/// Marks the transaction: it is about to write a table whose rows the backends keep (see the module comment).
/// Called by the trigger `plystra.tg_kept_rows_written` only (granted to no role).
#[pg_extern(volatile, parallel_unsafe)]
fn mark_kept_rows_written() {
    MARKED.set(true);
}

/// Whether this transaction has written a row of a kept table, or may have: its schema (with namespace id
/// `namespace`) has no trigger function to mark such writes.
pub(crate) fn kept_rows_written(namespace: pg_sys::Oid) -> bool {
    MARKED.get() || !schema_marks_writes(namespace)
}

/// Whether the schema has the trigger function of migration 023 (the function and its triggers are made by the same
/// script: a fresh install, or the update to 1.19.0).
fn schema_marks_writes(namespace: pg_sys::Oid) -> bool {
    // SAFETY: a syscache lookup inside a transaction; the name and the empty argument vector live for the call.
    unsafe {
        let mut name: pg_sys::NameData = std::mem::zeroed();
        pg_sys::namestrcpy(&mut name, TRIGGER_FUNCTION.as_ptr());
        let no_arguments = pg_sys::buildoidvector(std::ptr::null(), 0);
        let found = pg_sys::GetSysCacheOid(
            pg_sys::SysCacheIdentifier::PROCNAMEARGSNSP as std::ffi::c_int,
            pg_sys::Anum_pg_proc_oid as pg_sys::AttrNumber,
            pg_sys::Datum::from(&raw const name),
            pg_sys::Datum::from(no_arguments),
            pg_sys::Datum::from(namespace),
            pg_sys::Datum::from(0),
        );
        pg_sys::pfree(no_arguments.cast());
        found != pg_sys::InvalidOid
    }
}

/// Clears the mark (when the transaction ends: `transaction_end`).
pub(crate) fn forget() {
    MARKED.set(false);
}
