//! The extension's settings (GUCs). The REST front maps AUDIT_WRITE_MODE onto `plystra.audit_mode`.

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
}
