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
//!   transaction id: the top-level one, so a savepoint or an EXCEPTION block inside it too) reads its version rows
//!   every time, as before, because its snapshot also shows its own writes up to its current command;
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

type Xid = pg_sys::TransactionId;

/// What decides which committed rows an MVCC snapshot shows (see the module comment): owned (`Box`) as
/// remembered, borrowed (`&[Xid]`) from a reader's snapshot to compare with it.
#[derive(Debug, PartialEq, Eq)]
struct Visibility<L = Box<[Xid]>> {
    xmin: Xid,
    xmax: Xid,
    xip: L,
    subxip: L,
    suboverflowed: bool,
    in_recovery: bool,
}

impl Visibility {
    fn borrowed(&self) -> Visibility<&[Xid]> {
        Visibility {
            xmin: self.xmin,
            xmax: self.xmax,
            xip: &self.xip,
            subxip: &self.subxip,
            suboverflowed: self.suboverflowed,
            in_recovery: self.in_recovery,
        }
    }
}

impl Visibility<&[Xid]> {
    fn owned(&self) -> Visibility {
        Visibility {
            xmin: self.xmin,
            xmax: self.xmax,
            xip: self.xip.into(),
            subxip: self.subxip.into(),
            suboverflowed: self.suboverflowed,
            in_recovery: self.in_recovery,
        }
    }
}

/// The visibility of `reader`'s snapshot, when it shows committed rows only through an MVCC snapshot.
fn visibility(reader: &Reader) -> Option<Visibility<&[Xid]>> {
    let snapshot = reader.committed_only_snapshot()?;
    // SAFETY: the reader's snapshot, an MVCC one, stays valid for the reader's life; its arrays hold xcnt and
    // subxcnt ids (a copied snapshot whose sub-transaction list overflowed has none: null).
    unsafe {
        let s = &*snapshot;
        let list = |ids: *mut Xid, n: usize| {
            if n == 0 || ids.is_null() {
                &[][..]
            } else {
                std::slice::from_raw_parts(ids, n)
            }
        };
        Some(Visibility {
            xmin: s.xmin,
            xmax: s.xmax,
            xip: list(s.xip, s.xcnt as usize),
            subxip: list(s.subxip, s.subxcnt.max(0) as usize),
            suboverflowed: s.suboverflowed,
            in_recovery: s.takenDuringRecovery,
        })
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
        let now = visibility(reader);
        let same = now.is_some() && self.seen.as_ref().map(Visibility::borrowed) == now;
        if same {
            if let Some(row) = self.rows.get(key) {
                TAKEN.with(|t| t.set(t.get() + 1));
                return row.clone();
            }
        }
        let row = read();
        if !same {
            self.rows.clear();
            self.seen = now.as_ref().map(Visibility::owned);
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
