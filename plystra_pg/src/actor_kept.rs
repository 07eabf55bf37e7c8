//! The actors a backend keeps between decisions: for a (User, Member, UserMember binding, Space) named by a
//! request, the four rows a decision reads (`loader::actor`), the Member's live grants (MemberRole rows) and each
//! grant's anchor group, as a decision reads them. The resource is read per request, always; its group is
//! shared under the same rule (`group_shared`).
//!
//! The rule that makes it sound (migration 014 writes its other half), the catalog's rule (`catalog`) made per
//! Space so that one tenant's writes neither invalidate nor serialise another tenant's:
//! - every statement that writes users, spaces, members, user_members, member_roles or groups gives
//!   `plystra.actor_versions` a fresh sequence value, in the same transaction, for every Space whose actors it may
//!   change: a Space-local row's own Space (a Member's, binding's, grant's or group's space_id never changes), a
//!   Space itself, and for a User whose id, email, status or deleted_at changes (what `loader::actor` reads of
//!   it; a login's last_login_at moves nothing) every Space where it has a binding row (whatever its status). A
//!   User's change and a new binding of that User meet on the User's row in `plystra.actor_user_stamps`, so the
//!   User's statement sees the binding (READ COMMITTED) or fails with 40001 (REPEATABLE READ). A sequence value
//!   is never handed out twice, so the version a snapshot sees of a Space names exactly one state of that Space's
//!   actor rows as that snapshot sees them;
//! - an actor is kept only when everything read for it lies in the request's Space: User, Member, binding and
//!   Space all found, the binding joining exactly that User and Member in that Space, the Member, every grant and
//!   every anchor group (live or not) in that Space. Then the request's Space version alone covers it. Anything
//!   else (an unknown id, a binding of another Member, a row of another Space) is read from the tables every time,
//!   so deny codes and traces are exactly the tables';
//! - only a transaction that has written no kept row uses or fills it (`kept_writes`: a trigger marks a transaction
//!   before it writes one): for these tables its snapshot shows committed changes only, and every committed change
//!   moved the version. A transaction that has written a kept row reads the tables (its own writes, a savepoint
//!   rolled back, a write earlier in the same statement are then exactly as visible as they are to SQL);
//! - a decision reads its Space's version row under its own snapshot (one probe, or the row last read when its
//!   snapshot shows exactly the same committed rows as the one it was read under: `same_snapshot`) and uses the
//!   kept actor only when it was read under that same version of the same incarnation of the row (a random id the row is created with:
//!   DROP/CREATE EXTENSION makes a new one, where the sequence starts again). Otherwise it reads the tables and
//!   keeps what it read under the version it saw, replacing what was kept: a REPEATABLE READ transaction with an
//!   older snapshot and a newer one in the same backend each read the tables whenever the kept version is not
//!   theirs, never each other's state;
//! - what is kept is rows, never a verdict: a binding's expiry and every status are judged at decision time by
//!   `plystra_core`, exactly as for rows just read;
//! - so a grant committed by another session, a REPEATABLE READ transaction's older snapshot and a change replayed
//!   on a hot standby (the version rows replicate with the data; no trigger fires there) are each seen exactly as
//!   the tables would show them. A Space without a version row (a schema not yet updated to 1.8.0, a restore
//!   without it) keeps nothing;
//! - outside the rule, as for the catalog: a write that fires no statement trigger (triggers disabled by a
//!   superuser, a table rewritten by `ALTER TABLE ... TYPE ... USING`, rows applied by a logical-replication
//!   subscriber's apply worker, which fires row triggers only) or a version sequence set back (`setval`): the
//!   README tells the owner to move the version by hand after any of them.
//!
//! Under this per-backend map, `actor_shared` shares actors between the server's backends under the same rule.
//!
//! Memory: at most `plystra.actor_cache_entries` actors per backend (default 10,000; 0 keeps nothing); past that
//! the backend forgets every actor and starts again. An actor is its four rows and its grants: estimated from their
//! sizes (not measured) at about 1 kB with a few grants, roughly 10 MB a backend at the default. The shared tier's
//! memory is stated in `actor_shared`.
//!
//! `plystra.actor_kept_stats()` (owner only) reports this backend's hits, fills and reads, for tests and
//! measurements.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use pgrx::prelude::*;
use pgrx::JsonB;
use plystra_core::model::{Actor, Group, Request};

use crate::actor_shared;
use crate::group_shared;
use crate::probe::Reader;
use crate::same_snapshot::Remembered;

/// A live MemberRole grant of the Member, with its anchor group when the anchor was read with it.
#[derive(Clone, Debug, PartialEq)]
pub struct Grant {
    pub id: String,
    pub role_id: String,
    pub space_id: String,
    pub anchor_id: Option<String>,
    /// `Some(live anchor or None)` once the anchor is read; kept grants always carry it.
    pub anchor: Option<Option<Group>>,
}

/// A kept actor, by its binding id. The rest of the request's actor is compared with the actor's own rows: a
/// kept actor is consistent (see the module comment), so its User, Member and Space ids are the request's.
struct Entry {
    /// The incarnation and version of the Space's row everything below was read under.
    version: (String, i64),
    /// Shared with every decision that uses it: a hit or a keep copies no row.
    actor: Rc<Actor>,
    grants: Rc<[Grant]>,
}

impl Entry {
    /// Whether this entry is the actor `req` names, read under `version`.
    fn serves(&self, req: &Request, version: &(String, i64)) -> bool {
        let a = &self.actor;
        self.version == *version
            && a.user.as_ref().is_some_and(|u| u.id == req.user_id)
            && a.member.as_ref().is_some_and(|m| m.id == req.member_id)
            && a.space.as_ref().is_some_and(|s| s.id == req.space_id)
    }
}

thread_local! {
    /// By binding id (the entry holds the rest of the request's actor, compared on use).
    static KEPT: RefCell<HashMap<String, Entry>> = RefCell::new(HashMap::new());
    /// The Space version rows as last read, for readings whose snapshot shows the same committed rows
    /// (`same_snapshot`).
    static VERSION_ROWS: RefCell<Remembered<Option<(String, i64)>>> = RefCell::new(Remembered::default());
    static HITS: Cell<i64> = const { Cell::new(0) };
    static FILLS: Cell<i64> = const { Cell::new(0) };
    static READS: Cell<i64> = const { Cell::new(0) };
    static SHARED_HITS: Cell<i64> = const { Cell::new(0) };
    static SHARED_FILLS: Cell<i64> = const { Cell::new(0) };
}

/// The actor of one loading and, when it was kept or could be kept, the Member's grants with their anchors.
pub struct Loaded {
    pub actor: Rc<Actor>,
    pub grants: Option<Rc<[Grant]>>,
    /// The request's Space and its version row as this snapshot sees it, when rows of that Space may be kept
    /// (the target's group: `group_shared`), whatever became of the actor.
    pub kept_under: Option<group_shared::Under>,
}

/// The Space version row under `reader`'s snapshot, or `None` when nothing may be kept.
fn version(reader: &Reader, space_id: &str) -> Option<(String, i64)> {
    let limit = crate::guc::ACTOR_CACHE_ENTRIES.get();
    if limit <= 0 {
        // Keeping nothing frees what was kept.
        KEPT.with(|k| {
            if !k.borrow().is_empty() {
                *k.borrow_mut() = HashMap::new();
            }
        });
        return None;
    }
    // A schema not yet updated to 1.8.0 (the library is replaced before ALTER EXTENSION UPDATE runs) has no
    // version rows: it keeps nothing and decides as before.
    if !reader.keeps() || !reader.has_relation(c"actor_versions") {
        return None;
    }
    VERSION_ROWS.with(|r| {
        r.borrow_mut().get_or_read(reader, space_id, || {
            reader.one(c"actor_versions", c"actor_versions_pkey", &[space_id], |row| {
                Some((row.text("incarnation")?, row.int8("version")?))
            })
        })
    })
}

/// Whether everything read for `req` lies in its Space (see the module comment).
fn consistent(req: &Request, actor: &Actor, grants: &[Grant], anchor_spaces: &[Option<String>]) -> bool {
    let (Some(user), Some(member), Some(binding), Some(space)) =
        (&actor.user, &actor.member, &actor.user_member, &actor.space)
    else {
        return false;
    };
    let space_id = req.space_id.as_str();
    user.id == req.user_id
        && member.id == req.member_id
        && member.space_id == space_id
        && binding.id == req.user_member_id
        && binding.user_id == req.user_id
        && binding.member_id == req.member_id
        && binding.space_id == space_id
        && space.id == space_id
        && grants.iter().all(|g| g.space_id == space_id)
        && anchor_spaces.iter().all(|s| s.as_deref() == Some(space_id))
}

/// The actor of `req` (a request naming its actor in full, not inline): kept when its Space's version allows,
/// else read by `read_actor` and `read_grants` (which also returns the Space of each anchor, live or not, `None`
/// for a group not found) and kept when it may be.
pub fn load(
    reader: &Reader,
    req: &Request,
    read_actor: impl FnOnce() -> Actor,
    read_grants: impl FnOnce() -> (Vec<Grant>, Vec<Option<String>>),
) -> Loaded {
    let Some(version) = version(reader, &req.space_id) else {
        return Loaded { actor: Rc::new(read_actor()), grants: None, kept_under: None };
    };
    let kept_under = Some(group_shared::Under { space_id: req.space_id.clone(), version: version.clone() });
    let hit = KEPT.with(|k| {
        let k = k.borrow();
        let e = k.get(&req.user_member_id)?;
        e.serves(req, &version).then(|| (e.actor.clone(), e.grants.clone()))
    });
    if let Some((actor, grants)) = hit {
        HITS.with(|h| h.set(h.get() + 1));
        return Loaded { actor, grants: Some(grants), kept_under };
    }
    let key = actor_shared::Key {
        database: crate::shared_slots::this_database(),
        incarnation: &version.0,
        version: version.1,
        binding_id: &req.user_member_id,
        user_id: &req.user_id,
        member_id: &req.member_id,
        space_id: &req.space_id,
    };
    let place = actor_shared::place(key.database, key.binding_id);
    if let Some((actor, grants)) = place.as_ref().and_then(|p| p.find(&key)) {
        SHARED_HITS.with(|h| h.set(h.get() + 1));
        let (actor, grants): (Rc<Actor>, Rc<[Grant]>) = (Rc::new(actor), grants.into());
        keep(req, version.clone(), &actor, &grants);
        return Loaded { actor, grants: Some(grants), kept_under };
    }
    let actor = Rc::new(read_actor());
    // Grants are read with the actor only for an actor that can be kept: any other is read as before.
    let probable =
        actor.user.is_some() && actor.member.is_some() && actor.user_member.is_some() && actor.space.is_some();
    if !probable {
        READS.with(|r| r.set(r.get() + 1));
        return Loaded { actor, grants: None, kept_under };
    }
    let (grants, anchor_spaces) = read_grants();
    let grants: Rc<[Grant]> = grants.into();
    if !consistent(req, &actor, &grants, &anchor_spaces) {
        READS.with(|r| r.set(r.get() + 1));
        return Loaded { actor, grants: Some(grants), kept_under };
    }
    if place.is_some_and(|p| p.file(&key, &actor, &grants)) {
        SHARED_FILLS.with(|f| f.set(f.get() + 1));
    }
    keep(req, version.clone(), &actor, &grants);
    FILLS.with(|f| f.set(f.get() + 1));
    Loaded { actor, grants: Some(grants), kept_under }
}

/// Keeps the actor of `req` in this backend under `version`, forgetting every actor past the bound.
fn keep(req: &Request, version: (String, i64), actor: &Rc<Actor>, grants: &Rc<[Grant]>) {
    let limit = crate::guc::ACTOR_CACHE_ENTRIES.get().max(0) as usize;
    KEPT.with(|k| {
        let mut k = k.borrow_mut();
        if k.len() >= limit && !k.contains_key(&req.user_member_id) {
            k.clear();
        }
        k.insert(req.user_member_id.clone(), Entry { version, actor: actor.clone(), grants: grants.clone() });
    });
}

/// This backend's kept actors: how many, and how many decisions used one (hits), read and kept one (fills), or
/// read an actor that could not be kept (reads) since the backend started, and how many version rows (the
/// catalog's and a Space's) it took as last read under the same visibility instead of probing
/// (`version_rows_remembered`). Owner only (apply_privileges grants it to no role): it tells nothing about any
/// actor, but it is for tests and measurements, not applications.
#[pg_extern(volatile, parallel_safe)]
fn actor_kept_stats() -> JsonB {
    let (group_hits, group_fills, shared_group_slots) = group_shared::stats();
    JsonB(serde_json::json!({
        "entries": KEPT.with(|k| k.borrow().len()),
        "hits": HITS.with(Cell::get),
        "fills": FILLS.with(Cell::get),
        "reads": READS.with(Cell::get),
        "shared_hits": SHARED_HITS.with(Cell::get),
        "shared_fills": SHARED_FILLS.with(Cell::get),
        "shared_slots": actor_shared::slots(),
        "version_rows_remembered": crate::same_snapshot::taken(),
        "group_hits": group_hits,
        "group_fills": group_fills,
        "shared_group_slots": shared_group_slots,
    }))
}
