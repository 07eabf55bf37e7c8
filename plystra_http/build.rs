//! Embeds the expected migration ledger (version, name, SHA-256 of each `migrations/*.sql`) in the binary, so
//! that `/api/v1/ready` can tell whether the database's `plystra.schema_migrations` is current without reading
//! files at run time.

use std::fmt::Write as _;
use std::path::Path;

use sha2::{Digest, Sha256};

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("migrations/ must exist next to plystra_http/")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    let mut out = String::from("pub const EXPECTED_MIGRATIONS: &[ExpectedMigration] = &[\n");
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let file_name = path.file_name().unwrap().to_string_lossy().to_string();
        let stem = file_name.trim_end_matches(".sql");
        let (version, name) = stem.split_once('_').unwrap_or((stem, ""));
        let checksum = hex::encode(Sha256::digest(std::fs::read(path).unwrap()));
        writeln!(out, "    ExpectedMigration {{ version: {version:?}, name: {name:?}, checksum: {checksum:?} }},")
            .unwrap();
    }
    out.push_str("];\n");
    // The files themselves, for plystractl (schema check builds a scratch schema from them).
    out.push_str("pub const MIGRATION_FILES: &[(&str, &str)] = &[\n");
    for path in &files {
        let file_name = path.file_name().unwrap().to_string_lossy().to_string();
        let absolute = path.canonicalize().unwrap();
        writeln!(out, "    ({file_name:?}, include_str!({:?})),", absolute.display().to_string()).unwrap();
    }
    out.push_str("];\n");
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    writeln!(out, "pub const BUILD_UNIX_TIME: i64 = {secs};").unwrap();
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("migrations.rs");
    std::fs::write(dest, out).unwrap();
}
