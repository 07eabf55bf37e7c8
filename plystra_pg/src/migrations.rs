//! The migrations bundled into this build of the extension. The files in `migrations/` are the one source of
//! the schema: the install script embeds them (lib.rs) and the ledger records their SHA-256, computed here from
//! the very same bytes.

use pgrx::prelude::*;
use sha2::{Digest, Sha256};

/// (path, contents), in order (from `bundle_migrations!` in lib.rs). Released files never change.
pub const BUNDLED: &[(&str, &str)] = crate::BUNDLED_MIGRATIONS;

/// `../../migrations/001_core_schema.sql` → ("001", "core_schema"): the version is the file name up to the
/// first `_`.
pub fn split_name(path: &str) -> (&str, &str) {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.strip_suffix(".sql").unwrap_or(file);
    stem.split_once('_').unwrap_or((stem, ""))
}

pub fn checksum(contents: &str) -> String {
    hex::encode(Sha256::digest(contents.as_bytes()))
}

#[pg_extern(immutable, parallel_safe)]
fn bundled_migrations() -> TableIterator<'static, (name!(version, String), name!(name, String), name!(checksum, String))>
{
    TableIterator::new(BUNDLED.iter().map(|(file, contents)| {
        let (version, name) = split_name(file);
        (version.to_string(), name.to_string(), checksum(contents))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_ordered_and_unique() {
        let versions: Vec<&str> = BUNDLED.iter().map(|(f, _)| split_name(f).0).collect();
        let mut sorted = versions.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(versions, sorted);
        assert_eq!(split_name("001_core_schema.sql"), ("001", "core_schema"));
    }
}
