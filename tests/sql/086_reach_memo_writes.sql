-- The per-statement memo of the actor's reach (plystra_pg/src/statement_cache.rs) answers a repeated question
-- within one statement without loading again. A transaction that has written reads with a fresh snapshot and its
-- own latest writes (plystra_pg/src/probe.rs), which no key taken from the statement's snapshot describes: a write
-- made earlier in the same statement (a volatile function), or a change another session committed meanwhile, was
-- answered from the memo as before it (found by an attack on the caches, 2026-12-02). Each reach function must
-- answer in the same statement as plystra.allowed_resource and plystra.check do. This file's transaction has
-- written (pgTAP's plan, the functions below), as the case needs. Each statement asks before and after the write
-- (`before` is read by the outer query: an output nobody reads is not computed, and would fill no memo).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS dblink;
BEGIN;
SELECT plan(8);

\ir helpers/conninfo.sql
SELECT dblink_connect('t86_w', :'conninfo');

-- Alice's approver grant (anchored at group_finance, group_tree) revoked and restored: by this transaction, and by
-- another session that commits at once.
CREATE FUNCTION pg_temp.grant_status(status text) RETURNS int LANGUAGE sql VOLATILE AS $$
    UPDATE plystra.member_roles SET status = grant_status.status WHERE id = 'mr_finance_reviewer_approver_finance';
    SELECT 1
$$;
CREATE FUNCTION pg_temp.grant_status_elsewhere(status text) RETURNS int LANGUAGE sql VOLATILE AS $$
    SELECT 1 FROM dblink_exec('t86_w', format(
        $q$UPDATE plystra.member_roles SET status = %L WHERE id = 'mr_finance_reviewer_approver_finance'$q$, status))
$$;
-- Group lists are compared as sets: their order is the table's.
CREATE FUNCTION pg_temp.sorted(a text[]) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY(SELECT x FROM unnest(a) x ORDER BY x)
$$;
SELECT plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme');

-- Committed by another session during the statement: a writing transaction's fresh snapshot shows it. (First:
-- once this transaction has updated the grant, its row lock would hold the other session's update.)
SELECT is(after, '{}'::text[], 'a revoke another session committed during the statement: no group')
FROM (SELECT plystra.reachable_group_ids('invoice', 'approve') AS before,
             pg_temp.grant_status_elsewhere('revoked') AS w,
             plystra.reachable_group_ids('invoice', 'approve') AS after OFFSET 0) s
WHERE before IS NOT NULL;
SELECT is(allowed, false, 'allowed_resource agrees')
FROM (SELECT plystra.allowed_resource('invoice', 'invoice_001', 'approve') AS allowed) s;
SELECT pg_temp.grant_status_elsewhere('active');
SELECT is(pg_temp.sorted(plystra.reachable_group_ids('invoice', 'approve')),
          ARRAY['group_finance', 'group_finance_apac', 'group_finance_emea'], 'restored by that session: its groups');


-- Written earlier in the same statement.
SELECT is(after, '{}'::text[], 'reachable_group_ids after a revoke made earlier in the statement: no group')
FROM (SELECT plystra.reachable_group_ids('invoice', 'approve') AS before, pg_temp.grant_status('revoked') AS w,
             plystra.reachable_group_ids('invoice', 'approve') AS after OFFSET 0) s
WHERE before IS NOT NULL;
SELECT is(allowed, false, 'allowed_resource in that statement agrees')
FROM (SELECT plystra.reachable_group_ids('invoice', 'approve') AS before, pg_temp.grant_status('active') AS w1,
             plystra.reachable_group_ids('invoice', 'approve') AS between_, pg_temp.grant_status('revoked') AS w2,
             plystra.allowed_resource('invoice', 'invoice_001', 'approve') AS allowed OFFSET 0) s
WHERE before IS NOT NULL;
SELECT is(after, '{}'::text[], 'lookup_resources after a revoke made earlier in the statement: no resource')
FROM (SELECT pg_temp.grant_status('active') AS w1, ARRAY(SELECT plystra.lookup_resources('invoice', 'approve')) AS before,
             pg_temp.grant_status('revoked') AS w2, ARRAY(SELECT plystra.lookup_resources('invoice', 'approve')) AS after
      OFFSET 0) s
WHERE before IS NOT NULL;
SELECT is(pg_temp.sorted(after), ARRAY['group_finance', 'group_finance_apac', 'group_finance_emea'],
          'a grant restored earlier in the statement: its groups (no stale deny either)')
FROM (SELECT plystra.reachable_group_ids('invoice', 'approve') AS before, pg_temp.grant_status('active') AS w,
             plystra.reachable_group_ids('invoice', 'approve') AS after OFFSET 0) s
WHERE before IS NOT NULL;
SELECT is(pg_temp.sorted(plystra.reachable_group_ids('invoice', 'approve')),
          ARRAY['group_finance', 'group_finance_apac', 'group_finance_emea'], 'and in the next statement');

SELECT dblink_disconnect('t86_w');
SELECT * FROM finish();
ROLLBACK;
