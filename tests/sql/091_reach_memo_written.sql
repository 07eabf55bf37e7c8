-- The per-statement memo of the actor's reach (plystra_pg/src/statement_cache.rs) in a transaction that has
-- written. Such a transaction's readings advance the command counter and take the transaction's snapshot again
-- (plystra_pg/src/probe.rs), and the memo is keyed by exactly that: a policy's InitPlans share one context load
-- (before, every InitPlan loaded the actor again once the transaction had written: an RLS statement after an INSERT
-- cost 4 to 9 times the same statement in a read-only transaction: bench/results/ab-reach-memo-written.md), and
-- nothing the reading would see differently is taken from it.
-- tests/sql/086_reach_memo_writes.sql holds the READ COMMITTED cases (a write earlier in the statement, another
-- session's commit during it); this file the sharing, REPEATABLE READ and savepoints.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS dblink;
\ir helpers/conninfo.sql

-- The probes this transaction has made of the tables an actor is loaded from (index scans, counted per transaction).
CREATE FUNCTION pg_temp.probes() RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT coalesce(sum(idx_scan), 0)::bigint FROM pg_stat_xact_all_tables
    WHERE schemaname = 'plystra' AND relname IN ('users', 'members', 'user_members', 'member_roles', 'spaces')
$$;
CREATE FUNCTION pg_temp.grant_status(status text) RETURNS int LANGUAGE sql VOLATILE AS $$
    UPDATE plystra.member_roles SET status = grant_status.status WHERE id = 'mr_finance_reviewer_approver_finance';
    SELECT 1
$$;

SELECT dblink_connect('t91_w', :'conninfo');

-- 1. Sharing, measured in a transaction that has written (its values compared in the next one). It has written a
-- kept table (a statement on member_roles that changes no row), so the actor is loaded from the tables, not taken
-- from what the backends keep (plystra_pg/src/kept_writes.rs), and the loads can be counted.
BEGIN;
SELECT txid_current() IS NOT NULL AS wrote \gset
UPDATE plystra.member_roles SET status = status WHERE false;
SELECT plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme');
SELECT pg_temp.probes() AS p0 \gset
SELECT cardinality(plystra.reachable_group_ids('invoice', 'approve')) AS one_call \gset
SELECT pg_temp.probes() AS p1 \gset
-- Three tries: a commit anywhere in the cluster during the statement (the audit writer sealing, say) changes the
-- snapshot a reading takes, and the next reading rightly loads again; the rule is that nothing else does.
SELECT cardinality(plystra.reachable_group_ids('invoice', 'approve'))
       + cardinality(plystra.reachable_group_ids('invoice', 'approve'))
       + coalesce(length(plystra.reachable_space('invoice', 'approve')), 0)
       + coalesce(length(plystra.reachable_owner('invoice', 'approve')), 0) AS four_calls \gset
SELECT pg_temp.probes() AS p2 \gset
SELECT cardinality(plystra.reachable_group_ids('invoice', 'approve'))
       + cardinality(plystra.reachable_group_ids('invoice', 'approve'))
       + coalesce(length(plystra.reachable_space('invoice', 'approve')), 0)
       + coalesce(length(plystra.reachable_owner('invoice', 'approve')), 0) AS four_calls \gset
SELECT pg_temp.probes() AS p3 \gset
SELECT cardinality(plystra.reachable_group_ids('invoice', 'approve'))
       + cardinality(plystra.reachable_group_ids('invoice', 'approve'))
       + coalesce(length(plystra.reachable_space('invoice', 'approve')), 0)
       + coalesce(length(plystra.reachable_owner('invoice', 'approve')), 0) AS four_calls \gset
SELECT pg_temp.probes() AS p4 \gset
ROLLBACK;

-- 2. REPEATABLE READ, written: another session's commit during the statement is not seen (the transaction's snapshot
-- is fixed), and the reach agrees with the decision in the same statement. In a transaction of its own: its own
-- writes below would conflict with that session's (both move the Space's actor version row).
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT txid_current() IS NOT NULL AS wrote_rr \gset
SELECT plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme');
SELECT array_to_string(ARRAY(SELECT unnest(after) ORDER BY 1) || ARRAY[allowed::text], ',') AS rr_after
FROM (SELECT plystra.reachable_group_ids('invoice', 'approve') AS before,
             (SELECT 1 FROM dblink_exec('t91_w', $q$UPDATE plystra.user_members SET status = 'revoked'
                                                     WHERE id = 'um_alice_finance_reviewer'$q$)) AS w,
             plystra.reachable_group_ids('invoice', 'approve') AS after,
             plystra.allowed_resource('invoice', 'invoice_001', 'approve') AS allowed OFFSET 0) s
WHERE before IS NOT NULL \gset
ROLLBACK;
SELECT dblink_exec('t91_w', $q$UPDATE plystra.user_members SET status = 'active'
                               WHERE id = 'um_alice_finance_reviewer'$q$);

-- 2b. READ COMMITTED, written, inside a savepoint that has not written (its subtransaction has no id): the group list
-- is read as a decision reads, with another session's commit during the statement seen. (The group list's SPI read
-- took the statement's snapshot there, by the subtransaction's id, while the decision's probes took a fresh one:
-- found by an attack, a group deactivated meanwhile was still listed while allowed_row denied it.)
CREATE FUNCTION pg_temp.emea_status_elsewhere(status text) RETURNS int LANGUAGE sql VOLATILE AS $$
    SELECT 1 FROM dblink_exec('t91_w', format($q$UPDATE plystra.groups SET status = %L
                                                 WHERE id = 'group_finance_emea'$q$, status))
$$;
BEGIN;
SELECT txid_current() IS NOT NULL AS wrote_rc \gset
SELECT plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme');
SAVEPOINT s;
SELECT ('group_finance_emea' = ANY (after))::text || ',' || allowed_emea::text AS savepoint_after
FROM (SELECT plystra.reachable_group_ids('invoice', 'approve') AS before,
             pg_temp.emea_status_elsewhere('inactive') AS w,
             plystra.reachable_group_ids('invoice', 'approve') AS after,
             plystra.allowed_row('invoice', 'approve', 'space_acme', 'group_finance_emea', NULL) AS allowed_emea
      OFFSET 0) s
WHERE before IS NOT NULL \gset
ROLLBACK;
SELECT pg_temp.emea_status_elsewhere('active');

BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT plan(10);
SELECT ok(:'wrote'::boolean AND :'wrote_rr'::boolean AND :'wrote_rc'::boolean,
          'the transactions above had written before they asked');
SELECT is(:'savepoint_after'::text, 'false,false',
          'in a savepoint of a writing transaction: a group another session deactivated during the statement is '
          'neither listed nor allowed');
SELECT cmp_ok(:p1::bigint - :p0::bigint, '>', 0::bigint, 'one reach question loads the actor (its probes counted)');
SELECT is(least(:p2::bigint - :p1::bigint, :p3::bigint - :p2::bigint, :p4::bigint - :p3::bigint), :p1::bigint - :p0::bigint,
          'four reach questions about one actor in one statement load it once, as one question does (the least of three tries)');
SELECT is(:'rr_after'::text, 'group_finance,group_finance_apac,group_finance_emea,true',
          'REPEATABLE READ: a binding another session revoked during the statement is not seen, by either');
SELECT plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme');
SELECT is(cardinality(plystra.reachable_group_ids('invoice', 'approve')), 3, 'the binding is active again: its groups');

-- 3. REPEATABLE READ, written (pgTAP's plan writes): its own revoke counts from the next call, in the same statement and the next.
SELECT is(after, '{}'::text[], 'REPEATABLE READ: its own revoke made earlier in the statement: no group')
FROM (SELECT plystra.reachable_group_ids('invoice', 'approve') AS before, pg_temp.grant_status('revoked') AS w,
             plystra.reachable_group_ids('invoice', 'approve') AS after OFFSET 0) s
WHERE before IS NOT NULL;
SELECT is(plystra.reachable_group_ids('invoice', 'approve'), '{}'::text[], 'and in the next statement');

-- 4. A savepoint rolled back: the revoke it held is undone for the memo too.
SAVEPOINT s;
SELECT pg_temp.grant_status('active');
SELECT cardinality(plystra.reachable_group_ids('invoice', 'approve')) AS inside_savepoint \gset
ROLLBACK TO SAVEPOINT s;
SELECT is(ARRAY[:inside_savepoint::int, cardinality(plystra.reachable_group_ids('invoice', 'approve'))], ARRAY[3, 0],
          'restored inside a savepoint: 3 groups; after rolling it back, the revoke holds again: none');
-- 5. One statement that writes several rows (an INSERT ... ON CONFLICT): its first row revokes Alice's grant, and
-- every row asks. The statement writes all its rows under one command id, so the command counter does not move
-- between them; the memo's key moves with the WAL each row writes. Row 1 asks before its own write.
SELECT pg_temp.grant_status('active');
INSERT INTO plystra.member_roles AS m (id, member_id, role_id, space_id, scope_anchor_group_id, status, metadata)
SELECT v.id, 'member_finance_reviewer', 'role_finance_approver', 'space_acme', v.anchor, v.status,
       jsonb_build_object('n', v.n, 'groups', cardinality(plystra.reachable_group_ids('invoice', 'approve')),
                          -- Correlated (WHERE v.n > 0), or the sub-select would be an InitPlan run once.
                          'lookup', cardinality(ARRAY(SELECT plystra.lookup_resources('invoice', 'approve')
                                                      WHERE v.n > 0)),
                          'allowed', plystra.allowed_resource('invoice', 'invoice_001', 'approve'))
FROM (VALUES (1, 'mr_finance_reviewer_approver_finance', 'group_finance', 'revoked'),
             (2, 'mr_t91_revoked_2', 'group_legal', 'revoked'),
             (3, 'mr_t91_revoked_3', 'group_legal_emea', 'revoked')) v (n, id, anchor, status)
ON CONFLICT (id) DO UPDATE SET status = excluded.status;
SELECT is(ARRAY(SELECT metadata::text FROM plystra.member_roles WHERE id LIKE 'mr_t91_revoked_%' ORDER BY id),
          ARRAY['{"n": 2, "groups": 0, "lookup": 0, "allowed": false}',
                '{"n": 3, "groups": 0, "lookup": 0, "allowed": false}'],
          'rows 2 and 3 of one INSERT, after its row 1 revoked the grant: no group, no resource, and denied');
SELECT * FROM finish();
ROLLBACK;

SELECT dblink_disconnect('t91_w');
