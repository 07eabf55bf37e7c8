//! Reading rows by direct index probes: a btree descent and a heap fetch, with no executor in between.
//!
//! A decision reads a dozen rows, each by a key. Through SPI every read paid for executor start-up (and the one
//! wide statement that replaced a dozen reads paid for a 12-way join plan, chosen generically and once per
//! backend, so one tenant's skewed data could degrade every other tenant's decisions). A probe pays only for the
//! lookup itself and cannot pick a bad plan: there is no plan.
//!
//! Visibility is exactly SPI's as pgrx runs it (so a decision sees what it saw when it read through SPI: pgrx runs
//! a statement read-only while the transaction has written nothing, read-write once it has): while the transaction
//! has written nothing, the active snapshot (the statement's); once it has written, the command counter is
//! advanced and the transaction snapshot is used (a fresh one per decision in READ COMMITTED, the transaction's in
//! REPEATABLE READ), pushed for the duration of the reading. So in READ COMMITTED a statement that makes many
//! decisions sees a change another session commits meanwhile from its next decision on once its transaction has
//! written, and from the next statement on while it has not; both are the visibility of plain SQL run the same way.
//! MVCC, savepoints, hot standby and a concurrent uncommitted write behave as for any scan, because this is the scan
//! the executor itself would run.
//!
//! Tables and indexes are found by name in the `plystra` schema. Their object ids are kept per backend, and a
//! kept id is only trusted after the relation it opens proves to be the one named (same name, same schema):
//! DROP/CREATE EXTENSION, an upgrade or a restore that gives a relation a new id is noticed at the next open,
//! which then looks the name up again. The schema itself is looked up once per decision. Within a decision, a
//! relation and its index scan are opened once and rescanned for each probe (a btree scan allocates about
//! 27 kB: allocating it per probe showed in profiles), then closed when the decision ends, keeping the
//! AccessShareLock until the end of the transaction, as the executor does. Columns are found by name in the
//! open relation's descriptor. Table privileges are not checked (the executor would check them for the
//! function's owner, the extension's owner, who holds them all).
//!
//! An index is a btree or a hash index. A hash index holds only its keys' 32-bit hash codes, so a row it finds
//! may have another key with the same code (anyone can make such a pair: the hash is public and a collision
//! takes a few hundred thousand tries); the executor rechecks the condition on such rows, and so does a probe:
//! a row is handed on only when each key column equals its key, byte for byte (text under a deterministic
//! collation, the only kind a database's default can be, is equal exactly when its bytes are).

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CStr;

use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::FromDatum;

thread_local! {
    /// The schema's id and, by relation name, the ids last seen in it.
    static KNOWN: RefCell<(Oid, HashMap<&'static CStr, Oid>)> = RefCell::new((pg_sys::InvalidOid, HashMap::new()));
}

/// An index scan kept open for the length of one decision.
struct OpenScan {
    index_name: &'static CStr,
    keys: usize,
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    scan: pg_sys::IndexScanDesc,
    slot: *mut pg_sys::TupleTableSlot,
    /// Each column read so far and its attribute number: a batch reads the same columns of a hundred rows.
    columns: RefCell<Vec<(&'static str, i32)>>,
    /// The equality strategy of the index's access method: btree's, or hash's.
    equal: pg_sys::StrategyNumber,
}

impl OpenScan {
    /// Whether the slot's row has exactly `keys` in the index's key columns (the recheck of a row a hash index
    /// found by its keys' hash codes).
    ///
    /// # Safety
    /// The slot holds a row of `heap`, found by this scan.
    unsafe fn keys_equal(&self, keys: &[&str]) -> bool {
        // SAFETY: the index is open; its first `keys` key columns are plain columns of `heap` (`scan` refuses an
        // index whose are not), numbered in its pg_index row; the slot's row is a tuple of `heap`.
        unsafe {
            let columns = (*(*self.index).rd_index).indkey.values.as_slice(keys.len());
            keys.iter().zip(columns).all(|(key, &column)| {
                let mut is_null = false;
                let datum = pg_sys::slot_getattr(self.slot, column.into(), &mut is_null);
                !is_null && text_bytes(datum) == key.as_bytes()
            })
        }
    }
}

/// The bytes of a text datum, read in place when it is stored inline (a packed or compressed value is expanded
/// into a palloc'd copy that the memory context frees).
///
/// # Safety
/// `datum` is a non-null text datum that stays valid while the bytes are used.
unsafe fn text_bytes<'a>(datum: Datum) -> &'a [u8] {
    // SAFETY: as the caller promises.
    unsafe {
        let text = pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
        std::slice::from_raw_parts(pgrx::vardata_any(text).cast::<u8>(), pgrx::varsize_any_exhdr(text))
    }
}

/// The reading of one decision: the schema, the snapshot every probe uses, and the scans opened so far.
pub struct Reader {
    namespace: Oid,
    /// Whether the transaction had written anything when the reading began.
    wrote: bool,
    /// Whether what the backends keep may be used and filled by this reading: the transaction had written nothing, or
    /// nothing of the kept tables (`kept_writes`).
    keeps: bool,
    snapshot: pg_sys::Snapshot,
    pushed: bool,
    scans: RefCell<Vec<OpenScan>>,
}

/// The `plystra` schema's id, looked up once a reading; the relation ids kept for another schema (a DROP/CREATE
/// EXTENSION) are forgotten.
///
/// # Safety
/// Inside a transaction (a catalog lookup).
unsafe fn schema() -> Oid {
    let namespace = unsafe { pg_sys::get_namespace_oid(c"plystra".as_ptr(), false) };
    KNOWN.with(|k| {
        let mut k = k.borrow_mut();
        if k.0 != namespace {
            *k = (namespace, HashMap::new());
        }
    });
    namespace
}

/// Whether the transaction has written anything: the whole transaction's id, not the current subtransaction's
/// (inside a savepoint or a plpgsql EXCEPTION block the subtransaction may have none while the transaction around it
/// has written, and the snapshot then shows those writes). A reading that begins in such a transaction advances the
/// command counter and takes a fresh snapshot ([`Reader::begin`]), so nothing kept or memoised may be taken for it.
pub(crate) fn transaction_has_written() -> bool {
    // SAFETY: reads backend-local transaction state.
    unsafe { pg_sys::GetTopTransactionIdIfAny() != pg_sys::InvalidTransactionId }
}

impl Reader {
    /// Starts reading with the visibility described in the module comment.
    pub fn begin() -> Reader {
        // SAFETY: backend-local calls made inside a function call, where a transaction is in progress.
        unsafe {
            let namespace = schema();
            let wrote = transaction_has_written();
            // A parallel worker has its leader's transaction id but not its mark (`kept_writes`: the mark lives in
            // the leader's backend), and may run while the leader is inside a statement that writes kept rows.
            let keeps =
                !wrote || (pg_sys::ParallelWorkerNumber < 0 && !crate::kept_writes::kept_rows_written(namespace));
            let scans = RefCell::new(Vec::new());
            if !wrote && pg_sys::ActiveSnapshotSet() {
                return Reader { namespace, wrote, keeps, snapshot: pg_sys::GetActiveSnapshot(), pushed: false, scans };
            }
            if wrote {
                pg_sys::CommandCounterIncrement();
            }
            pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
            if wrote {
                pg_sys::UpdateActiveSnapshotCommandId();
            }
            Reader { namespace, wrote, keeps, snapshot: pg_sys::GetActiveSnapshot(), pushed: true, scans }
        }
    }

    /// Starts reading under a snapshot taken now (`GetLatestSnapshot`): it shows what other transactions have
    /// committed since this statement began, which the statement's own snapshot does not (the audit writer's
    /// commit of a decision's row, `audit`). Nothing read through it is kept or remembered.
    pub fn latest() -> Reader {
        // SAFETY: backend-local calls inside a transaction; the snapshot is copied when pushed and popped in Drop.
        unsafe {
            let namespace = schema();
            pg_sys::PushActiveSnapshot(pg_sys::GetLatestSnapshot());
            Reader {
                namespace,
                // Counted as a writing transaction's reading, so that no cache takes or keeps anything from it.
                wrote: true,
                keeps: false,
                snapshot: pg_sys::GetActiveSnapshot(),
                pushed: true,
                scans: RefCell::new(Vec::new()),
            }
        }
    }

    /// Whether what the backends keep (the catalog, actors, groups) may be used and filled by this reading: the
    /// transaction had written nothing when it began, or nothing of the tables they keep (`kept_writes`), so its
    /// snapshot shows committed rows only of those tables.
    pub fn keeps(&self) -> bool {
        self.keeps
    }

    /// This reading's snapshot when it shows committed rows only: the transaction had written nothing, and the
    /// snapshot is an MVCC one (`same_snapshot` compares such snapshots).
    pub fn committed_only_snapshot(&self) -> Option<pg_sys::Snapshot> {
        // SAFETY: the snapshot stays valid for the Reader's life (active or pushed).
        let mvcc = unsafe { (*self.snapshot).snapshot_type == pg_sys::SnapshotType::SNAPSHOT_MVCC };
        (!self.wrote && mvcc).then_some(self.snapshot)
    }

    /// The active snapshot this reading uses, as an address, when it uses the statement's own (a transaction
    /// that has written nothing, inside a statement); `None` when it pushed a snapshot of its own.
    pub fn statement_snapshot(&self) -> Option<usize> {
        (!self.pushed).then_some(self.snapshot as usize)
    }

    /// Whether the schema holds a relation `name` (a schema not yet updated to the library's version may not).
    pub fn has_relation(&self, name: &'static CStr) -> bool {
        // SAFETY: a syscache lookup by name in the schema found at `begin`.
        unsafe { pg_sys::get_relname_relid(name.as_ptr(), self.namespace) != pg_sys::InvalidOid }
    }

    /// `preferred` when the schema has that index, else `fallback` (a schema not yet updated to the library's
    /// version, or an index dropped). An index this reading already scans is not looked up again.
    pub fn index_or(&self, preferred: &'static CStr, fallback: &'static CStr) -> &'static CStr {
        if self.scans.borrow().iter().any(|s| s.index_name == preferred) || self.has_relation(preferred) {
            preferred
        } else {
            fallback
        }
    }

    /// Opens the relation `name` of the schema with AccessShareLock, by its kept id when that id still names it.
    fn open(&self, name: &'static CStr) -> pg_sys::Relation {
        let kept = KNOWN.with(|k| k.borrow().1.get(name).copied());
        // SAFETY: try_relation_open returns null for an id that names nothing (after locking it); an opened
        // relation's catalog row is read only while it is open.
        unsafe {
            if let Some(oid) = kept {
                let rel = pg_sys::try_relation_open(oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
                if !rel.is_null() {
                    let form = &*(*rel).rd_rel;
                    if form.relnamespace == self.namespace && CStr::from_ptr(form.relname.data.as_ptr()) == name {
                        return rel;
                    }
                    pg_sys::relation_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
                }
            }
            let oid = pg_sys::get_relname_relid(name.as_ptr(), self.namespace);
            if oid == pg_sys::InvalidOid {
                pgrx::error!(
                    "plystra: relation plystra.{} is missing; reinstall the extension",
                    name.to_string_lossy()
                );
            }
            KNOWN.with(|k| k.borrow_mut().1.insert(name, oid));
            pg_sys::relation_open(oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE)
        }
    }

    /// The kept scan of `index` with `keys` keys, or a new one.
    fn scan(&self, table: &'static CStr, index_name: &'static CStr, keys: usize) -> OpenScan {
        let mut scans = self.scans.borrow_mut();
        if let Some(at) = scans.iter().position(|s| std::ptr::eq(s.index_name, index_name) && s.keys == keys) {
            return scans.swap_remove(at);
        }
        drop(scans);
        let heap = self.open(table);
        let index = self.open(index_name);
        // SAFETY: both relations are open; the slot and the scan are released in `Drop`.
        unsafe {
            // Each probed key is a plain column of the table (a hash index's rows are rechecked by those columns).
            if (*(*heap).rd_rel).relkind != pg_sys::RELKIND_RELATION as core::ffi::c_char
                || (*index).rd_index.is_null()
                || (*(*index).rd_index).indrelid != (*(*heap).rd_rel).oid
                || ((*(*index).rd_index).indnkeyatts as usize) < keys
                || (*(*index).rd_index).indkey.values.as_slice(keys).iter().any(|&column| column <= 0)
            {
                pgrx::error!(
                    "plystra: {} is not an index on {} whose first {keys} key columns are columns of the table; \
                     reinstall the extension",
                    index_name.to_string_lossy(),
                    table.to_string_lossy()
                );
            }
            let equal = match (*(*index).rd_rel).relam {
                pg_sys::BTREE_AM_OID => pg_sys::BTEqualStrategyNumber,
                pg_sys::HASH_AM_OID => pg_sys::HTEqualStrategyNumber,
                _ => pgrx::error!("plystra: {} is neither a btree nor a hash index", index_name.to_string_lossy()),
            } as pg_sys::StrategyNumber;
            let slot = pg_sys::table_slot_create(heap, std::ptr::null_mut());
            let scan = pg_sys::index_beginscan(heap, index, self.snapshot, keys as i32, 0);
            OpenScan { index_name, keys, heap, index, scan, slot, columns: RefCell::new(Vec::new()), equal }
        }
    }

    /// Every visible row of `table` whose leading index columns of `index` equal `keys` (text), in index order,
    /// handed to `each` until it returns false.
    pub fn probe(&self, table: &'static CStr, index: &'static CStr, keys: &[&str], mut each: impl FnMut(&Row) -> bool) {
        let open = self.scan(table, index, keys.len());
        // SAFETY: the scan keys live until the rescan has copied them; the slot holds a tuple of `heap` while
        // `each` runs; the snapshot stays valid for the Reader's life (active or pushed).
        unsafe {
            let mut scan_keys: Vec<pg_sys::ScanKeyData> = Vec::with_capacity(keys.len());
            for (i, key) in keys.iter().enumerate() {
                let text = pg_sys::cstring_to_text_with_len(key.as_ptr().cast(), key.len() as i32);
                let mut entry = std::mem::zeroed::<pg_sys::ScanKeyData>();
                pg_sys::ScanKeyInit(
                    &mut entry,
                    (i + 1) as pg_sys::AttrNumber,
                    open.equal,
                    Oid::from(pg_sys::F_TEXTEQ),
                    Datum::from(text),
                );
                // The btree compares under the index column's collation; a key under another collation (the
                // default here is "C") would descend by a different order and miss rows.
                entry.sk_collation = *(*open.index).rd_indcollation.add(i);
                scan_keys.push(entry);
            }
            pg_sys::index_rescan(open.scan, scan_keys.as_mut_ptr(), keys.len() as i32, std::ptr::null_mut(), 0);
            let row = Row { slot: open.slot, descriptor: (*open.heap).rd_att, columns: &open.columns };
            while pg_sys::index_getnext_slot(open.scan, pg_sys::ScanDirection::ForwardScanDirection, open.slot) {
                if (*open.scan).xs_recheck && !open.keys_equal(keys) {
                    continue;
                }
                if !each(&row) {
                    break;
                }
            }
        }
        self.scans.borrow_mut().push(open);
    }

    /// The first visible row of `table` by `keys` on `index` (a unique index: the only one), read by `read`.
    pub fn one<T>(
        &self,
        table: &'static CStr,
        index: &'static CStr,
        keys: &[&str],
        read: impl FnOnce(&Row) -> Option<T>,
    ) -> Option<T> {
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
        // While an error unwinds, the transaction is about to abort, and its resource owner releases the
        // scans' buffers, the relations and the snapshot: touching them here would only risk a second error.
        if std::thread::panicking() {
            return;
        }
        // SAFETY: each scan, slot and relation was opened by this Reader and is released once, in reverse
        // order of opening; the snapshot `begin` pushed is the top of the stack again.
        unsafe {
            for open in self.scans.get_mut().drain(..) {
                pg_sys::index_endscan(open.scan);
                pg_sys::ExecDropSingleTupleTableSlot(open.slot);
                pg_sys::index_close(open.index, pg_sys::NoLock as pg_sys::LOCKMODE);
                pg_sys::table_close(open.heap, pg_sys::NoLock as pg_sys::LOCKMODE);
            }
            if self.pushed {
                pg_sys::PopActiveSnapshot();
            }
        }
    }
}

/// The current row of a probe; columns are found by name (once per scan: the relation stays open and locked
/// while the scan is kept, so its columns cannot move).
pub struct Row<'s> {
    slot: *mut pg_sys::TupleTableSlot,
    descriptor: pg_sys::TupleDesc,
    columns: &'s RefCell<Vec<(&'static str, i32)>>,
}

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const POSTGRES_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

impl Row<'_> {
    /// The attribute number of `column`, if the relation has it (kept for the scan once found).
    fn attribute_if_any(&self, column: &'static str) -> Option<i32> {
        if let Some(&(_, number)) = self.columns.borrow().iter().find(|(name, _)| *name == column) {
            return Some(number);
        }
        // SAFETY: the descriptor belongs to the open relation.
        let position = unsafe {
            let descriptor = &*self.descriptor;
            descriptor.attrs.as_slice(descriptor.natts as usize).iter().position(|a| {
                !a.attisdropped && CStr::from_ptr(a.attname.data.as_ptr()).to_bytes() == column.as_bytes()
            })
        }?;
        let number = position as i32 + 1;
        self.columns.borrow_mut().push((column, number));
        Some(number)
    }

    /// The attribute number of `column`.
    fn attribute(&self, column: &'static str) -> i32 {
        self.attribute_if_any(column)
            .unwrap_or_else(|| pgrx::error!("plystra: column {column} is missing; reinstall the extension"))
    }

    /// Whether the relation has `column` (a schema older than the library may not).
    pub fn has_column(&self, column: &'static str) -> bool {
        self.attribute_if_any(column).is_some()
    }

    fn datum(&self, column: &'static str) -> Option<Datum> {
        let number = self.attribute(column);
        // SAFETY: the attribute number comes from the open relation's descriptor, and the slot holds a tuple of
        // that relation while the probe's callback runs.
        unsafe {
            let mut is_null = false;
            let datum = pg_sys::slot_getattr(self.slot, number, &mut is_null);
            (!is_null).then_some(datum)
        }
    }

    pub fn is_null(&self, column: &'static str) -> bool {
        self.datum(column).is_none()
    }

    pub fn text(&self, column: &'static str) -> Option<String> {
        // SAFETY: the column is text (the schema's), and the datum is not null.
        self.datum(column).and_then(|d| unsafe { String::from_datum(d, false) })
    }

    /// Whether a text column holds exactly `value` (compared as bytes, without copying the column out).
    pub fn text_is(&self, column: &'static str, value: &str) -> bool {
        // SAFETY: the column is text (the schema's) and the datum is not null.
        self.datum(column).is_some_and(|d| unsafe { text_bytes(d) } == value.as_bytes())
    }

    pub fn text_or_empty(&self, column: &'static str) -> String {
        self.text(column).unwrap_or_default()
    }

    pub fn boolean(&self, column: &'static str) -> bool {
        self.datum(column).is_some_and(|d| d.value() != 0)
    }

    /// A bigint column.
    pub fn int8(&self, column: &'static str) -> Option<i64> {
        // bigint is passed by value on every platform PostgreSQL 15 builds on with pgrx (64-bit).
        self.datum(column).map(|d| d.value() as i64)
    }

    /// A timestamptz as microseconds since the Unix epoch (saturating at ±infinity).
    pub fn unix_micros(&self, column: &'static str) -> Option<i64> {
        self.datum(column).map(|d| (d.value() as i64).saturating_add(POSTGRES_EPOCH_UNIX_MICROS))
    }

    /// A jsonb column as its text.
    pub fn jsonb_text(&self, column: &'static str) -> Option<String> {
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
