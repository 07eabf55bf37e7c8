-- A transaction that has written may use what the backends keep (the catalog, actors, groups) unless it has written
-- a kept table (plystra_pg/src/kept_writes.rs, migration 023): every statement that writes one first fires a BEFORE
-- STATEMENT trigger that marks the transaction. Before 1.19.0 a transaction that had written anything read every
-- decision from the tables (an application's INSERT followed by a SELECT under the example policy loaded the actor
-- and the catalog again at each statement).
-- What must hold: a decision in a transaction that wrote only other tables is answered from what is kept and reads
-- none of the kept tables; one in a transaction that wrote a kept table (in this statement, an earlier one, a rolled
-- back savepoint, a trigger's statement, with session_replication_role = replica) reads the tables and sees its
-- writes; the mark ends with the transaction; other sessions' commits are seen as the isolation level says; every
-- table whose changes move a version carries the trigger.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS dblink;
\ir helpers/conninfo.sql
SET plystra.audit_mode = 'off';

-- An application's own table, and a trigger on it that revokes Alice's approver grant when asked to.
CREATE TABLE public.t93_notes (id serial PRIMARY KEY, revoke boolean NOT NULL DEFAULT false);
CREATE FUNCTION public.t93_revoke() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.revoke THEN
        UPDATE plystra.member_roles SET status = 'revoked' WHERE id = 'mr_finance_reviewer_approver_finance';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER t93_revoke BEFORE INSERT ON public.t93_notes FOR EACH ROW EXECUTE FUNCTION public.t93_revoke();

-- Alice's decision on invoice_001 (approve), as a deny code or ALLOW.
CREATE FUNCTION pg_temp.alice(act text DEFAULT 'approve') RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT coalesce(plystra.check(jsonb_build_object(
        'actor', jsonb_build_object('user_id', 'user_alice', 'member_id', 'member_finance_reviewer',
                                    'user_member_id', 'um_alice_finance_reviewer', 'space_id', 'space_acme'),
        'resource_type', 'invoice', 'resource_id', 'invoice_001', 'action', act))->>'deny_code', 'ALLOW')
$$;
-- The index scans this transaction has made of the kept tables (the version rows excepted). A decision answered from
-- what is kept makes as many as in a transaction that has written nothing (none with the shared tiers preloaded).
CREATE FUNCTION pg_temp.kept_table_scans() RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT coalesce(sum(idx_scan), 0)::bigint FROM pg_stat_xact_all_tables
    WHERE schemaname = 'plystra' AND relname IN ('users', 'spaces', 'groups', 'members', 'user_members',
        'member_roles', 'roles', 'permissions', 'role_permissions', 'resource_types', 'resource_actions',
        'resource_mappings')
$$;
-- The kept-table scans of one decision of Alice's, then its answer: 'scans:answer'.
CREATE FUNCTION pg_temp.decide_counting(act text DEFAULT 'approve') RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    before bigint := pg_temp.kept_table_scans();
    answer text := pg_temp.alice(act);
BEGIN
    RETURN (pg_temp.kept_table_scans() - before)::text || ':' || answer;
END;
$$;
CREATE FUNCTION pg_temp.hits() RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT (plystra.actor_kept_stats()->>'hits')::bigint
$$;

SELECT dblink_connect('t93_w', :'conninfo');
SELECT pg_temp.alice(), pg_temp.alice('reject');
-- The same decision in a transaction that has written nothing: what is kept answers it.
SELECT split_part(pg_temp.decide_counting(), ':', 1) AS ro \gset

-- 1. Written, not a kept table: answered from what is kept.
BEGIN;
INSERT INTO public.t93_notes DEFAULT VALUES;
SELECT pg_temp.hits() AS h0 \gset
SELECT pg_temp.decide_counting() AS written_other \gset
SELECT pg_temp.hits() - :h0 AS written_other_hits \gset
-- A kept table written later in the same transaction: from then on its tables are read, and its write is seen.
UPDATE plystra.roles SET status = 'disabled' WHERE id = 'role_finance_approver';
SELECT pg_temp.decide_counting() AS then_catalog_written \gset
ROLLBACK;

-- 2. Written a kept table earlier (no row changed: the statement alone marks).
BEGIN;
UPDATE plystra.member_roles SET status = status WHERE id = 'mr_finance_reviewer_approver_finance';
SELECT pg_temp.decide_counting() AS kept_written \gset
ROLLBACK;

-- 3. The mark ends with the transaction, committed or rolled back. (The commit moves the Space's version: a decision
-- in a transaction that has written nothing reads the actor again and keeps it under the new one.)
BEGIN;
UPDATE plystra.member_roles SET status = status WHERE id = 'mr_finance_reviewer_approver_finance';
COMMIT;
SELECT pg_temp.alice();
BEGIN;
INSERT INTO public.t93_notes DEFAULT VALUES;
SELECT pg_temp.decide_counting() AS after_commit \gset
ROLLBACK;
BEGIN;
UPDATE plystra.member_roles SET status = status WHERE id = 'mr_finance_reviewer_approver_finance';
ROLLBACK;
BEGIN;
INSERT INTO public.t93_notes DEFAULT VALUES;
SELECT pg_temp.decide_counting() AS after_rollback \gset
ROLLBACK;

-- 4. A savepoint that wrote a kept table, rolled back: the transaction stays marked.
BEGIN;
INSERT INTO public.t93_notes DEFAULT VALUES;
SAVEPOINT s;
UPDATE plystra.member_roles SET status = 'revoked' WHERE id = 'mr_finance_reviewer_approver_finance';
SELECT pg_temp.alice() AS in_savepoint \gset
ROLLBACK TO SAVEPOINT s;
SELECT pg_temp.decide_counting() AS savepoint_rolled_back \gset
ROLLBACK;

-- 5. A kept table written by a trigger's statement (the application inserts its own row; its trigger revokes).
BEGIN;
INSERT INTO public.t93_notes (revoke) VALUES (true);
SELECT pg_temp.decide_counting() AS by_trigger \gset
ROLLBACK;

-- 6. In the very statement that writes: a writable CTE revokes, and its RETURNING decides after the revoke. The version
-- row moves only at the statement's end, and the transaction had written another table before: without the mark the
-- kept actor, still filed under the version this statement sees, would answer.
BEGIN;
INSERT INTO public.t93_notes DEFAULT VALUES;
SELECT pg_temp.alice() AS before_statement \gset
WITH u AS (UPDATE plystra.member_roles SET status = 'revoked' WHERE id = 'mr_finance_reviewer_approver_finance'
           RETURNING pg_temp.alice() AS answer)
SELECT answer AS in_statement FROM u \gset
ROLLBACK;
-- A two-row INSERT into the application's table whose first row's BEFORE trigger revokes: each row's RETURNING
-- decides after the revoke.
BEGIN;
INSERT INTO public.t93_notes DEFAULT VALUES;
SELECT pg_temp.alice() AS before_rows \gset
WITH ins AS (INSERT INTO public.t93_notes (revoke) VALUES (true), (false) RETURNING id, pg_temp.alice() AS answer)
SELECT string_agg(answer, ',' ORDER BY id) AS rows_answers FROM ins \gset
ROLLBACK;

-- 7. session_replication_role = replica (a restore, a logical copy): the trigger is ENABLE ALWAYS and still marks.
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE plystra.member_roles SET status = status WHERE id = 'mr_finance_reviewer_approver_finance';
SET LOCAL session_replication_role = origin;
SELECT pg_temp.decide_counting() AS replica_role \gset
ROLLBACK;

-- 8. Another session's commit, in a transaction that has written another table. READ COMMITTED: seen by the next
-- decision (each takes a fresh snapshot once the transaction has written). REPEATABLE READ: not seen.
BEGIN;
INSERT INTO public.t93_notes DEFAULT VALUES;
SELECT pg_temp.alice() AS rc_before \gset
SELECT dblink_exec('t93_w', $q$UPDATE plystra.member_roles SET status = 'revoked'
                               WHERE id = 'mr_finance_reviewer_approver_finance'$q$);
SELECT pg_temp.alice() AS rc_after \gset
ROLLBACK;
SELECT dblink_exec('t93_w', $q$UPDATE plystra.member_roles SET status = 'active'
                               WHERE id = 'mr_finance_reviewer_approver_finance'$q$);
SELECT pg_temp.alice() AS warm_again \gset
BEGIN ISOLATION LEVEL REPEATABLE READ;
INSERT INTO public.t93_notes DEFAULT VALUES;
SELECT pg_temp.decide_counting() AS rr_before \gset
SELECT dblink_exec('t93_w', $q$UPDATE plystra.member_roles SET status = 'revoked'
                               WHERE id = 'mr_finance_reviewer_approver_finance'$q$);
SELECT pg_temp.alice() AS rr_after \gset
COMMIT;
SELECT pg_temp.alice() AS rr_next \gset
SELECT dblink_exec('t93_w', $q$UPDATE plystra.member_roles SET status = 'active'
                               WHERE id = 'mr_finance_reviewer_approver_finance'$q$);

-- 9. The row-level-security lookups in a transaction that has written another table take the kept actor too: they
-- read the kept tables as often as in a read-only transaction (each asked once before, unmeasured).
BEGIN;
SELECT plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme');
SELECT cardinality(plystra.reachable_group_ids('invoice', 'approve'));
ROLLBACK;
BEGIN;
INSERT INTO public.t93_notes DEFAULT VALUES;
SELECT plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme');
SELECT cardinality(plystra.reachable_group_ids('invoice', 'approve'));
ROLLBACK;
BEGIN;
SELECT plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme');
SELECT pg_temp.kept_table_scans() AS s0 \gset
SELECT cardinality(plystra.reachable_group_ids('invoice', 'approve')) > 0 AS reach_nonempty_ro \gset
SELECT pg_temp.kept_table_scans() - :s0 AS reach_scans_ro \gset
ROLLBACK;
BEGIN;
INSERT INTO public.t93_notes DEFAULT VALUES;
SELECT plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme');
SELECT pg_temp.kept_table_scans() AS s0 \gset
SELECT cardinality(plystra.reachable_group_ids('invoice', 'approve')) > 0 AS reach_nonempty \gset
SELECT pg_temp.kept_table_scans() - :s0 AS reach_scans \gset
ROLLBACK;

-- 10. The administration role (not allowed to call the mark itself) writes a kept table: the trigger marks anyway.
BEGIN;
INSERT INTO public.t93_notes DEFAULT VALUES;
SET LOCAL ROLE plystra_admin;
UPDATE plystra.member_roles SET status = status WHERE id = 'mr_finance_reviewer_approver_finance';
RESET ROLE;
SELECT pg_temp.decide_counting() AS admin_wrote \gset
ROLLBACK;

-- 11. A parallel worker deciding inside the leader's revoking statement (through a wrapper wrongly declared PARALLEL
-- SAFE; decisions are parallel unsafe): the worker has the leader's transaction id but not its mark, so it must not
-- take what is kept (found by an attack: it allowed, and a rolled-back grant a worker read was shared with every
-- backend). The wrapper says whether it ran in a worker.
CREATE FUNCTION public.t93_alice_ps(leader int) RETURNS text LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT coalesce(plystra.check(jsonb_build_object(
        'actor', jsonb_build_object('user_id', 'user_alice', 'member_id', 'member_finance_reviewer',
                                    'user_member_id', 'um_alice_finance_reviewer', 'space_id', 'space_acme'),
        'resource_type', 'invoice', 'resource_id', 'invoice_001', 'action', 'approve'))->>'deny_code', 'ALLOW')
        || ':' || (pg_backend_pid() <> leader)::text
$$;
CREATE FUNCTION public.t93_in_worker(leader int) RETURNS SETOF text LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT public.t93_alice_ps(%s)', leader);
END;
$$;
SELECT pg_temp.alice();
BEGIN;
SET LOCAL force_parallel_mode = on;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SELECT string_agg(x, ',') AS worker_read_only FROM public.t93_in_worker(pg_backend_pid()) x \gset
INSERT INTO public.t93_notes DEFAULT VALUES;
WITH u AS (UPDATE plystra.member_roles SET status = 'revoked' WHERE id = 'mr_finance_reviewer_approver_finance'
           RETURNING (SELECT string_agg(x, ',') FROM public.t93_in_worker(pg_backend_pid()) x) AS w)
SELECT w AS worker_in_statement FROM u \gset
ROLLBACK;

BEGIN;
SELECT plan(22);

SELECT is(:'written_other'::text, :'ro'::text || ':ALLOW',
          'written another table: the decision reads the kept tables no more than a read-only one, and allows');
SELECT is(:written_other_hits::bigint, 1::bigint, 'and it used the kept actor');
SELECT ok(split_part(:'then_catalog_written', ':', 1)::int > :ro
          AND split_part(:'then_catalog_written', ':', 2) = 'NO_MATCHING_PERMISSION',
          'a Role disabled later in that transaction: the tables are read and the Role no longer grants ('
          || :'then_catalog_written' || ')');
SELECT ok(split_part(:'kept_written', ':', 1)::int > :ro AND split_part(:'kept_written', ':', 2) = 'ALLOW',
          'a statement on a kept table, even one that changed nothing, makes the transaction read the tables ('
          || :'kept_written' || ')');
SELECT is(:'after_commit'::text, :'ro'::text || ':ALLOW', 'the next transaction (after a commit) uses what is kept again');
SELECT is(:'after_rollback'::text, :'ro'::text || ':ALLOW', 'and after a transaction that wrote a kept table and rolled back');
SELECT is(:'in_savepoint'::text, 'NO_MATCHING_PERMISSION', 'a revoke inside a savepoint denies');
SELECT ok(split_part(:'savepoint_rolled_back', ':', 1)::int > :ro
          AND split_part(:'savepoint_rolled_back', ':', 2) = 'ALLOW',
          'the savepoint rolled back: the grant counts again, read from the tables (the mark stays) ('
          || :'savepoint_rolled_back' || ')');
SELECT ok(split_part(:'by_trigger', ':', 1)::int > :ro AND split_part(:'by_trigger', ':', 2) = 'NO_MATCHING_PERMISSION',
          'a grant revoked by a trigger of the application''s table: read from the tables, denied ('
          || :'by_trigger' || ')');
SELECT is(:'before_statement'::text, 'ALLOW', 'before the revoking statement, allowed (from what is kept)');
SELECT is(:'in_statement'::text, 'NO_MATCHING_PERMISSION',
          'inside the statement that revokes (its version moves only at its end), the decision sees the revoke');
SELECT is(:'before_rows'::text, 'ALLOW', 'before the two-row INSERT, allowed');
SELECT is(:'rows_answers'::text, 'NO_MATCHING_PERMISSION,NO_MATCHING_PERMISSION',
          'each row of an INSERT whose first row''s trigger revoked: denied');
SELECT ok(split_part(:'replica_role', ':', 1)::int > :ro,
          'session_replication_role = replica: a kept table''s statement still marks (' || :'replica_role' || ')');
SELECT is(:'rc_before'::text || ',' || :'rc_after', 'ALLOW,NO_MATCHING_PERMISSION',
          'READ COMMITTED, written: another session''s revoke counts from the next decision');
SELECT is(:'rr_before'::text || ',' || :'rr_after' || ',' || :'rr_next', :'ro'::text || ':ALLOW,ALLOW,NO_MATCHING_PERMISSION',
          'REPEATABLE READ, written: from what is kept; another session''s revoke is not seen; the next transaction sees it');
SELECT is(:'reach_nonempty'::text || ':' || :'reach_scans', :'reach_nonempty_ro'::text || ':' || :'reach_scans_ro',
          'reachable_group_ids after a write to another table reads none of the kept tables');

SELECT ok(split_part(:'admin_wrote', ':', 1)::int > :ro,
          'plystra_admin''s statement on a kept table marks its transaction (' || :'admin_wrote' || ')');

SELECT is(:'worker_read_only'::text, 'ALLOW:true', 'a parallel worker decides (read-only: from what is kept)');
SELECT is(:'worker_in_statement'::text, 'NO_MATCHING_PERMISSION:true',
          'a parallel worker deciding inside the leader''s revoking statement sees the revoke');

-- Every table whose changes move a version (the catalog's, the actors', the credentials') and every version table
-- carries the mark: a BEFORE, FOR EACH STATEMENT trigger on INSERT, UPDATE, DELETE and TRUNCATE, ENABLE ALWAYS.
SELECT is(
    ARRAY(SELECT DISTINCT c.relname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
          JOIN pg_proc p ON p.oid = t.tgfoid
          WHERE c.relnamespace = 'plystra'::regnamespace
            AND p.proname IN ('tg_actor_changed', 'tg_catalog_changed', 'tg_credential_changed')
          UNION SELECT unnest(ARRAY['actor_versions', 'actor_user_stamps', 'catalog_version'])
          EXCEPT
          SELECT c.relname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
          WHERE c.relnamespace = 'plystra'::regnamespace AND t.tgname = 'kept_rows_written'
            AND t.tgenabled = 'A' AND t.tgfoid = 'plystra.tg_kept_rows_written()'::regprocedure
            -- tgtype bits: ROW 1, BEFORE 2, INSERT 4, DELETE 8, UPDATE 16, TRUNCATE 32
            AND t.tgtype = (2 | 4 | 8 | 16 | 32)),
    ARRAY[]::text[],
    'every kept table and version table marks its writers');
SELECT ok(NOT has_function_privilege('plystra_app', 'plystra.tg_kept_rows_written()', 'EXECUTE')
          AND NOT has_function_privilege('public', 'plystra.tg_kept_rows_written()', 'EXECUTE')
          AND NOT has_function_privilege('plystra_app', 'plystra.mark_kept_rows_written()', 'EXECUTE')
          AND NOT has_function_privilege('plystra_admin', 'plystra.mark_kept_rows_written()', 'EXECUTE')
          AND NOT has_function_privilege('public', 'plystra.mark_kept_rows_written()', 'EXECUTE'),
          'no role may attach the mark''s trigger to a table or call the mark (it runs as the trigger''s owner)');

SELECT * FROM finish();
ROLLBACK;

DROP TABLE public.t93_notes;
DROP FUNCTION public.t93_revoke();
DROP FUNCTION public.t93_in_worker(int);
DROP FUNCTION public.t93_alice_ps(int);
SELECT dblink_disconnect('t93_w');
