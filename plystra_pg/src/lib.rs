//! The `plystra` PostgreSQL extension: the Core schema (from `migrations/`), the decision engine as SQL
//! functions, and the audit writer. `CREATE EXTENSION plystra` on an empty database gives the whole Core.

use pgrx::prelude::*;

mod actor_kept;
mod actor_reach;
mod actor_shared;
mod admin;
mod api;
mod audit;
mod audit_append;
mod audit_writer;
mod catalog;
mod credential;
mod error;
mod gate;
mod group_shared;
mod guc;
mod jsonb;
mod kept;
mod kept_writes;
mod loader;
#[cfg(any(test, feature = "pg_test"))]
mod loader_oracle;
mod lookup;
mod migrations;
mod probe;
mod replay;
mod same_snapshot;
mod shared_slots;
mod shmem;
mod statement_cache;
mod transaction_end;

::pgrx::pg_module_magic!(name, version);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    guc::register();
    transaction_end::register();
    audit_writer::init();
    actor_shared::TIER.define();
    group_shared::TIER.define();
    shmem::install();
}

/// The one list of migration files. Each is embedded verbatim in the install script, in order, and in
/// `migrations::BUNDLED`, whose SHA-256s fill the ledger: both come from this list, so they cannot disagree.
/// A migration that names a function of the library (`needing`) comes after that function's CREATE in the install
/// script.
macro_rules! bundle_migrations {
    ($first:literal as $first_name:literal
     $(, $path:literal as $name:literal after $prev:literal $(needing $($needs:path),+)?)* $(,)?) => {
        extension_sql_file!($first, name = $first_name, bootstrap);
        $( extension_sql_file!($path, name = $name, requires = [$prev $($(, $needs)+)?]); )*
        pub(crate) const BUNDLED_MIGRATIONS: &[(&str, &str)] =
            &[($first, include_str!($first)) $(, ($path, include_str!($path)))*];
    };
}

bundle_migrations!(
    "../../migrations/001_core_schema.sql" as "migration_001",
    "../../migrations/002_invariants.sql" as "migration_002" after "migration_001",
    "../../migrations/003_management_audit.sql" as "migration_003" after "migration_002",
    "../../migrations/004_audit_chain.sql" as "migration_004" after "migration_003",
    "../../migrations/005_auth.sql" as "migration_005" after "migration_004",
    "../../migrations/006_trust.sql" as "migration_006" after "migration_005",
    "../../migrations/007_front_decision.sql" as "migration_007" after "migration_006",
    "../../migrations/008_context_mode.sql" as "migration_008" after "migration_007",
    "../../migrations/009_audit_partitions.sql" as "migration_009" after "migration_008",
    "../../migrations/010_replay.sql" as "migration_010" after "migration_009",
    "../../migrations/011_catalog_version.sql" as "migration_011" after "migration_010",
    "../../migrations/012_audit_keys.sql" as "migration_012" after "migration_011",
    "../../migrations/013_simulate.sql" as "migration_013" after "migration_012",
    "../../migrations/014_actor_version.sql" as "migration_014" after "migration_013",
    "../../migrations/015_credential_version.sql" as "migration_015" after "migration_014",
    "../../migrations/016_instance_rows_audit.sql" as "migration_016" after "migration_015",
    "../../migrations/017_reserved_resource_types.sql" as "migration_017" after "migration_016",
    "../../migrations/018_resource_id_hash.sql" as "migration_018" after "migration_017",
    "../../migrations/019_mapping_version.sql" as "migration_019" after "migration_018",
    "../../migrations/020_audit_actor_space.sql" as "migration_020" after "migration_019",
    "../../migrations/021_api_key_bounds.sql" as "migration_021" after "migration_020",
    "../../migrations/022_audit_writer_stats.sql" as "migration_022" after "migration_021",
    "../../migrations/023_kept_rows_written.sql" as "migration_023" after "migration_022"
        needing kept_writes::mark_kept_rows_written,
    "../../migrations/024_audit_partition_locks.sql" as "migration_024" after "migration_023",
    "../../migrations/025_audit_partition_catalog.sql" as "migration_025" after "migration_024",
    "../../migrations/026_audit_partition_settings.sql" as "migration_026" after "migration_025",
    "../../migrations/027_admin_lock_modes.sql" as "migration_027" after "migration_026",
);

// The decision API's SQL faces need the Rust function they wrap.
extension_sql_file!("../../sql/api.sql", name = "api", requires = [api::decide_request]);
// Functions only (no table references), so they may come anywhere after the schema exists.
extension_sql_file!("../../sql/actor_context.sql", name = "actor_context", requires = ["migration_001"]);
// Everything that must come after the Rust functions exist: the ledger, pg_dump registration, comments.
extension_sql_file!("../../sql/finalize.sql", name = "finalize", finalize);

mod pg_tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
