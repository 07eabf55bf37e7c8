//! The front under load and faults: an exhausted pool fails fast with 503 and Retry-After, a slow request body is
//! cut off, and a database restart is survived without restarting the server (its own PostgreSQL cluster, stopped
//! and started again while the server runs).

mod common;
#[path = "common/h2.rs"]
mod h2;
use h2::h2_connection;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// Held by the tests that lock a table of the shared test database and count the requests waiting for it, so
/// that each counts only its own.
static TABLE_LOCKING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Backends of the test database waiting for a lock (the requests stuck behind the test's table lock).
async fn lock_waiters(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn an_exhausted_pool_answers_503_with_retry_after_within_the_wait_and_recovers() {
    const WAIT: Duration = Duration::from_millis(1500);
    let _turn = TABLE_LOCKING.lock().await;
    let s = start_server(&[("DATABASE_MAX_OPEN_CONNS", "2"), ("DATABASE_POOL_WAIT_TIMEOUT", "1500ms")]);
    send_to(&s, "GET", "/api/v1/users", None, &[]).await.expect_ok(200);

    // An outside session locks the users table; two requests that read users each hold a pooled connection
    // while they wait for it, which is the whole pool.
    let mut locker = sql().await;
    let tx = locker.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE plystra.users IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let base = s.base.clone();
    let blocked: Vec<_> = (0..2)
        .map(|_| {
            let url = format!("{base}/api/v1/users");
            tokio::spawn(async move {
                let resp = http().get(url).header("X-Plystra-API-Key", admin_key()).send().await.unwrap();
                into_answer(resp).await
            })
        })
        .collect();
    let observer = sql().await;
    let started = Instant::now();
    while lock_waiters(&observer).await < 2 {
        assert!(started.elapsed() < Duration::from_secs(10), "the two requests never blocked on the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A third request finds no free connection: 503 with Retry-After once the wait is over, not a hang.
    for path in ["/api/v1/spaces", "/api/v1/users"] {
        let t = Instant::now();
        let a = send_to(&s, "GET", path, None, &[]).await;
        let took = t.elapsed();
        let e = a.expect_error(503, "DATABASE_UNAVAILABLE");
        assert_eq!(e["details"]["reason"], "pool_exhausted", "{}", a.text);
        assert_eq!(a.header("retry-after").as_deref(), Some("1"));
        assert!(took >= WAIT - Duration::from_millis(100), "answered before the wait: {took:?}");
        assert!(took < WAIT + Duration::from_secs(1), "{path} took {took:?}, over the wait + 1s");
    }
    // Readiness says so too (it needs a connection like everything else), and liveness does not care.
    let a = send_to(&s, "GET", "/api/v1/ready", None, &[]).await;
    a.expect_error(503, "NOT_READY");
    assert_eq!(a.header("retry-after").as_deref(), Some("1"));
    send_to(&s, "GET", "/api/v1/health", None, &[]).await.expect_ok(200);

    // Releasing the lock lets the blocked requests finish and the pool serve again.
    tx.rollback().await.unwrap();
    for b in blocked {
        b.await.unwrap().expect_ok(200);
    }
    send_to(&s, "GET", "/api/v1/spaces", None, &[]).await.expect_ok(200);
    send_to(&s, "GET", "/api/v1/ready", None, &[]).await.expect_ok(200);
}

/// Backends of the server whose connections are named `application_name` that wait for a lock.
async fn lock_waiters_named(client: &tokio_postgres::Client, application_name: &str) -> i64 {
    let sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'";
    client.query_one(sql, &[&application_name]).await.unwrap().get(0)
}

/// GET `path` as the admin on an HTTP/2 connection: the status and the body.
async fn h2_get(mut sender: hyper::client::conn::http2::SendRequest<String>, path: &str) -> (u16, String) {
    use http_body_util::BodyExt;
    let request = axum::http::Request::get(format!("http://plystra{path}"))
        .header("X-Plystra-API-Key", admin_key())
        .body(String::new())
        .unwrap();
    sender.ready().await.unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The serving lanes (`lanes`) split DATABASE_MAX_OPEN_CONNS into shares, but a request whose lane's share is
/// busy borrows another lane's connection instead of waiting: two requests on one HTTP/2 connection (one lane,
/// whose share is one connection) both reach the database. The whole pool still bounds them: a third is
/// answered 503 once the wait is over.
#[tokio::test]
async fn a_lane_whose_share_is_busy_borrows_another_lanes_connection_within_the_whole_pool() {
    const WAIT: Duration = Duration::from_millis(1500);
    const NAME: &str = "plystra_lanes_test";
    let _turn = TABLE_LOCKING.lock().await;
    let url = common::db().url.clone();
    let url = format!("{url}{}application_name={NAME}", if url.contains('?') { '&' } else { '?' });
    let s = start_server(&[
        ("DATABASE_URL", url.as_str()),
        ("SERVER_THREADS", "2"),
        ("DATABASE_MAX_OPEN_CONNS", "2"),
        ("DATABASE_POOL_WAIT_TIMEOUT", "1500ms"),
    ]);
    let h2 = h2_connection(s.addr).await;
    assert_eq!(h2_get(h2.clone(), "/api/v1/users").await.0, 200, "the server speaks HTTP/2 with prior knowledge");

    let mut locker = sql().await;
    let tx = locker.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE plystra.users IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let observer = sql().await;
    let mut blocked = vec![tokio::spawn(h2_get(h2.clone(), "/api/v1/users"))];
    let started = Instant::now();
    while lock_waiters_named(&observer, NAME).await < 1 {
        assert!(started.elapsed() < Duration::from_secs(10), "the first request never reached the database");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The lane's one connection is taken: readiness, asked on the same lane, speaks for the whole pool.
    let t = Instant::now();
    let (status, body) = h2_get(h2.clone(), "/api/v1/ready").await;
    assert_eq!(status, 200, "ready with a connection free in another lane: {body}");
    assert!(t.elapsed() < WAIT, "readiness waited for its own lane: {:?}", t.elapsed());

    blocked.push(tokio::spawn(h2_get(h2.clone(), "/api/v1/users")));
    let started = Instant::now();
    while lock_waiters_named(&observer, NAME).await < 2 {
        assert!(
            started.elapsed() < WAIT + Duration::from_secs(3),
            "the two requests of one lane never both reached the database (no connection was borrowed)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t = Instant::now();
    let (status, body) = h2_get(h2.clone(), "/api/v1/spaces").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("pool_exhausted"), "{body}");
    assert!(t.elapsed() >= WAIT - Duration::from_millis(100), "answered before the wait: {:?}", t.elapsed());
    assert_eq!(lock_waiters_named(&observer, NAME).await, 2, "no lane opened a connection beyond the whole pool");

    tx.rollback().await.unwrap();
    for b in blocked {
        let (status, body) = b.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
}

async fn backend_pid(client: &deadpool_postgres::Object) -> i32 {
    client.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn the_guard_hands_its_connection_over_to_the_handler() {
    use plystra_http::db;
    let vars = std::collections::HashMap::from([("DATABASE_URL".to_string(), common::db().url.clone())]);
    let config = plystra_http::config::Config::from_vars(&vars).unwrap();
    let pool = db::create_pool(&config, Default::default()).unwrap();
    let guard_client = db::Db::new(pool.clone()).connection().await.unwrap();
    let guard_pid = backend_pid(&guard_client).await;
    // The seam parks its connection in the request's extensions; the handler's `Db` is made from them.
    let mut extensions = axum::http::Extensions::new();
    db::Db::hand_over(guard_client, &mut extensions);
    let mut handler = db::Db::of_request(&mut extensions, &pool);
    let first = handler.connection().await.unwrap();
    let second = handler.connection().await.unwrap();
    assert_eq!(backend_pid(&first).await, guard_pid, "the first connection asked for is the one handed over");
    assert_ne!(backend_pid(&second).await, guard_pid, "only once");
    let mut another = db::Db::of_request(&mut extensions, &pool);
    let third = another.connection().await.unwrap();
    assert_ne!(backend_pid(&third).await, guard_pid, "and to one Db only");
    assert!(!handler.on_replica() && !another.on_replica(), "nothing was routed to a replica");

    // So a one-connection pool serves guarded routes: the handler does not wait for a second connection.
    let s = start_server(&[("DATABASE_MAX_OPEN_CONNS", "1"), ("DATABASE_POOL_WAIT_TIMEOUT", "300ms")]);
    send_to(&s, "GET", "/api/v1/users", None, &[]).await.expect_ok(200);
    let check = json!({"actor": {"user_id": "user_bob", "member_id": "member_finance_reviewer",
                                 "user_member_id": "um_bob_finance_reviewer", "space_id": "space_acme"},
                       "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"});
    send_to(&s, "POST", "/api/v1/authz/check", Some(check), &[]).await.expect_ok(200);
}

/// How many checkouts the pool's one connection has served so far (deadpool counts each reuse), this one
/// included.
async fn checkouts(pool: &deadpool_postgres::Pool) -> usize {
    let client = pool.get().await.unwrap();
    deadpool_postgres::Object::metrics(&client).recycle_count
}

/// What a request costs the pool, counted on the server's own pool (one connection, so that every checkout is
/// a reuse deadpool counts): an accepted admin request one checkout (the seam's connection is the handler's),
/// whether the handler answers or fails; a refusal by the seam one; a decision one; a write one more for its
/// consistency token (read after the handler), even when its body does not read; a route that never needs the
/// database none.
#[tokio::test]
async fn a_request_costs_one_pool_checkout_and_a_route_without_the_database_none() {
    use tower::ServiceExt;
    let vars = std::collections::HashMap::from([
        ("DATABASE_URL".to_string(), common::db().url.clone()),
        ("DATABASE_MAX_OPEN_CONNS".to_string(), "1".to_string()),
        ("PLYSTRA_SESSION_SECRET".to_string(), TEST_SESSION_SECRET.to_string()),
        ("PLYSTRA_API_KEY_SECRET".to_string(), TEST_API_KEY_SECRET.to_string()),
    ]);
    let config = plystra_http::config::Config::from_vars(&vars).unwrap();
    let state = plystra_http::app::build_state(config).await.unwrap();
    let pool = state.pool.clone();
    let app = plystra_http::app::router(state);
    let check = json!({"actor": {"user_id": "user_bob", "member_id": "member_finance_reviewer",
                                 "user_member_id": "um_bob_finance_reviewer", "space_id": "space_acme"},
                       "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"})
    .to_string();
    let space = json!({"id": unique("space_checkouts"), "name": "Checkouts"}).to_string();
    let key = admin_key();
    // (method, path, API key, body, status, checkouts)
    let cases: [(&str, &str, &str, &str, u16, usize); 9] = [
        ("GET", "/api/v1/health", "", "", 200, 0),
        ("GET", "/api/v1/version", "", "", 200, 1),
        ("GET", "/api/v1/users", &key, "", 200, 1),
        ("GET", "/api/v1/users/user_nobody", &key, "", 404, 1),
        // A write route whose body does not read: the seam's checkout, and the token's after the handler.
        ("POST", "/api/v1/users", &key, "{\"email\":", 400, 2),
        ("GET", "/api/v1/users", "", "", 401, 1),
        ("POST", "/api/v1/authz/check", &key, &check, 200, 1),
        ("POST", "/api/v1/spaces", &key, &space, 201, 2),
        ("GET", "/api/v1/no-such-route", &key, "", 404, 0),
    ];
    for (method, path, key, body, status, expected) in cases {
        let before = checkouts(&pool).await;
        let mut request =
            axum::http::Request::builder().method(method).uri(path).header("content-type", "application/json");
        if !key.is_empty() {
            request = request.header("x-plystra-api-key", key);
        }
        let response = app.clone().oneshot(request.body(axum::body::Body::from(body.to_string())).unwrap()).await;
        let response = response.unwrap();
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        drop(response);
        // `before` counted the checkout that read it.
        let spent = checkouts(&pool).await - before - 1;
        assert_eq!(spent, expected, "{method} {path}: {spent} pool checkouts");
    }
}

#[test]
fn the_pool_wait_defaults_to_two_seconds_and_must_be_a_duration() {
    use plystra_http::config::Config;
    use std::collections::HashMap;
    let c = Config::from_vars(&HashMap::new()).unwrap();
    assert_eq!(c.database_pool_wait_timeout, Duration::from_secs(2));
    let vars = |v: &str| HashMap::from([("DATABASE_POOL_WAIT_TIMEOUT".to_string(), v.to_string())]);
    assert_eq!(Config::from_vars(&vars("250ms")).unwrap().database_pool_wait_timeout, Duration::from_millis(250));
    for bad in ["0s", "soon", "-1s"] {
        assert_eq!(Config::from_vars(&vars(bad)).unwrap_err().variable, "DATABASE_POOL_WAIT_TIMEOUT", "{bad}");
    }
}

#[tokio::test]
async fn a_client_that_never_finishes_its_body_is_cut_off_by_the_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = start_server(&[("HTTP_READ_TIMEOUT", "1s")]);
    let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/authz/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Plystra-API-Key: {}\r\n\
         Content-Length: 1000\r\n\r\n{{\"action\":",
        admin_key()
    );
    let t = Instant::now();
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let done = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut buf)).await;
    assert!(done.is_ok(), "the server waited more than 10s for a body it was promised");
    let text = String::from_utf8_lossy(&buf);
    // Answered (a 4xx, never a 5xx) or disconnected, within the timeout plus a margin.
    if !text.is_empty() {
        let status: u16 = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        assert!((400..500).contains(&status), "{text}");
    }
    assert!(t.elapsed() < Duration::from_secs(4), "took {:?}", t.elapsed());
}

/// A PostgreSQL cluster of this test's own (scripts/lib.sh), stopped on drop.
struct OwnCluster {
    dir: std::path::PathBuf,
    port: u16,
}

fn lib_sh(script: &str) -> String {
    let root = repo_root();
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("set -e; source scripts/lib.sh; {script}"))
        .current_dir(&root)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{script}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl OwnCluster {
    fn start() -> Self {
        let dir = repo_root().join(format!("target/plystra_http_db_restart_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // PLYSTRA_TEST_OWN_CLUSTER_PORT picks where the search for a free port starts (a machine that gives each
        // builder its own port range); by default a port derived from the process id.
        let first = std::env::var("PLYSTRA_TEST_OWN_CLUSTER_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(56000 + (std::process::id() % 2000) as u16);
        let port: u16 = lib_sh(&format!("free_port {first}")).parse().unwrap();
        let cluster = OwnCluster { dir, port };
        cluster.up();
        cluster
    }
    fn up(&self) {
        lib_sh(&format!("cluster_start '{}' {}", self.dir.display(), self.port));
    }
    fn down(&self) {
        lib_sh(&format!("cluster_stop '{}'", self.dir.display()));
    }
    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        self.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn the_server_survives_a_database_restart_and_ready_reports_the_outage() {
    let cluster = OwnCluster::start();
    let admin = connect(&cluster.url("postgres")).await;
    // "plystra" is the database the audit writer of cluster_start works in.
    admin.batch_execute("CREATE DATABASE plystra").await.unwrap();
    let client = connect(&cluster.url("plystra")).await;
    client.batch_execute("CREATE EXTENSION plystra").await.expect("CREATE EXTENSION plystra");
    let demo = std::fs::read_to_string(repo_root().join("sql/demo.sql")).unwrap();
    client.batch_execute(&demo).await.expect("demo data");
    bootstrap_admin(&client).await;
    drop(client);
    drop(admin);

    let s = start_server(&[("DATABASE_URL", &cluster.url("plystra"))]);
    let check = json!({
        "actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer",
                  "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
        "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"
    });
    send_to(&s, "GET", "/api/v1/ready", None, &[]).await.expect_ok(200);
    let a = send_to(&s, "POST", "/api/v1/authz/check", Some(check.clone()), &[]).await;
    assert_eq!(a.expect_ok(200)["decision"], "allow");

    cluster.down();
    // While the database is down: readiness says so, other routes fail fast in the envelope, liveness is fine.
    let t = Instant::now();
    let a = send_to(&s, "GET", "/api/v1/ready", None, &[]).await;
    a.expect_error(503, "NOT_READY");
    assert_eq!(a.header("retry-after").as_deref(), Some("1"));
    for (method, path, body) in [
        ("POST", "/api/v1/authz/check", Some(check.clone())),
        ("GET", "/api/v1/users", None),
        ("GET", "/api/v1/spaces/space_acme", None),
    ] {
        let a = send_to(&s, method, path, body, &[]).await;
        a.expect_error(503, "DATABASE_UNAVAILABLE");
        assert_eq!(a.header("retry-after").as_deref(), Some("1"));
    }
    let login = login_on(&s, "alice@example.com", DEMO_PASSWORD).await;
    login.expect_error(503, "DATABASE_UNAVAILABLE");
    send_to(&s, "GET", "/api/v1/health", None, &[]).await.expect_ok(200);
    assert!(t.elapsed() < Duration::from_secs(3), "the outage answers took {:?}", t.elapsed());

    // The same server, the database back: ready again and deciding within a few seconds.
    cluster.up();
    let t = Instant::now();
    loop {
        let a = send_to(&s, "GET", "/api/v1/ready", None, &[]).await;
        if a.status == 200 {
            break;
        }
        a.expect_error(503, "NOT_READY");
        assert!(t.elapsed() < Duration::from_secs(10), "not ready 10s after the database came back: {}", a.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let a = send_to(&s, "POST", "/api/v1/authz/check", Some(check), &[]).await;
    assert_eq!(a.expect_ok(200)["decision"], "allow");
    send_to(&s, "GET", "/api/v1/users", None, &[]).await.expect_ok(200);
    println!("recovered {:?} after the database restart", t.elapsed());
}

/// Stopping the server lets the requests in flight on every serving lane finish, then closes: a slow request on
/// each of two connections (one a lane) sent before `stop` is answered, `stop` returns only after them, and the
/// port accepts nothing afterwards.
#[tokio::test]
async fn stopping_lets_every_lanes_requests_in_flight_finish() {
    const SLOW: Duration = Duration::from_millis(800);
    let vars = std::collections::HashMap::from(
        [
            ("DATABASE_URL", common::db().url.as_str()),
            ("SERVER_HOST", "127.0.0.1"),
            ("SERVER_PORT", "0"),
            ("SERVER_THREADS", "2"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let config = plystra_http::config::Config::from_vars(&vars).unwrap();
    let slow = axum::Router::new().route(
        "/slow",
        axum::routing::get(|| async {
            tokio::time::sleep(SLOW).await;
            "done"
        }),
    );
    let server = plystra_http::app::start_with(config, slow).await.unwrap();
    let addr = server.local_addr;
    let in_flight: Vec<_> = (0..2)
        .map(|_| {
            // A client each: two connections, which the server hands to its two lanes.
            tokio::spawn(async move {
                let resp = http().get(format!("http://{addr}/slow")).send().await.unwrap();
                (resp.status().as_u16(), resp.text().await.unwrap())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = Instant::now();
    server.stop().await.unwrap();
    assert!(
        asked.elapsed() >= Duration::from_millis(300),
        "stop returned with requests in flight: {:?}",
        asked.elapsed()
    );
    for request in in_flight {
        assert_eq!(request.await.unwrap(), (200, "done".to_string()), "a request in flight was cut off");
    }
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the port still accepts connections after stop");
}

/// A database that accepts connections and never answers costs a request one connection attempt (the pool's
/// five-second create timeout), then 503 DATABASE_UNAVAILABLE: a request does not go on to try each serving
/// lane's pool in turn when the database itself cannot be reached.
#[tokio::test]
async fn an_unanswering_database_is_tried_once_not_once_a_lane() {
    // Accepts TCP connections, reads nothing, answers nothing.
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole_addr = hole.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = hole.accept().await {
            held.push(stream);
        }
    });
    let url = format!("postgres://postgres@{hole_addr}/postgres");
    let s = start_server(&[("DATABASE_URL", url.as_str()), ("SERVER_THREADS", "2"), ("DATABASE_MAX_OPEN_CONNS", "4")]);
    let asked = Instant::now();
    send_to(&s, "GET", "/api/v1/users", None, &[]).await.expect_error(503, "DATABASE_UNAVAILABLE");
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(8), "a request tried the unanswering database more than once: {took:?}");
}
