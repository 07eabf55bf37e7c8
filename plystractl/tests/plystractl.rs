//! plystractl as an operator runs it, against real databases: migrate status|plan|up|verify (a tampered
//! migration fails verify; an update behind a held table gives up with nothing changed), schema check (a hand-made change fails), seed-demo, admin bootstrap-super-admin,
//! audit verify|seal, doctor and its production refusals (the server binary's own are in
//! plystra_http/tests/server_binary.rs).

// The front's test harness: the same fresh database with the extension and the demo.
#[path = "../../plystra_http/tests/common/mod.rs"]
mod common;

use std::process::{Command, Output};

use common::*;

const CTL: &str = env!("CARGO_BIN_EXE_plystractl");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn out(o: Output) -> Run {
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).to_string(),
        stderr: String::from_utf8_lossy(&o.stderr).to_string(),
    }
}

fn ctl(url: &str, args: &[&str], extra: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(CTL);
    cmd.env_clear().env("DATABASE_URL", url).args(args);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    out(cmd.output().expect("plystractl runs"))
}

/// `migrate up` on a database: installs the extension (every bundled migration) and reports it current.
async fn migrate_up(url: &str, _client: &tokio_postgres::Client) -> Run {
    let r = ctl(url, &["migrate", "up"], &[]);
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    assert!(r.stdout.contains("migrations current"), "{}", r.stdout);
    r
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["migrate", "--help"],
        &["migrate", "status", "--help"],
        &["migrate", "plan", "--help"],
        &["migrate", "up", "--help"],
        &["migrate", "verify", "--help"],
        &["schema", "--help"],
        &["schema", "check", "--help"],
        &["doctor", "--help"],
        &["seed-demo", "--help"],
        &["admin", "--help"],
        &["admin", "bootstrap-super-admin", "--help"],
        &["audit", "--help"],
        &["audit", "verify", "--help"],
        &["audit", "seal", "--help"],
    ] {
        let r = out(Command::new(CTL).args(args).output().unwrap());
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert!(r.stdout.contains("Usage: plystractl"), "{args:?}: {}", r.stdout);
    }
    let r = out(Command::new(CTL).args(["schema", "check", "--help"]).output().unwrap());
    assert!(r.stdout.contains("CREATEDB"), "{}", r.stdout);
    let r = out(Command::new(CTL).args(["admin", "bootstrap-super-admin", "--help"]).output().unwrap());
    for flag in ["--user-id", "--member-id", "--grant-id", "--if-exists"] {
        assert!(r.stdout.contains(flag), "{flag}: {}", r.stdout);
    }
    assert_eq!(out(Command::new(CTL).args(["migrate", "sideways"]).output().unwrap()).code, 2);
}

#[tokio::test]
async fn migrate_status_plan_up_verify_and_a_tampered_migration() {
    let (url, client) = fresh_database("ctl_migrate").await;
    let status = ctl(&url, &["migrate", "status"], &[]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(status.stdout.lines().next().unwrap().starts_with("001 core_schema pending"), "{}", status.stdout);
    assert!(status.stdout.lines().all(|l| l.ends_with(" pending")), "{}", status.stdout);
    let plan = ctl(&url, &["migrate", "plan"], &[]);
    assert!(
        plan.stdout.contains("pending 001 core_schema") && plan.stdout.contains("pending 005 auth"),
        "{}",
        plan.stdout
    );
    let verify = ctl(&url, &["migrate", "verify"], &[]);
    assert_eq!(verify.code, 1);
    assert!(verify.stderr.contains("001 core_schema is pending"), "{}", verify.stderr);

    let up = migrate_up(&url, &client).await;
    assert!(up.stdout.contains("applied 001 core_schema"), "{}", up.stdout);
    let status = ctl(&url, &["migrate", "status"], &[]);
    assert!(status.stdout.lines().all(|l| l.ends_with(" applied")), "{}", status.stdout);
    assert_eq!(ctl(&url, &["migrate", "plan"], &[]).stdout.trim(), "no pending migrations");
    let verify = ctl(&url, &["migrate", "verify"], &[]);
    assert_eq!((verify.code, verify.stdout.trim()), (0, "migrations verified"), "{}", verify.stderr);
    // Idempotent.
    assert_eq!(ctl(&url, &["migrate", "up"], &[]).code, 0);

    // An applied migration whose file differs (recorded checksum != embedded file) fails verify and up.
    client
        .batch_execute("UPDATE plystra.schema_migrations SET checksum = repeat('0', 64) WHERE version = '002'")
        .await
        .unwrap();
    let verify = ctl(&url, &["migrate", "verify"], &[]);
    assert_eq!(verify.code, 1);
    assert!(verify.stderr.contains("002 invariants was changed after it was applied"), "{}", verify.stderr);
    assert!(ctl(&url, &["migrate", "status"], &[]).stdout.contains("002 invariants checksum-mismatch"));
    let up = ctl(&url, &["migrate", "up"], &[]);
    assert_eq!(up.code, 1);
    assert!(up.stderr.contains("checksum mismatch"), "{}", up.stderr);
}

/// `migrate up` while another transaction holds a table the update must change (here: a write to plystra.users left
/// open; the update from 1.18.0 adds a trigger to it): it waits at most 5 s a try, three tries, then fails with
/// nothing changed, instead of queueing every decision behind its request for as long as that transaction stays.
#[tokio::test]
async fn migrate_up_gives_up_on_a_held_table_and_changes_nothing() {
    let (url, client) = fresh_database("ctl_migrate_held").await;
    client.batch_execute("CREATE EXTENSION plystra VERSION '1.18.0'").await.unwrap();
    let mut holder = connect(&url).await;
    let hold = holder.transaction().await.unwrap();
    hold.batch_execute("LOCK TABLE plystra.users IN ROW EXCLUSIVE MODE").await.unwrap();
    let url2 = url.clone();
    let started = std::time::Instant::now();
    let r = tokio::task::spawn_blocking(move || ctl(&url2, &["migrate", "up"], &[])).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(r.code, 1, "{} {}", r.stdout, r.stderr);
    assert!(r.stderr.contains("the update waited 5 s for a table that another session holds, 3 times"), "{}", r.stderr);
    assert!(waited < std::time::Duration::from_secs(40), "gave up after {waited:?}");
    let version: String =
        client.query_one("SELECT extversion FROM pg_extension WHERE extname = 'plystra'", &[]).await.unwrap().get(0);
    assert_eq!(version, "1.18.0", "nothing changed");
    hold.rollback().await.unwrap();
    migrate_up(&url, &client).await;
    let current: bool = client
        .query_one(
            "SELECT e.extversion = a.default_version FROM pg_extension e JOIN pg_available_extensions a ON a.name = e.extname
             WHERE e.extname = 'plystra'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(current, "once the table is free the update goes through");
}

#[tokio::test]
async fn schema_check_passes_on_a_migrated_database_and_fails_on_a_hand_made_change() {
    let (url, client) = fresh_database("ctl_schema").await;
    migrate_up(&url, &client).await;
    let r = ctl(&url, &["schema", "check"], &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("in sync"), "{}", r.stdout);

    client.batch_execute("ALTER TABLE plystra.users ADD COLUMN nickname text").await.unwrap();
    let r = ctl(&url, &["schema", "check"], &[]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("schema drift detected") && r.stderr.contains("users.nickname"), "{}", r.stderr);
    client.batch_execute("ALTER TABLE plystra.users DROP COLUMN nickname").await.unwrap();
    assert_eq!(ctl(&url, &["schema", "check"], &[]).code, 0);

    client.batch_execute("DROP INDEX plystra.sessions_user_id_idx").await.unwrap();
    let r = ctl(&url, &["schema", "check"], &[]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("sessions_user_id_idx"), "{}", r.stderr);
    client.batch_execute("CREATE INDEX sessions_user_id_idx ON plystra.sessions (user_id)").await.unwrap();

    client
        .batch_execute("CREATE OR REPLACE FUNCTION plystra.tg_users_password_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$")
        .await
        .unwrap();
    let r = ctl(&url, &["schema", "check"], &[]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("tg_users_password_changed"), "{}", r.stderr);

    // Privileges: one granted beyond the migrations' (an application role reading the audit log, or calling the
    // owner's partition maker), and one of theirs revoked.
    let finds =
        |change: &'static str, wanted: &'static [&'static str]| schema_check_finds(&url, &client, change, wanted);
    finds(
        "GRANT SELECT ON plystra.audit_logs TO plystra_app",
        &["not in the migrations: grant SELECT on audit_logs to plystra_app"],
    )
    .await;
    finds(
        "REVOKE SELECT ON plystra.audit_logs FROM plystra_app; \
         GRANT EXECUTE ON FUNCTION plystra.create_audit_partition(timestamptz) TO PUBLIC",
        &["function missing or different: plystra.create_audit_partition(timestamp with time zone)"],
    )
    .await;
    finds(
        "REVOKE EXECUTE ON FUNCTION plystra.create_audit_partition(timestamptz) FROM PUBLIC; \
         REVOKE UPDATE (email) ON plystra.users FROM plystra_admin",
        &["missing or different: grant UPDATE (email) on users to plystra_admin"],
    )
    .await;
    // The front's role given UPDATE on a whole table (with it, every lock mode on the table, ACCESS EXCLUSIVE
    // included): its column grants are the migrations', the table's is not.
    finds(
        "GRANT UPDATE (email) ON plystra.users TO plystra_admin; GRANT UPDATE ON plystra.roles TO plystra_admin",
        &["not in the migrations: grant UPDATE on roles to plystra_admin"],
    )
    .await;
    // A rule that silently drops every audit row, and row security turned on for a table.
    finds(
        "SELECT plystra.apply_privileges(); \
         CREATE RULE drop_audit AS ON INSERT TO plystra.audit_logs DO INSTEAD NOTHING; \
         ALTER TABLE plystra.users ENABLE ROW LEVEL SECURITY",
        &[
            "not in the migrations: rule CREATE RULE drop_audit AS ON INSERT TO plystra.audit_logs DO INSTEAD NOTHING",
            "not in the migrations: relation users kind=r row security",
        ],
    )
    .await;
    // An owner who is neither the schema's owner nor a superuser: the front's role owning a table (it could then
    // drop its triggers), or a SECURITY DEFINER function (it would run as that role).
    finds(
        "DROP RULE drop_audit ON plystra.audit_logs; ALTER TABLE plystra.users DISABLE ROW LEVEL SECURITY; \
         ALTER TABLE plystra.admin_grants OWNER TO plystra_admin; \
         ALTER FUNCTION plystra.seal_audit(integer) OWNER TO plystra_admin",
        &[
            "not in the migrations: owner of admin_grants: plystra_admin",
            "not in the migrations: owner of function plystra.seal_audit(integer): plystra_admin",
        ],
    )
    .await;
    // The role's grants went into the owner's privileges, and left with them: the check says so until given back.
    finds(
        "ALTER TABLE plystra.admin_grants OWNER TO CURRENT_USER; \
         ALTER FUNCTION plystra.seal_audit(integer) OWNER TO CURRENT_USER",
        &["missing or different: grant INSERT on admin_grants to plystra_admin"],
    )
    .await;
    client.batch_execute("SELECT plystra.apply_privileges()").await.unwrap();
    // (The trigger function replaced above is still drift.)
    let r = ctl(&url, &["schema", "check"], &[]);
    assert!(!r.stderr.contains("admin_grants") && !r.stderr.contains("seal_audit"), "{}", r.stderr);

    // Scratch databases do not pile up. Only this database's count: other tests (doctor) check theirs meanwhile.
    let left: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'plystra\\_schema\\_check\\_' || \
             (SELECT oid FROM pg_database WHERE datname = current_database()) || '\\_%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

/// Makes `change`, then expects `schema check` to fail naming each of `wanted`.
async fn schema_check_finds(url: &str, client: &tokio_postgres::Client, change: &str, wanted: &[&str]) {
    client.batch_execute(change).await.unwrap();
    let r = ctl(url, &["schema", "check"], &[]);
    assert_eq!(r.code, 1, "after {change}: {}", r.stdout);
    assert!(r.stderr.contains("schema drift detected"), "{}", r.stderr);
    for w in wanted {
        assert!(r.stderr.contains(w), "after {change}: {w:?} not in\n{}", r.stderr);
    }
}

/// A reader that stops early (`plystractl migrate status | head -1`) ends the command quietly, with the status a
/// shell gives a process ended by SIGPIPE, not with a panic and its backtrace.
#[tokio::test]
async fn a_closed_standard_output_ends_the_command_quietly() {
    let (url, client) = fresh_database("ctl_epipe").await;
    migrate_up(&url, &client).await;
    // The pipe's reading end is closed before the command starts: its first line meets a broken pipe.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = Command::new(CTL)
        .env_clear()
        .env("DATABASE_URL", &url)
        .args(["migrate", "status"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let r = out(o);
    assert_eq!(r.code, 141, "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert_eq!(r.stderr, "");
}

/// The audit log's monthly partitions are in no migration, so `schema check` compares each one with a month the
/// migrations' own function makes: one changed by hand is drift, and so is a table that only looks like a month.
#[tokio::test]
async fn schema_check_compares_every_audit_month_with_one_the_migrations_make() {
    let (url, client) = fresh_database("ctl_schema_months").await;
    migrate_up(&url, &client).await;
    let made = ctl(&url, &["audit", "partitions"], &[]);
    assert_eq!(made.code, 0, "{}{}", made.stdout, made.stderr);
    let month: String = client
        .query_one("SELECT 'audit_logs_' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM')", &[])
        .await
        .unwrap()
        .get(0);
    let check_ok = |why: &str| {
        let r = ctl(&url, &["schema", "check"], &[]);
        assert_eq!(r.code, 0, "{why}:\n{}\n{}", r.stdout, r.stderr);
    };
    check_ok("four months made by the product");

    // Each change, what the check must say of it, and how it is undone (the check is clean again after each).
    let cases: Vec<(String, Vec<&str>, String)> = vec![
        // An index dropped from one month (the others keep it).
        (
            format!("DROP INDEX plystra.{month}_request_id_idx"),
            vec!["missing or different: index CREATE INDEX audit_logs_<month>_request_id_idx", "(in 3 of 4 months: "],
            format!("CREATE INDEX {month}_request_id_idx ON plystra.{month} (request_id)"),
        ),
        // The append-only TRUNCATE trigger of one month disabled.
        (
            format!("ALTER TABLE plystra.{month} DISABLE TRIGGER trg_audit_logs_append_only_truncate"),
            vec!["enabled=D (in 1 of 4 months: ", month.as_str()],
            format!("ALTER TABLE plystra.{month} ENABLE ALWAYS TRIGGER trg_audit_logs_append_only_truncate"),
        ),
        // A default added to one month's column.
        (
            format!("ALTER TABLE plystra.{month} ALTER COLUMN action SET DEFAULT 'x'"),
            vec!["not in the migrations: column audit_logs_<month>.action text not null default 'x'"],
            format!("ALTER TABLE plystra.{month} ALTER COLUMN action DROP DEFAULT"),
        ),
        // A month readable by an application role (the parent's privileges are not the partition's).
        (
            format!("GRANT SELECT ON plystra.{month} TO plystra_app"),
            vec!["not in the migrations: grant SELECT on audit_logs_<month> to plystra_app (in 1 of 4 months: "],
            format!("REVOKE SELECT ON plystra.{month} FROM plystra_app"),
        ),
        // A table named like a month that is no partition (nor an archive's).
        (
            "CREATE TABLE plystra.audit_logs_2099_01 (id text)".into(),
            vec!["not in the migrations: relation audit_logs_2099_01 kind=r"],
            "DROP TABLE plystra.audit_logs_2099_01".into(),
        ),
        // A month attached, made like the product's, with bounds that are two months.
        (
            "CREATE TABLE plystra.audit_logs_2098_01 PARTITION OF plystra.audit_logs \
             FOR VALUES FROM ('2098-01-01 00:00:00+00') TO ('2098-03-01 00:00:00+00'); \
             SELECT plystra.index_audit_partition('audit_logs_2098_01'); \
             CREATE TRIGGER trg_audit_logs_append_only_truncate BEFORE TRUNCATE ON plystra.audit_logs_2098_01 \
             FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_audit_logs_append_only(); \
             ALTER TABLE plystra.audit_logs_2098_01 ENABLE ALWAYS TRIGGER trg_audit_logs_append_only_truncate"
                .into(),
            vec!["not in the migrations: partition audit_logs_<month> bounds FOR VALUES FROM", "audit_logs_2098_01)"],
            "ALTER TABLE plystra.audit_logs DETACH PARTITION plystra.audit_logs_2098_01; \
             DROP TABLE plystra.audit_logs_2098_01"
                .into(),
        ),
        // A partition named like no month.
        (
            "CREATE TABLE plystra.audit_logs_9999_99 PARTITION OF plystra.audit_logs \
             FOR VALUES FROM ('2097-01-01 00:00:00+00') TO ('2097-02-01 00:00:00+00')"
                .into(),
            vec!["not in the migrations: relation audit_logs_9999_99 kind=r"],
            "ALTER TABLE plystra.audit_logs DETACH PARTITION plystra.audit_logs_9999_99; \
             DROP TABLE plystra.audit_logs_9999_99"
                .into(),
        ),
    ];
    for (change, wanted, undo) in &cases {
        schema_check_finds(&url, &client, change, wanted).await;
        client.batch_execute(undo).await.unwrap();
        check_ok(undo);
    }
}

#[tokio::test]
async fn seed_demo_bootstrap_and_audit_commands() {
    let (url, client) = fresh_database("ctl_seed").await;
    migrate_up(&url, &client).await;
    for _ in 0..2 {
        let r = ctl(&url, &["seed-demo"], &[]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let users: i64 = client.query_one("SELECT count(*) FROM plystra.users", &[]).await.unwrap().get(0);
    assert_eq!(users, 2);

    let r = ctl(&url, &["admin", "bootstrap-super-admin", "--user-id", "user_alice"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let row = client
        .query_one("SELECT level, permission_key, metadata FROM plystra.admin_grants WHERE id = 'ag_user_alice_instance_super_admin'", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "instance_super_admin");
    assert_eq!(row.get::<_, String>(1), "*");
    assert_eq!(row.get::<_, serde_json::Value>(2), serde_json::json!({"source": "plystractl bootstrap-super-admin"}));
    let allowed: serde_json::Value = client
        .query_one("SELECT plystra.admin_permission('user_alice', 'users:manage', NULL, NULL)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(allowed["allowed"], true);
    let audited: i64 = client
        .query_one(
            "SELECT count(*) FROM plystra.audit_logs WHERE action = 'admin_grant.created' AND request_id LIKE 'plystractl\\_%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(audited, 1);
    let again = ctl(&url, &["admin", "bootstrap-super-admin", "--user-id", "user_alice"], &[]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    let ok = ctl(&url, &["admin", "bootstrap-super-admin", "--user-id", "user_alice", "--if-exists", "ok"], &[]);
    assert_eq!(ok.code, 0);
    let custom = ctl(
        &url,
        &[
            "admin",
            "bootstrap-super-admin",
            "--user-id",
            "user_bob",
            "--member-id",
            "member_finance_reviewer",
            "--grant-id",
            "ag_bob_root",
        ],
        &[],
    );
    assert_eq!(custom.code, 0, "{}", custom.stderr);
    let member: Option<String> = client
        .query_one("SELECT member_id FROM plystra.admin_grants WHERE id = 'ag_bob_root'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(member.as_deref(), Some("member_finance_reviewer"));
    let missing = ctl(&url, &["admin", "bootstrap-super-admin", "--user-id", "user_nobody"], &[]);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("user_nobody does not exist"));

    // Audit chains: seal, verify; a forged row is named.
    let seal = ctl(&url, &["audit", "seal"], &[]);
    assert_eq!(seal.code, 0, "{}", seal.stderr);
    assert!(seal.stdout.starts_with("sealed "), "{}", seal.stdout);
    let verify = ctl(&url, &["audit", "verify"], &[]);
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    assert!(verify.stdout.contains("space_acme: ok"), "{}", verify.stdout);
    let forged: String = client
        .query_one("SELECT id FROM plystra.audit_logs WHERE space_id = 'space_acme' AND row_hash IS NOT NULL ORDER BY chain_position LIMIT 1", &[])
        .await
        .unwrap()
        .get(0);
    client
        .batch_execute(&format!(
            "ALTER TABLE plystra.audit_logs DISABLE TRIGGER USER; \
             UPDATE plystra.audit_logs SET decision = 'deny' WHERE id = '{forged}'; \
             ALTER TABLE plystra.audit_logs ENABLE TRIGGER USER;"
        ))
        .await
        .unwrap();
    let verify = ctl(&url, &["audit", "verify"], &[]);
    assert_eq!(verify.code, 1);
    assert!(verify.stdout.contains("space_acme: BROKEN at position 1"), "{}", verify.stdout);
    assert!(verify.stderr.contains(&forged), "{}", verify.stderr);
}

#[tokio::test]
async fn doctor_checks_everything_in_order() {
    let (url, client) = fresh_database("ctl_doctor").await;
    // Before migrations: the database is fine, the migrations are not.
    let r = ctl(&url, &["doctor"], &[]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("database: ok") && r.stdout.contains("pending"), "{}", r.stdout);
    migrate_up(&url, &client).await;
    let secrets = [("PLYSTRA_SESSION_SECRET", TEST_SESSION_SECRET), ("PLYSTRA_API_KEY_SECRET", TEST_API_KEY_SECRET)];
    // No audit writer serves this database: the coming months have no partition, a warning (rows are kept in the
    // DEFAULT partition), with the rows waiting there.
    client
        .batch_execute(
            "SELECT plystra.append_audit(jsonb_build_array(jsonb_build_object('id', 'audit_doctor_default', \
             'space_id', 'space_acme', 'action', 'invoice.read', 'decision', 'allow', 'trace', '{}'::jsonb)))",
        )
        .await
        .unwrap();
    let r = ctl(&url, &["doctor"], &secrets);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let this_month: String =
        client.query_one("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM')", &[]).await.unwrap().get(0);
    assert!(
        r.stdout.contains(&format!("warning: audit partitions: no partition for {this_month}, "))
            && r.stdout.contains("; 1 rows wait in the DEFAULT partition until their month is made"),
        "{}",
        r.stdout
    );
    let made = ctl(&url, &["audit", "partitions"], &[]);
    assert_eq!(made.code, 0, "{}{}", made.stdout, made.stderr);
    let r = ctl(&url, &["doctor"], &secrets);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let order = [
        "environment: development",
        "configuration: ok",
        "database: ok",
        "migrations: current",
        "schema: ok",
        "service readiness: ok",
        "audit partitions: ok",
        "audit mode: always",
        "audit chains: ok",
        "doctor: ok",
    ];
    let mut at = 0;
    for step in order {
        let found =
            r.stdout[at..].find(step).unwrap_or_else(|| panic!("{step} missing or out of order:\n{}", r.stdout));
        at += found;
    }
    assert!(!r.stdout.contains("warning:"), "{}", r.stdout);
    // Decisions not all audited, here: the doctor says where (a warning; the operator's choice).
    let audit_modes = |database: &str, role: &str| {
        format!(
            "DO $$ BEGIN \
               EXECUTE format('ALTER DATABASE %I {database}', current_database()); \
               EXECUTE format('ALTER ROLE plystra_app IN DATABASE %I {role}', current_database()); \
             END $$"
        )
    };
    client
        .batch_execute(&audit_modes("SET plystra.audit_mode = off", "SET plystra.audit_mode = deny_only"))
        .await
        .unwrap();
    let r = ctl(&url, &["doctor"], &secrets);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(
            "warning: audit mode: not every decision is audited: deny_only for role plystra_app in this database; \
             off for this database"
        ),
        "{}",
        r.stdout
    );
    client.batch_execute(&audit_modes("RESET plystra.audit_mode", "RESET plystra.audit_mode")).await.unwrap();
    let r = ctl(&url, &["doctor"], &secrets);
    assert!(r.stdout.contains("audit mode: always"), "{}", r.stdout);
    // Weak secrets are warned about.
    let r = ctl(&url, &["doctor"], &[("PLYSTRA_SESSION_SECRET", "short")]);
    assert!(r.stdout.contains("warning: PLYSTRA_SESSION_SECRET is shorter than 32 characters"), "{}", r.stdout);
    assert!(r.stdout.contains("warning: PLYSTRA_API_KEY_SECRET is not set"), "{}", r.stdout);
    // A row left unsealed longer than the alarm (sealing held back, or stopped) fails the doctor, and so does
    // `audit verify`; once sealed, both are fine again.
    client
        .batch_execute(
            "INSERT INTO plystra.audit_logs (id, space_id, action, resource_type, resource_id, decision, trace, created_at) \
             VALUES ('audit_doctor_stale', 'space_acme', 'invoice.read', 'invoice', 'invoice_001', 'allow', '{}', \
                     now() - interval '1 hour')",
        )
        .await
        .unwrap();
    let r = ctl(&url, &["doctor"], &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("audit chains: error: space_acme: PROBLEM:"), "{}", r.stdout);
    assert!(r.stdout.contains("unsealed for longer than"), "{}", r.stdout);
    assert_eq!(ctl(&url, &["audit", "verify"], &[]).code, 1);
    client.batch_execute("SELECT plystra.seal_audit()").await.unwrap();
    assert_eq!(ctl(&url, &["audit", "verify"], &[]).code, 0);
    // Drift fails the doctor.
    client.batch_execute("ALTER TABLE plystra.spaces ADD COLUMN colour text").await.unwrap();
    let r = ctl(&url, &["doctor"], &[]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("schema: error: drift detected"), "{}", r.stdout);
    // An unreachable database.
    let r = ctl("postgres://postgres@127.0.0.1:1/nowhere", &["doctor"], &[]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("database: error"), "{}", r.stdout);
}

const PRODUCTION_CAUSES: &[&str] = &[
    "PLYSTRA_SCHEMA_AUTO_APPLY must be false in production",
    "DATABASE_URL must be set in production",
    "PLYSTRA_SESSION_SECRET must be set in production",
    "CORS_ALLOWED_ORIGINS must list the allowed origins explicitly in production",
    "SERVER_PUBLIC_URL must be set to the public URL, not localhost, in production",
];

#[test]
fn doctor_reports_every_production_refusal_of_the_server() {
    db();
    let doctor = out(Command::new(CTL)
        .env_clear()
        .args(["doctor"])
        .env("SERVER_MODE", "production")
        .env("PLYSTRA_SCHEMA_AUTO_APPLY", "true")
        .output()
        .unwrap());
    assert_eq!(doctor.code, 1);
    assert!(doctor.stdout.contains("environment: production"));
    for cause in PRODUCTION_CAUSES {
        assert!(doctor.stdout.contains(&format!("configuration: error: {cause}")), "{cause}: {}", doctor.stdout);
    }
}
