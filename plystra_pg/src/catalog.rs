//! The catalog a backend keeps between decisions: the Resource Registry's types and actions (with their metadata,
//! which a trace shows) and, since 1.15.0, its mappings (a trace shows a type's mapping; an inline resource is read
//! through it), Roles, Permissions and RolePermissions, as a decision reads them; and, since 1.10.0, what
//! the REST front's gate reads of an active API key (`credential::KeyReading`: the key, its anchor, its Space's
//! state, its creator's User row and admin grants) and of a session's User (`credential::UserReading`: active, and its admin grants;
//! the session's own row is read every time), whose HMACs and expiry times are still judged at every use.
//!
//! The rule that makes it sound (migrations 011, 015, 019 and 021 write its other half):
//! - every statement that writes one of those six tables, writes `admin_grants`, inserts or deletes an API key or
//!   changes one in anything but its bookkeeping (`last_used_at`, `updated_at`), or changes a User's or a Space's
//!   id, status or deleted_at (or deletes one) gives `plystra.catalog_version` a fresh sequence value in the same transaction
//!   (a key's anchor group needs nothing: a group's Space and path never change and groups are soft-delete only,
//!   and the gate reads an anchor whatever its status); a sequence value is never handed out twice, so the version
//!   a snapshot sees names exactly one state of those rows as that snapshot sees them (committed changes, plus the
//!   transaction's own writes up to its current command);
//! - only a transaction that has written no kept row uses or fills it (`kept_writes`: a trigger marks a transaction
//!   before it writes one): for these tables its snapshot shows committed changes only, and every committed change
//!   moved the version. A transaction that has written a kept row reads the tables (its own writes, a savepoint
//!   rolled back, a write earlier in the same statement are then exactly as visible as they are to SQL; an AFTER
//!   STATEMENT trigger's bump is not yet visible inside the statement);
//! - a decision first reads the version under its own snapshot (one probe, or the row last read when its snapshot
//!   shows exactly the same committed rows as the one it was read under: `same_snapshot`), and uses what the
//!   backend keeps only when it was read under that same version of the same incarnation of the schema (a random id the version
//!   row is created with: a DROP/CREATE EXTENSION makes a new one, even in one transaction, where object ids
//!   such as the schema's can be handed out again); otherwise it forgets everything and reads again, keeping
//!   what it reads under the version it saw;
//! - so a grant committed by another session, a REPEATABLE READ transaction's older snapshot and a change replayed
//!   on a hot standby (the version row replicates with the data; no trigger fires there) are each seen exactly as
//!   the tables would show them, and so is everything a writing transaction does, which reads the tables;
//! - a revoked, deleted or missing key, or a session User that is not active, is never kept (it is read again at
//!   each use), so a caller presenting made-up key ids fills nothing.
//!
//! Memory: at most `plystra.catalog_cache_entries` entries per backend (default 10,000; 0 keeps nothing), an API
//! key or a session's User counting as one; past that the backend forgets everything and starts again. Nothing is kept in shared
//! memory.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use plystra_core::model::{Permission, ResourceAction, ResourceMapping, ResourceType, Role};

use crate::credential::{KeyReading, UserReading};
use crate::probe::Reader;
use crate::same_snapshot::Remembered;

/// The registry entries of one (resource type, action).
pub type TypeAction = (Option<ResourceType>, Option<ResourceAction>);

#[derive(Default)]
struct Kept {
    /// The incarnation and the catalog version everything below was read under.
    key: Option<(String, i64)>,
    entries: usize,
    /// By (type key, action key, with metadata).
    registry: HashMap<(String, String, bool), TypeAction>,
    /// By (resource type id, with metadata): a type's mapping (`None`: it has none).
    mappings: HashMap<(String, bool), Option<ResourceMapping>>,
    permissions: HashMap<(String, String), Vec<Permission>>,
    roles: HashMap<String, Option<Role>>,
    holds: HashMap<(String, String), bool>,
    /// By API key id: only keys found active (a missing or revoked key is read again each time).
    api_keys: HashMap<String, Rc<KeyReading>>,
    /// By User id, for sessions: only Users found active and not deleted.
    session_users: HashMap<String, Rc<UserReading>>,
}

thread_local! {
    static KEPT: RefCell<Kept> = RefCell::new(Kept::default());
    /// Inside [`Catalog::one_snapshot`]: the statement snapshot its first validation read under, and whether that
    /// validation let the catalog be used (`None` until then).
    static VALIDATED: Cell<Option<Option<(usize, Catalog)>>> = const { Cell::new(None) };
    /// The version row as last read, for readings whose snapshot shows the same committed rows (`same_snapshot`).
    static VERSION_ROW: RefCell<Remembered<Option<VersionRow>>> = RefCell::new(Remembered::default());
}

/// The catalog version row as a decision reads it: (incarnation, version, keeps_api_keys, keeps_resource_mappings,
/// keeps_key_space_state).
type VersionRow = (String, i64, bool, bool, bool);

/// Proof that the kept catalog matches the snapshot of the decision being loaded: only [`Catalog::validate`]
/// makes one, with the decision's reader.
#[derive(Clone, Copy)]
pub struct Catalog {
    enabled: bool,
    /// Whether credentials (an API key's reading, a session's User's standing) may be kept too: the schema's
    /// version moves with what they depend on (migration 015's `catalog_version.keeps_api_keys`; a library replaced
    /// before `ALTER EXTENSION UPDATE` finds no such column and keeps none).
    credentials: bool,
    /// Whether resource mappings may be kept: the schema's version moves with their writes (migration 019's
    /// `catalog_version.keeps_resource_mappings`; an older schema has no such column and keeps none).
    mappings: bool,
    /// Whether API keys' readings may be kept: the version moves with a Space's state too, which a key's reading
    /// includes (migration 021's `catalog_version.keeps_key_space_state`; an older schema keeps no key).
    key_spaces: bool,
}

const NOTHING: Catalog = Catalog { enabled: false, credentials: false, mappings: false, key_spaces: false };

impl Catalog {
    /// Reads the catalog version under `reader`'s snapshot and forgets what was kept under another.
    pub fn validate(reader: &Reader) -> Catalog {
        if !reader.keeps() {
            return NOTHING;
        }
        let snapshot = reader.statement_snapshot();
        if let (Some(Some((seen, catalog))), Some(snapshot)) = (VALIDATED.get(), snapshot) {
            if seen == snapshot {
                return catalog;
            }
        }
        let catalog = Catalog::read_version(reader);
        if let (Some(None), Some(snapshot)) = (VALIDATED.get(), snapshot) {
            VALIDATED.set(Some(Some((snapshot, catalog))));
        }
        catalog
    }

    /// Runs `f`, one function call whose readers all read under the one snapshot of its statement (a transaction
    /// that has written nothing reads with the active snapshot, which stays the same for the whole call), reading
    /// the catalog version once for all of them: the REST front's gate validates it for the credential and again
    /// for the decision it loads.
    pub fn one_snapshot<R>(f: impl FnOnce() -> R) -> R {
        struct Restore(Option<Option<(usize, Catalog)>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                VALIDATED.set(self.0);
            }
        }
        let _restore = Restore(VALIDATED.replace(Some(None)));
        f()
    }

    fn read_version(reader: &Reader) -> Catalog {
        let limit = crate::guc::CATALOG_CACHE_ENTRIES.get();
        // A schema not yet updated to 1.6.0 (the library is replaced before ALTER EXTENSION UPDATE runs) has no
        // version: it keeps nothing and decides as before.
        if limit <= 0 || !reader.keeps() || !reader.has_relation(c"catalog_version") {
            return NOTHING;
        }
        let version = VERSION_ROW.with(|r| {
            r.borrow_mut().get_or_read(reader, "catalog", || {
                reader.one(c"catalog_version", c"catalog_version_pkey", &["catalog"], |row| {
                    let credentials = row.has_column("keeps_api_keys") && row.boolean("keeps_api_keys");
                    let mappings = row.has_column("keeps_resource_mappings") && row.boolean("keeps_resource_mappings");
                    let key_spaces = row.has_column("keeps_key_space_state") && row.boolean("keeps_key_space_state");
                    Some((row.text("incarnation")?, row.int8("version")?, credentials, mappings, key_spaces))
                })
            })
        });
        let Some((incarnation, version, credentials, mappings, key_spaces)) = version else {
            // No version row (a superuser deleted it): keep nothing.
            KEPT.with(|k| *k.borrow_mut() = Kept::default());
            return NOTHING;
        };
        let key = Some((incarnation, version));
        KEPT.with(|k| {
            let mut k = k.borrow_mut();
            if k.key != key || k.entries > limit as usize {
                *k = Kept { key, ..Kept::default() };
            }
        });
        Catalog { enabled: true, credentials, mappings, key_spaces }
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

    /// The mapping of the resource type `type_id` (`None`: the type has none), kept only where the schema's version
    /// moves with the mappings' writes (`keeps_resource_mappings`, migration 019).
    pub fn mapping(
        &self,
        type_id: &str,
        with_metadata: bool,
        load: impl FnOnce() -> Option<ResourceMapping>,
    ) -> Option<ResourceMapping> {
        if !self.mappings {
            return load();
        }
        self.kept(|k| &mut k.mappings, (type_id.to_string(), with_metadata), load)
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

    /// What the gate reads of the active API key `id` (`None`: missing or not active, never kept), kept only where
    /// the version moves with its Space's state too (`keeps_key_space_state`, migration 021).
    pub fn api_key(&self, id: &str, load: impl FnOnce() -> Option<Rc<KeyReading>>) -> Option<Rc<KeyReading>> {
        if !self.key_spaces {
            return load();
        }
        self.kept_found(|k| &mut k.api_keys, id, load)
    }

    /// What the gate reads of a session's User `id` (`None`: missing, not active or deleted, never kept).
    pub fn session_user(&self, id: &str, load: impl FnOnce() -> Option<Rc<UserReading>>) -> Option<Rc<UserReading>> {
        self.kept_found(|k| &mut k.session_users, id, load)
    }

    /// A credential's reading by id, kept only when found, and only where the schema's version moves with what it
    /// depends on (`keeps_api_keys`, migration 015).
    fn kept_found<V>(
        &self,
        map: impl Fn(&mut Kept) -> &mut HashMap<String, Rc<V>>,
        id: &str,
        load: impl FnOnce() -> Option<Rc<V>>,
    ) -> Option<Rc<V>> {
        if !self.enabled || !self.credentials {
            return load();
        }
        if let Some(kept) = KEPT.with(|k| map(&mut k.borrow_mut()).get(id).cloned()) {
            return Some(kept);
        }
        let read = load()?;
        KEPT.with(|k| {
            let mut k = k.borrow_mut();
            k.entries += 1;
            map(&mut k).insert(id.to_string(), read.clone());
        });
        Some(read)
    }

    /// Whether a not-deleted RolePermission joins this Role to this Permission.
    pub fn holds(&self, role_id: &str, permission_id: &str, load: impl FnOnce() -> bool) -> bool {
        self.kept(|k| &mut k.holds, (role_id.to_string(), permission_id.to_string()), load)
    }
}
