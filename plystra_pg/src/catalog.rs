//! The catalog a backend keeps between decisions: the Resource Registry's types and actions (with their metadata,
//! which a trace shows), Roles, Permissions and RolePermissions, as a decision reads them.
//!
//! The rule that makes it sound (migration 011 writes its other half):
//! - every statement that writes one of those five tables gives `plystra.catalog_version` a fresh sequence
//!   value in the same transaction; a sequence value is never handed out twice, so the version a snapshot sees
//!   names exactly one state of the five tables as that snapshot sees them (committed changes, plus the
//!   transaction's own writes up to its current command);
//! - only a transaction that has written nothing uses or fills it: its snapshot shows committed changes only, and
//!   every committed change moved the version. A transaction that has written anything reads the tables (its
//!   own writes, a savepoint rolled back, a write earlier in the same statement are then exactly as visible as
//!   they are to SQL; an AFTER STATEMENT trigger's bump is not yet visible inside the statement);
//! - a decision first reads the version under its own snapshot (one probe), and uses what the backend keeps only
//!   when it was read under that same version of the same incarnation of the schema (a random id the version
//!   row is created with: a DROP/CREATE EXTENSION makes a new one, even in one transaction, where object ids
//!   such as the schema's can be handed out again); otherwise it forgets everything and reads again, keeping
//!   what it reads under the version it saw;
//! - so a grant committed by another session, a REPEATABLE READ transaction's older snapshot and a change replayed
//!   on a hot standby (the version row replicates with the data; no trigger fires there) are each seen exactly as
//!   the tables would show them, and so is everything a writing transaction does, which reads the tables.
//!
//! Memory: at most `plystra.catalog_cache_entries` entries per backend (default 10,000; 0 keeps nothing); past
//! that the backend forgets everything and starts again. Nothing is kept in shared memory.

use std::cell::RefCell;
use std::collections::HashMap;

use plystra_core::model::{Permission, ResourceAction, ResourceType, Role};

use crate::probe::Reader;

/// The registry entries of one (resource type, action).
pub type TypeAction = (Option<ResourceType>, Option<ResourceAction>);

#[derive(Default)]
struct Kept {
    /// The incarnation and the catalog version everything below was read under.
    key: Option<(String, i64)>,
    entries: usize,
    /// By (type key, action key, with metadata).
    registry: HashMap<(String, String, bool), TypeAction>,
    permissions: HashMap<(String, String), Vec<Permission>>,
    roles: HashMap<String, Option<Role>>,
    holds: HashMap<(String, String), bool>,
}

thread_local! {
    static KEPT: RefCell<Kept> = RefCell::new(Kept::default());
}

/// Proof that the kept catalog matches the snapshot of the decision being loaded: only [`Catalog::validate`]
/// makes one, with the decision's reader.
pub struct Catalog {
    enabled: bool,
}

impl Catalog {
    /// Reads the catalog version under `reader`'s snapshot and forgets what was kept under another.
    pub fn validate(reader: &Reader) -> Catalog {
        let limit = crate::guc::CATALOG_CACHE_ENTRIES.get();
        // A schema not yet updated to 1.6.0 (the library is replaced before ALTER EXTENSION UPDATE runs) has no
        // version: it keeps nothing and decides as before.
        if limit <= 0 || reader.wrote() || !reader.has_relation(c"catalog_version") {
            return Catalog { enabled: false };
        }
        let version = reader.one(c"catalog_version", c"catalog_version_pkey", &["catalog"], |row| {
            Some((row.text("incarnation")?, row.int8("version")?))
        });
        let Some(key) = version else {
            // No version row (a superuser deleted it): keep nothing.
            KEPT.with(|k| *k.borrow_mut() = Kept::default());
            return Catalog { enabled: false };
        };
        let key = Some(key);
        KEPT.with(|k| {
            let mut k = k.borrow_mut();
            if k.key != key || k.entries > limit as usize {
                *k = Kept { key, ..Kept::default() };
            }
        });
        Catalog { enabled: true }
    }

    fn kept<K, V: Clone>(&self, map: impl Fn(&mut Kept) -> &mut HashMap<K, V>, key: K, load: impl FnOnce() -> V) -> V
    where
        K: std::hash::Hash + Eq,
    {
        if !self.enabled {
            return load();
        }
        if let Some(v) = KEPT.with(|k| map(&mut k.borrow_mut()).get(&key).cloned()) {
            return v;
        }
        let v = load();
        KEPT.with(|k| {
            let mut k = k.borrow_mut();
            k.entries += 1;
            map(&mut k).insert(key, v.clone());
        });
        v
    }

    /// The resource type and action entries of (type key, action key).
    pub fn registry(
        &self,
        resource_type: &str,
        action: &str,
        with_metadata: bool,
        load: impl FnOnce() -> TypeAction,
    ) -> TypeAction {
        self.kept(|k| &mut k.registry, (resource_type.to_string(), action.to_string(), with_metadata), load)
    }

    /// The live Permissions for exactly (resource type, action).
    pub fn permissions(
        &self,
        resource_type: &str,
        action: &str,
        load: impl FnOnce() -> Vec<Permission>,
    ) -> Vec<Permission> {
        self.kept(|k| &mut k.permissions, (resource_type.to_string(), action.to_string()), load)
    }

    /// The live Role with this id.
    pub fn role(&self, role_id: &str, load: impl FnOnce() -> Option<Role>) -> Option<Role> {
        self.kept(|k| &mut k.roles, role_id.to_string(), load)
    }

    /// Whether a not-deleted RolePermission joins this Role to this Permission.
    pub fn holds(&self, role_id: &str, permission_id: &str, load: impl FnOnce() -> bool) -> bool {
        self.kept(|k| &mut k.holds, (role_id.to_string(), permission_id.to_string()), load)
    }
}
