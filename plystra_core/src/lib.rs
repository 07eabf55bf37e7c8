//! Plystra's decision core: plain Rust over plain structs, with no database and no clock.
//!
//! The extension (`plystra_pg`) loads a [`model::Context`] in one query, calls [`decide::decide`], and writes
//! the audit row; each step is separate so this part can be tested exhaustively without PostgreSQL.

pub mod admin;
pub mod audit_chain;
pub mod closed_sets;
pub mod contract;
pub mod decide;
pub mod deny;
pub mod inline;
pub mod jsonb;
pub mod model;
pub mod reach;
pub mod redact;
pub mod replay;
pub mod request;
pub mod scope;
pub mod trace;

#[cfg(test)]
mod demo_tests;

/// Every migration's text, in order: what the tests that hold a Rust list equal to the schema read.
#[cfg(test)]
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/001_core_schema.sql"),
    include_str!("../../migrations/002_invariants.sql"),
    include_str!("../../migrations/003_management_audit.sql"),
    include_str!("../../migrations/004_audit_chain.sql"),
    include_str!("../../migrations/005_auth.sql"),
    include_str!("../../migrations/006_trust.sql"),
    include_str!("../../migrations/007_front_decision.sql"),
    include_str!("../../migrations/008_context_mode.sql"),
    include_str!("../../migrations/009_audit_partitions.sql"),
    include_str!("../../migrations/010_replay.sql"),
    include_str!("../../migrations/011_catalog_version.sql"),
    include_str!("../../migrations/012_audit_keys.sql"),
    include_str!("../../migrations/013_simulate.sql"),
    include_str!("../../migrations/014_actor_version.sql"),
    include_str!("../../migrations/015_credential_version.sql"),
    include_str!("../../migrations/016_instance_rows_audit.sql"),
    include_str!("../../migrations/017_reserved_resource_types.sql"),
    include_str!("../../migrations/018_resource_id_hash.sql"),
    include_str!("../../migrations/019_mapping_version.sql"),
    include_str!("../../migrations/020_audit_actor_space.sql"),
    include_str!("../../migrations/021_api_key_bounds.sql"),
    include_str!("../../migrations/022_audit_writer_stats.sql"),
    include_str!("../../migrations/023_kept_rows_written.sql"),
    include_str!("../../migrations/024_audit_partition_locks.sql"),
    include_str!("../../migrations/025_audit_partition_catalog.sql"),
    include_str!("../../migrations/026_audit_partition_settings.sql"),
    include_str!("../../migrations/027_admin_lock_modes.sql"),
];

pub use decide::{decide, Outcome};
pub use deny::DenyCode;

#[cfg(test)]
mod migrations_listed {
    #[test]
    fn every_migration_file_is_listed() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations");
        let files = std::fs::read_dir(dir)
            .expect("migrations/")
            .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql")))
            .count();
        assert_eq!(super::MIGRATIONS.len(), files, "a migration in {dir} is missing from MIGRATIONS");
    }
}
