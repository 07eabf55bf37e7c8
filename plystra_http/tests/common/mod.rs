//! Test harness: a fresh database per test binary (from PLYSTRA_TEST_DATABASE_URL, a superuser URL on a local
//! cluster) with `CREATE EXTENSION plystra` and the Finance Reviewer demo data, and real servers bound to
//! 127.0.0.1:0 running on a background runtime that lives as long as the test process.
//!
//! Nothing is mocked. Without PLYSTRA_TEST_DATABASE_URL every test fails with a message saying so.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

pub mod proxy;

pub const DB_ENV: &str = "PLYSTRA_TEST_DATABASE_URL";

/// The secrets every test server runs with (unless a test overrides them).
pub const TEST_SESSION_SECRET: &str = "test-session-secret-0123456789abcdef-0001";
pub const TEST_API_KEY_SECRET: &str = "test-api-key-secret-0123456789abcdef-0001";
/// The demo users' password (sql/demo.sql).
pub const DEMO_PASSWORD: &str = "plystra-demo";
/// The harness's admin credential: an instance-level API key holding `*`, created at setup, sent by [`send`],
/// [`send_to`] and [`send_raw`] unless the request carries its own credential. user_alice is also made an
/// instance super admin (grant `ag_harness_alice_super_admin`), for tests that need a session.
pub const ADMIN_KEY_ID: &str = "ak_harness_admin";
pub const ADMIN_GRANT_ID: &str = "ag_harness_alice_super_admin";

/// The plaintext of the harness's admin API key (deterministic, so spawned servers accept it too).
pub fn admin_key() -> String {
    format!("ply_ak_{ADMIN_KEY_ID}.{}", "a1".repeat(32))
}

pub struct TestDb {
    pub url: String,
    pub name: String,
}

#[derive(Clone)]
pub struct TestServer {
    pub base: String,
    pub addr: std::net::SocketAddr,
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("test runtime")
    })
}

/// Runs a future on the background runtime from any context (tests run inside their own runtime, where
/// blocking on another is not allowed, so the blocking happens on a plain thread).
fn on_background<F>(future: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    std::thread::spawn(move || runtime().block_on(future)).join().unwrap_or_else(|e| std::panic::resume_unwind(e))
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `postgres://u@h:p/db?x` with the database replaced.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let prefix = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{prefix}/{db}?{q}"),
        None => format!("{prefix}/{db}"),
    }
}

pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

async fn create_database() -> TestDb {
    let admin_url = std::env::var(DB_ENV).unwrap_or_else(|_| {
        panic!(
            "{DB_ENV} is not set. These tests run against a real PostgreSQL 15 with the plystra extension: set it to a \
             superuser URL on a local cluster, e.g. `source scripts/lib.sh; cluster_start /tmp/plystra-a 55442` then \
             {DB_ENV}=postgres://postgres@127.0.0.1:55442/postgres"
        )
    });
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().to_string()))
        .unwrap_or_else(|| "tests".into());
    let binary: String = binary
        .split('-')
        .next()
        .unwrap_or("tests")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let name = format!("plystra_http_{binary}_{}", std::process::id());
    let admin = connect(&admin_url).await;
    // Databases (and the test roles of tests/authz.rs) left by earlier runs whose process is gone are dropped,
    // so the cluster does not fill up.
    for row in
        admin.query("SELECT datname FROM pg_database WHERE datname LIKE 'plystra\\_http\\_%'", &[]).await.unwrap()
    {
        let old: String = row.get(0);
        let pid = old.rsplit('_').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {old} WITH (FORCE)")).await;
            }
        }
    }
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.expect("drop old test database");
    admin.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create test database");
    let url = with_database(&admin_url, &name);
    let client = connect(&url).await;

    // Tests run against the real extension, never a stand-in: without it they fail and say why.
    if let Err(e) = client.batch_execute("CREATE EXTENSION plystra").await {
        let message = e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string());
        panic!(
            "CREATE EXTENSION plystra failed: {message} (install it with scripts/lib.sh install_extension; the \
             cluster must run with shared_preload_libraries=plystra, as cluster_start does, and be restarted \
             after reinstalling the extension)"
        );
    }
    let demo = repo_root().join("sql/demo.sql");
    let demo_sql = std::fs::read_to_string(&demo).unwrap_or_else(|e| panic!("{}: {e}", demo.display()));
    client.batch_execute(&demo_sql).await.unwrap_or_else(|e| panic!("loading the demo data failed: {e:?}"));
    bootstrap_admin(&client).await;
    TestDb { url, name }
}

/// The harness's admin credentials (see [`ADMIN_KEY_ID`]).
pub async fn bootstrap_admin(client: &tokio_postgres::Client) {
    let hash = plystra_http::auth::secrets::hmac_hex(TEST_API_KEY_SECRET, &admin_key());
    client
        .batch_execute(&format!(
            "INSERT INTO plystra.admin_grants (id, user_id, level, permission_key, metadata)
             VALUES ('{ADMIN_GRANT_ID}', 'user_alice', 'instance_super_admin', '*', '{{\"source\":\"test harness\"}}');
             INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, permission_keys, created_by_user_id)
             VALUES ('{ADMIN_KEY_ID}', 'test harness admin', 'ply_ak_{ADMIN_KEY_ID}', '{hash}', 'instance', '[\"*\"]', 'user_alice');"
        ))
        .await
        .expect("bootstrap the harness's admin credentials");
}

/// The binary's database, created on first use.
pub fn db() -> &'static TestDb {
    static DB: OnceLock<TestDb> = OnceLock::new();
    DB.get_or_init(|| on_background(create_database()))
}

/// A direct client on the test database (for reading audit rows and checking that nothing changed).
pub async fn sql() -> tokio_postgres::Client {
    connect(&db().url).await
}

/// Starts a server with the given extra environment (on top of the test database and 127.0.0.1:0).
pub fn start_server(extra: &[(&str, &str)]) -> TestServer {
    start_server_with(extra, axum::Router::new())
}

/// [`start_server`] with extra routes merged into the router.
pub fn start_server_with(extra: &[(&str, &str)], routes: axum::Router<plystra_http::app::AppState>) -> TestServer {
    // Every server needs the test database to exist, even one pointed elsewhere: a run without
    // PLYSTRA_TEST_DATABASE_URL must fail everywhere, never pass in part.
    let test_db = db();
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("SERVER_HOST".into(), "127.0.0.1".into());
    vars.insert("SERVER_PORT".into(), "0".into());
    vars.insert("PLYSTRA_SESSION_SECRET".into(), TEST_SESSION_SECRET.into());
    vars.insert("PLYSTRA_API_KEY_SECRET".into(), TEST_API_KEY_SECRET.into());
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    if !vars.contains_key("DATABASE_URL") {
        vars.insert("DATABASE_URL".into(), test_db.url.clone());
    }
    let config = plystra_http::config::Config::from_vars(&vars).expect("test configuration");
    let server = on_background(plystra_http::app::start_with(config, routes)).expect("server starts");
    let addr = server.local_addr;
    // Kept running until the process ends.
    static KEEP: OnceLock<Mutex<Vec<plystra_http::app::RunningServer>>> = OnceLock::new();
    KEEP.get_or_init(|| Mutex::new(Vec::new())).lock().unwrap().push(server);
    TestServer { base: format!("http://{addr}"), addr }
}

/// The binary's default server (development mode, defaults otherwise).
pub fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| start_server(&[]))
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().user_agent("plystra-http-tests/1.0").build().unwrap()
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }

    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// Asserts the error envelope and returns the error object.
    pub fn expect_error(&self, status: u16, code: &str) -> &Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text);
        assert_eq!(self.error_code(), code, "unexpected code; body: {}", self.text);
        assert_eq!(self.header("x-plystra-error-code").as_deref(), Some(code));
        let rid = self.body["request_id"].as_str().expect("top-level request_id");
        assert_eq!(self.body["error"]["request_id"], rid);
        assert_eq!(self.header("x-request-id").as_deref(), Some(rid));
        assert!(self.body.get("meta").is_none());
        &self.body["error"]
    }

    pub fn expect_ok(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text);
        let rid = self.body["request_id"].as_str().expect("top-level request_id");
        assert_eq!(self.header("x-request-id").as_deref(), Some(rid));
        assert!(self.body.get("meta").is_none());
        &self.body["data"]
    }
}

pub async fn send(method: &str, path: &str, body: Option<Value>) -> Answer {
    send_to(server(), method, path, body, &[]).await
}

fn has_credential(headers: &[(&str, &str)]) -> bool {
    headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization") || k.eq_ignore_ascii_case("x-plystra-api-key"))
}

/// Sends with the harness's admin API key unless `headers` carry a credential (`Authorization` or
/// `X-Plystra-API-Key`; an empty value sends no credential at all).
pub async fn send_to(
    server: &TestServer,
    method: &str,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut req = http().request(method.parse().unwrap(), format!("{}{}", server.base, path));
    if !has_credential(headers) {
        req = req.header("X-Plystra-API-Key", admin_key());
    }
    for (k, v) in headers {
        if !v.is_empty() {
            req = req.header(*k, *v);
        }
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    into_answer(req.send().await.expect("request sent")).await
}

pub async fn send_raw(method: &str, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Answer {
    let mut req = http().request(method.parse().unwrap(), format!("{}{}", server().base, path)).body(body);
    if !has_credential(headers) {
        req = req.header("X-Plystra-API-Key", admin_key());
    }
    for (k, v) in headers {
        if !v.is_empty() {
            req = req.header(*k, *v);
        }
    }
    into_answer(req.send().await.expect("request sent")).await
}

pub async fn into_answer(resp: reqwest::Response) -> Answer {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer { status, headers, body, text }
}

pub async fn get(path: &str) -> Answer {
    send("GET", path, None).await
}

pub async fn post(path: &str, body: Value) -> Answer {
    send("POST", path, Some(body)).await
}

pub async fn patch(path: &str, body: Value) -> Answer {
    send("PATCH", path, Some(body)).await
}

/// A unique suffix for ids created by a test.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// No credential at all.
pub const ANON: &[(&str, &str)] = &[("authorization", "")];

/// Logs in over HTTP and returns the login answer's data.
pub async fn login_on(server: &TestServer, email: &str, password: &str) -> Answer {
    send_to(server, "POST", "/api/v1/auth/login", Some(serde_json::json!({"email": email, "password": password})), ANON)
        .await
}

/// A session's access token for a demo user (logs in once per call; Argon2id is not free).
pub async fn session_token(email: &str) -> String {
    let a = login_on(server(), email, DEMO_PASSWORD).await;
    a.expect_ok(200)["access_token"].as_str().expect("access_token").to_string()
}

/// Alice's super-admin session, logged in once per test binary.
pub async fn admin_session() -> String {
    static TOKEN: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    TOKEN.get_or_init(|| async { session_token("alice@example.com").await }).await.clone()
}

/// `n` checks at once (Alice approving invoice_001, which is allowed) with the API key `token`, so that several
/// pooled backends read the key (and keep it, extension 1.10.0); their answers.
pub async fn concurrent_checks(token: &str, n: usize) -> Vec<Answer> {
    let request = serde_json::json!({"actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer",
                                               "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
                                     "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"});
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (request, token) = (request.clone(), token.to_string());
            tokio::spawn(async move {
                send_to(server(), "POST", "/api/v1/authz/check", Some(request), &[("x-plystra-api-key", &token)]).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("a check task"));
    }
    answers
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A request to the shared server with the session `token` as a Bearer credential.
pub async fn as_bearer(token: &str, method: &str, path: &str, body: Option<Value>) -> Answer {
    send_to(server(), method, path, body, &[("authorization", &bearer(token))]).await
}

/// A request to the shared server with the API key `key`.
pub async fn as_key(key: &str, method: &str, path: &str, body: Option<Value>) -> Answer {
    send_to(server(), method, path, body, &[("x-plystra-api-key", key)]).await
}

/// The demo's Space and the Member that test users are bound to unless a test says otherwise.
pub const ACME: (&str, &str) = ("space_acme", "member_finance_reviewer");

/// An admin grant for [`make_user`]: (level, permission key, Space, Group).
pub type GrantSpec<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>);

/// A user with `password_hash`, bound (binding `um_<id>`, relation `login`) to `member` in `space`, holding
/// `grants` (ids `ag_<id>_<n>`); `email` defaults to `<id>@example.com`. Returns (user_id, email).
pub async fn make_user(
    prefix: &str,
    email: Option<&str>,
    password_hash: &str,
    (space, member): (&str, &str),
    grants: &[GrantSpec<'_>],
) -> (String, String) {
    let id = unique(prefix);
    let email = email.map(str::to_string).unwrap_or_else(|| format!("{id}@example.com"));
    let db = sql().await;
    db.execute(
        "INSERT INTO plystra.users (id, email, password_hash) VALUES ($1, $2, $3)",
        &[&id, &email, &password_hash],
    )
    .await
    .unwrap();
    db.execute(
        "INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type) \
         VALUES ($1, $2, $3, $4, 'login')",
        &[&format!("um_{id}"), &id, &member, &space],
    )
    .await
    .unwrap();
    for (i, (level, key, grant_space, group)) in grants.iter().enumerate() {
        db.execute(
            "INSERT INTO plystra.admin_grants (id, user_id, level, permission_key, space_id, group_id) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&format!("ag_{id}_{i}"), &id, level, key, grant_space, group],
        )
        .await
        .unwrap();
    }
    (id, email)
}

/// An empty database beside the test database (no extension, no demo), named after `tag` and this process, and a
/// client on it.
pub async fn fresh_database(tag: &str) -> (String, tokio_postgres::Client) {
    let _ = db();
    let admin_url = std::env::var(DB_ENV).unwrap();
    let name = format!("plystra_http_{tag}_{}", std::process::id());
    let admin = connect(&admin_url).await;
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let url = with_database(&admin_url, &name);
    let client = connect(&url).await;
    (url, client)
}

/// A new instance API key holding `authz:check`, with one more column set to an SQL expression: its id and
/// token.
pub async fn instance_key(prefix: &str, column: &str, value: &str) -> (String, String) {
    let id = unique(prefix);
    let token = format!("ply_ak_{id}.{}", "b2".repeat(32));
    let hash = plystra_http::auth::secrets::hmac_hex(TEST_API_KEY_SECRET, &token);
    let insert = format!(
        "INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, permission_keys, {column}) \
         VALUES ($1, 'test key', $2, $3, 'instance', '[\"authz:check\"]', {value})"
    );
    sql().await.execute(&insert, &[&id, &format!("ply_ak_{id}"), &hash]).await.unwrap();
    (id, token)
}

/// A second Space for tenancy tests: `space_id` named `name` (slug: `name` in lower case), with a User
/// `user_{who}` (e-mail `{who}@{slug}.test`), a Member `member_{who}` and its active primary binding `um_{who}`,
/// and one invoice `invoice_id` (`{name} invoice`).
pub async fn second_space(space_id: &str, name: &str, who: &str, invoice_id: &str) {
    let slug = name.to_lowercase();
    let mut display = who.to_string();
    display[..1].make_ascii_uppercase();
    sql()
        .await
        .batch_execute(&format!(
            "INSERT INTO plystra.spaces (id, name, slug, type, status) VALUES ('{space_id}', '{name}', '{slug}', 'custom', 'active');
             INSERT INTO plystra.users (id, email, status) VALUES ('user_{who}', '{who}@{slug}.test', 'active');
             INSERT INTO plystra.members (id, space_id, display_name, member_type) VALUES ('member_{who}', '{space_id}', '{display}', 'human');
             INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type, status, is_primary)
               VALUES ('um_{who}', 'user_{who}', 'member_{who}', '{space_id}', 'login', 'active', true);
             INSERT INTO plystra.resources (id, resource_type, space_id, display_name)
               VALUES ('{invoice_id}', 'invoice', '{space_id}', '{name} invoice');"
        ))
        .await
        .expect("the second Space's fixture");
}

/// A Space with one Member; returns (space_id, member_id).
pub async fn space_with_member(prefix: &str) -> (String, String) {
    let space = unique(prefix);
    let member = format!("member_{space}");
    let db = sql().await;
    db.execute("INSERT INTO plystra.spaces (id, name) VALUES ($1, $1)", &[&space]).await.unwrap();
    db.execute("INSERT INTO plystra.members (id, space_id, display_name) VALUES ($1, $2, 'M')", &[&member, &space])
        .await
        .unwrap();
    (space, member)
}
