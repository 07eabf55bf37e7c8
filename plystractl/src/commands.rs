//! plystractl's commands. They share the server's configuration (DATABASE_URL and the rest,
//! [`plystra_http::config`]), its embedded migration ledger ([`plystra_http::ledger`]) and the way it applies it
//! ([`plystra_http::migrate`]); the production refusals are the server's own ([`Config::production_problems`]).

use std::collections::BTreeSet;

use plystra_http::config::Config;
use plystra_http::ledger::{self, LedgerState, EXPECTED_MIGRATIONS, MIGRATION_FILES};
use plystra_http::migrate::{self, applied, connect, statuses};
use tokio_postgres::{Client, NoTls};

/// sql/demo.sql, embedded: the Finance Reviewer demo.
pub const DEMO_SQL: &str = include_str!("../../sql/demo.sql");

/// A command failure: the message printed on stderr, exit code 1.
pub use plystra_http::migrate::CommandError as CliError;

pub type CliResult<T = ()> = Result<T, CliError>;

pub async fn migrate_status(client: &Client) -> CliResult {
    for (v, n, s) in statuses(&applied(client).await?, EXPECTED_MIGRATIONS) {
        println!("{v} {n} {s}");
    }
    Ok(())
}

pub async fn migrate_plan(client: &Client) -> CliResult {
    let st = statuses(&applied(client).await?, EXPECTED_MIGRATIONS);
    let pending: Vec<_> = st.iter().filter(|(_, _, s)| *s == "pending").collect();
    if pending.is_empty() {
        println!("no pending migrations");
    }
    for (v, n, _) in pending {
        println!("pending {v} {n}");
    }
    Ok(())
}

pub async fn migrate_verify(client: &Client) -> CliResult {
    migrate::verify(&applied(client).await?)?;
    println!("migrations verified");
    Ok(())
}

/// Installs the extension (every bundled migration), or updates it to the installed version's upgrade path.
pub async fn migrate_up(client: &Client) -> CliResult {
    for a in migrate::up(client).await? {
        println!("applied {} {}", a.version, a.name);
    }
    println!("migrations current");
    Ok(())
}

/// What `schema check` compares: tables, columns, defaults, constraints, indexes, triggers, relations, privileges and
/// policies of schema plystra (the description tests/catalog_check.sh compares too).
const DESCRIBE_SQL: &str = include_str!("../../sql/catalog/describe.sql");

/// The name under which describe.sql lists the lines of every monthly audit partition.
const MONTH_PLACEHOLDER: &str = "audit_logs_<month>";

/// Every function of schema plystra with a digest of its definition and who may execute it.
const FUNCTIONS_SQL: &str = include_str!("../../sql/catalog/functions.sql");

async fn lines(client: &Client, sql: &str) -> CliResult<BTreeSet<String>> {
    Ok(client.query(sql, &[]).await?.iter().map(|r| r.get::<_, String>(0)).collect())
}

/// The differences between the live catalog and what the embedded migrations describe: every object of the
/// migrations must exist identically, and no table, column, constraint, index or trigger may be extra (the
/// extension's own functions may be, they are not in the migrations).
pub async fn schema_drift(url: &str, client: &Client) -> CliResult<Vec<String>> {
    // Named after the checked database's oid, so that a scratch database left by a killed check says whose it was.
    let checked: String =
        client.query_one("SELECT oid::text FROM pg_database WHERE datname = current_database()", &[]).await?.get(0);
    let scratch = format!("plystra_schema_check_{checked}_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    client.batch_execute(&format!("CREATE DATABASE {scratch}")).await.map_err(|e| {
        CliError(format!("schema check needs a scratch database (the role needs CREATEDB): {}", CliError::from(e)))
    })?;
    let result = async {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| CliError(format!("DATABASE_URL is not a PostgreSQL URL: {e}")))?;
        config.dbname(&scratch);
        let (scratch_client, conn) = config
            .connect(NoTls)
            .await
            .map_err(|e| CliError(format!("cannot connect to the scratch database: {e}")))?;
        let handle = tokio::spawn(async move {
            let _ = conn.await;
        });
        scratch_client.batch_execute("CREATE SCHEMA plystra").await?;
        for (name, sql) in MIGRATION_FILES {
            scratch_client.batch_execute(sql).await.map_err(|e| {
                CliError(format!("migration {name} does not apply to an empty schema: {}", CliError::from(e)))
            })?;
        }
        // The privileges, as the install script's last step grants them (sql/finalize.sql); then one month as the
        // migrations' function makes it, to compare the live database's months with (they are
        // described under one name); left out of the comparison when the live database has none.
        scratch_client
            .batch_execute(
                "SELECT plystra.apply_privileges(); SELECT plystra.create_audit_partition('2000-01-01 00:00:00+00')",
            )
            .await?;
        let mut want = lines(&scratch_client, DESCRIBE_SQL).await?;
        let want_fn = lines(&scratch_client, FUNCTIONS_SQL).await?;
        drop(scratch_client);
        let _ = handle.await;
        let have = lines(client, DESCRIBE_SQL).await?;
        if !have.iter().any(|line| line.contains(MONTH_PLACEHOLDER)) {
            want.retain(|line| !line.contains(MONTH_PLACEHOLDER));
        }
        let have_fn = lines(client, FUNCTIONS_SQL).await?;
        let mut drift = Vec::new();
        for missing in want.difference(&have) {
            drift.push(format!("missing or different: {missing}"));
        }
        for extra in have.difference(&want) {
            drift.push(format!("not in the migrations: {extra}"));
        }
        for f in want_fn.difference(&have_fn) {
            drift.push(format!("function missing or different: {f}"));
        }
        Ok(drift)
    }
    .await;
    let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")).await;
    result
}

pub async fn schema_check(url: &str, client: &Client) -> CliResult {
    let drift = schema_drift(url, client).await?;
    if drift.is_empty() {
        println!("schema is in sync with the migrations");
        Ok(())
    } else {
        Err(CliError(format!("schema drift detected; update versioned migrations:\n{}", drift.join("\n"))))
    }
}

pub async fn seed_demo(client: &Client) -> CliResult {
    client.batch_execute(DEMO_SQL).await?;
    println!("demo data loaded (Finance Reviewer)");
    Ok(())
}

/// `ag_<user_id with anything but letters, digits and _ replaced by _>_instance_super_admin`.
pub fn default_grant_id(user_id: &str) -> String {
    let clean: String =
        user_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).take(96).collect();
    format!("ag_{clean}_instance_super_admin")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IfExists {
    Error,
    Ok,
}

pub async fn bootstrap_super_admin(
    client: &mut Client,
    user_id: &str,
    member_id: Option<&str>,
    grant_id: Option<&str>,
    if_exists: IfExists,
) -> CliResult {
    let grant_id = grant_id.map(str::to_string).unwrap_or_else(|| default_grant_id(user_id));
    let tx = client.transaction().await?;
    let user =
        tx.query_opt("SELECT status FROM plystra.users WHERE id = $1 AND deleted_at IS NULL", &[&user_id]).await?;
    match user {
        None => return Err(CliError(format!("user {user_id} does not exist"))),
        Some(r) if r.get::<_, String>(0) != "active" => return Err(CliError(format!("user {user_id} is not active"))),
        Some(_) => {}
    }
    if tx.query_opt("SELECT 1 FROM plystra.admin_grants WHERE id = $1", &[&grant_id]).await?.is_some() {
        return match if_exists {
            IfExists::Ok => {
                println!("admin grant {grant_id} already exists");
                Ok(())
            }
            IfExists::Error => Err(CliError(format!("admin grant {grant_id} already exists (use --if-exists ok)"))),
        };
    }
    let request_id = format!("plystractl_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    tx.execute("SELECT plystra.set_actor($1, $2, NULL, NULL)", &[&user_id, &member_id]).await?;
    tx.execute("SELECT plystra.set_request_context($1, NULL, 'plystractl')", &[&request_id]).await?;
    tx.execute(
        "INSERT INTO plystra.admin_grants (id, user_id, member_id, level, permission_key, metadata)
         VALUES ($1, $2, $3, 'instance_super_admin', '*', '{\"source\":\"plystractl bootstrap-super-admin\"}')",
        &[&grant_id, &user_id, &member_id],
    )
    .await?;
    tx.commit().await?;
    println!("created admin grant {grant_id}: {user_id} is an instance super admin");
    Ok(())
}

pub async fn audit_verify(client: &Client) -> CliResult {
    let lines = audit_chain_lines(client).await?;
    for (line, _) in &lines {
        println!("{line}");
    }
    if lines.is_empty() {
        println!("no audit rows yet");
    }
    // After an archive (1.6.0), the live chains were checked from the archived links they continue from.
    let archived = client
        .query_opt(
            "SELECT (SELECT count(*) FROM plystra.audit_archives), (SELECT coalesce(sum(row_count), 0)::bigint FROM plystra.audit_archives),
                    (SELECT count(*) FROM plystra.audit_archived_links)
             WHERE pg_catalog.to_regclass('plystra.audit_archives') IS NOT NULL",
            &[],
        )
        .await;
    if let Ok(Some(r)) = archived {
        let (archives, rows, links): (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
        if archives > 0 {
            println!(
                "archived: {archives} archives ({rows} rows); the live chains continue from {links} archived links"
            );
        }
    }
    match lines.into_iter().find(|(_, problem)| *problem) {
        Some((line, _)) => Err(CliError(format!("audit chain problem: {line}"))),
        None => Ok(()),
    }
}

/// One line per chain from `plystra.verify_audit_chain()`, and whether it reports a problem: a broken link, a
/// chain cut short, or rows left unsealed longer than `plystra.audit_unsealed_alarm` (sealing held back).
async fn audit_chain_lines(client: &Client) -> Result<Vec<(String, bool)>, CliError> {
    let rows = client.query("SELECT * FROM plystra.verify_audit_chain()", &[]).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let space: String = r.get("space_key");
            let sealed: i64 = r.get("sealed_rows");
            let unsealed: i64 = r.get("unsealed_rows");
            let broken: Option<i64> = r.get("broken_at_position");
            let id: Option<String> = r.get("broken_audit_id");
            let problem: Option<String> = r.get("problem");
            let space_label = if space.is_empty() { "(no space)".to_string() } else { space };
            match (broken, problem) {
                (None, None) => (format!("{space_label}: ok ({sealed} sealed, {unsealed} unsealed)"), false),
                (Some(pos), problem) => (
                    format!(
                        "{space_label}: BROKEN at position {pos} (audit row {}): {}",
                        id.unwrap_or_else(|| "-".into()),
                        problem.unwrap_or_default()
                    ),
                    true,
                ),
                (None, Some(problem)) => (format!("{space_label}: PROBLEM: {problem}"), true),
            }
        })
        .collect())
}

/// Months the audit writer makes ahead (its PARTITION_MONTHS_AHEAD) and `audit partitions` makes by default.
const PARTITION_MONTHS_AHEAD: i32 = 3;

/// What the doctor says of the audit log's partitions: nothing when this month and the next
/// `PARTITION_MONTHS_AHEAD` have theirs and the DEFAULT partition is empty; else which are missing and how many rows
/// wait in the DEFAULT partition. A warning, not a failure: the rows are kept, and move (under the log's exclusive
/// lock, so the more the longer) into their month when it is made.
async fn audit_partitions_warning(client: &Client) -> Result<Option<String>, CliError> {
    let missing: Vec<String> = client
        .query(crate::audit_archive::MONTHS_WITHOUT_PARTITION_SQL, &[&PARTITION_MONTHS_AHEAD])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let waiting: i64 = client.query_one("SELECT count(*) FROM plystra.audit_logs_default", &[]).await?.get(0);
    if missing.is_empty() && waiting == 0 {
        return Ok(None);
    }
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!(
            "no partition for {} (the audit writer makes them for the database it serves, when it can have the log; \
             or run plystractl audit partitions)",
            missing.join(", ")
        ));
    }
    if waiting > 0 {
        parts.push(format!("{waiting} rows wait in the DEFAULT partition until their month is made"));
    }
    Ok(Some(parts.join("; ")))
}

/// Where `plystra.audit_mode` is below `always`, for the decisions made in this database: the value this session
/// sees when it comes from the server (its configuration or a command line), and every `ALTER DATABASE ... SET` or
/// `ALTER ROLE ... [IN DATABASE ...] SET` that applies here.
const AUDIT_MODE_BELOW_ALWAYS_SQL: &str = "\
    SELECT format('%s (%s)', s.setting, s.source) FROM pg_catalog.pg_settings s \
    WHERE s.name = 'plystra.audit_mode' AND s.setting <> 'always' AND s.source NOT IN ('database', 'user', 'database user') \
    UNION ALL \
    SELECT format('%s for %s', pg_catalog.lower(pg_catalog.split_part(c, '=', 2)), \
                  CASE WHEN s.setrole = 0 THEN 'this database' \
                       WHEN s.setdatabase = 0 THEN 'role ' || pg_catalog.quote_ident(r.rolname) \
                       ELSE 'role ' || pg_catalog.quote_ident(r.rolname) || ' in this database' END) \
    FROM pg_catalog.pg_db_role_setting s LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole \
    CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) c \
    WHERE s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())) \
      AND c LIKE 'plystra.audit\\_mode=%' AND pg_catalog.lower(pg_catalog.split_part(c, '=', 2)) <> 'always' \
    ORDER BY 1";

/// What the doctor says of the audit mode: nothing when every decision here is audited; else where it is not. A
/// warning, not a failure: `deny_only` and `off` are the operator's to choose (superusers only), said where they hold.
async fn audit_mode_warning(client: &Client) -> Result<Option<String>, CliError> {
    let below: Vec<String> = client.query(AUDIT_MODE_BELOW_ALWAYS_SQL, &[]).await?.iter().map(|r| r.get(0)).collect();
    Ok((!below.is_empty()).then(|| format!("not every decision is audited: {}", below.join("; "))))
}

pub async fn audit_seal(client: &Client) -> CliResult {
    let row = client.query_one("SELECT plystra.seal_audit()", &[]).await?;
    println!("sealed {} audit rows", row.get::<_, i32>(0));
    Ok(())
}

/// One of the doctor's steps that warn: `<step>: <fine>`, a warning, or an error (which fails the doctor).
fn print_warning_step(step: &str, fine: &str, outcome: Result<Option<String>, CliError>, failed: &mut bool) {
    match outcome {
        Ok(None) => println!("{step}: {fine}"),
        Ok(Some(w)) => println!("warning: {step}: {w}"),
        Err(e) => {
            *failed = true;
            println!("{step}: error: {e}");
        }
    }
}

/// `doctor`: every check in order, one line each; `Err` when any failed.
pub async fn doctor(vars: &std::collections::HashMap<String, String>) -> CliResult {
    let mut failed = false;
    let config = match Config::from_vars(vars) {
        Ok(c) => c,
        Err(e) => {
            println!("configuration: error: {e}");
            return Err(CliError("doctor found problems".into()));
        }
    };
    println!("environment: {}", format!("{:?}", config.mode).to_lowercase());
    let problems = config.production_problems();
    if problems.is_empty() {
        println!("configuration: ok");
    } else {
        failed = true;
        for p in &problems {
            println!("configuration: error: {p}");
        }
    }
    let client = match connect(&config.database_url).await {
        Ok(c) => match c.simple_query("SELECT 1").await {
            Ok(_) => {
                println!("database: ok");
                Some(c)
            }
            Err(e) => {
                println!("database: error: {}", CliError::from(e));
                None
            }
        },
        Err(e) => {
            println!("database: error: {e}");
            None
        }
    };
    if let Some(client) = client {
        match applied(&client).await {
            Ok(a) => {
                let st = statuses(&a, EXPECTED_MIGRATIONS);
                let pending = st.iter().filter(|(_, _, s)| *s == "pending").count();
                match migrate::verify(&a) {
                    Ok(()) => println!("migrations: current"),
                    Err(e) => {
                        failed = true;
                        if pending > 0 {
                            println!("migrations: {pending} pending");
                        }
                        for line in e.0.lines() {
                            println!("migrations: error: {line}");
                        }
                    }
                }
                match schema_drift(&config.database_url, &client).await {
                    Ok(d) if d.is_empty() => println!("schema: ok"),
                    Ok(d) => {
                        failed = true;
                        println!(
                            "schema: error: drift detected ({} differences; run plystractl schema check)",
                            d.len()
                        );
                    }
                    Err(e) => {
                        failed = true;
                        println!("schema: error: {e}");
                    }
                }
                match ledger::compare(&a, EXPECTED_MIGRATIONS) {
                    LedgerState::Current { .. } if !a.is_empty() => println!("service readiness: ok"),
                    LedgerState::Current { .. } => {
                        failed = true;
                        println!("service readiness: error: the plystra extension is not installed");
                    }
                    LedgerState::NotCurrent { problem, .. } => {
                        failed = true;
                        println!("service readiness: error: {problem}");
                    }
                }
            }
            Err(e) => {
                failed = true;
                println!("migrations: error: {e}");
            }
        }
        print_warning_step("audit partitions", "ok", audit_partitions_warning(&client).await, &mut failed);
        print_warning_step("audit mode", "always", audit_mode_warning(&client).await, &mut failed);
        // After a restore, or while something holds sealing back, the chains say so here.
        match audit_chain_lines(&client).await {
            Ok(lines) => match lines.iter().find(|(_, problem)| *problem) {
                None => println!("audit chains: ok ({} chains)", lines.len()),
                Some((line, _)) => {
                    failed = true;
                    println!("audit chains: error: {line}");
                }
            },
            Err(e) => {
                failed = true;
                println!("audit chains: error: {e}");
            }
        }
    } else {
        failed = true;
    }
    for w in config.secret_warnings() {
        println!("warning: {w}");
    }
    if failed {
        Err(CliError("doctor found problems".into()))
    } else {
        println!("doctor: ok");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_grant_ids_are_sanitized() {
        assert_eq!(default_grant_id("user_alice"), "ag_user_alice_instance_super_admin");
        assert_eq!(default_grant_id("alice@example.com"), "ag_alice_example_com_instance_super_admin");
    }

    #[test]
    fn every_migration_file_is_embedded() {
        assert_eq!(MIGRATION_FILES.len(), EXPECTED_MIGRATIONS.len());
        assert!(MIGRATION_FILES.iter().all(|(_, sql)| sql.contains("plystra.")));
        assert!(DEMO_SQL.contains("user_alice"));
    }
}
