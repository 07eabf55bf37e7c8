-- plystra.reachable_group_ids keeps the array it built for a question under the statement's visibility
-- (plystra_pg/src/actor_reach.rs, the memo's rule in plystra_pg/src/statement_cache.rs) and answers a repeated
-- call with a copy of it. A kept array must answer only its own question: the resource type and action, the actor
-- (plystra.set_actor, which may change between two calls of one statement) and what the statement sees. The memo
-- works only in a transaction that has written nothing, and pgTAP writes (its plan), so the calls run first in a
-- read-only transaction of their own and are compared afterwards.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;

-- Answers are compared as sets: the order of a group list is the database's.
CREATE FUNCTION pg_temp.sorted(a text[]) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT coalesce(string_agg(x, ',' ORDER BY x), '') FROM unnest(a) x $$;

BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SELECT plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme');
-- The expected answers, each asked in a statement of its own, as the set-returning function.
SELECT coalesce(string_agg(g, ',' ORDER BY g), '') AS expected_read
  FROM plystra.reachable_groups('invoice', 'read') g \gset
SELECT coalesce(string_agg(g, ',' ORDER BY g), '') AS expected_approve
  FROM plystra.reachable_groups('invoice', 'approve') g \gset
-- One statement: two questions with different answers, each asked twice, then the approve question by another
-- actor (a revoked binding, which reaches nothing) and by Alice again. The select list is evaluated left to right;
-- OFFSET 0 keeps it one evaluation.
SELECT pg_temp.sorted(r1) AS read_1, pg_temp.sorted(a1) AS approve_1, pg_temp.sorted(r2) AS read_2,
       pg_temp.sorted(a2) AS approve_2, pg_temp.sorted(other) AS other_actor,
       pg_temp.sorted(r3) AS approve_3, unwritten
FROM (SELECT plystra.reachable_group_ids('invoice', 'read') AS r1,
             plystra.reachable_group_ids('invoice', 'approve') AS a1,
             plystra.reachable_group_ids('invoice', 'read') AS r2,
             plystra.reachable_group_ids('invoice', 'approve') AS a2,
             plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer_revoked',
                               'space_acme') AS switch_1,
             plystra.reachable_group_ids('invoice', 'approve') AS other,
             plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer',
                               'space_acme') AS switch_2,
             plystra.reachable_group_ids('invoice', 'approve') AS r3,
             txid_current_if_assigned() IS NULL AS unwritten
      OFFSET 0) s \gset
COMMIT;

BEGIN;
SELECT plan(8);
SELECT ok(:'unwritten'::boolean, 'the calls ran in a transaction that had written nothing (the memo was in play)');
SELECT is(:'expected_read'::text, ''::text, 'Alice''s read reaches no group list (a self-scope grant), unlike approve');
SELECT is(:'expected_approve'::text, 'group_finance,group_finance_apac,group_finance_emea'::text,
          'Alice approves in Finance');
SELECT is(:'read_1'::text, :'expected_read'::text, 'the first read question: its groups');
SELECT is(:'approve_1'::text, :'expected_approve'::text, 'the approve question in the same statement: its own groups');
SELECT is(:'read_2'::text || '|' || :'approve_2'::text, :'expected_read'::text || '|' || :'expected_approve'::text,
          'each question asked again: the same array');
SELECT is(:'other_actor'::text, ''::text,
          'the approve question by another actor (a revoked binding) in the same statement: no group');
SELECT is(:'approve_3'::text, :'expected_approve'::text, 'by Alice again: her groups');
SELECT * FROM finish();
ROLLBACK;
