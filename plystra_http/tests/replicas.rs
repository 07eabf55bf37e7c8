//! Read replicas with bounded staleness, against a real streaming replica: each test starts its own primary
//! (with the demo) and a hot standby made from it with pg_basebackup (scripts/lib.sh's cluster functions, under
//! target/plystra-replica-test/), and servers with PLYSTRA_REPLICA_URLS pointing at the standby and
//! PLYSTRA_REPLICA_SERVED_BY_HEADER on, so that every answer names the database that gave it.
//!
//! Ports: from PLYSTRA_TEST_REPLICA_PORT (default 55500) up, the first free ones (scripts/lib.sh free_port).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const SERVED_BY: &str = "plystra-served-by";
const TOKEN: &str = "plystra-consistency-token";

/// Runs `script` in bash with scripts/lib.sh sourced (PLYSTRA_PG_BIN picks the PostgreSQL installation);
/// its stdout, or a panic with its stderr.
fn lib(script: &str) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -eo pipefail; source scripts/lib.sh; {script}"))
        .current_dir(repo_root())
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{script}\nfailed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A primary with the demo and the harness's admin key, and a streaming replica of it.
struct Pair {
    primary_dir: PathBuf,
    replica_dir: PathBuf,
    primary_url: String,
    replica_url: String,
}

const DB: &str = "plystra_replica";

impl Pair {
    /// `slot` keeps the tests of this file apart (each its own folder and ports).
    async fn start(slot: u16) -> Pair {
        let base: u16 = std::env::var("PLYSTRA_TEST_REPLICA_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(55500);
        let root = repo_root().join("target/plystra-replica-test").join(format!("slot{slot}"));
        let (primary_dir, replica_dir) = (root.join("primary"), root.join("replica"));
        let (p, r) = (primary_dir.display().to_string(), replica_dir.display().to_string());
        let primary_port = lib(&format!(
            "cluster_stop {r}; cluster_stop {p}; rm -rf {r} {p}; port=$(free_port {}); \
             PLYSTRA_AUDIT_DB={DB} cluster_start {p} $port >&2; \
             cluster_psql {p} $port postgres -c 'CREATE DATABASE {DB}' >&2; echo $port",
            base + slot * 4
        ));
        let primary_url = format!("postgres://postgres@127.0.0.1:{primary_port}/{DB}");
        let client = connect(&primary_url).await;
        client.batch_execute("CREATE EXTENSION plystra").await.expect("CREATE EXTENSION plystra");
        let demo = std::fs::read_to_string(repo_root().join("sql/demo.sql")).unwrap();
        client.batch_execute(&demo).await.expect("the demo loads");
        bootstrap_admin(&client).await;
        let replica_port = lib(&format!(
            "mkdir -p {r}; if [ \"$(id -u)\" = 0 ]; then chown postgres: {r}; fi; \
             as_postgres \"$PG_BIN/pg_basebackup\" -h {p} -p {primary_port} -U postgres -D {r}/data -R -X stream -c fast >&2; \
             port=$(free_port $(({primary_port} + 1))); PLYSTRA_AUDIT_DB={DB} cluster_start {r} $port >&2; echo $port"
        ));
        let replica_url = format!("postgres://postgres@127.0.0.1:{replica_port}/{DB}");
        let standby: bool =
            connect(&replica_url).await.query_one("SELECT pg_is_in_recovery()", &[]).await.unwrap().get(0);
        assert!(standby, "the replica is a hot standby");
        Pair { primary_dir, replica_dir, primary_url, replica_url }
    }

    async fn replica(&self) -> tokio_postgres::Client {
        connect(&self.replica_url).await
    }

    async fn primary(&self) -> tokio_postgres::Client {
        connect(&self.primary_url).await
    }

    /// A server on this pair (served-by header on) with `extra` settings.
    fn server(&self, extra: &[(&str, &str)]) -> TestServer {
        let mut vars = vec![
            ("DATABASE_URL", self.primary_url.as_str()),
            ("PLYSTRA_REPLICA_URLS", self.replica_url.as_str()),
            ("PLYSTRA_REPLICA_SERVED_BY_HEADER", "true"),
        ];
        vars.extend_from_slice(extra);
        start_server(&vars)
    }

    /// Stops the replica at once (SIGQUIT: its connections drop without a goodbye, as in a crash).
    fn kill_replica(&self) {
        lib(&format!("as_postgres \"$PG_BIN/pg_ctl\" -D {}/data -m immediate -w stop >&2", self.replica_dir.display()));
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let (p, r) = (self.primary_dir.display(), self.replica_dir.display());
        let _ = Command::new("bash")
            .arg("-c")
            .arg(format!("source scripts/lib.sh; cluster_stop {r}; cluster_stop {p}; rm -rf {r} {p}"))
            .current_dir(repo_root())
            .output();
    }
}

fn served_by(a: &Answer) -> String {
    a.header(SERVED_BY).unwrap_or_default()
}

/// Repeats `f` until it returns Some (every 50 ms, for at most 15 s).
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "not within 15 s: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn get_with(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> Answer {
    send_to(server, "GET", path, None, headers).await
}

async fn set_replay(replica: &tokio_postgres::Client, paused: bool) {
    let f = if paused { "pg_wal_replay_pause" } else { "pg_wal_replay_resume" };
    replica.batch_execute(&format!("SELECT {f}()")).await.unwrap();
    let want = if paused { "paused" } else { "not paused" };
    eventually(&format!("replay {want}"), || async {
        let state: String = replica.query_one("SELECT pg_get_wal_replay_pause_state()", &[]).await.unwrap().get(0);
        (state == want).then_some(())
    })
    .await;
}

async fn create_key(server: &TestServer, name: &str) -> (Value, String) {
    let a = send_to(
        server,
        "POST",
        "/api/v1/api-keys",
        Some(json!({"name": name, "level": "instance", "permission_keys": ["spaces:read", "authz:check"]})),
        &[],
    )
    .await;
    let token = a.header(TOKEN).expect("a write's answer carries the consistency token");
    assert_eq!(served_by(&a), "primary", "a write is answered by the primary");
    (a.expect_ok(201).clone(), token)
}

fn demo_check() -> Value {
    json!({
        "actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer",
                  "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
        "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"
    })
}

/// Reads go to the replica; a revoke made on the primary is seen by a token-carrying read at once (from the
/// primary while the replica lags), by a read without the token only once replayed; a replica past the lag
/// bound is skipped; a malformed token is refused.
#[tokio::test]
async fn reads_go_to_a_fresh_replica_and_the_token_reads_your_writes() {
    let pair = Pair::start(0).await;
    let server = pair.server(&[("PLYSTRA_REPLICA_MAX_LAG_MS", "3000"), ("PLYSTRA_REPLICA_POLL_MS", "100")]);
    let replica = pair.replica().await;

    // Once measured fresh, the replica answers reads.
    eventually("a read answered by the replica", || async {
        let a = get_with(&server, "/api/v1/spaces/space_acme", &[]).await;
        (a.status == 200 && served_by(&a) == "replica-0").then_some(())
    })
    .await;

    // Lookups, searches, lists and gets are reads too: the replica answers them as the primary does (a token
    // from beyond anything written sends the same request to the primary). A route that needs no database
    // (health) takes no replica connection.
    let to_primary = [(TOKEN, "pct1_7fffffffffffffff")];
    let reads = [
        ("GET", "/api/v1/spaces/space_acme/resources/invoice_001/subjects?action=approve", None),
        (
            "GET",
            "/api/v1/spaces/space_acme/user-members/um_alice_finance_reviewer/resources?resource_type=invoice&action=approve",
            None,
        ),
        (
            "POST",
            "/access/v1/search/subject",
            Some(json!({"subject": {"type": "user"}, "action": {"name": "approve"},
                        "resource": {"type": "invoice", "id": "invoice_001"}})),
        ),
        ("GET", "/api/v1/users?limit=50", None),
        ("GET", "/api/v1/groups/group_finance", None),
    ];
    for (method, path, body) in reads {
        let on_replica = send_to(&server, method, path, body.clone(), &[]).await;
        assert_eq!(served_by(&on_replica), "replica-0", "{method} {path}: {}", on_replica.text);
        let on_primary = send_to(&server, method, path, body, &to_primary).await;
        assert_eq!(served_by(&on_primary), "primary", "{method} {path}");
        assert_eq!((on_replica.status, on_primary.status), (200, 200), "{method} {path}: {}", on_replica.text);
        // The same answer, but for the request's own id (AuthZEN answers carry none).
        let answer = |a: &Answer| {
            let mut body = a.body.clone();
            body.as_object_mut().map(|o| o.remove("request_id"));
            body
        };
        assert_eq!(answer(&on_replica), answer(&on_primary), "{method} {path}: the same answer");
    }
    assert_eq!(served_by(&get_with(&server, "/api/v1/health", ANON).await), "primary");

    // A key created on the primary: its answer's token makes the read that follows see it.
    let (key, created) = create_key(&server, "replica revoke").await;
    let id = key["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/api-keys/{id}");
    let a = get_with(&server, &path, &[(TOKEN, &created)]).await;
    assert_eq!(a.expect_ok(200)["status"], "active");
    // Once measured to have replayed it, the replica answers that token too.
    eventually("the replica answering the creation's token", || async {
        let a = get_with(&server, &path, &[(TOKEN, &created)]).await;
        (served_by(&a) == "replica-0").then_some(())
    })
    .await;

    // Replay paused: the replica falls behind the revoke that follows.
    set_replay(&replica, true).await;
    let revoke = send_to(&server, "POST", &format!("{path}/revoke"), Some(json!({})), &[]).await;
    let revoked = revoke.header(TOKEN).expect("the revoke's answer carries the token");
    assert_eq!(served_by(&revoke), "primary");
    revoke.expect_ok(200);
    assert_ne!(revoked, created, "a later write, a later position");

    // Without the token, a read may be answered by the replica, still within the bound: it has not seen the revoke.
    let stale = get_with(&server, &path, &[]).await;
    assert_eq!(served_by(&stale), "replica-0", "the replica answers within the bound: {}", stale.text);
    assert_eq!(stale.expect_ok(200)["status"], "active", "the replica has not replayed the revoke");
    // With the token, never the state before it: the primary answers.
    let fresh = get_with(&server, &path, &[(TOKEN, &revoked)]).await;
    assert_eq!(served_by(&fresh), "primary");
    assert_eq!(fresh.expect_ok(200)["status"], "revoked");
    // The older token is satisfied by the replica (it replayed the creation).
    let older = get_with(&server, &path, &[(TOKEN, &created)]).await;
    assert_eq!(served_by(&older), "replica-0");

    // Past the bound (3 s) the lagging replica is skipped: the primary answers, with the revoke.
    let paused_at = Instant::now();
    let skipped = eventually("the lagging replica skipped", || async {
        let a = get_with(&server, &path, &[]).await;
        (served_by(&a) == "primary").then_some(a)
    })
    .await;
    assert!(paused_at.elapsed() >= Duration::from_millis(2000), "skipped only once past the bound");
    assert_eq!(skipped.expect_ok(200)["status"], "revoked");
    for _ in 0..5 {
        assert_eq!(served_by(&get_with(&server, "/api/v1/spaces/space_acme", &[]).await), "primary");
    }

    // A malformed token is a clear 400, on reads and writes alike.
    for bad in ["0/16B374D8", "pct1_xyz", "pct1_00000000000000000"] {
        let a = get_with(&server, &path, &[(TOKEN, bad)]).await;
        assert_eq!(a.expect_error(400, "VALIDATION_FAILED")["details"]["field"], "Plystra-Consistency-Token");
        let a = send_to(&server, "POST", &format!("{path}/revoke"), Some(json!({})), &[(TOKEN, bad)]).await;
        a.expect_error(400, "VALIDATION_FAILED");
    }
    // A token from beyond anything written is well formed: the primary answers.
    let future = get_with(&server, &path, &[(TOKEN, "pct1_7fffffffffffffff")]).await;
    assert_eq!(served_by(&future), "primary");
    future.expect_ok(200);

    // Replay resumed: the replica catches up, answers again, and shows the revoke (with or without the token).
    set_replay(&replica, false).await;
    let caught_up = eventually("the replica answers again", || async {
        let a = get_with(&server, &path, &[(TOKEN, &revoked)]).await;
        (served_by(&a) == "replica-0").then_some(a)
    })
    .await;
    assert_eq!(caught_up.expect_ok(200)["status"], "revoked", "the revoke is seen on the replica once replayed");
    let row: String =
        replica.query_one("SELECT status FROM plystra.api_keys WHERE id = $1", &[&id]).await.unwrap().get(0);
    assert_eq!(row, "revoked");
}

/// What a read writes goes to the primary: an API key's last use, a decision's audit row (an audited decision
/// is answered by the primary; one that writes no row by the replica), and a session created on the primary is
/// honoured at once even while the replica has not replayed it.
#[tokio::test]
async fn the_writes_of_a_read_go_to_the_primary() {
    let pair = Pair::start(1).await;
    let lag = [("PLYSTRA_REPLICA_MAX_LAG_MS", "5000"), ("PLYSTRA_REPLICA_POLL_MS", "100")];
    let audited = pair.server(&lag);
    let unaudited = pair.server(&[lag[0], lag[1], ("AUDIT_WRITE_MODE", "manual")]);
    let primary = pair.primary().await;
    let replica = pair.replica().await;

    // A key whose last use is recorded by a read the replica answers.
    let (key, created) = create_key(&audited, "replica last use").await;
    let plaintext = key["api_key"].as_str().unwrap().to_string();
    let id = key["id"].as_str().unwrap().to_string();
    // Its first use is a read the replica answers (once the replica holds the key and is measured fresh).
    eventually("the key replayed and the replica answering", || async {
        let a = get_with(&unaudited, "/api/v1/spaces", &[(TOKEN, &created)]).await;
        (served_by(&a) == "replica-0").then_some(())
    })
    .await;
    let a = get_with(&unaudited, "/api/v1/spaces", &[("X-Plystra-API-Key", &plaintext), (TOKEN, &created)]).await;
    assert_eq!(served_by(&a), "replica-0", "{}", a.text);
    a.expect_ok(200);
    let used: bool = primary
        .query_one("SELECT last_used_at IS NOT NULL FROM plystra.api_keys WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert!(used, "the last use is written on the primary");

    // A decision that writes no audit row is a read: the replica answers it.
    let audit_rows =
        || async { primary.query_one("SELECT count(*) FROM plystra.audit_logs", &[]).await.unwrap().get::<_, i64>(0) };
    let before = audit_rows().await;
    let headers = [("X-Plystra-API-Key", plaintext.as_str())];
    let a = send_to(&unaudited, "POST", "/api/v1/authz/check", Some(demo_check()), &headers).await;
    assert_eq!(served_by(&a), "replica-0", "{}", a.text);
    assert_eq!(a.expect_ok(200)["decision"], "allow");
    assert!(a.header("x-plystra-audit-log-id").is_none());
    // An audited decision writes its row: the primary answers it.
    let a = send_to(&audited, "POST", "/api/v1/authz/check", Some(demo_check()), &headers).await;
    assert_eq!(served_by(&a), "primary", "{}", a.text);
    assert_eq!(a.expect_ok(200)["decision"], "allow");
    let audit_id = a.header("x-plystra-audit-log-id").expect("an audited decision's row");
    assert_eq!(audit_rows().await, before + 1, "one row: the audited decision's");
    let row = primary.query_opt("SELECT 1 FROM plystra.audit_logs WHERE id = $1", &[&audit_id]).await.unwrap();
    assert!(row.is_some());

    // Less standing gains nothing on a replica: a Space key asking for an instance-wide list is refused there
    // exactly as on the primary (a 403 is an answer, not asked again).
    let scoped = send_to(
        &audited,
        "POST",
        "/api/v1/api-keys",
        Some(json!({"name": "replica scoped", "level": "space", "space_id": "space_acme", "permission_keys": ["users:read"]})),
        &[],
    )
    .await;
    let scoped_token = scoped.header(TOKEN).unwrap();
    let scoped_key = scoped.expect_ok(201)["api_key"].as_str().unwrap().to_string();
    let refused = eventually("the scoped key's read answered by the replica", || async {
        let a =
            get_with(&audited, "/api/v1/users", &[("X-Plystra-API-Key", &scoped_key), (TOKEN, &scoped_token)]).await;
        (served_by(&a) == "replica-0").then_some(a)
    })
    .await;
    refused.expect_error(403, "ADMIN_PERMISSION_REQUIRED");

    // Replay paused: a session made on the primary (a login writes) is unknown to the replica, and is still
    // honoured by the very next read (the replica's 401 is asked again of the primary).
    set_replay(&replica, true).await;
    let login = login_on(&unaudited, "alice@example.com", DEMO_PASSWORD).await;
    assert_eq!(served_by(&login), "primary");
    assert!(login.header(TOKEN).is_some(), "a login's answer carries the token");
    let access = login.expect_ok(200)["access_token"].as_str().unwrap().to_string();
    let me = get_with(&unaudited, "/api/v1/auth/me", &[("Authorization", &bearer(&access))]).await;
    assert_eq!(served_by(&me), "primary", "{}", me.text);
    me.expect_ok(200);
    // ... while a read with an existing credential is still answered by the (paused, within bound) replica.
    let a = get_with(&unaudited, "/api/v1/spaces", &[]).await;
    assert_eq!(served_by(&a), "replica-0", "{}", a.text);
    set_replay(&replica, false).await;
}

/// The replica is killed while four clients read as fast as they can: every request is answered, correctly,
/// by the replica before the kill and by the primary after it.
#[tokio::test]
async fn killing_the_replica_mid_load_loses_no_request() {
    let pair = Pair::start(2).await;
    let server = pair.server(&[("PLYSTRA_REPLICA_MAX_LAG_MS", "2000"), ("PLYSTRA_REPLICA_POLL_MS", "100")]);
    eventually("a read answered by the replica", || async {
        let a = get_with(&server, "/api/v1/users/user_alice", &[]).await;
        (served_by(&a) == "replica-0").then_some(())
    })
    .await;

    let started = Instant::now();
    let kill_at = Duration::from_millis(1500);
    let stop_at = Duration::from_millis(4500);
    let base = server.base.clone();
    let mut workers = Vec::new();
    for w in 0..4 {
        let base = base.clone();
        workers.push(tokio::spawn(async move {
            let client = http();
            // (requests, by the replica before the kill, by the primary after it, failures)
            let mut tally = (0usize, 0usize, 0usize, Vec::new());
            while started.elapsed() < stop_at {
                let before_kill = started.elapsed() < kill_at;
                let (path, want) = if w % 2 == 0 {
                    ("/api/v1/users/user_alice", ("email", "alice@example.com"))
                } else {
                    ("/api/v1/spaces/space_acme", ("id", "space_acme"))
                };
                let resp = client
                    .get(format!("{base}{path}"))
                    .header("X-Plystra-API-Key", admin_key())
                    .send()
                    .await
                    .expect("an answer");
                let a = into_answer(resp).await;
                tally.0 += 1;
                let by = served_by(&a);
                if a.status != 200 || a.body["data"][want.0] != want.1 {
                    tally.3.push(format!("{} {}", a.status, a.text));
                } else if by.starts_with("replica") && before_kill {
                    tally.1 += 1;
                } else if by == "primary" && !before_kill {
                    tally.2 += 1;
                }
            }
            tally
        }));
    }
    tokio::time::sleep(kill_at.saturating_sub(started.elapsed())).await;
    pair.kill_replica();
    let killed_at = started.elapsed();
    let (mut total, mut by_replica, mut by_primary_after, mut failures) = (0, 0, 0, Vec::new());
    for w in workers {
        let t = w.await.unwrap();
        total += t.0;
        by_replica += t.1;
        by_primary_after += t.2;
        failures.extend(t.3);
    }
    println!(
        "replica killed at {killed_at:?}: {total} requests, {} failed; {by_replica} answered by the replica before \
         the kill, {by_primary_after} by the primary after it",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {total} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(by_replica > 0, "the replica answered before the kill");
    assert!(by_primary_after > 0, "the primary answered after the kill");
    // The server keeps answering, from the primary.
    let a = get_with(&server, "/api/v1/users/user_alice", &[]).await;
    assert_eq!(served_by(&a), "primary");
    a.expect_ok(200);
}
