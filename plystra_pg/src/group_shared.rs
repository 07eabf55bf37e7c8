//! The groups every backend of the server shares: a decision's target group (the group of the resource it asks
//! about), kept in shared memory between decisions, so that a decision reads its resource and not also the
//! resource's group. At the benchmark's full size (98,400 groups) that group was a descent of its own in every
//! decision and in every item of a batch.
//!
//! The rule is `actor_kept`'s, for one more row of the same Space: a group is a Space-local row, and every
//! statement that writes `plystra.groups` gives its Space's row in `plystra.actor_versions` a fresh sequence value
//! in the same transaction, the old row's Space and the new row's alike (migration 014). So:
//! - an entry is a live group read from the table by a transaction that has written no kept row (`kept_writes`),
//!   filed under the database, the incarnation and version of the request's Space's row as its snapshot saw it, and
//!   that Space's id; only a group whose own `space_id` is that Space is filed (a group of another Space is read
//!   every time, as is a group not found or not live: nothing in the request's Space would move its version when
//!   such a row appears or comes back);
//! - an entry is used only by a transaction that has written no kept row whose snapshot sees the same version of
//!   the same incarnation of the request's Space's row (`actor_kept::Loaded::kept_under`), and only for a group id and
//!   Space that are the entry's own. Any change to the group (archived, deleted, restored, its path or Space
//!   rewritten by a superuser with the immutability trigger off) moved that version, so a kept group is exactly
//!   the row the decision's snapshot sees: a REPEATABLE READ transaction's older snapshot, a change committed by
//!   another session and a change replayed on a hot standby (the version rows replicate; no trigger fires there)
//!   are each seen as the tables show them;
//! - what is kept is the row, never a verdict: scope matching and every status are judged at decision time.
//!
//! Entries name their database (`shared_slots::this_database`: its OID and its creation); a restore makes new
//! incarnations.
//!
//! Memory: `plystra.shared_group_cache_entries` slots of 512 bytes in shared memory (default 16,384: 8 MiB), set
//! at server start; only with `shared_preload_libraries = 'plystra'` (otherwise every group is read, as before).
//! A group whose encoding does not fit a slot (a path of about 350 bytes or more) is read every time. The slots
//! are `shared_slots`': keyed placement by group id (ids may be chosen by whoever creates a group) and a sequence
//! lock a slot.

use std::cell::Cell;

use plystra_core::model::Group;

use crate::shared_slots::{this_database, Decoder, Encoder, Table, Tier};

/// A slot's data words: 512-byte slots.
const WORDS: usize = 62;
/// The encoding's layout: a slot written by a library with another layout is never read.
const LAYOUT: u8 = 2;

/// The tier: `plystra.shared_group_cache_entries` slots (see the module comment).
pub static TIER: Tier<WORDS> = Tier::new(
    c"plystra shared groups",
    c"plystra.shared_group_cache_entries",
    c"How many groups (a decision's target group) the server's backends share, 512 bytes each.",
    c"Shared memory, set at server start; needs shared_preload_libraries = 'plystra'. 0 shares nothing.",
    16_384,
    8_388_608,
);

thread_local! {
    static HITS: Cell<i64> = const { Cell::new(0) };
    static FILLS: Cell<i64> = const { Cell::new(0) };
}

fn table() -> Table<WORDS> {
    TIER.table()
}

/// The request's Space and its version row (incarnation, version) as the decision's snapshot sees it: what a
/// group may be kept under (`actor_kept::Loaded::kept_under`).
#[derive(Clone, Debug, PartialEq)]
pub struct Under {
    pub space_id: String,
    pub version: (String, i64),
}

/// The live group `group_id` as the decision's snapshot sees it: the shared entry filed under exactly `under`
/// when there is one, else `read()` (the table), filed for the next decision when it may be (see the module
/// comment). Without `under` (a writing transaction, no version row, keeping turned off) always `read()`.
pub fn kept_or_read(under: Option<&Under>, group_id: &str, read: impl FnOnce() -> Option<Group>) -> Option<Group> {
    let Some(under) = under else { return read() };
    let database = this_database();
    let Some(place) = table().place(database, group_id) else { return read() };
    if let Some(group) = place.find(|bytes| decode(bytes, database, under, group_id)) {
        HITS.with(|h| h.set(h.get() + 1));
        return Some(group);
    }
    let group = read()?;
    // `read` found the row by this id; only a group of the request's own Space is covered by its version.
    if group.space_id == under.space_id && encode(database, under, &group).is_some_and(|entry| place.file(&entry)) {
        FILLS.with(|f| f.set(f.get() + 1));
    }
    Some(group)
}

/// This backend's counters and the tier's size, for `plystra.actor_kept_stats()`: (hits, fills, slots).
pub fn stats() -> (i64, i64, usize) {
    (HITS.with(Cell::get), FILLS.with(Cell::get), table().count())
}

/// The entry's bytes, or `None` for a string longer than an entry may be (whether it fits a slot is `file`'s to say).
fn encode(database: u64, under: &Under, group: &Group) -> Option<Vec<u8>> {
    let mut e = Encoder::with_capacity(128);
    e.u8(LAYOUT);
    e.u64(database);
    e.str(&under.version.0)?;
    e.i64(under.version.1);
    e.str(&under.space_id)?;
    for field in [&group.id, &group.path, &group.status] {
        e.str(field)?;
    }
    Some(e.0)
}

/// The group in `bytes` if it was filed under exactly `database`, `under` and `group_id`.
fn decode(bytes: &[u8], database: u64, under: &Under, group_id: &str) -> Option<Group> {
    let mut d = Decoder::new(bytes);
    if d.u8()? != LAYOUT
        || d.u64()? != database
        || d.str()? != under.version.0
        || d.i64()? != under.version.1
        || d.str()? != under.space_id
        || d.str()? != group_id
    {
        return None;
    }
    let group =
        Group { id: group_id.to_string(), space_id: under.space_id.clone(), path: d.string()?, status: d.string()? };
    d.done().then_some(group)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared_slots::Slot;

    fn under() -> Under {
        Under { space_id: "space_acme".into(), version: ("inc".into(), 42) }
    }

    fn group() -> Group {
        Group {
            id: "group_finance".into(),
            space_id: "space_acme".into(),
            path: "acme.finance".into(),
            status: "active".into(),
        }
    }

    #[test]
    fn a_group_reads_back_exactly_under_its_own_key_only() {
        let bytes = encode(5, &under(), &group()).expect("fits");
        assert_eq!(decode(&bytes, 5, &under(), "group_finance"), Some(group()));
        let others = [
            (6, under(), "group_finance"),
            (5, Under { space_id: "space_globex".into(), ..under() }, "group_finance"),
            (5, Under { version: ("other".into(), 42), ..under() }, "group_finance"),
            (5, Under { version: ("inc".into(), 43), ..under() }, "group_finance"),
            (5, under(), "group_legal"),
            (5, under(), "group_financ"),
        ];
        for (database, under, id) in &others {
            assert!(decode(&bytes, *database, under, id).is_none(), "read under {database} {under:?} {id}");
        }
        // Every truncation of the entry is refused, never misread.
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len], 5, &under(), "group_finance").is_none(), "read {len} bytes");
        }
    }

    #[test]
    fn a_group_too_long_for_a_slot_is_not_filed() {
        let table = Table::<WORDS>::leaked(64, [4; 16]);
        let place = table.place(5, "group_finance").expect("a place");
        let long = Group { path: "a.".repeat(Slot::<WORDS>::MAX_ENTRY / 2), ..group() };
        assert!(!place.file(&encode(5, &under(), &long).expect("encoded")));
        let fits = Group { path: "a".repeat(300), ..group() };
        assert!(place.file(&encode(5, &under(), &fits).expect("encoded")), "a 300-byte path fits");
    }

    #[test]
    fn a_group_is_found_through_the_table_under_its_key_only() {
        let table = Table::<WORDS>::leaked(64, [4; 16]);
        let place = table.place(5, "group_finance").expect("a place");
        assert!(place.file(&encode(5, &under(), &group()).expect("fits")));
        assert_eq!(place.find(|b| decode(b, 5, &under(), "group_finance")), Some(group()));
        let newer = Under { version: ("inc".into(), 43), ..under() };
        assert!(place.find(|b| decode(b, 5, &newer, "group_finance")).is_none());
    }
}
