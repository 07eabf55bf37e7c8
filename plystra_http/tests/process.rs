//! The real binary as an operator runs it: configuration errors stop startup naming the variable, each request
//! writes one structured log line, LOG_FORMAT=text is readable, and SIGTERM shuts down gracefully.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_plystra_http");

struct Running {
    child: Child,
    lines: Receiver<String>,
}

impl Running {
    /// Waits for a stdout line satisfying `pred`.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                if pred(&line) {
                    return line;
                }
            }
        }
        panic!("no log line {what} within 20s");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(extra: &[(&str, &str)]) -> Running {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("DATABASE_URL", &db().url)
        .env("SERVER_HOST", "127.0.0.1")
        .env("SERVER_PORT", "0")
        .env("PLYSTRA_SESSION_SECRET", TEST_SESSION_SECRET)
        .env("PLYSTRA_API_KEY_SECRET", TEST_API_KEY_SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
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
    Running { child, lines: rx }
}

#[test]
fn an_invalid_setting_stops_startup_naming_the_variable() {
    db();
    for (name, value) in [
        ("SERVER_PORT", "eighty"),
        ("LOG_FORMAT", "xml"),
        ("AUDIT_WRITE_MODE", "always"),
        ("METRICS_ENABLED", "perhaps"),
    ] {
        if name == "AUDIT_WRITE_MODE" {
            continue; // unknown audit modes behave like `always` (docs/v1-reference.md §1.9), so none is invalid
        }
        let out = Command::new(BIN).env_clear().env(name, value).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(name), "{name}: {stderr}");
    }
}

#[tokio::test]
async fn each_request_writes_one_json_log_line_and_sigterm_stops_gracefully() {
    let server = spawn(&[]);
    let started = server.wait_for("announcing the address", |l| l.contains("plystra_http listening"));
    let started: Value = serde_json::from_str(&started).expect("JSON log line");
    let addr = started["address"].as_str().unwrap().to_string();

    let rid = unique("req_log");
    let resp =
        http().get(format!("http://{addr}/api/v1/no-such-route")).header("X-Request-ID", &rid).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let line = server.wait_for("for the request", |l| l.contains(&rid));
    let log: Value = serde_json::from_str(&line).expect("the access line is JSON");
    assert_eq!(log["request_id"], rid.as_str());
    assert_eq!(log["method"], "GET");
    assert_eq!(log["path"], "/api/v1/no-such-route");
    assert_eq!(log["status"], 404);
    assert_eq!(log["error_code"], "ROUTE_NOT_FOUND");
    assert_eq!(log["remote_ip"], "127.0.0.1");
    assert_eq!(log["user_agent"], "plystra-http-tests/1.0");
    assert_eq!(log["level"], "INFO");
    for field in ["timestamp", "latency_ms", "bytes", "trace_id", "audit_log_id"] {
        assert!(log.get(field).is_some(), "the access line lacks {field}: {line}");
    }
    assert!(log["bytes"].as_u64().unwrap() > 0);

    let body = serde_json::json!({
        "actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer", "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
        "resource_type": "invoice", "resource_id": "invoice_002", "action": "approve"
    });
    let rid = unique("req_log_decision");
    let resp = http()
        .post(format!("http://{addr}/api/v1/authz/check"))
        .header("X-Request-ID", &rid)
        .header("X-Plystra-API-Key", admin_key())
        .json(&body)
        .send()
        .await
        .unwrap();
    let trace_id = resp.headers().get("x-plystra-trace-id").unwrap().to_str().unwrap().to_string();
    let audit_id = resp.headers().get("x-plystra-audit-log-id").unwrap().to_str().unwrap().to_string();
    let log: Value = serde_json::from_str(&server.wait_for("for the decision", |l| l.contains(&rid))).unwrap();
    assert_eq!(log["trace_id"], trace_id.as_str());
    assert_eq!(log["audit_log_id"], audit_id.as_str());
    assert_eq!(log["status"], 200);

    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    server.wait_for("announcing the shutdown", |l| l.contains("shutdown signal received"));
    let mut server = server;
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[tokio::test]
async fn log_format_text_is_for_people() {
    let server = spawn(&[("LOG_FORMAT", "text")]);
    let started = server.wait_for("announcing the address", |l| l.contains("plystra_http listening"));
    assert!(!started.trim_start().starts_with('{'), "{started}");
    let addr = started.split("address=").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    let rid = unique("req_text");
    http().get(format!("http://{addr}/api/v1/health")).header("X-Request-ID", &rid).send().await.unwrap();
    let line = server.wait_for("for the request", |l| l.contains(&rid));
    assert!(line.contains(&format!("request_id={rid}")), "{line}");
    assert!(line.contains("status=200"), "{line}");
}

#[tokio::test]
async fn passwords_tokens_and_keys_never_reach_a_log_line() {
    let server = spawn(&[("LOG_LEVEL", "debug")]);
    let started = server.wait_for("announcing the address", |l| l.contains("plystra_http listening"));
    let started: Value = serde_json::from_str(&started).expect("JSON log line");
    let addr = started["address"].as_str().unwrap().to_string();
    let base = format!("http://{addr}");

    let login: Value = http()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "bob@example.com", "password": DEMO_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = login["data"]["access_token"].as_str().expect("logged in").to_string();
    let refresh = login["data"]["refresh_token"].as_str().unwrap().to_string();
    let created: Value = http()
        .post(format!("{base}/api/v1/api-keys"))
        .header("X-Plystra-API-Key", admin_key())
        .json(&serde_json::json!({"name": "log probe", "level": "instance", "permission_keys": ["users:read"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["data"]["api_key"].as_str().expect("key created").to_string();
    http().get(format!("{base}/api/v1/users")).header("X-Plystra-API-Key", &key).send().await.unwrap();
    http().get(format!("{base}/api/v1/users")).bearer_auth(&access).send().await.unwrap();
    let rid = unique("req_last");
    http()
        .post(format!("{base}/api/v1/auth/login"))
        .header("X-Request-ID", &rid)
        .json(&serde_json::json!({"email": "bob@example.com", "password": "a-wrong-secret-password"}))
        .send()
        .await
        .unwrap();
    // Every line logged since startup, up to the last request's.
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !lines.iter().any(|l: &String| l.contains(&rid)) {
        assert!(Instant::now() < deadline, "no log line for the last request");
        if let Ok(l) = server.lines.recv_timeout(Duration::from_millis(200)) {
            lines.push(l);
        }
    }
    assert!(lines.len() >= 5, "one line per request: {lines:?}");
    let all = lines.join("\n");
    let key_hash = plystra_http::auth::secrets::hmac_hex(TEST_API_KEY_SECRET, &key);
    for secret in [
        &access[7..],
        &refresh[7..],
        &key[key.len() - 64..],
        &key_hash,
        DEMO_PASSWORD,
        "a-wrong-secret-password",
        TEST_SESSION_SECRET,
        TEST_API_KEY_SECRET,
    ] {
        assert!(!all.contains(secret), "a log line carries a secret ({secret})");
    }
}
