//! A per-statement memo for the actor's reach. A row-level-security policy asks several questions about the
//! same actor (its Space, the whole-Space arm, the groups, the owner), each an InitPlan of its own; without a
//! memo each would load the decision context again. The memo is keyed by everything the answer depends on, so
//! a hit is exactly what a fresh load would return:
//!
//! - the visible data: the active snapshot's contents (xmin, xmax, in-progress xids, command id) plus the
//!   subtransaction (a rolled-back savepoint hides rows without changing the snapshot's numbers) and the
//!   transaction's start;
//! - the clock the decision reads (`statement_timestamp()`, for binding expiry);
//! - the actor (`plystra.set_actor`'s settings) and the question (resource type, action).
//!
//! Anything else misses and reloads. With no active snapshot nothing is memoised.
//!
//! A transaction that has written reads differently: its decisions read with the command counter advanced and the
//! transaction's snapshot taken again (`probe::Reader::begin`; in READ COMMITTED a fresh one), so a write made
//! earlier in the same statement (by a volatile function) or a change another session committed meanwhile counts at
//! the next call, while the statement's snapshot stays the same (`tests/sql/086_reach_memo_writes.sql`: a stale
//! group list, and a stale `lookup_resources`, after a revoke, when the key was the statement's snapshot). So in
//! such a transaction the key is what that reading would see: the command counter is advanced first (a write since
//! the last call moves it) and the snapshot is the transaction's, taken again; and the end of the last WAL record
//! this backend wrote (`XactLastRecEnd`). The command counter alone does not move with every write: a statement
//! that writes several rows (an INSERT of many rows, ON CONFLICT, a writable CTE) writes them all under its own
//! command id, which the first call's advance leaves behind, so rows it writes after that call are visible to the
//! next reading while the counter stays put (found by an attack on this memo: a grant revoked by row 1 of an
//! INSERT was still reached on rows 2 and 3). Every row written to a permanent table writes WAL when `wal_level` is
//! `replica` or above, so the WAL position moves with each; under `wal_level = minimal` a table created or
//! truncated in the same transaction is written without WAL, so there nothing is memoised in a transaction that
//! has written. The answer is computed under a snapshot at least as new as the key's; the two differ only when a
//! transaction completed in between, and after that no later snapshot equals the key's (it would list the
//! completed transaction as in progress, or have a lower `xmax`), so no later call takes that answer.

use std::cell::RefCell;

use pgrx::pg_sys;

/// What the visible data and the clock depend on, copied out of the active snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Visibility {
    wrote: bool,
    /// In a transaction that has written: where this backend's last WAL record ended (0 otherwise).
    last_record_end: u64,
    xact_start: i64,
    statement_start: i64,
    subtransaction: u32,
    xmin: u32,
    xmax: u32,
    curcid: u32,
    xip: Vec<u32>,
    subxip: Vec<u32>,
    suboverflowed: bool,
    during_recovery: bool,
}

impl Visibility {
    /// What a reading that begins now would see (see the module comment): the statement's active snapshot, or in
    /// a transaction that has written, the transaction's snapshot taken again after advancing the command counter.
    /// `None` when there is no snapshot to read with.
    pub fn current() -> Option<Self> {
        // SAFETY: these read backend-local state inside a function call (a transaction is in progress); the snapshot
        // is only read at once, and its xip/subxip arrays hold xcnt/subxcnt entries by construction. Advancing the
        // command counter is what the reading itself would do first (probe::Reader::begin).
        unsafe {
            let wrote = crate::probe::transaction_has_written();
            let snap = if !wrote {
                if !pg_sys::ActiveSnapshotSet() {
                    return None;
                }
                pg_sys::GetActiveSnapshot()
            } else {
                if pg_sys::wal_level < pg_sys::WalLevel::WAL_LEVEL_REPLICA as std::ffi::c_int {
                    return None;
                }
                pg_sys::CommandCounterIncrement();
                pg_sys::GetTransactionSnapshot()
            };
            if snap.is_null() {
                return None;
            }
            let s = &*snap;
            let slice = |ptr: *mut pg_sys::TransactionId, len: usize| {
                if ptr.is_null() || len == 0 {
                    Vec::new()
                } else {
                    std::slice::from_raw_parts(ptr, len).iter().map(|x| x.into_inner()).collect()
                }
            };
            Some(Visibility {
                wrote,
                last_record_end: if wrote { pg_sys::XactLastRecEnd } else { 0 },
                xact_start: pg_sys::GetCurrentTransactionStartTimestamp(),
                statement_start: pg_sys::GetCurrentStatementStartTimestamp(),
                subtransaction: pg_sys::GetCurrentSubTransactionId(),
                xmin: s.xmin.into_inner(),
                xmax: s.xmax.into_inner(),
                // A writing reading's command id is the counter just advanced (UpdateActiveSnapshotCommandId).
                curcid: if wrote { pg_sys::GetCurrentCommandId(false) } else { s.curcid },
                xip: slice(s.xip, s.xcnt as usize),
                subxip: slice(s.subxip, s.subxcnt.max(0) as usize),
                suboverflowed: s.suboverflowed,
                during_recovery: s.takenDuringRecovery,
            })
        }
    }
}

/// At most this many answers are kept per visibility (the oldest goes first).
const MAX_ANSWERS: usize = 32;

/// The answers given under one visibility, by question.
type Answers<K, V> = (Visibility, Vec<(K, V)>);

/// Memoised answers for one `Visibility`; `K` is the question (actor included), `V` the answer.
pub struct Memo<K, V> {
    slot: RefCell<Option<Answers<K, V>>>,
}

impl<K, V> Memo<K, V> {
    /// Drops every answer. A key holds the transaction's start, so no answer outlives its transaction usefully;
    /// dropped at its end (`transaction_end`), an idle backend holds none (a reach of 50,000 groups is about a
    /// megabyte an answer).
    pub fn clear(&self) {
        if let Ok(mut slot) = self.slot.try_borrow_mut() {
            *slot = None;
        }
    }
}

impl<K: PartialEq, V: Clone> Memo<K, V> {
    pub const fn new() -> Self {
        Memo { slot: RefCell::new(None) }
    }

    /// The memoised answer to `key` under the current visibility, or `compute()`'s, remembered.
    pub fn get_or(&self, key: K, compute: impl FnOnce() -> V) -> V {
        let Some(now) = Visibility::current() else {
            return compute();
        };
        if let Some((seen, answers)) = self.slot.borrow().as_ref() {
            if *seen == now {
                if let Some((_, v)) = answers.iter().find(|(k, _)| *k == key) {
                    return v.clone();
                }
            }
        }
        // Computed outside any borrow: the computation runs SPI, which may call back into this memo.
        let value = compute();
        let mut slot = self.slot.borrow_mut();
        match slot.as_mut() {
            Some((seen, answers)) if *seen == now => {
                // A statement asks a handful of questions; a loop that switches actors without writing would
                // otherwise grow the list (and its linear search) without bound.
                if answers.len() >= MAX_ANSWERS {
                    answers.remove(0);
                }
                answers.push((key, value.clone()))
            }
            _ => *slot = Some((now, vec![(key, value.clone())])),
        }
        value
    }
}
