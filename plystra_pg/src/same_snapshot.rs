//! Version rows read once per visible state, not once per decision.
//!
//! Every decision that may use what a backend keeps (`catalog`, `actor_kept`) first reads a version row under its
//! own snapshot: the catalog's, and its Space's actor version. Those two probes were half of the four a kept
//! decision makes. Here a backend remembers what it read of them, and under which visibility, and a later reading
//! whose snapshot shows exactly the same committed rows takes the remembered row instead of probing again.
//!
//! The rule that makes it sound:
//! - an MVCC snapshot decides a committed row's visibility from its `xmin`, `xmax` and the transaction ids it lists
//!   as in progress (`xip`, `subxip`, whether the sub-transaction list overflowed): an id at or past `xmax`, or
//!   listed, is not visible; any other id is complete, and whether a complete transaction committed never changes.
//!   Two snapshots equal in all of these (and both taken in recovery or both not: a standby lists its ids in
//!   `subxip`) therefore show the same committed rows, so the version row read under one is the version row under
//!   the other. PostgreSQL reuses exactly this reasoning to hand out an unchanged snapshot when no transaction has
//!   completed (`snapXactCompletionCount`);
//! - only a reading that shows committed rows only takes part: a transaction that has written anything (it has a
//!   transaction id) reads its version rows every time, as before, because its snapshot also shows its own writes
//!   up to its current command;
//! - a snapshot that differs in anything (a transaction completed in between, another transaction began, a
//!   REPEATABLE READ transaction's older snapshot after a newer one, a standby that replayed a commit) forgets
//!   everything remembered and probes; a different order of the same listed ids also counts as different. Any write
//!   anywhere in the cluster changes the next snapshot, so this pays only while nothing is being written (a
//!   read-heavy moment, a replica between replayed commits), and costs a comparison otherwise;
//! - DROP/CREATE EXTENSION, an update or a restore are writes: they change the snapshot, and the probe that follows
//!   reads the new incarnation.
//!
//! Memory: per backend, one visibility (its in-progress id lists) and at most [`ROWS`] remembered rows for it;
//! past that everything is forgotten and the reading starts again.

use std::cell::Cell;
use std::collections::HashMap;

use pgrx::pg_sys;

use crate::probe::Reader;

thread_local! {
    static TAKEN: Cell<i64> = const { Cell::new(0) };
}

/// How many version rows this backend took from what it remembered instead of probing (for
/// `plystra.actor_kept_stats()`).
pub fn taken() -> i64 {
    TAKEN.with(Cell::get)
}

/// At most this many remembered rows per backend (a row per Space a backend decides in, and the catalog's).
pub const ROWS: usize = 1024;

/// What decides which committed rows an MVCC snapshot shows (see the module comment).
#[derive(Debug, PartialEq, Eq)]
pub struct Visibility {
    xmin: pg_sys::TransactionId,
    xmax: pg_sys::TransactionId,
    xip: Box<[pg_sys::TransactionId]>,
    subxip: Box<[pg_sys::TransactionId]>,
    suboverflowed: bool,
    in_recovery: bool,
}

/// The in-progress id lists of `snapshot`.
///
/// # Safety
/// `snapshot` is a valid MVCC snapshot.
unsafe fn lists<'a>(snapshot: pg_sys::Snapshot) -> (&'a [pg_sys::TransactionId], &'a [pg_sys::TransactionId]) {
    let s = &*snapshot;
    let xip = if s.xcnt == 0 || s.xip.is_null() { &[][..] } else { std::slice::from_raw_parts(s.xip, s.xcnt as usize) };
    let subxip = if s.subxcnt <= 0 || s.subxip.is_null() {
        &[][..]
    } else {
        std::slice::from_raw_parts(s.subxip, s.subxcnt as usize)
    };
    (xip, subxip)
}

impl Visibility {
    /// The visibility of `reader`'s snapshot when it shows committed rows only, through an MVCC snapshot.
    fn of(reader: &Reader) -> Option<Visibility> {
        let snapshot = reader.committed_only_snapshot()?;
        // SAFETY: the reader's snapshot stays valid for its life, and it is MVCC (checked by the reader).
        unsafe {
            let s = &*snapshot;
            let (xip, subxip) = lists(snapshot);
            Some(Visibility {
                xmin: s.xmin,
                xmax: s.xmax,
                xip: xip.into(),
                subxip: subxip.into(),
                suboverflowed: s.suboverflowed,
                in_recovery: s.takenDuringRecovery,
            })
        }
    }

    /// Whether `reader`'s snapshot shows exactly the committed rows this visibility shows.
    fn shown_by(&self, reader: &Reader) -> bool {
        let Some(snapshot) = reader.committed_only_snapshot() else {
            return false;
        };
        // SAFETY: as in `of`.
        unsafe {
            let s = &*snapshot;
            let (xip, subxip) = lists(snapshot);
            self.xmin == s.xmin
                && self.xmax == s.xmax
                && self.suboverflowed == s.suboverflowed
                && self.in_recovery == s.takenDuringRecovery
                && *self.xip == *xip
                && *self.subxip == *subxip
        }
    }
}

/// Rows read by key under one visibility, taken again by any reading with the same visibility.
pub struct Remembered<V> {
    seen: Option<Visibility>,
    rows: HashMap<String, V>,
}

impl<V> Default for Remembered<V> {
    fn default() -> Self {
        Remembered { seen: None, rows: HashMap::new() }
    }
}

impl<V: Clone> Remembered<V> {
    /// The row of `key` remembered for `reader`'s visibility, else read by `read` (and remembered when the reading
    /// shows committed rows only).
    pub fn get_or_read(&mut self, reader: &Reader, key: &str, read: impl FnOnce() -> V) -> V {
        let same = self.seen.as_ref().is_some_and(|seen| seen.shown_by(reader));
        if same {
            if let Some(row) = self.rows.get(key) {
                TAKEN.with(|t| t.set(t.get() + 1));
                return row.clone();
            }
        }
        let row = read();
        if !same {
            self.rows.clear();
            self.seen = Visibility::of(reader);
        }
        if self.seen.is_some() {
            if self.rows.len() >= ROWS {
                self.rows.clear();
            }
            self.rows.insert(key.to_string(), row.clone());
        }
        row
    }
}
