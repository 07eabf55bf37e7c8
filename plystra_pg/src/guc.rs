//! The extension's settings (GUCs). The REST front maps AUDIT_WRITE_MODE onto `plystra.audit_mode`.

use std::ffi::{CStr, CString};

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting, PostgresGucEnum};

/// Which decisions leave an audit row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PostgresGucEnum)]
pub enum AuditMode {
    #[name = c"always"]
    Always,
    #[name = c"deny_only"]
    DenyOnly,
    #[name = c"off"]
    Off,
}

impl AuditMode {
    pub fn writes(self, allow: bool) -> bool {
        match self {
            AuditMode::Always => true,
            AuditMode::DenyOnly => !allow,
            AuditMode::Off => false,
        }
    }
}

pub static AUDIT_MODE: GucSetting<AuditMode> = GucSetting::<AuditMode>::new(AuditMode::Always);

/// How many catalog entries a backend keeps between decisions (see `catalog`).
pub static CATALOG_CACHE_ENTRIES: GucSetting<i32> = GucSetting::<i32>::new(10_000);

/// How many actors a backend keeps between decisions (see `actor_kept`).
pub static ACTOR_CACHE_ENTRIES: GucSetting<i32> = GucSetting::<i32>::new(10_000);

/// The acting context, the request context and the credential of a transaction. They decide what row-level
/// security lets a transaction see and what the audit trail says of it, so they are SUSET: only the extension's
/// SECURITY DEFINER setters (set_actor, set_request_context, set_audit_space, set_credential; EXECUTE granted to the documented
/// roles) may set them. A role that may not call set_actor cannot reach the same with set_config.
const CONTEXT_SETTINGS: &[(&CStr, &CStr)] = &[
    (c"plystra.actor_user_id", c"The acting User of this transaction (plystra.set_actor)."),
    (c"plystra.actor_member_id", c"The acting Member of this transaction (plystra.set_actor)."),
    (c"plystra.actor_user_member_id", c"The acting UserMember binding of this transaction (plystra.set_actor)."),
    (c"plystra.actor_space_id", c"The acting Space of this transaction (plystra.set_actor)."),
    (c"plystra.request_id", c"The request id recorded on audit rows (plystra.set_request_context)."),
    (c"plystra.request_ip", c"The client IP recorded on audit rows (plystra.set_request_context)."),
    (c"plystra.request_user_agent", c"The user agent recorded on audit rows (plystra.set_request_context)."),
    (
        c"plystra.audit_space_id",
        c"The Space instance-level management audit rows are filed in (plystra.set_audit_space).",
    ),
    (c"plystra.credential_type", c"The authenticated credential's type (plystra.set_credential)."),
    (c"plystra.credential_user_id", c"The authenticated credential's user (plystra.set_credential)."),
    (c"plystra.credential_session_id", c"The authenticated session (plystra.set_credential)."),
    (c"plystra.credential_api_key_id", c"The authenticated API key (plystra.set_credential)."),
    (c"plystra.credential_actor_claimed", c"Whether the actor is one the credential named (plystra.set_credential)."),
];

static CONTEXT_VALUES: [GucSetting<Option<CString>>; 13] = [const { GucSetting::<Option<CString>>::new(None) }; 13];

pub fn register() {
    // SUSET: turning the audit off is an operator's decision, not something an application role can do to
    // hide its own decisions. Operators set it per role or database (ALTER ROLE ... SET plystra.audit_mode).
    GucRegistry::define_enum_guc(
        c"plystra.audit_mode",
        c"Which authorization decisions write an audit row: always, deny_only or off.",
        c"Management mutations are audited regardless. Set by superusers only.",
        &AUDIT_MODE,
        GucContext::Suset,
        GucFlags::default(),
    );
    // SUSET: a memory bound is the operator's; the answer never depends on it (0 only makes decisions read more).
    GucRegistry::define_int_guc(
        c"plystra.catalog_cache_entries",
        c"How many Resource Registry, Role and Permission entries a backend keeps between decisions.",
        c"0 keeps nothing. Past the bound the backend forgets every entry and starts again. Set by superusers only.",
        &CATALOG_CACHE_ENTRIES,
        0,
        1_000_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    // SUSET, like the catalog's bound: memory is the operator's; the answer never depends on it.
    GucRegistry::define_int_guc(
        c"plystra.actor_cache_entries",
        c"How many actors (User, Member, binding, Space, the Member's grants) a backend keeps between decisions.",
        c"0 keeps nothing. Past the bound the backend forgets every actor and starts again. Set by superusers only.",
        &ACTOR_CACHE_ENTRIES,
        0,
        1_000_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    for ((name, description), value) in CONTEXT_SETTINGS.iter().zip(CONTEXT_VALUES.iter()) {
        GucRegistry::define_string_guc(
            name,
            description,
            c"Set by the extension's setter functions only (SUSET); read with current_setting.",
            value,
            GucContext::Suset,
            GucFlags::DISALLOW_IN_FILE,
        );
    }
}
