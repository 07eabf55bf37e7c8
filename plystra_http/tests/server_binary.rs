//! The server binary as an operator starts it: production mode refuses unsafe settings (each cause named, exit 2)
//! and starts with safe ones; outside production, PLYSTRA_SCHEMA_AUTO_APPLY installs the extension before serving.
//! (plystractl's own checks of the same refusals are in plystractl/tests/plystractl.rs.)

mod common;

use std::process::{Command, Output};

use common::*;

const SERVER: &str = env!("CARGO_BIN_EXE_plystra_http");

struct Run {
    code: i32,
    stderr: String,
}

fn out(o: Output) -> Run {
    Run { code: o.status.code().unwrap_or(-1), stderr: String::from_utf8_lossy(&o.stderr).to_string() }
}

const PRODUCTION_CAUSES: &[&str] = &[
    "PLYSTRA_SCHEMA_AUTO_APPLY must be false in production",
    "DATABASE_URL must be set in production",
    "PLYSTRA_SESSION_SECRET must be set in production",
    "CORS_ALLOWED_ORIGINS must list the allowed origins explicitly in production",
    "SERVER_PUBLIC_URL must be set to the public URL, not localhost, in production",
];

#[test]
fn production_mode_refuses_unsafe_settings_and_starts_with_safe_ones() {
    db();
    let bare = out(Command::new(SERVER)
        .env_clear()
        .env("SERVER_MODE", "production")
        .env("PLYSTRA_SCHEMA_AUTO_APPLY", "true")
        .output()
        .unwrap());
    assert_eq!(bare.code, 2, "{}", bare.stderr);
    for cause in PRODUCTION_CAUSES {
        assert!(bare.stderr.contains(cause), "{cause}: {}", bare.stderr);
    }
    assert_eq!(
        bare.stderr.lines().filter(|l| l.contains("refusing to start in production")).count(),
        PRODUCTION_CAUSES.len()
    );

    // Each other cause on its own: default credentials, a short or default secret, a wildcard origin, localhost.
    let good: &[(&str, &str)] = &[
        ("SERVER_MODE", "production"),
        ("DATABASE_URL", &db().url),
        ("PLYSTRA_SESSION_SECRET", "a-production-secret-0123456789abcdef-xyz"),
        ("CORS_ALLOWED_ORIGINS", "https://app.example.com"),
        ("SERVER_PUBLIC_URL", "https://plystra.example.com"),
        ("SERVER_HOST", "127.0.0.1"),
        ("SERVER_PORT", "0"),
    ];
    for (name, value, cause) in [
        (
            "DATABASE_URL",
            "postgres://plystra:plystra@db.example.com:5432/plystra",
            "default plystra:plystra credentials",
        ),
        ("PLYSTRA_SESSION_SECRET", "too-short", "at least 32 characters"),
        ("PLYSTRA_SESSION_SECRET", "change-me-session-secret-at-least-32-characters", "must not be a default value"),
        ("CORS_ALLOWED_ORIGINS", "*", "must not contain the wildcard"),
        ("SERVER_PUBLIC_URL", "http://localhost:8080", "SERVER_PUBLIC_URL"),
    ] {
        let mut cmd = Command::new(SERVER);
        cmd.env_clear();
        for (k, v) in good {
            cmd.env(k, v);
        }
        cmd.env(name, value);
        let r = out(cmd.output().unwrap());
        assert_eq!(r.code, 2, "{name}={value}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.contains(cause), "{name}: {}", r.stderr);
    }

    // A safe production configuration starts.
    let mut cmd = Command::new(SERVER);
    cmd.env_clear().stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    for (k, v) in good {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let still_running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(still_running, "a safe production configuration must start");
}

#[tokio::test]
async fn schema_auto_apply_installs_the_extension_at_startup_outside_production() {
    let (url, client) = fresh_database("srv_autoapply").await;
    let mut child = Command::new(SERVER)
        .env_clear()
        .env("DATABASE_URL", &url)
        .env("SERVER_HOST", "127.0.0.1")
        .env("SERVER_PORT", "0")
        .env("PLYSTRA_SCHEMA_AUTO_APPLY", "true")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut installed = false;
    while std::time::Instant::now() < deadline && !installed {
        installed =
            client.query_opt("SELECT 1 FROM pg_extension WHERE extname = 'plystra'", &[]).await.unwrap().is_some();
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(installed, "the server installed the extension before serving");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "the server keeps running once the schema is current");
    let _ = child.kill();
    let _ = child.wait();
}

/// No argument starts a server: `--version` and `--help` answer and exit 0, anything else is refused with exit 2,
/// each before the configuration is read or a port is bound (an attacker's `plystra_http --version`, meant to
/// see the build, started a server on 0.0.0.0:8080).
#[test]
fn arguments_never_start_a_server() {
    let run = |arg: &str| {
        let mut child = Command::new(SERVER)
            .arg(arg)
            .env_clear()
            .env("SERVER_HOST", "127.0.0.1")
            .env("SERVER_PORT", "0")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A server would run until stopped: give it ten seconds, then stop it and fail.
        let started = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > std::time::Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("plystra_http {arg} was still running after 10 s: it started a server");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let o = child.wait_with_output().unwrap();
        (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).to_string(), out(o).stderr)
    };
    let (code, stdout, _) = run("--version");
    assert_eq!((code, stdout.trim()), (0, format!("plystra_http {}", env!("CARGO_PKG_VERSION")).as_str()));
    let (code, stdout, _) = run("--help");
    assert_eq!(code, 0);
    assert!(stdout.contains("configured from the environment"), "{stdout}");
    let (code, _, stderr) = run("--serve-please");
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--serve-please"), "{stderr}");
}
