//! The serving lanes' decision pipeline (`plystra_http::pipeline`): while decisions write no audit row, single
//! decisions share one connection a lane, up to DATABASE_PIPELINE_DEPTH at once. Each must still get its own
//! answer, see the database as of its own statement (a revoked key is refused on the next request), never be
//! pipelined while it may write an audit row, and survive the shared connection's backend ending.

mod common;

use common::*;
use serde_json::{json, Value};

const METRICS_TOKEN: &str = "pipeline-metrics";

/// A server with one serving lane (so every decision meets the same pipeline), its metrics on.
fn lane_server(audit: &str, depth: &str, application_name: &str) -> TestServer {
    let url = format!("{}?application_name={application_name}", db().url);
    start_server(&[
        ("DATABASE_URL", &url),
        ("AUDIT_WRITE_MODE", audit),
        ("DATABASE_PIPELINE_DEPTH", depth),
        ("SERVER_THREADS", "1"),
        ("METRICS_ENABLED", "true"),
        ("METRICS_TOKEN", METRICS_TOKEN),
    ])
}

/// `plystra_decisions_pipelined_total` of a server.
async fn pipelined(server: &TestServer) -> u64 {
    let auth = format!("Bearer {METRICS_TOKEN}");
    let a = send_to(server, "GET", "/metrics", None, &[("Authorization", &auth)]).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.text
        .lines()
        .find_map(|l| l.strip_prefix("plystra_decisions_pipelined_total "))
        .unwrap_or_else(|| panic!("no pipelined counter in {}", a.text))
        .parse()
        .unwrap()
}

fn request(user: &str, binding: &str, resource: &str, action: &str) -> Value {
    json!({
        "actor": {"user_id": user, "member_id": "member_finance_reviewer", "user_member_id": binding,
                  "space_id": "space_acme"},
        "resource_type": "invoice", "resource_id": resource, "action": action
    })
}

/// 24 requests whose answers differ (allow, and several deny codes).
fn requests() -> Vec<Value> {
    let actors = [
        ("user_alice", "um_alice_finance_reviewer"),
        ("user_bob", "um_bob_finance_reviewer"),
        ("user_alice", "um_alice_finance_reviewer_revoked"),
    ];
    let mut all = Vec::new();
    for (user, binding) in actors {
        for resource in ["invoice_001", "invoice_002", "invoice_003", "invoice_none"] {
            for action in ["approve", "read"] {
                all.push(request(user, binding, resource, action));
            }
        }
    }
    all
}

/// What an answer says, and about what (so that an answer given to another request shows).
fn gist(answer: &Value) -> Value {
    json!([
        answer["decision"],
        answer["deny_code"],
        answer["reason"],
        answer["audit"]["resource_id"],
        answer["audit"]["action"],
        answer["audit"]["actor_user_member_id"]
    ])
}

#[tokio::test]
async fn concurrent_decisions_through_one_lanes_pipeline_each_get_their_own_answer() {
    let server = lane_server("disabled_for_dev", "8", "pipeline_answers");
    let db = sql().await;
    db.batch_execute("SET plystra.audit_mode = off").await.unwrap();
    let requests = requests();
    let mut expected = Vec::new();
    for body in &requests {
        let answer: Value = db.query_one("SELECT plystra.check($1::jsonb)", &[body]).await.unwrap().get(0);
        expected.push(gist(&answer));
    }
    let distinct: std::collections::HashSet<String> =
        expected.iter().map(|g| json!([g[0], g[1]]).to_string()).collect();
    assert!(distinct.len() >= 4, "the requests must have different answers: {distinct:?}");

    // One at a time, every decision takes the pipeline.
    let before = pipelined(&server).await;
    for (body, want) in requests.iter().zip(&expected) {
        let a = send_to(&server, "POST", "/api/v1/authz/check", Some(body.clone()), &[]).await;
        assert_eq!(gist(a.expect_ok(200)), *want, "{body}");
    }
    assert_eq!(pipelined(&server).await - before, requests.len() as u64, "each single decision was pipelined");
    // AuthZEN's single evaluation is a single decision too.
    let before = pipelined(&server).await;
    let evaluation = json!({"subject": {"type": "user", "id": "user_alice"}, "action": {"name": "approve"},
                            "resource": {"type": "invoice", "id": "invoice_001"}});
    let a = send_to(&server, "POST", "/access/v1/evaluation", Some(evaluation), &[]).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["decision"], true, "{}", a.text);
    assert_eq!(pipelined(&server).await - before, 1, "the evaluation was pipelined");

    // All at once, four times over: the pipeline holds up to eight, the rest take pooled connections; every
    // answer must be its own request's. How many join depends on the machine's load (a pipeline that has not
    // answered for 5 ms takes no more: on loaded CI machines 7, and once 1, of 96 did), so a burst is sent again,
    // every answer checked each time, until one had at least two decisions in the pipeline at once (five bursts
    // at most).
    let mut piped_per_burst = Vec::new();
    while piped_per_burst.len() < 5 && !piped_per_burst.iter().any(|&n| n >= 2) {
        let before = pipelined(&server).await;
        let mut sends = tokio::task::JoinSet::new();
        for (body, want) in (0..4).flat_map(|_| requests.iter().zip(&expected)) {
            let (server, body, want) = (server.clone(), body.clone(), want.clone());
            sends.spawn(async move {
                let a = send_to(&server, "POST", "/api/v1/authz/check", Some(body.clone()), &[]).await;
                assert_eq!(gist(a.expect_ok(200)), want, "{body}");
            });
        }
        while let Some(sent) = sends.join_next().await {
            sent.expect("a concurrent decision");
        }
        piped_per_burst.push(pipelined(&server).await - before);
    }
    assert!(
        piped_per_burst.iter().any(|&n| n >= 2),
        "pipelined decisions per burst of {}: {piped_per_burst:?}",
        4 * requests.len()
    );
}

#[tokio::test]
async fn a_decision_that_may_write_an_audit_row_is_never_pipelined() {
    for (audit, depth) in [("always", "8"), ("deny_only", "8"), ("disabled_for_dev", "0")] {
        let server = lane_server(audit, depth, "pipeline_audited");
        for body in requests().iter().take(6) {
            send_to(&server, "POST", "/api/v1/authz/check", Some(body.clone()), &[]).await.expect_ok(200);
        }
        assert_eq!(pipelined(&server).await, 0, "AUDIT_WRITE_MODE={audit}, DATABASE_PIPELINE_DEPTH={depth}");
    }
    // A role that may not set plystra.audit_mode: the database's own setting (always) stays in force, so
    // AUDIT_WRITE_MODE=manual does not make decisions free of audit rows.
    let role = "pipeline_no_audit_setting";
    sql()
        .await
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN; GRANT plystra_admin TO {role}; \
             GRANT SELECT ON ALL TABLES IN SCHEMA plystra TO {role};"
        ))
        .await
        .unwrap();
    let url = db().url.replacen("://postgres@", &format!("://{role}@"), 1);
    assert_ne!(url, db().url, "the test database URL names the postgres user");
    let server = start_server(&[
        ("DATABASE_URL", &url),
        ("AUDIT_WRITE_MODE", "manual"),
        ("SERVER_THREADS", "1"),
        ("METRICS_ENABLED", "true"),
        ("METRICS_TOKEN", METRICS_TOKEN),
    ]);
    let body = request("user_alice", "um_alice_finance_reviewer", "invoice_002", "approve");
    let a = send_to(&server, "POST", "/api/v1/authz/check", Some(body), &[]).await;
    assert!(a.expect_ok(200)["audit_log_id"].is_string(), "still audited: {}", a.text);
    assert_eq!(pipelined(&server).await, 0, "a role that may not set the audit mode");
}

#[tokio::test]
async fn a_revoked_key_is_refused_on_the_next_pipelined_decision() {
    let server = lane_server("disabled_for_dev", "8", "pipeline_revoke");
    let (id, token) = instance_key("ak_pipe", "created_by_user_id", "'user_alice'").await;
    let headers = [("x-plystra-api-key", token.as_str())];
    let body = request("user_alice", "um_alice_finance_reviewer", "invoice_001", "approve");
    let before = pipelined(&server).await;
    let a = send_to(&server, "POST", "/api/v1/authz/check", Some(body.clone()), &headers).await;
    assert_eq!(a.expect_ok(200)["decision"], "allow");
    sql()
        .await
        .execute("UPDATE plystra.api_keys SET status = 'revoked', revoked_at = now() WHERE id = $1", &[&id])
        .await
        .unwrap();
    let a = send_to(&server, "POST", "/api/v1/authz/check", Some(body), &headers).await;
    a.expect_error(401, "AUTHENTICATION_REQUIRED");
    assert_eq!(pipelined(&server).await - before, 2, "both decisions went through the pipeline");
}

/// The one count `sql` selects.
async fn count_of(db: &tokio_postgres::Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn a_pipeline_whose_backend_ended_takes_a_new_connection() {
    let server = lane_server("disabled_for_dev", "8", "pipeline_terminated");
    let body = request("user_alice", "um_alice_finance_reviewer", "invoice_001", "approve");
    send_to(&server, "POST", "/api/v1/authz/check", Some(body.clone()), &[]).await.expect_ok(200);
    let db = sql().await;
    let ended = count_of(
        &db,
        "WITH server AS MATERIALIZED (SELECT pid FROM pg_stat_activity \
         WHERE application_name = 'pipeline_terminated') \
         SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM server",
    )
    .await;
    assert!(ended >= 1, "the server's backends were ended");
    // Once the lane's connection task has seen the end of its connection, the next decisions take a new one.
    // (A decision sent before it has is answered 503 DATABASE_UNAVAILABLE, as on a pooled connection; with a
    // closed connection kept, every decision would be.)
    let mut answered = false;
    for _ in 0..50 {
        let a = send_to(&server, "POST", "/api/v1/authz/check", Some(body.clone()), &[]).await;
        if a.status == 200 {
            answered = true;
            break;
        }
        a.expect_error(503, "DATABASE_UNAVAILABLE");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(answered, "no decision was answered after the backend ended");
    let before = pipelined(&server).await;
    for _ in 0..3 {
        let a = send_to(&server, "POST", "/api/v1/authz/check", Some(body.clone()), &[]).await;
        assert_eq!(a.expect_ok(200)["decision"], "allow");
    }
    assert_eq!(pipelined(&server).await - before, 3);
}

/// Waits (up to 30 s) until `count` of the server's decisions wait for a lock. (`db` must not be inside a
/// transaction: pg_stat_activity keeps one snapshot a transaction.)
async fn waiting_for_the_lock(db: &tokio_postgres::Client, count: i64) {
    for _ in 0..3000 {
        let waiting = count_of(
            db,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pipeline_stalled' \
             AND state = 'active' AND query LIKE '%decide_with_credential%' AND wait_event_type = 'Lock'",
        )
        .await;
        if waiting >= count {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{count} decisions never waited for the lock");
}

/// A statement that holds the pipeline's head (here: waiting for a lock on the resources table) delays only the
/// decisions that joined before the pipeline was seen stalled; later ones take pooled connections.
#[tokio::test]
async fn a_stalled_pipeline_takes_no_more_decisions() {
    let server = lane_server("disabled_for_dev", "8", "pipeline_stalled");
    let body = request("user_alice", "um_alice_finance_reviewer", "invoice_001", "approve");
    send_to(&server, "POST", "/api/v1/authz/check", Some(body.clone()), &[]).await.expect_ok(200);
    let locker = sql().await;
    locker.batch_execute("BEGIN; LOCK TABLE plystra.resources IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let send = |server: &TestServer| {
        let (server, body) = (server.clone(), body.clone());
        tokio::spawn(async move { send_to(&server, "POST", "/api/v1/authz/check", Some(body), &[]).await })
    };
    let before = pipelined(&server).await;
    let head = send(&server);
    // Waited for, not slept on: the head is waiting for the lock, then the three behind it are too.
    let watcher = sql().await;
    waiting_for_the_lock(&watcher, 1).await;
    assert_eq!(pipelined(&server).await - before, 1, "the first decision joined the pipeline");
    // Past the stall rule's 5 ms without an answer (time only grows, so this cannot be too short).
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let behind: Vec<_> = (0..3).map(|_| send(&server)).collect();
    waiting_for_the_lock(&watcher, 4).await;
    assert_eq!(pipelined(&server).await - before, 1, "no decision joined the stalled pipeline");
    locker.batch_execute("COMMIT").await.unwrap();
    for sent in std::iter::once(head).chain(behind) {
        assert_eq!(sent.await.unwrap().expect_ok(200)["decision"], "allow");
    }
    // Moving again, it takes decisions again.
    send_to(&server, "POST", "/api/v1/authz/check", Some(body), &[]).await.expect_ok(200);
    assert_eq!(pipelined(&server).await - before, 2);
}

/// A decision whose backend is ended under it (here: while it waits for a lock on the resources table, so the
/// moment is chosen, not raced) is answered 503 DATABASE_UNAVAILABLE with Retry-After, as when no connection can
/// be had: a pipelined decision (audit off) and one on a pooled connection of its own (audit always) alike. The
/// server then decides again on a new connection.
#[tokio::test]
async fn a_decision_whose_backend_ends_under_it_is_answered_503() {
    for (audit, application_name) in [("disabled_for_dev", "pipeline_ended_piped"), ("always", "pipeline_ended_pooled")]
    {
        let server = lane_server(audit, "8", application_name);
        let body = request("user_alice", "um_alice_finance_reviewer", "invoice_001", "approve");
        send_to(&server, "POST", "/api/v1/authz/check", Some(body.clone()), &[]).await.expect_ok(200);
        let before = pipelined(&server).await;
        let locker = sql().await;
        locker.batch_execute("BEGIN; LOCK TABLE plystra.resources IN ACCESS EXCLUSIVE MODE").await.unwrap();
        let sent = {
            let (server, body) = (server.clone(), body.clone());
            tokio::spawn(async move { send_to(&server, "POST", "/api/v1/authz/check", Some(body), &[]).await })
        };
        let watcher = sql().await;
        let mut ended = 0;
        for _ in 0..3000 {
            ended = count_of(
                &watcher,
                &format!(
                    "WITH waiting AS MATERIALIZED (SELECT pid FROM pg_stat_activity \
                     WHERE application_name = '{application_name}' AND wait_event_type = 'Lock' \
                     AND query LIKE '%decide_with_credential%') \
                     SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM waiting"
                ),
            )
            .await;
            if ended > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(ended, 1, "AUDIT_WRITE_MODE={audit}: one decision waited for the lock and was ended");
        let a = sent.await.unwrap();
        a.expect_error(503, "DATABASE_UNAVAILABLE");
        assert!(a.header("retry-after").is_some(), "503 without Retry-After: {}", a.text);
        let piped = pipelined(&server).await - before;
        assert_eq!(piped, u64::from(audit == "disabled_for_dev"), "AUDIT_WRITE_MODE={audit}: pipelined {piped}");
        locker.batch_execute("COMMIT").await.unwrap();
        let mut answered = false;
        for _ in 0..50 {
            let a = send_to(&server, "POST", "/api/v1/authz/check", Some(body.clone()), &[]).await;
            if a.status == 200 {
                assert_eq!(a.expect_ok(200)["decision"], "allow");
                answered = true;
                break;
            }
            a.expect_error(503, "DATABASE_UNAVAILABLE");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(answered, "AUDIT_WRITE_MODE={audit}: no decision was answered after the backend ended");
    }
}
