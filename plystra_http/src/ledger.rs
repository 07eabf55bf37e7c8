//! The migration ledger this binary expects: every `migrations/*.sql` file, embedded at compile time by
//! build.rs, compared with the database's `plystra.schema_migrations` for readiness and version reports.

use deadpool_postgres::Object;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedMigration {
    pub version: &'static str,
    pub name: &'static str,
    pub checksum: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// The version of the last migration this binary knows.
pub fn expected_schema_version() -> &'static str {
    EXPECTED_MIGRATIONS.last().map(|m| m.version).unwrap_or("")
}

/// When this binary was built, RFC 3339.
pub fn build_time() -> String {
    time::OffsetDateTime::from_unix_timestamp(BUILD_UNIX_TIME).map(crate::db::rfc3339).unwrap_or_default()
}

/// What the database holds, compared with what this binary expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerState {
    Current {
        schema_version: String,
    },
    /// A reason the schema is not the one this binary was built for.
    NotCurrent {
        schema_version: String,
        problem: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    pub version: String,
    pub name: String,
    pub checksum: String,
}

/// Compares applied rows with the expected files: the same versions, each with the same checksum.
pub fn compare(applied: &[AppliedMigration], expected: &[ExpectedMigration]) -> LedgerState {
    let schema_version = applied.iter().map(|m| m.version.clone()).max().unwrap_or_default();
    for e in expected {
        match applied.iter().find(|a| a.version == e.version) {
            None => {
                return LedgerState::NotCurrent {
                    schema_version,
                    problem: format!("migration {} is not applied", e.version),
                }
            }
            Some(a) if a.checksum != e.checksum => {
                return LedgerState::NotCurrent {
                    schema_version,
                    problem: format!("migration {} has a different checksum", e.version),
                }
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = applied.iter().find(|a| !expected.iter().any(|e| e.version == a.version)) {
        return LedgerState::NotCurrent {
            schema_version,
            problem: format!("migration {} is applied but unknown to this server", extra.version),
        };
    }
    LedgerState::Current { schema_version }
}

/// Reads the ledger; `Err` carries a client-safe reason (no database detail).
pub async fn read_applied(client: &Object) -> Result<Vec<AppliedMigration>, String> {
    let installed =
        crate::store::ledger::installed_version(client).await.map_err(|_| "database query failed".to_string())?;
    if installed.is_none() {
        return Err("the plystra extension is not installed".into());
    }
    crate::store::ledger::applied(client)
        .await
        .map_err(|_| "the migration ledger plystra.schema_migrations cannot be read".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(version: &str, checksum: &str) -> AppliedMigration {
        AppliedMigration { version: version.into(), name: "x".into(), checksum: checksum.into() }
    }

    const EXPECTED: &[ExpectedMigration] = &[
        ExpectedMigration { version: "001", name: "core_schema", checksum: "aa" },
        ExpectedMigration { version: "002", name: "guards", checksum: "bb" },
    ];

    #[test]
    fn the_embedded_ledger_lists_every_migration_file() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
        let count = std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "sql"))
            .count();
        assert_eq!(EXPECTED_MIGRATIONS.len(), count);
        assert_eq!(EXPECTED_MIGRATIONS[0].version, "001");
        assert!(EXPECTED_MIGRATIONS.iter().all(|m| m.checksum.len() == 64));
    }

    #[test]
    fn current_only_when_every_file_is_applied_with_its_checksum() {
        assert_eq!(
            compare(&[applied("001", "aa"), applied("002", "bb")], EXPECTED),
            LedgerState::Current { schema_version: "002".into() }
        );
        assert!(matches!(compare(&[applied("001", "aa")], EXPECTED), LedgerState::NotCurrent { .. }));
        assert!(matches!(
            compare(&[applied("001", "aa"), applied("002", "zz")], EXPECTED),
            LedgerState::NotCurrent { .. }
        ));
        assert!(matches!(
            compare(&[applied("001", "aa"), applied("002", "bb"), applied("003", "cc")], EXPECTED),
            LedgerState::NotCurrent { .. }
        ));
    }
}
