//! The `plystra` PostgreSQL extension: the Core schema (from `migrations/`), the decision engine as SQL
//! functions, and the audit writer. `CREATE EXTENSION plystra` on an empty database gives the whole Core.

use pgrx::prelude::*;

mod api;
mod audit;
mod error;
mod guc;
mod loader;
mod migrations;

::pgrx::pg_module_magic!(name, version);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    guc::register();
}

// The schema: the migration files, in order, verbatim.
extension_sql_file!("../../migrations/001_core_schema.sql", name = "migration_001", bootstrap);
extension_sql_file!("../../sql/actor_context.sql", name = "actor_context", requires = ["migration_001"]);
// Everything that must come after the Rust functions exist: the ledger, pg_dump registration, comments.
extension_sql_file!("../../sql/finalize.sql", name = "finalize", finalize);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
