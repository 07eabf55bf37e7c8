//! The store: all of the front's SQL, one module per table or concept, each statement in a `.sql` file beside
//! its module (`include_str!`), one statement a file, named for what it does. Handlers extract, call a store
//! function and wrap its answer; they write no SQL. Where a rule is the extension's (a usable binding, an active
//! admin grant, a live credential), the statement reads its view or calls its function rather than restating it.

pub mod acting;
pub mod admin_grants;
pub mod api_keys;
pub mod audit;
pub mod credentials;
pub mod crud;
pub mod decisions;
pub mod groups;
pub mod ledger;
pub mod login_failures;
pub mod lookups;
pub mod member_roles;
pub mod members;
pub mod permissions;
pub mod registry;
pub mod replication;
pub mod resources;
pub mod role_permissions;
pub mod roles;
pub mod scopes;
pub mod sessions;
pub mod spaces;
pub mod standing;
pub mod system;
pub mod user_members;
pub mod users;

#[cfg(test)]
mod tests {
    //! The store is the one place for the front's SQL: these read the source tree.

    use std::path::{Path, PathBuf};

    /// Files whose SQL is not the front's (plystractl, its own crate, keeps its own).
    const NOT_THE_FRONT: &[&str] = &[];

    /// String literals outside the store that start like a statement but are not one, each with why.
    const NOT_STATEMENTS: &[(&str, &str)] = &[
        // The needles that name a statement's object in its span name (telemetry::statement_summary).
        ("telemetry.rs", "UPDATE PLYSTRA."),
    ];

    const VERBS: &[&str] = &["SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "CREATE", "ALTER", "LOCK"];

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable source folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The string literals of `source` (before its `#[cfg(test)]` module) that begin with an SQL verb followed
    /// by a space or a line break, after an optional line continuation: `"SELECT …`, `r"UPDATE …`, `"\
    /// DELETE …`.
    fn statement_literals(source: &str) -> Vec<String> {
        let code = source.split("#[cfg(test)]\nmod ").next().unwrap_or(source);
        let mut found = Vec::new();
        for (i, _) in code.match_indices('"') {
            let rest = code[i + 1..].trim_start_matches('\\').trim_start();
            for verb in VERBS {
                if let Some(after) = rest.strip_prefix(verb) {
                    if after.starts_with([' ', '\n']) {
                        found.push(rest.lines().next().unwrap_or("").to_string());
                    }
                }
            }
        }
        found
    }

    #[test]
    fn no_sql_statement_is_written_outside_the_store() {
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut offenders = Vec::new();
        for file in files {
            let relative = file.strip_prefix(&src).expect("under src");
            let first = relative.components().next().and_then(|c| c.as_os_str().to_str()).unwrap_or("");
            if first == "store" || NOT_THE_FRONT.contains(&first) {
                continue;
            }
            let source = std::fs::read_to_string(&file).expect("readable source file");
            for literal in statement_literals(&source) {
                let allowed =
                    NOT_STATEMENTS.iter().any(|(f, text)| relative == Path::new(f) && literal.starts_with(text));
                if !allowed {
                    offenders.push(format!("{}: {literal}", relative.display()));
                }
            }
        }
        assert!(offenders.is_empty(), "SQL outside plystra_http/src/store:\n{}", offenders.join("\n"));
    }

    #[test]
    fn the_check_sees_a_statement_in_any_spelling_of_a_literal() {
        let source = concat!(
            "let a = \"SELECT 1\";\n",
            "let b = r\"UPDATE plystra.users SET x = 1\";\n",
            "let c = \"\\\n    DELETE FROM plystra.sessions\";\n",
            "let d = \"WITH\nx AS (SELECT 1) SELECT * FROM x\";\n",
            "let e = format!(\"INSERT INTO plystra.{} VALUES ($1)\", t);\n",
            "let not_sql = [\"DELETE\", \"Selected\", \"UPDATED\", \"select 1\"];\n",
            "#[cfg(test)]\nmod tests { const X: &str = \"SELECT 2\"; }\n",
        );
        let found = statement_literals(source);
        assert_eq!(found.len(), 5, "{found:?}");
        assert!(found.iter().all(|f| !f.contains("SELECT 2")), "test modules are not the product's SQL");
    }

    #[test]
    fn every_sql_file_in_the_store_is_loaded_by_its_module() {
        let store = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/store");
        let mut modules = String::new();
        let mut sql_files = Vec::new();
        for entry in std::fs::read_dir(&store).expect("the store folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                for sql in std::fs::read_dir(&path).expect("a module's SQL folder") {
                    sql_files.push(sql.expect("a folder entry").path());
                }
            } else {
                modules.push_str(&std::fs::read_to_string(&path).expect("a store module"));
            }
        }
        assert!(!sql_files.is_empty());
        for sql in sql_files {
            let relative = sql.strip_prefix(&store).expect("under the store").display().to_string();
            assert!(relative.ends_with(".sql"), "only .sql files beside the modules: {relative}");
            assert!(modules.contains(&format!("include_str!(\"{relative}\")")), "{relative} is loaded by no module");
            // A statement's span is named by its first word and object (telemetry::statement_summary): the file
            // starts with the statement itself; what it does is said on the Rust function that loads it.
            let text = std::fs::read_to_string(&sql).expect("a statement");
            assert!(VERBS.iter().any(|v| text.starts_with(v)), "{relative} must start with its statement");
        }
    }
}
