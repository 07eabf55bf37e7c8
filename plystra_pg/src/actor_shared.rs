//! The actors every backend of the server shares: a second tier under `actor_kept`'s per-backend map, in shared
//! memory, so that a backend that has never seen an actor still finds it when another backend read it.
//!
//! A pooled service spreads one User's requests over many connections: with a per-backend map only, a server
//! with more actors than a backend keeps reads almost every actor from the tables again (one backend of 1.8.0
//! deciding for 40,000 actors drawn from the benchmark's 100,000 found 1,966 of them kept: 4.9%).
//!
//! The rule is `actor_kept`'s, unchanged: an entry is rows, never a verdict; it is filled only by a transaction
//! that has written no kept row (`kept_writes`), only for an actor whose rows all lie in the request's Space, and
//! used only by such a transaction whose snapshot sees the same version of the same incarnation of that
//! Space's row in `plystra.actor_versions`. What sharing adds is that entries outlive the backend that filled them
//! and cross databases, so an entry also names its database: two databases of one server can hold the same
//! incarnation and hand out the same version numbers for different changes (`CREATE DATABASE ... TEMPLATE` copies
//! both), and a database's entries are never used in another, nor in a database created later under the same OID
//! (`shared_slots::this_database`: the OID and the transaction that created the database). A restore makes new
//! incarnations (the version rows
//! are not dumped; restoring the Spaces creates them again), so an entry of the state before a restore is never
//! used after it.
//!
//! Memory: `plystra.shared_actor_cache_entries` slots of 1 KiB each in shared memory (default 16,384: 16 MiB),
//! set at server start; only with `shared_preload_libraries = 'plystra'` (otherwise there is no shared tier). An
//! actor whose encoding does not fit a slot (about a dozen grants or more) is kept per backend only. The slots,
//! their keyed placement by binding id and their sequence locks are `shared_slots`'.

use plystra_core::model::{Actor, Group, Member, Space, Timestamp, User, UserMember};

use crate::actor_kept::Grant;
use crate::shared_slots::{Decoder, Encoder, Table, Tier};

/// A slot's data words: 1 KiB slots.
const WORDS: usize = 126;
/// The encoding's layout: a slot written by a library with another layout is never read.
const LAYOUT: u8 = 2;

/// The tier: `plystra.shared_actor_cache_entries` slots (see the module comment).
pub static TIER: Tier<WORDS> = Tier::new(
    c"plystra shared actors",
    c"plystra.shared_actor_cache_entries",
    c"How many actors (User, Member, binding, Space, the Member's grants) the server's backends share, 1 KiB each.",
    c"Shared memory, set at server start; needs shared_preload_libraries = 'plystra'. 0 shares nothing.",
    16_384,
    4_194_304,
);

fn table() -> Table<WORDS> {
    TIER.table()
}

/// Where a binding id of this database is filed, when there is a shared tier. Hashed once per decision, for the
/// lookup and, when that misses, the filing.
pub fn place(database: u64, binding_id: &str) -> Option<Place> {
    table().place(database, binding_id).map(Place)
}

/// A binding id's place in the shared tier.
pub struct Place(crate::shared_slots::Place<WORDS>);

/// What an entry is filed under: the database, the Space's version row (incarnation, version), and the request's
/// actor ids.
pub struct Key<'a> {
    pub database: u64,
    pub incarnation: &'a str,
    pub version: i64,
    pub binding_id: &'a str,
    pub user_id: &'a str,
    pub member_id: &'a str,
    pub space_id: &'a str,
}

/// How many actors the server's backends share (0: no shared tier).
pub fn slots() -> usize {
    table().count()
}

impl Place {
    /// The actor and grants filed under exactly `key` (whose binding id this place is of), if a bucket holds
    /// them.
    pub fn find(&self, key: &Key) -> Option<(Actor, Vec<Grant>)> {
        self.0.find(|bytes| decode(bytes, key))
    }

    /// Files the actor and grants under `key` (see `shared_slots`). Skipped when the entry does not fit or
    /// another backend is writing that slot.
    pub fn file(&self, key: &Key, actor: &Actor, grants: &[Grant]) -> bool {
        encode(key, actor, grants).is_some_and(|entry| self.0.file(&entry))
    }
}

/// The entry's bytes, or `None` for a string longer than an entry may be (whether it fits a slot is `file`'s to say).
fn encode(key: &Key, actor: &Actor, grants: &[Grant]) -> Option<Vec<u8>> {
    let (Some(user), Some(member), Some(binding), Some(space)) =
        (&actor.user, &actor.member, &actor.user_member, &actor.space)
    else {
        return None;
    };
    let mut e = Encoder::with_capacity(512);
    e.0.push(LAYOUT);
    e.u64(key.database);
    e.str(key.incarnation)?;
    e.0.extend_from_slice(&key.version.to_le_bytes());
    for id in [key.binding_id, key.user_id, key.member_id, key.space_id] {
        e.str(id)?;
    }
    for field in [&user.id, &user.email, &user.status] {
        e.str(field)?;
    }
    for field in [&member.id, &member.space_id, &member.display_name, &member.status] {
        e.str(field)?;
    }
    let b = binding;
    for field in [&b.id, &b.user_id, &b.member_id, &b.space_id, &b.relation_type, &b.status] {
        e.str(field)?;
    }
    e.0.push(u8::from(b.is_primary));
    match &b.expires_at {
        Some(t) => {
            e.0.push(1);
            e.0.extend_from_slice(&t.unix_micros.to_le_bytes());
        }
        None => e.0.push(0),
    }
    for field in [&space.id, &space.name, &space.status] {
        e.str(field)?;
    }
    e.0.extend_from_slice(&u16::try_from(grants.len()).ok()?.to_le_bytes());
    for g in grants {
        for field in [&g.id, &g.role_id, &g.space_id] {
            e.str(field)?;
        }
        e.opt_str(g.anchor_id.as_deref())?;
        // Kept grants always carry their anchor as read (`Some(live group or None)`).
        match g.anchor.as_ref()? {
            Some(a) => {
                e.0.push(1);
                for field in [&a.id, &a.space_id, &a.path, &a.status] {
                    e.str(field)?;
                }
            }
            None => e.0.push(0),
        }
    }
    Some(e.0)
}

/// The entry in `bytes` if it was filed under exactly `key`.
fn decode(bytes: &[u8], key: &Key) -> Option<(Actor, Vec<Grant>)> {
    let mut d = Decoder::new(bytes);
    if d.u8()? != LAYOUT || d.u64()? != key.database || d.str()? != key.incarnation || d.i64()? != key.version {
        return None;
    }
    for id in [key.binding_id, key.user_id, key.member_id, key.space_id] {
        if d.str()? != id {
            return None;
        }
    }
    let user = User { id: d.string()?, email: d.string()?, status: d.string()? };
    let member = Member { id: d.string()?, space_id: d.string()?, display_name: d.string()?, status: d.string()? };
    let mut binding = UserMember {
        id: d.string()?,
        user_id: d.string()?,
        member_id: d.string()?,
        space_id: d.string()?,
        relation_type: d.string()?,
        status: d.string()?,
        is_primary: d.u8()? == 1,
        expires_at: None,
    };
    if d.u8()? == 1 {
        binding.expires_at = Some(Timestamp::from_unix_micros(d.i64()?));
    }
    let space = Space { id: d.string()?, name: d.string()?, status: d.string()? };
    let count = d.u16()? as usize;
    let mut grants = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let (id, role_id, space_id) = (d.string()?, d.string()?, d.string()?);
        let anchor_id = d.opt_string()?;
        let anchor = match d.u8()? {
            1 => Some(Group { id: d.string()?, space_id: d.string()?, path: d.string()?, status: d.string()? }),
            _ => None,
        };
        grants.push(Grant { id, role_id, space_id, anchor_id, anchor: Some(anchor) });
    }
    if !d.done() {
        return None;
    }
    let actor = Actor { user: Some(user), member: Some(member), user_member: Some(binding), space: Some(space) };
    Some((actor, grants))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared_slots::Slot;

    fn key() -> Key<'static> {
        Key {
            database: 5,
            incarnation: "inc",
            version: 42,
            binding_id: "um_1",
            user_id: "u_1",
            member_id: "m_1",
            space_id: "s_1",
        }
    }

    fn actor() -> Actor {
        Actor {
            user: Some(User { id: "u_1".into(), email: "a@example.com".into(), status: "active".into() }),
            member: Some(Member {
                id: "m_1".into(),
                space_id: "s_1".into(),
                display_name: "Ann ✓".into(),
                status: "active".into(),
            }),
            user_member: Some(UserMember {
                id: "um_1".into(),
                user_id: "u_1".into(),
                member_id: "m_1".into(),
                space_id: "s_1".into(),
                relation_type: "login".into(),
                status: "active".into(),
                is_primary: true,
                expires_at: Some(Timestamp::from_unix_micros(1_800_000_000_000_000)),
            }),
            space: Some(Space { id: "s_1".into(), name: "S".into(), status: "active".into() }),
        }
    }

    fn grants() -> Vec<Grant> {
        vec![
            Grant {
                id: "mr_1".into(),
                role_id: "r_1".into(),
                space_id: "s_1".into(),
                anchor_id: Some("g_1".into()),
                anchor: Some(Some(Group {
                    id: "g_1".into(),
                    space_id: "s_1".into(),
                    path: "/a/".into(),
                    status: "active".into(),
                })),
            },
            Grant {
                id: "mr_2".into(),
                role_id: "r_2".into(),
                space_id: "s_1".into(),
                anchor_id: None,
                anchor: Some(None),
            },
            Grant {
                id: "mr_3".into(),
                role_id: "r_2".into(),
                space_id: "s_1".into(),
                anchor_id: Some("g_gone".into()),
                anchor: Some(None),
            },
        ]
    }

    #[test]
    fn an_entry_reads_back_exactly_under_its_own_key_only() {
        let bytes = encode(&key(), &actor(), &grants()).expect("fits");
        let (a, g) = decode(&bytes, &key()).expect("same key");
        assert_eq!(a, actor());
        assert_eq!(g, grants());
        let others = [
            Key { database: 6, ..key() },
            Key { incarnation: "other", ..key() },
            Key { version: 43, ..key() },
            Key { binding_id: "um_2", ..key() },
            Key { user_id: "u_2", ..key() },
            Key { member_id: "m_2", ..key() },
            Key { space_id: "s_2", ..key() },
        ];
        for other in &others {
            assert!(decode(&bytes, other).is_none(), "read under another key");
        }
        // Every truncation of the entry is refused, never misread.
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len], &key()).is_none(), "a truncated entry of {len} bytes was read");
        }
    }

    #[test]
    fn an_entry_that_does_not_fit_a_slot_is_not_filed() {
        let table = Table::<WORDS>::leaked(64, [9; 16]);
        let place = Place(table.place(5, "um_1").expect("a place"));
        let many: Vec<Grant> = (0..40).flat_map(|_| grants()).collect();
        assert!(!place.file(&key(), &actor(), &many), "40 times three grants");
        let mut long = actor();
        long.member.as_mut().unwrap().display_name = "x".repeat(Slot::<WORDS>::MAX_ENTRY);
        assert!(!place.file(&key(), &long, &grants()), "a display name as long as a slot");
        assert!(place.find(&key()).is_none());
        assert!(place.file(&key(), &actor(), &grants()), "the usual actor fits");
    }

    /// Filed and found through a table of 1 KiB slots: the actor under its key, nothing under another's.
    #[test]
    fn an_actor_is_found_through_the_table_under_its_key_only() {
        let table = Table::<WORDS>::leaked(64, [9; 16]);
        let place = Place(table.place(5, "um_1").expect("a place"));
        assert!(place.file(&key(), &actor(), &grants()));
        assert_eq!(place.find(&key()), Some((actor(), grants())));
        assert!(place.find(&Key { version: 43, ..key() }).is_none());
    }
}
