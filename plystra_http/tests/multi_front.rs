//! Several fronts, one database: two `plystra_http` processes (the real binary, each its own pool, caches and
//! in-process state, on its own port) against the same database behave as one. Sessions made on one are
//! honoured by the other, refresh rotation and its reuse detection hold across them, failed logins and the
//! per-address budget are counted together, and API-key use is recorded whichever server sees it.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// A `plystra_http` process on the test database; killed when dropped.
struct Front {
    child: Child,
    server: TestServer,
}

impl Drop for Front {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on a port of its own choosing and waits for the line announcing it.
fn front(extra: &[(&str, &str)]) -> Front {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_plystra_http"));
    cmd.env_clear()
        .env("DATABASE_URL", &db().url)
        .env("SERVER_HOST", "127.0.0.1")
        .env("SERVER_PORT", "0")
        .env("PLYSTRA_SESSION_SECRET", TEST_SESSION_SECRET)
        .env("PLYSTRA_API_KEY_SECRET", TEST_API_KEY_SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the server binary starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if line.contains("plystra_http listening") {
                let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
                let addr: std::net::SocketAddr = v["address"].as_str().unwrap().parse().unwrap();
                // The rest of its log is not read; the pipe is drained so the process never blocks on it.
                std::thread::spawn(move || for _ in rx {});
                return Front { child, server: TestServer { base: format!("http://{addr}"), addr } };
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server did not announce its address within 20 s");
}

const MAX_FAILURES: &str = "4";
const PER_IP: &str = "6";

async fn me(server: &TestServer, token: &str) -> Answer {
    send_to(server, "GET", "/api/v1/auth/me", None, &[("Authorization", &bearer(token))]).await
}

#[tokio::test]
async fn two_fronts_on_one_database_behave_as_one() {
    let settings =
        [("PLYSTRA_AUTH_LOGIN_MAX_FAILURES", MAX_FAILURES), ("PLYSTRA_AUTH_LOGIN_MAX_FAILURES_PER_IP", PER_IP)];
    let (front_a, front_b) = (front(&settings), front(&settings));
    let (a, b) = (&front_a.server, &front_b.server);
    assert_ne!(a.addr.port(), b.addr.port(), "two servers on different ports");
    assert_ne!(front_a.child.id(), front_b.child.id(), "two processes");

    // A session made on A works on B, and a refresh on B rotates it for both.
    let login = login_on(a, "alice@example.com", DEMO_PASSWORD).await;
    let first = login.expect_ok(200).clone();
    let access = first["access_token"].as_str().unwrap();
    me(b, access).await.expect_ok(200);
    let refresh = first["refresh_token"].as_str().unwrap();
    let rotated = send_to(b, "POST", "/api/v1/auth/refresh", Some(json!({"refresh_token": refresh})), ANON).await;
    let second = rotated.expect_ok(200).clone();
    let access2 = second["access_token"].as_str().unwrap();
    me(a, access).await.expect_error(401, "AUTHENTICATION_REQUIRED");
    me(a, access2).await.expect_ok(200);
    // The rotated-out refresh token presented to A (the other server) is recognised as reuse: the whole session
    // ends, on both servers.
    let reuse = send_to(a, "POST", "/api/v1/auth/refresh", Some(json!({"refresh_token": refresh})), ANON).await;
    assert_eq!(reuse.status, 401, "{}", reuse.text);
    me(b, access2).await.expect_error(401, "AUTHENTICATION_REQUIRED");
    me(a, access2).await.expect_error(401, "AUTHENTICATION_REQUIRED");

    // Failed logins for one address are counted together: four wrong passwords alternating between the servers
    // lock it on both.
    let email = "bob@example.com";
    for i in 0..4 {
        let server = if i % 2 == 0 { a } else { b };
        let wrong = login_on(server, email, "not the password").await;
        assert_eq!(wrong.status, 401, "attempt {i}: {}", wrong.text);
    }
    for server in [a, b] {
        let locked = login_on(server, email, DEMO_PASSWORD).await;
        locked.expect_error(429, "LOGIN_LOCKED");
        assert!(locked.header("retry-after").is_some());
    }

    // The per-address budget for new e-mails is shared too: alternating between the servers, the client is
    // throttled within one budget's worth of new addresses (counted per server it would get two budgets).
    let budget: usize = PER_IP.parse().unwrap();
    let mut statuses = Vec::new();
    for i in 0..=budget {
        let server = if i % 2 == 0 { b } else { a };
        let nobody = format!("{}@example.com", unique("nobody"));
        let status = login_on(server, &nobody, "whatever").await.status;
        statuses.push(status);
        if status == 429 {
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "never throttled within one budget across two servers: {statuses:?}");
    assert!(statuses[..statuses.len() - 1].iter().all(|s| *s == 401), "{statuses:?}");

    // API-key use is recorded whichever server sees it first.
    let key = send_to(
        a,
        "POST",
        "/api/v1/api-keys",
        Some(json!({"name": "multi front", "level": "instance", "permission_keys": ["spaces:read"]})),
        &[],
    )
    .await;
    let key = key.expect_ok(201).clone();
    let plaintext = key["api_key"].as_str().unwrap();
    let id = key["id"].as_str().unwrap();
    let db = sql().await;
    let last_use = |id: String| {
        let db = &db;
        async move {
            let row = db
                .query_one(
                    "SELECT last_used_at > now() - interval '10 seconds' FROM plystra.api_keys WHERE id = $1",
                    &[&id],
                )
                .await
                .unwrap();
            row.get::<_, Option<bool>>(0)
        }
    };
    assert_eq!(last_use(id.to_string()).await, None, "never used yet");
    // Used on B, which did not create it: recorded.
    send_to(b, "GET", "/api/v1/spaces", None, &[("X-Plystra-API-Key", plaintext)]).await.expect_ok(200);
    assert_eq!(last_use(id.to_string()).await, Some(true), "B recorded the use");
    // Recorded long ago: A's next use records it again (each process keeps only its own writes in memory, and
    // the stored time is the rule).
    db.execute("UPDATE plystra.api_keys SET last_used_at = now() - interval '1 hour' WHERE id = $1", &[&id])
        .await
        .unwrap();
    send_to(a, "GET", "/api/v1/spaces", None, &[("X-Plystra-API-Key", plaintext)]).await.expect_ok(200);
    assert_eq!(last_use(id.to_string()).await, Some(true), "A recorded the use");
    // Revoked on B, refused on A at once (nothing is cached across requests).
    send_to(b, "POST", &format!("/api/v1/api-keys/{id}/revoke"), Some(json!({})), &[]).await.expect_ok(200);
    send_to(a, "GET", "/api/v1/spaces", None, &[("X-Plystra-API-Key", plaintext)])
        .await
        .expect_error(401, "AUTHENTICATION_REQUIRED");
}
