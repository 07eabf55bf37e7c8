//! Revoking admin grants: serialized, so that two revocations at once never remove the last two super admins, by
//! locks that no application role can take or hold (the super-admin grants' rows). Its own binary (its own database): the last-super-admin rule
//! needs a known set of super admins, which the other binaries' tests change.

mod common;

use std::time::Duration;

use common::*;

/// The tests of this binary one at a time: the second holds admin_grants and may revoke Alice's grant.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A login role that is a member of `group` (plystra_app, an application's role), and a client connected as it.
async fn connect_as_member_of(group: &str) -> tokio_postgres::Client {
    let role = format!("{group}_revocations_{}", std::process::id());
    sql()
        .await
        .batch_execute(&format!("DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN; GRANT {group} TO {role};"))
        .await
        .unwrap();
    let url = common::db().url.replacen("://postgres@", &format!("://{role}@"), 1);
    assert_ne!(url, common::db().url, "the test database URL names the postgres user");
    connect(&url).await
}

/// A revocation through the shared server, given at most 20 s.
async fn revoke(token: &str, grant_id: &str) -> Answer {
    tokio::time::timeout(
        Duration::from_secs(20),
        as_bearer(token, "POST", &format!("/api/v1/admin/grants/{grant_id}/revoke"), None),
    )
    .await
    .unwrap_or_else(|_| panic!("revoking {grant_id} did not answer within 20 s"))
}

/// Until the front locked admin_grants itself, revocations waited for an advisory lock that any role able to connect
/// could take and keep: an application's database role held every admin-grant revocation (the way to cut off a
/// leaked admin credential) for as long as it liked. It can take neither the rows' locks nor the table's.
#[tokio::test]
async fn an_application_role_cannot_hold_up_a_revocation() {
    let _one = ONE_AT_A_TIME.lock().await;
    let admin = admin_session().await;
    let (user, _) =
        make_user("user_rv", None, "x", ACME, &[("space_admin", "admin_grants:read", Some("space_acme"), None)]).await;
    let grant = format!("ag_{user}_0");
    let app = connect_as_member_of("plystra_app").await;
    // The key the front's revocations once waited for, taken for the session.
    app.batch_execute("SELECT pg_advisory_lock(hashtext('plystra.admin_grants.super_admin'))").await.unwrap();
    let e = app
        .batch_execute("BEGIN; LOCK TABLE plystra.admin_grants IN SHARE ROW EXCLUSIVE MODE")
        .await
        .expect_err("an application role cannot take the revocations' lock");
    assert_eq!(e.code(), Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE), "{e:?}");
    app.batch_execute("ROLLBACK").await.unwrap();
    let e = app
        .batch_execute("BEGIN; SELECT 1 FROM plystra.admin_grants WHERE level = 'instance_super_admin' FOR UPDATE")
        .await
        .expect_err("an application role cannot lock the super-admin grants' rows");
    assert_eq!(e.code(), Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE), "{e:?}");
    app.batch_execute("ROLLBACK").await.unwrap();
    let r = revoke(&admin, &grant).await;
    assert_eq!(r.expect_ok(200)["status"], "revoked");
}

/// Two revocations at once of the only two active super-admin grants (the harness's Alice and another user): one
/// of them is refused, whichever comes second, and a super admin remains. Both requests are made to wait behind an
/// EXCLUSIVE lock on admin_grants that this test holds (it conflicts with row locks and writes, not with reads),
/// so that both have read the grants before either writes unless the front serializes them.
#[tokio::test]
async fn two_revocations_at_once_leave_a_super_admin() {
    let _one = ONE_AT_A_TIME.lock().await;
    let admin = admin_session().await;
    let (_, _) = make_user("user_rs", None, "x", ACME, &[("instance_super_admin", "*", None, None)]).await;
    let db = sql().await;
    let active = "SELECT id FROM plystra.active_admin_grants WHERE level = 'instance_super_admin' ORDER BY id";
    let before: Vec<String> = db.query(active, &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(before.len(), 2, "two active super-admin grants: {before:?}");

    let mut holder = sql().await;
    let hold = holder.transaction().await.unwrap();
    hold.batch_execute("LOCK TABLE plystra.admin_grants IN EXCLUSIVE MODE").await.unwrap();
    let tasks: Vec<_> = before
        .iter()
        .map(|id| {
            let (admin, id) = (admin.clone(), id.clone());
            tokio::spawn(async move { revoke(&admin, &id).await })
        })
        .collect();
    // Both wait for the lock held here (at the front's row locks, or at their own write).
    let waiting = "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                   WHERE c.relname = 'admin_grants' AND NOT l.granted";
    let mut n = 0i64;
    for _ in 0..200 {
        n = db.query_one(waiting, &[]).await.unwrap().get(0);
        if n == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(n, 2, "both revocations wait for admin_grants");
    hold.rollback().await.unwrap();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap().status);
    }
    statuses.sort();
    assert_eq!(statuses[0], 200, "one revocation goes through: {statuses:?}");
    assert!(statuses[1] == 409 || statuses[1] == 403, "the other is refused: {statuses:?}");
    let after: Vec<String> = db.query(active, &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(after.len(), 1, "one active super-admin grant remains: {after:?}");
    // Alice stays a super admin for the other test, whichever grant remained.
    db.execute(
        "INSERT INTO plystra.admin_grants (id, user_id, level, permission_key) \
         SELECT 'ag_alice_again', 'user_alice', 'instance_super_admin', '*' \
         WHERE NOT EXISTS (SELECT 1 FROM plystra.active_admin_grants WHERE user_id = 'user_alice' AND level = 'instance_super_admin')",
        &[],
    )
    .await
    .unwrap();
}

/// A revocation that the database rolls back for a concurrent transaction's sake (here a deadlock: this test holds
/// the grant's row, the revocation holds the super-admin grants' rows and waits for that row, then this test asks
/// for a super-admin grant's row) is answered 503 with Retry-After, saying nothing changed, and goes through when
/// sent again. Before, a 500.
#[tokio::test]
async fn a_revocation_lost_to_a_deadlock_is_answered_503_and_changes_nothing() {
    let _one = ONE_AT_A_TIME.lock().await;
    let admin = admin_session().await;
    let (user, _) =
        make_user("user_rd", None, "x", ACME, &[("space_admin", "admin_grants:read", Some("space_acme"), None)]).await;
    let grant = format!("ag_{user}_0");
    let mut other = sql().await;
    let tx = other.transaction().await.unwrap();
    tx.execute("SELECT 1 FROM plystra.admin_grants WHERE id = $1 FOR UPDATE", &[&grant]).await.unwrap();
    let task = {
        let (admin, grant) = (admin.clone(), grant.clone());
        tokio::spawn(async move { revoke(&admin, &grant).await })
    };
    let db = sql().await;
    let row_wait = "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype IN ('transactionid', 'tuple')";
    let mut n = 0i64;
    for _ in 0..200 {
        n = db.query_one(row_wait, &[]).await.unwrap().get(0);
        if n > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(n, 1, "the revocation waits for the grant's row");
    // Waits for the revocation's row locks: a cycle, which the revocation (waiting longer) is the first to find.
    tx.execute("SELECT 1 FROM plystra.admin_grants WHERE level = 'instance_super_admin' FOR UPDATE", &[])
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let r = task.await.unwrap();
    let e = r.expect_error(503, "DATABASE_UNAVAILABLE");
    assert_eq!(e["details"]["reason"], "concurrent_conflict", "{e}");
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    let status: String =
        db.query_one("SELECT status FROM plystra.admin_grants WHERE id = $1", &[&grant]).await.unwrap().get(0);
    assert_eq!(status, "active", "nothing changed");
    assert_eq!(revoke(&admin, &grant).await.expect_ok(200)["status"], "revoked");
}

/// A request answered 503 at HTTP_WRITE_TIMEOUT leaves no statement behind in the database: its statements carry
/// the same bound (statement_timeout on the pool's connections). Before, the request's statement (here waiting for
/// admin_grants, which this test holds) went on waiting for as long as the table was held, on a connection the pool
/// had taken back.
#[tokio::test]
async fn a_request_past_its_deadline_leaves_no_statement_behind() {
    let _one = ONE_AT_A_TIME.lock().await;
    let server = start_server(&[("HTTP_WRITE_TIMEOUT", "2s")]);
    let admin = admin_session().await;
    let (user, _) =
        make_user("user_rt", None, "x", ACME, &[("space_admin", "admin_grants:read", Some("space_acme"), None)]).await;
    let grant = format!("ag_{user}_0");
    let mut holder = sql().await;
    let hold = holder.transaction().await.unwrap();
    hold.batch_execute("LOCK TABLE plystra.admin_grants IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let path = format!("/api/v1/admin/grants/{grant}/revoke");
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        send_to(&server, "POST", &path, None, &[("authorization", &bearer(&admin))]),
    )
    .await
    .expect("answered at the deadline");
    r.expect_error(503, "REQUEST_TIMEOUT");
    let db = sql().await;
    let waiting = "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                   WHERE c.relname = 'admin_grants' AND NOT l.granted";
    let mut n = -1i64;
    for _ in 0..100 {
        n = db.query_one(waiting, &[]).await.unwrap().get(0);
        if n == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(n, 0, "no statement of the request still waits for admin_grants");
    hold.rollback().await.unwrap();
    let status: String =
        db.query_one("SELECT status FROM plystra.admin_grants WHERE id = $1", &[&grant]).await.unwrap().get(0);
    assert_eq!(status, "active", "nothing changed");
}
