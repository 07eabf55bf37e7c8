//! Availability and authentication hardening (security review F5, F6, F14; issue 12 items 5, 6, 14, 17): slow
//! bodies never hold a pooled connection, login hashing is bounded and holds no connection, the lock-out is
//! atomic, `login_failures` stays bounded, and authentication events are audited.

mod common;
#[path = "common/h2.rs"]
mod h2;
use h2::h2_connection;

use std::time::{Duration, Instant};

use common::*;
use http_body_util::BodyExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn check_body() -> serde_json::Value {
    json!({
        "actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer",
                  "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
        "resource_type": "invoice",
        "resource_id": "invoice_001",
        "action": "approve"
    })
}

/// Opens a raw connection and sends the head of `POST path` announcing `length` body bytes (and no body yet).
async fn slow_request(server: &TestServer, path: &str, length: usize, credential: Option<&str>) -> TcpStream {
    let key = credential.map(|k| format!("X-Plystra-API-Key: {k}\r\n")).unwrap_or_default();
    slow_request_with(server, path, length, &key).await
}

/// [`slow_request`] from the client `X-Forwarded-For` names (the server trusting 127.0.0.1 as its proxy).
async fn slow_request_from(server: &TestServer, path: &str, length: usize, client: &str) -> TcpStream {
    slow_request_with(server, path, length, &format!("X-Forwarded-For: {client}\r\n")).await
}

async fn slow_request_with(server: &TestServer, path: &str, length: usize, headers: &str) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\n{headers}Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n",
        server.addr
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream
}

/// Writes one body byte every `every` until the stream breaks or `total` bytes went out.
async fn trickle(mut stream: TcpStream, total: usize, every: Duration) {
    for _ in 0..total {
        if stream.write_all(b" ").await.is_err() {
            return;
        }
        tokio::time::sleep(every).await;
    }
}

/// Reads an HTTP/1.1 answer's status line (waiting at most `within`).
async fn status_of(stream: &mut TcpStream, within: Duration) -> Option<u16> {
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if got.windows(2).any(|w| w == b"\r\n") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    read.ok()?;
    let line = String::from_utf8_lossy(&got);
    line.split_whitespace().nth(1).and_then(|s| s.parse().ok())
}

// ---------------------------------------------------------------------------------------------------- F5

/// Twice the pool size of bodies trickled a byte a second are open (authenticated, on the authz route whose
/// guard read the body while holding a connection); every `/authz/check` meanwhile is answered, none with 503.
#[tokio::test]
async fn slow_bodies_do_not_take_the_pool_from_authz_checks() {
    let pool_size = 3;
    let server = start_server(&[
        ("DATABASE_MAX_OPEN_CONNS", "3"),
        ("DATABASE_POOL_WAIT_TIMEOUT", "1s"),
        ("HTTP_BODY_TIMEOUT", "20s"),
    ]);
    let key = admin_key();
    let mut tricklers = Vec::new();
    for _ in 0..2 * pool_size {
        let stream = slow_request(&server, "/api/v1/authz/check", 1000, Some(&key)).await;
        tricklers.push(tokio::spawn(trickle(stream, 1000, Duration::from_millis(1000))));
    }
    // Let every slow request reach the guard.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let started = Instant::now();
    let mut statuses = Vec::new();
    while started.elapsed() < Duration::from_secs(6) {
        let a = send_to(&server, "POST", "/api/v1/authz/check", Some(check_body()), &[]).await;
        statuses.push(a.status);
        assert_ne!(a.status, 503, "a check was refused while slow bodies were open: {}", a.text);
        assert_eq!(a.expect_ok(200)["decision"], "allow");
    }
    assert!(statuses.len() >= 3, "checks answered during the attack: {statuses:?}");
    for t in tricklers {
        t.abort();
    }
}

/// A body has a total deadline (HTTP_BODY_TIMEOUT), not only one per frame: a client that keeps sending a
/// byte a second is cut off with 408 once the deadline passes.
#[tokio::test]
async fn a_trickled_body_is_cut_off_at_the_total_deadline() {
    let server = start_server(&[("HTTP_BODY_TIMEOUT", "2s")]);
    let key = admin_key();
    for path in ["/api/v1/authz/check", "/api/v1/spaces", "/api/v1/auth/login"] {
        let mut stream = slow_request(&server, path, 100, Some(&key)).await;
        let started = Instant::now();
        let mut status = None;
        for _ in 0..12 {
            if stream.write_all(b" ").await.is_err() {
                break;
            }
            if let Some(s) = status_of(&mut stream, Duration::from_millis(500)).await {
                status = Some(s);
                break;
            }
        }
        assert_eq!(status, Some(408), "{path}: a trickled body must get 408 at the total deadline");
        assert!(started.elapsed() < Duration::from_secs(5), "{path}: cut off after {:?}", started.elapsed());
    }
}

/// The size limit holds before any database work: a body announced over 1 MiB is refused with 413 before the
/// credential is looked up (an unknown key gets 413, not 401).
#[tokio::test]
async fn an_oversized_body_is_refused_before_the_credential_is_looked_up() {
    let server = server();
    let mut stream = slow_request(server, "/api/v1/authz/check", 2 * 1024 * 1024, Some("ply_ak_nobody.00")).await;
    assert_eq!(status_of(&mut stream, Duration::from_secs(5)).await, Some(413));
}

/// Whether the server closed `stream` within `within` (reads EOF or an error; bytes read are ignored).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match tokio::time::timeout(deadline - Instant::now(), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
    false
}

/// Connections that send nothing, or an HTTP/2 preface and then nothing, were never closed, so a client could
/// open them until the process ran out of file descriptors and served no one (an attack on the running front).
/// Now: a connection sends its first byte within HTTP_READ_HEADER_TIMEOUT or is closed; one that reads and
/// writes nothing for HTTP_IDLE_TIMEOUT is closed whatever its protocol; and at SERVER_MAX_CONNECTIONS a new one
/// is closed unread while the clients already connected keep being answered.
#[tokio::test]
async fn silent_connections_are_closed_and_bounded() {
    let server = start_server(&[
        ("HTTP_READ_HEADER_TIMEOUT", "2s"),
        ("HTTP_IDLE_TIMEOUT", "3s"),
        ("SERVER_MAX_CONNECTIONS", "12"),
    ]);
    // A client already connected, with a keep-alive connection of its own.
    let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
    let url = format!("http://{}/api/v1/authz/check", server.addr);
    let ask = || client.post(&url).header("x-plystra-api-key", admin_key()).json(&check_body()).send();
    assert_eq!(ask().await.unwrap().status(), 200);

    // Silent connections up to the limit, then one more: that one is closed at once, unread.
    let mut silent = Vec::new();
    for _ in 0..11 {
        silent.push(TcpStream::connect(server.addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut past_limit = TcpStream::connect(server.addr).await.expect("connect");
    assert!(closed_within(&mut past_limit, Duration::from_millis(500)).await, "a connection past the limit is closed");
    assert_eq!(ask().await.unwrap().status(), 200, "the client already connected is answered at the limit");

    // The silent ones are closed after the first-byte deadline, and the server takes new connections again.
    for stream in &mut silent {
        assert!(closed_within(stream, Duration::from_secs(4)).await, "a connection that sends nothing is closed");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let fresh = send_to(&server, "POST", "/api/v1/authz/check", Some(check_body()), &[]).await;
    assert_eq!(fresh.status, 200, "a new client is served once the silent connections are gone: {}", fresh.text);

    // An HTTP/2 connection that sent its preface and settings, then nothing: closed after the idle deadline.
    let mut h2 = TcpStream::connect(server.addr).await.expect("connect");
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.unwrap();
    let started = Instant::now();
    assert!(closed_within(&mut h2, Duration::from_secs(8)).await, "an idle HTTP/2 connection is closed");
    assert!(started.elapsed() >= Duration::from_millis(2500), "not before the idle deadline: {:?}", started.elapsed());
}

/// Request bodies are read before anything else, by unauthenticated clients too; each held up to 1 MiB (about
/// twice that in memory) for HTTP_BODY_TIMEOUT, so a client announcing large bodies on many connections grew the
/// server's memory without bound (2.3 GB at 1,200 connections, in an attack on the running front). Now the
/// bodies being read, all clients together, are bounded by HTTP_BODY_BUFFER_BYTES: past it a request is answered
/// 503 SERVER_BUSY with Retry-After before its body is read, a request without a body is served as before, and
/// the budget comes back when a body is done.
#[tokio::test]
async fn the_bodies_being_read_are_bounded_all_clients_together() {
    let server = start_server(&[
        ("HTTP_BODY_BUFFER_BYTES", "1048576"),
        ("HTTP_BODY_TIMEOUT", "3s"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ]);
    // One client announces the whole budget and sends a byte.
    let mut hog = slow_request_from(&server, "/api/v1/authz/check", 1024 * 1024, "198.51.100.7").await;
    hog.write_all(b"{").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let another_client = [("X-Forwarded-For", "203.0.113.9")];
    let busy = send_to(&server, "POST", "/api/v1/authz/check", Some(check_body()), &another_client).await;
    assert_eq!(busy.status, 503, "{}", busy.text);
    assert_eq!(busy.body["error"]["code"], "SERVER_BUSY", "{}", busy.text);
    assert_eq!(busy.body["error"]["details"]["reason"], "bodies_busy", "{}", busy.text);
    assert!(busy.headers.get("retry-after").is_some(), "with Retry-After");
    let health = send_to(&server, "GET", "/api/v1/version", None, &another_client).await;
    assert_eq!(health.status, 200, "a request without a body is served: {}", health.text);

    // The hog's body times out (408); its share of the budget comes back.
    assert_eq!(status_of(&mut hog, Duration::from_secs(6)).await, Some(408));
    let after = send_to(&server, "POST", "/api/v1/authz/check", Some(check_body()), &another_client).await;
    assert_eq!(after.status, 200, "{}", after.text);
}

/// One client may have at most HTTP_BODY_BUFFER_BYTES_PER_CLIENT of bodies read at once: an attack on the running
/// front held the whole body budget from one address with half-sent 1 MiB bodies, and every other client's POST
/// was answered 503 until they timed out. Here one address (and another of its IPv6 /64) tries to hold four times
/// its share; its bodies past the share are refused at once, and another client is served meanwhile.
#[tokio::test]
async fn one_client_cannot_take_every_body_slot() {
    let server = start_server(&[
        ("HTTP_BODY_BUFFER_BYTES", "4194304"),
        ("HTTP_BODY_BUFFER_BYTES_PER_CLIENT", "1048576"),
        ("HTTP_BODY_TIMEOUT", "3s"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ]);
    for attacker in ["198.51.100.7", "2001:db8:7:7::1"] {
        let mut hogs = Vec::new();
        let mut refused = 0;
        for k in 0..4 {
            // The IPv6 attacker sends from a new address of its /64 each time.
            let from = if attacker.contains(':') { format!("2001:db8:7:7::{}", k + 1) } else { attacker.to_string() };
            let mut hog = slow_request_from(&server, "/api/v1/authz/check", 1024 * 1024, &from).await;
            hog.write_all(b"{").await.unwrap();
            match status_of(&mut hog, Duration::from_millis(500)).await {
                None => hogs.push(hog),
                Some(503) => refused += 1,
                Some(other) => panic!("{from}: a held body answered {other}"),
            }
        }
        assert_eq!((hogs.len(), refused), (1, 3), "{attacker}: one body held, the others refused");

        let victim = [("X-Forwarded-For", "203.0.113.9")];
        let served = send_to(&server, "POST", "/api/v1/authz/check", Some(check_body()), &victim).await;
        assert_eq!(served.status, 200, "another client while {attacker} holds its share: {}", served.text);
        let refused = send_to(
            &server,
            "POST",
            "/api/v1/authz/check",
            Some(check_body()),
            &[("X-Forwarded-For", if attacker.contains(':') { "2001:db8:7:7::99" } else { attacker })],
        )
        .await;
        assert_eq!(refused.status, 503, "{}", refused.text);
        assert_eq!(refused.body["error"]["details"]["reason"], "client_bodies_busy", "{}", refused.text);
        assert!(refused.headers.get("retry-after").is_some(), "with Retry-After");
        for mut hog in hogs {
            assert_eq!(status_of(&mut hog, Duration::from_secs(6)).await, Some(408));
        }
    }
}

/// A request body that sends its first byte and then nothing, ever.
struct Stalled(bool);

impl hyper::body::Body for Stalled {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        if self.0 {
            return std::task::Poll::Pending;
        }
        self.0 = true;
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(axum::body::Bytes::from_static(b"{")))))
    }
}

/// HTTP/2 streams count against the client's share as HTTP/1.1 requests do: one connection opening 40 streams, each
/// announcing a 1 MiB body and sending one byte, holds its 8 MiB share (8 streams) and its other streams are refused
/// at once, while another client is served.
#[tokio::test]
async fn http2_streams_count_against_the_clients_share() {
    let server = start_server(&[
        ("HTTP_BODY_BUFFER_BYTES", "67108864"),
        ("HTTP_BODY_BUFFER_BYTES_PER_CLIENT", "8388608"),
        ("HTTP_BODY_TIMEOUT", "3s"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ]);
    let h2 = h2_connection::<Stalled>(server.addr).await;
    let mut streams = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let mut sender = h2.clone();
        let request = axum::http::Request::post("http://plystra/api/v1/authz/check")
            .header("content-type", "application/json")
            .header("content-length", "1048576")
            .header("x-forwarded-for", "198.51.100.8")
            .body(Stalled(false))
            .unwrap();
        streams.spawn(async move {
            sender.ready().await.unwrap();
            let response = sender.send_request(request).await.unwrap();
            (response.status().as_u16(), response.into_body().collect().await.unwrap().to_bytes())
        });
    }
    let mut refused = 0;
    let waited = tokio::time::timeout(Duration::from_secs(2), async {
        while refused < 32 {
            let (status, body) = streams.join_next().await.expect("a stream").unwrap();
            assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["error"]["details"]["reason"], "client_bodies_busy", "{body}");
            refused += 1;
        }
    })
    .await;
    assert!(waited.is_ok(), "streams past the share refused at once: {refused} of 32 in 2 s");
    assert_eq!(streams.len(), 8, "the streams within the share are still being read");
    let served =
        send_to(&server, "POST", "/api/v1/authz/check", Some(check_body()), &[("X-Forwarded-For", "203.0.113.9")])
            .await;
    assert_eq!(served.status, 200, "another client meanwhile: {}", served.text);
    // The held streams end at the body deadline (408), and their share comes back.
    while let Some(done) = tokio::time::timeout(Duration::from_secs(6), streams.join_next()).await.expect("in time") {
        assert_eq!(done.unwrap().0, 408);
    }
    let after =
        send_to(&server, "POST", "/api/v1/authz/check", Some(check_body()), &[("X-Forwarded-For", "198.51.100.8")])
            .await;
    assert_eq!(after.status, 200, "{}", after.text);
}

/// Requests of many decisions hold a connection for up to a thousand decisions each: twenty AuthZEN evaluation
/// requests run one by one (deny_on_first_deny) held a whole pool for a minute in an attack on the running
/// front, and every other tenant's check was answered 503. Now they hold at most half of the pool: with a pool
/// of 4 and eight such requests at once, single checks meanwhile are all answered 200, and requests of many
/// decisions past the bound wait, then get 503 `bulk_requests_busy` with Retry-After.
#[tokio::test]
async fn requests_of_many_decisions_never_hold_the_whole_pool() {
    let server = start_server(&[
        ("DATABASE_MAX_OPEN_CONNS", "4"),
        ("DATABASE_POOL_WAIT_TIMEOUT", "1s"),
        ("DATABASE_PIPELINE_DEPTH", "0"),
    ]);
    let one = json!({"resource": {"type": "invoice", "id": "invoice_001"}});
    let heavy = json!({
        "subject": {"type": "user", "id": "user_alice"}, "action": {"name": "approve"},
        "options": {"evaluations_semantic": "deny_on_first_deny"},
        "evaluations": vec![one; 1000],
    });
    let mut floods = Vec::new();
    for _ in 0..8 {
        let (base, heavy) = (server.base.clone(), heavy.clone());
        floods.push(tokio::spawn(async move {
            let resp = http()
                .post(format!("{base}/access/v1/evaluations"))
                .header("x-plystra-api-key", admin_key())
                .json(&heavy)
                .send()
                .await
                .expect("sent");
            into_answer(resp).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let mut singles = 0;
    while started.elapsed() < Duration::from_secs(3) {
        let a = send_to(&server, "POST", "/api/v1/authz/check", Some(check_body()), &[]).await;
        assert_eq!(a.status, 200, "a single check while requests of many decisions run: {}", a.text);
        singles += 1;
    }
    let mut statuses = Vec::new();
    for f in floods {
        let a = f.await.unwrap();
        if a.status == 503 {
            assert_eq!(a.body["error"]["details"]["reason"], "bulk_requests_busy", "{}", a.text);
            assert!(a.header("retry-after").is_some(), "503 without Retry-After");
        } else {
            assert_eq!(a.status, 200, "{}", a.text);
        }
        statuses.push(a.status);
    }
    assert!(singles >= 3, "single checks answered meanwhile: {singles}");
    assert!(statuses.contains(&200), "requests of many decisions are served: {statuses:?}");
}

// ---------------------------------------------------------------------------------------------------- F6

const PASSWORD: &str = "correct horse battery staple";

/// Login tests share one client IP (127.0.0.1) and so its per-IP row: they run one at a time, each starting
/// with no per-IP row.
async fn login_lock() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let guard = LOCK.lock().await;
    clear_ip_rows().await;
    guard
}

fn password_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| plystra_http::auth::password::hash(PASSWORD))
}

/// A user bound to member_finance_reviewer in space_acme with [`PASSWORD`]. Returns (user_id, email).
async fn make_user(prefix: &str, email: Option<&str>) -> (String, String) {
    common::make_user(prefix, email, password_hash(), ACME, &[]).await
}

async fn clear_ip_rows() {
    sql().await.execute("DELETE FROM plystra.login_failures WHERE email_key LIKE 'ip:%'", &[]).await.unwrap();
}

/// 40 parallel wrong guesses at one account with PLYSTRA_AUTH_LOGIN_MAX_FAILURES = 8: the attempt is reserved
/// before the password is verified, so at most 8 are evaluated (401); the rest are refused as locked (429). Each
/// guess comes from an address of its own (through a trusted proxy), as a distributed guesser's would, so that
/// the per-address bound on logins in progress plays no part.
#[tokio::test]
async fn parallel_guesses_evaluate_at_most_the_failure_limit() {
    let _serial = login_lock().await;
    let server = start_server(&[
        ("PLYSTRA_AUTH_LOGIN_MAX_FAILURES", "8"),
        ("PLYSTRA_AUTH_LOGIN_CONCURRENCY", "64"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ]);
    let (_, email) = make_user("race", None).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (server_base, email) = (server.base.clone(), email.clone());
        tasks.push(tokio::spawn(async move {
            let resp = http()
                .post(format!("{server_base}/api/v1/auth/login"))
                .header("x-forwarded-for", format!("10.8.0.{}", i + 1))
                .json(&json!({"email": email, "password": format!("wrong-guess-{i}")}))
                .send()
                .await
                .expect("sent");
            into_answer(resp).await
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    let count = |status: u16| answers.iter().filter(|a| a.status == status).count();
    let (evaluated, locked) = (count(401), count(429));
    let summary = format!("401: {evaluated}, 429: {locked}, other: {}", 40 - evaluated - locked);
    assert!(evaluated <= 8, "more guesses evaluated than the limit of 8 ({summary})");
    assert_eq!(evaluated + locked, 40, "every guess is evaluated or refused as locked ({summary})");
    for a in &answers {
        if a.status == 401 {
            a.expect_error(401, "AUTHENTICATION_REQUIRED");
        } else {
            a.expect_error(429, "LOGIN_LOCKED");
            assert!(a.header("retry-after").is_some(), "429 without Retry-After");
        }
    }
    // The account is locked now, even for the right password.
    login_on(&server, &email, PASSWORD).await.expect_error(429, "LOGIN_LOCKED");
}

/// Password hashing holds no pooled connection and runs with bounded concurrency: 24 parallel logins with random
/// e-mails on a server with a pool of 2 leave `/authz/check` answered (no 503), and logins over the hashing
/// budget are answered 429 with Retry-After.
#[tokio::test]
async fn a_login_flood_neither_starves_checks_nor_runs_unbounded() {
    let _serial = login_lock().await;
    let server = start_server(&[
        ("DATABASE_MAX_OPEN_CONNS", "2"),
        ("DATABASE_POOL_WAIT_TIMEOUT", "1s"),
        ("PLYSTRA_AUTH_LOGIN_CONCURRENCY", "2"),
    ]);
    let base = server.base.clone();
    let flood = tokio::spawn(async move {
        let mut statuses = Vec::new();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            let mut batch = Vec::new();
            for _ in 0..24 {
                let base = base.clone();
                batch.push(tokio::spawn(async move {
                    let resp = http()
                        .post(format!("{base}/api/v1/auth/login"))
                        .json(&json!({"email": format!("{}@flood.test", unique("nobody")), "password": "guess-guess-guess"}))
                        .send()
                        .await
                        .expect("sent");
                    into_answer(resp).await
                }));
            }
            for b in batch {
                statuses.push(b.await.unwrap());
            }
        }
        statuses
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        let a = send_to(&server, "POST", "/api/v1/authz/check", Some(check_body()), &[]).await;
        assert_ne!(a.status, 503, "a check was refused during the login flood: {}", a.text);
        a.expect_ok(200);
    }
    let answers = flood.await.unwrap();
    let mut throttled = 0;
    for a in &answers {
        match a.status {
            401 => {}
            429 => {
                assert!(a.header("retry-after").is_some(), "429 without Retry-After: {}", a.text);
                throttled += 1;
            }
            other => panic!("a login got {other}: {}", a.text),
        }
    }
    assert!(throttled > 0, "no login was throttled: hashing concurrency is unbounded");
    clear_ip_rows().await;
}

/// Expired `login_failures` rows are pruned, and one client IP cannot add rows for unknown e-mails without
/// bound (PLYSTRA_AUTH_LOGIN_MAX_FAILURES_PER_IP).
#[tokio::test]
async fn login_failures_stay_bounded() {
    let _serial = login_lock().await;
    let db = sql().await;
    db.execute(
        "INSERT INTO plystra.login_failures (email_key, failure_count, window_started_at, updated_at)
         SELECT 'stale' || g || '@old.test', 3, now() - interval '2 days', now() - interval '2 days'
         FROM generate_series(1, 50) g",
        &[],
    )
    .await
    .unwrap();
    let server = start_server(&[("PLYSTRA_AUTH_LOGIN_MAX_FAILURES_PER_IP", "5")]);
    let tag = unique("perip");
    let mut statuses = Vec::new();
    for i in 0..12 {
        let a = login_on(&server, &format!("{tag}_{i}@random.test"), "guess-guess-guess").await;
        statuses.push(a.status);
        if a.status == 429 {
            assert!(a.header("retry-after").is_some());
        }
    }
    let stale: i64 = db
        .query_one("SELECT count(*) FROM plystra.login_failures WHERE email_key LIKE '%@old.test'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stale, 0, "expired rows are pruned");
    let added: i64 = db
        .query_one("SELECT count(*) FROM plystra.login_failures WHERE email_key LIKE $1", &[&format!("{tag}%")])
        .await
        .unwrap()
        .get(0);
    assert!(added <= 5, "one IP added {added} rows with a per-IP limit of 5 ({statuses:?})");
    assert_eq!(&statuses[..5], &[401; 5]);
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    clear_ip_rows().await;
}

/// An IPv6 client is its /64 for the failed-login budget (and the login slots): a host is given a /64, and one that
/// sent each guess from a new address of it was a new client each time, so PLYSTRA_AUTH_LOGIN_MAX_FAILURES_PER_IP
/// never counted past one. Another /64 keeps a budget of its own.
#[tokio::test]
async fn one_ipv6_network_is_one_login_address() {
    let _serial = login_lock().await;
    let server = start_server(&[("PLYSTRA_AUTH_LOGIN_MAX_FAILURES_PER_IP", "3"), ("TRUSTED_PROXIES", "127.0.0.1")]);
    let tag = unique("v6net");
    let mut statuses = Vec::new();
    for i in 0..6 {
        let from = format!("2001:db8:9:9:{:x}::{:x}", i * 977 + 1, i + 1);
        let a = send_to(
            &server,
            "POST",
            "/api/v1/auth/login",
            Some(json!({"email": format!("{tag}_{i}@random.test"), "password": "guess-guess-guess"})),
            &[("Authorization", ""), ("X-Forwarded-For", &from)],
        )
        .await;
        statuses.push(a.status);
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429], "six addresses of one /64");
    let other = send_to(
        &server,
        "POST",
        "/api/v1/auth/login",
        Some(json!({"email": format!("{tag}_other@random.test"), "password": "guess-guess-guess"})),
        &[("Authorization", ""), ("X-Forwarded-For", "2001:db8:9:a::1")],
    )
    .await;
    assert_eq!(other.status, 401, "another /64 has its own budget: {}", other.text);
    clear_ip_rows().await;
}

/// The per-address budget is for failed logins: successful sign-ins from one address (an office behind one NAT)
/// give back what their attempt counted, so the hundred-and-first of them in a window is not refused (an attack
/// on the running front found every user of an address locked out after 100 sign-ins). Failures still count.
#[tokio::test]
async fn successful_logins_do_not_spend_the_address_budget() {
    let _serial = login_lock().await;
    let server = start_server(&[("PLYSTRA_AUTH_LOGIN_MAX_FAILURES_PER_IP", "3")]);
    let (_, email) = make_user("nat", None).await;
    for i in 0..6 {
        let a = login_on(&server, &email, PASSWORD).await;
        assert_eq!(a.status, 200, "sign-in {i} from one address: {}", a.text);
    }
    let tag = unique("natfail");
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for i in 0..4 {
            v.push(login_on(&server, &format!("{tag}_{i}@random.test"), "guess-guess-guess").await.status);
        }
        v
    };
    assert_eq!(statuses, [401, 401, 401, 429], "failures from the address still spend its budget");
    clear_ip_rows().await;
}

/// One client address cannot take every password-hashing slot from the others: it hashes at most half of
/// PLYSTRA_AUTH_LOGIN_CONCURRENCY at once, and once its budget of failed logins is spent it is refused before
/// taking a slot (an attack found one user signing in in a loop, or a flood of made-up e-mails, refusing
/// everyone else's logins with LOGIN_THROTTLED). Addresses come from X-Forwarded-For through a trusted proxy.
#[tokio::test]
async fn one_address_cannot_take_every_login_slot() {
    let _serial = login_lock().await;
    let server = start_server(&[
        ("PLYSTRA_AUTH_LOGIN_CONCURRENCY", "2"),
        ("PLYSTRA_AUTH_LOGIN_MAX_FAILURES_PER_IP", "1000"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ]);
    let (_, hog_email) = make_user("hog", None).await;
    let (_, victim_email) = make_user("victim", None).await;
    let base = server.base.clone();
    let login_from = move |address: &'static str, email: String| {
        let base = base.clone();
        async move {
            let resp = http()
                .post(format!("{base}/api/v1/auth/login"))
                .header("x-forwarded-for", address)
                .json(&json!({"email": email, "password": PASSWORD}))
                .send()
                .await
                .expect("sent");
            into_answer(resp).await
        }
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut hogs = Vec::new();
    for _ in 0..6 {
        let (stop, email, login_from) = (stop.clone(), hog_email.clone(), login_from.clone());
        hogs.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                statuses.push(login_from("10.9.0.1", email.clone()).await.status);
            }
            statuses
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..5 {
        let a = login_from("10.9.0.2", victim_email.clone()).await;
        assert_eq!(a.status, 200, "the other address's sign-in {i} during the loop: {}", a.text);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut hog_statuses = Vec::new();
    for h in hogs {
        hog_statuses.extend(h.await.unwrap());
    }
    assert!(hog_statuses.contains(&200), "the looping address signs in too: {hog_statuses:?}");
    assert!(hog_statuses.contains(&429), "but not on every slot at once: {hog_statuses:?}");
    clear_ip_rows().await;
}

/// Login lower-cases with PostgreSQL's lower() only, as the lookup does: an address with `İ` logs in.
#[tokio::test]
async fn an_address_with_dotted_capital_i_logs_in() {
    let _serial = login_lock().await;
    let id = unique("inci");
    let (_, email) = make_user("inci", Some(&format!("İnci.{id}@example.com"))).await;
    login_on(server(), &email, PASSWORD).await.expect_ok(200);
}

/// A disabled user with the right password gets exactly the answer of a wrong password (no password oracle).
#[tokio::test]
async fn a_disabled_user_with_the_right_password_gets_the_wrong_password_answer() {
    let _serial = login_lock().await;
    let (id, email) = make_user("disabled", None).await;
    sql().await.execute("UPDATE plystra.users SET status = 'disabled' WHERE id = $1", &[&id]).await.unwrap();
    let right = login_on(server(), &email, PASSWORD).await;
    let wrong = login_on(server(), &email, "not-the-password").await;
    right.expect_error(401, "AUTHENTICATION_REQUIRED");
    wrong.expect_error(401, "AUTHENTICATION_REQUIRED");
    assert_eq!(right.body["error"]["message"], wrong.body["error"]["message"]);
    assert_eq!(right.body["error"]["details"], wrong.body["error"]["details"]);
}

// ---------------------------------------------------------------------------------------------------- F14

async fn audit_actions(request_id: &str) -> Vec<(String, Option<String>, Option<String>, String)> {
    sql()
        .await
        .query(
            "SELECT action, resource_id, decision, row_to_json(a)::text FROM plystra.audit_logs a
             WHERE request_id = $1 ORDER BY created_at, id",
            &[&request_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

async fn post_with_rid(
    server: &TestServer,
    path: &str,
    body: serde_json::Value,
    headers: &[(&str, &str)],
) -> (String, Answer) {
    let rid = unique("req_authevent");
    let mut all: Vec<(&str, &str)> = vec![("X-Request-ID", &rid)];
    all.extend_from_slice(headers);
    let a = send_to(server, "POST", path, Some(body), &all).await;
    (rid, a)
}

/// Login success and failure, lock-out, refresh, logout and member switch each append an audit row naming
/// the user, with no password or token in it.
#[tokio::test]
async fn authentication_events_are_audited_without_secrets() {
    let _serial = login_lock().await;
    let server = start_server(&[("PLYSTRA_AUTH_LOGIN_MAX_FAILURES", "2")]);
    let (id, email) = make_user("audited", None).await;
    let secrets_absent = |row: &str, secrets: &[&str]| {
        for s in secrets {
            assert!(!row.contains(s), "the audit row holds a secret: {row}");
        }
    };

    let (rid, a) =
        post_with_rid(&server, "/api/v1/auth/login", json!({"email": email, "password": PASSWORD}), ANON).await;
    let data = a.expect_ok(200).clone();
    let (access, refresh) =
        (data["access_token"].as_str().unwrap().to_string(), data["refresh_token"].as_str().unwrap().to_string());
    let rows = audit_actions(&rid).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "auth.login_succeeded");
    assert_eq!(rows[0].1.as_deref(), Some(id.as_str()));
    secrets_absent(&rows[0].3, &[PASSWORD, &access, &refresh]);

    let (rid, a) = post_with_rid(
        &server,
        "/api/v1/actor/switch-member",
        json!({"user_member_id": format!("um_{id}")}),
        &[("authorization", &bearer(&access))],
    )
    .await;
    a.expect_ok(200);
    let rows = audit_actions(&rid).await;
    assert_eq!(rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["auth.member_switched"]);
    assert_eq!(rows[0].1.as_deref(), Some(id.as_str()));

    let (rid, a) = post_with_rid(&server, "/api/v1/auth/refresh", json!({"refresh_token": refresh}), ANON).await;
    let data = a.expect_ok(200).clone();
    let (access2, refresh2) =
        (data["access_token"].as_str().unwrap().to_string(), data["refresh_token"].as_str().unwrap().to_string());
    let rows = audit_actions(&rid).await;
    assert_eq!(rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["auth.refreshed"]);
    assert_eq!(rows[0].1.as_deref(), Some(id.as_str()));
    secrets_absent(&rows[0].3, &[&refresh, &access2, &refresh2]);

    let (rid, a) =
        post_with_rid(&server, "/api/v1/auth/logout", json!({}), &[("authorization", &bearer(&access2))]).await;
    a.expect_ok(200);
    let rows = audit_actions(&rid).await;
    assert_eq!(rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["auth.logged_out"]);
    assert_eq!(rows[0].1.as_deref(), Some(id.as_str()));

    let (rid, a) =
        post_with_rid(&server, "/api/v1/auth/login", json!({"email": email, "password": "wrong-password-1"}), ANON)
            .await;
    a.expect_error(401, "AUTHENTICATION_REQUIRED");
    let rows = audit_actions(&rid).await;
    assert_eq!(rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["auth.login_failed"]);
    assert_eq!(rows[0].1.as_deref(), Some(id.as_str()));
    secrets_absent(&rows[0].3, &["wrong-password-1"]);

    // The second failure reaches the limit of 2: the failure and the lock-out are both recorded.
    let (rid, a) =
        post_with_rid(&server, "/api/v1/auth/login", json!({"email": email, "password": "wrong-password-2"}), ANON)
            .await;
    a.expect_error(401, "AUTHENTICATION_REQUIRED");
    let mut actions: Vec<String> = audit_actions(&rid).await.into_iter().map(|r| r.0).collect();
    actions.sort();
    assert_eq!(actions, ["auth.locked_out", "auth.login_failed"]);
    clear_ip_rows().await;
}
