//! Reading rows by direct index probes: a btree descent and a heap fetch, with no executor in between.
//!
//! A decision reads a dozen rows, each by a key. Through SPI every read paid for executor start-up (and the one
//! wide statement that replaced a dozen reads paid for a 12-way join plan, chosen generically and once per
//! backend, so one tenant's skewed data could degrade every other tenant's decisions). A probe pays only for the
//! lookup itself and cannot pick a bad plan: there is no plan.
//!
//! Visibility is exactly SPI's (so a decision sees what it saw when it read through SPI): while the transaction
//! has written nothing, the active snapshot (the statement's); once it has written, the command counter is
//! advanced and the transaction snapshot is used (a fresh one per decision in READ COMMITTED, the transaction's in
//! REPEATABLE READ), pushed for the duration of the reading. MVCC, savepoints, hot standby and a concurrent
//! uncommitted write behave as for any scan, because this is the scan the executor itself would run.
//!
//! Tables and indexes are found by name in the `plystra` schema on each use (syscache lookups), and columns by
//! name in the open relation's descriptor: nothing is kept across calls, so DROP/CREATE EXTENSION, an upgrade or
//! a restore cannot leave a stale object id behind. Relations are opened with AccessShareLock and closed keeping
//! the lock until the end of the transaction, as the executor does. Table privileges are not checked (the
//! executor would check them for the function's owner, the extension's owner, who holds them all).

use std::ffi::CStr;

use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::FromDatum;

/// The reading of one decision: the schema and the snapshot every probe uses.
pub struct Reader {
    namespace: Oid,
    snapshot: pg_sys::Snapshot,
    pushed: bool,
}

impl Reader {
    /// Starts reading with the visibility described in the module comment.
    pub fn begin() -> Reader {
        // SAFETY: backend-local calls made inside a function call, where a transaction is in progress.
        unsafe {
            let namespace = pg_sys::get_namespace_oid(c"plystra".as_ptr(), false);
            let wrote = pg_sys::GetCurrentTransactionIdIfAny() != pg_sys::InvalidTransactionId;
            if !wrote && pg_sys::ActiveSnapshotSet() {
                return Reader { namespace, snapshot: pg_sys::GetActiveSnapshot(), pushed: false };
            }
            if wrote {
                pg_sys::CommandCounterIncrement();
            }
            pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
            if wrote {
                pg_sys::UpdateActiveSnapshotCommandId();
            }
            Reader { namespace, snapshot: pg_sys::GetActiveSnapshot(), pushed: true }
        }
    }

    fn relation_id(&self, name: &CStr) -> Oid {
        // SAFETY: a syscache lookup by name.
        let oid = unsafe { pg_sys::get_relname_relid(name.as_ptr(), self.namespace) };
        if oid == pg_sys::InvalidOid {
            pgrx::error!("plystra: relation plystra.{} is missing; reinstall the extension", name.to_string_lossy());
        }
        oid
    }

    /// Every visible row of `table` whose leading index columns of `index` equal `keys` (text), in index order,
    /// handed to `each` until it returns false.
    pub fn probe(&self, table: &CStr, index: &CStr, keys: &[&str], mut each: impl FnMut(&Row) -> bool) {
        let table_id = self.relation_id(table);
        let index_id = self.relation_id(index);
        // SAFETY: the relations are opened, scanned and closed here in the documented order; the scan keys and
        // the slot live until the scan ends; the snapshot stays valid for the Reader's life (active or pushed).
        unsafe {
            let heap = pg_sys::table_open(table_id, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            let index = pg_sys::index_open(index_id, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            if (*(*index).rd_index).indrelid != table_id {
                pgrx::error!("plystra: index {} is not on {}", index_id.to_u32(), table_id.to_u32());
            }
            let mut scan_keys: Vec<pg_sys::ScanKeyData> = Vec::with_capacity(keys.len());
            for (i, key) in keys.iter().enumerate() {
                let text = pg_sys::cstring_to_text_with_len(key.as_ptr().cast(), key.len() as i32);
                let mut entry = std::mem::zeroed::<pg_sys::ScanKeyData>();
                pg_sys::ScanKeyInit(
                    &mut entry,
                    (i + 1) as pg_sys::AttrNumber,
                    pg_sys::BTEqualStrategyNumber as pg_sys::StrategyNumber,
                    Oid::from(pg_sys::F_TEXTEQ),
                    Datum::from(text),
                );
                // The btree compares under the index column's collation; a key under another collation (the
                // default here is "C") would descend by a different order and miss rows.
                entry.sk_collation = *(*index).rd_indcollation.add(i);
                scan_keys.push(entry);
            }
            let slot = pg_sys::table_slot_create(heap, std::ptr::null_mut());
            let scan = pg_sys::index_beginscan(heap, index, self.snapshot, keys.len() as i32, 0);
            pg_sys::index_rescan(scan, scan_keys.as_mut_ptr(), keys.len() as i32, std::ptr::null_mut(), 0);
            let row = Row { slot, descriptor: (*heap).rd_att };
            while pg_sys::index_getnext_slot(scan, pg_sys::ScanDirection::ForwardScanDirection, slot) {
                if !each(&row) {
                    break;
                }
            }
            pg_sys::index_endscan(scan);
            pg_sys::ExecDropSingleTupleTableSlot(slot);
            pg_sys::index_close(index, pg_sys::NoLock as pg_sys::LOCKMODE);
            pg_sys::table_close(heap, pg_sys::NoLock as pg_sys::LOCKMODE);
        }
    }

    /// The first visible row of `table` by `keys` on `index` (a unique index: the only one), read by `read`.
    pub fn one<T>(&self, table: &CStr, index: &CStr, keys: &[&str], read: impl FnOnce(&Row) -> Option<T>) -> Option<T> {
        let mut read = Some(read);
        let mut found = None;
        self.probe(table, index, keys, |row| {
            found = read.take().and_then(|read| read(row));
            false
        });
        found
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        if self.pushed {
            // SAFETY: pops the snapshot `begin` pushed; nothing pushed in between outlives its own scope.
            unsafe { pg_sys::PopActiveSnapshot() };
        }
    }
}

/// The current row of a probe; columns are found by name.
pub struct Row {
    slot: *mut pg_sys::TupleTableSlot,
    descriptor: pg_sys::TupleDesc,
}

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const POSTGRES_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

impl Row {
    fn datum(&self, column: &str) -> Option<Datum> {
        // SAFETY: the descriptor belongs to the open relation; attribute numbers come from it, and the slot holds
        // a tuple of that relation while the probe's callback runs.
        unsafe {
            let descriptor = &*self.descriptor;
            let attributes = descriptor.attrs.as_slice(descriptor.natts as usize);
            let position = attributes
                .iter()
                .position(|a| {
                    !a.attisdropped && CStr::from_ptr(a.attname.data.as_ptr()).to_bytes() == column.as_bytes()
                })
                .unwrap_or_else(|| pgrx::error!("plystra: column {column} is missing; reinstall the extension"));
            let mut is_null = false;
            let datum = pg_sys::slot_getattr(self.slot, (position + 1) as i32, &mut is_null);
            (!is_null).then_some(datum)
        }
    }

    pub fn is_null(&self, column: &str) -> bool {
        self.datum(column).is_none()
    }

    pub fn text(&self, column: &str) -> Option<String> {
        // SAFETY: the column is text (the schema's), and the datum is not null.
        self.datum(column).and_then(|d| unsafe { String::from_datum(d, false) })
    }

    pub fn text_or_empty(&self, column: &str) -> String {
        self.text(column).unwrap_or_default()
    }

    pub fn boolean(&self, column: &str) -> bool {
        self.datum(column).is_some_and(|d| d.value() != 0)
    }

    /// A timestamptz as microseconds since the Unix epoch (saturating at ±infinity).
    pub fn unix_micros(&self, column: &str) -> Option<i64> {
        self.datum(column).map(|d| (d.value() as i64).saturating_add(POSTGRES_EPOCH_UNIX_MICROS))
    }

    /// A jsonb column as its text.
    pub fn jsonb_text(&self, column: &str) -> Option<String> {
        self.datum(column).map(|d| {
            // SAFETY: jsonb's output function on a jsonb datum returns a palloc'd C string.
            unsafe {
                let text = pg_sys::OidOutputFunctionCall(Oid::from(pg_sys::F_JSONB_OUT), d);
                CStr::from_ptr(text).to_string_lossy().into_owned()
            }
        })
    }
}

/// The statement's start time (`statement_timestamp()`), in microseconds since the Unix epoch.
pub fn statement_unix_micros() -> i64 {
    // SAFETY: reads backend-local transaction state.
    unsafe { pg_sys::GetCurrentStatementStartTimestamp() }.saturating_add(POSTGRES_EPOCH_UNIX_MICROS)
}
