-- The audit log is locked before its partitions (migration 024), by the one who makes a month's partition and by the
-- archive, as TRUNCATE and LOCK TABLE lock them: a session that holds the log and waits for a partition never
-- deadlocks with them. And the audit writer's upkeep does not hold every audited decision while it waits for the log
-- (it gives up after 200 ms and tries the month again 10 s later).
-- Until 024, making a partition read the DEFAULT partition before it waited for the log: a TRUNCATE of the log
-- during the writer's upkeep answered 40P01 instead of its refusal (seen in a test run), and the upkeep's month
-- was lost to the deadlock.
-- Needs the audit writer (scripts/test starts the cluster with it). Every change is made in dblink sessions and
-- undone or removed before the end; this session itself never locks the log (it would hold it until its ROLLBACK).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS dblink;
BEGIN;
SELECT plan(27);

CREATE FUNCTION pg_temp.connstr() RETURNS text LANGUAGE sql AS $$
    SELECT format('host=%s port=%s dbname=%s user=%s', split_part(current_setting('unix_socket_directories'), ',', 1),
                  current_setting('port'), current_database(), current_user)
$$;
-- The backend behind a dblink connection.
CREATE FUNCTION pg_temp.pid_of(conn text) RETURNS int LANGUAGE sql AS $$
    SELECT pid FROM dblink(conn, 'SELECT pg_backend_pid()') AS t(pid int)
$$;
-- Waits (up to 10 s) until the backend waits for a lock; returns the relation it waits for.
CREATE FUNCTION pg_temp.awaited_relation(backend int) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. 200 LOOP
        IF EXISTS (SELECT 1 FROM pg_locks WHERE pid = backend AND NOT granted) THEN
            RETURN (SELECT string_agg(coalesce(relation::regclass::text, locktype), ',') FROM pg_locks
                    WHERE pid = backend AND NOT granted);
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
    RETURN NULL;
END $$;
-- The partitions of the log (attached or not: by name) on which the backend holds a lock.
CREATE FUNCTION pg_temp.partitions_held(backend int) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(c.relname || ':' || l.mode, ',' ORDER BY c.relname), '') FROM pg_locks l
    JOIN pg_class c ON c.oid = l.relation
    WHERE l.pid = backend AND l.granted AND c.relnamespace = 'plystra'::regnamespace
      AND (c.relname LIKE 'audit_logs\_%' AND c.relkind = 'r')
$$;
-- dblink_get_result is called once more after a query's result, for the empty one that frees the connection.
CREATE FUNCTION pg_temp.free(conn text) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM dblink_get_result(conn, false) AS t(x text)
$$;
-- Runs a statement in a dblink session and returns 'ok' or its SQLSTATE (the session's transaction goes on).
CREATE FUNCTION pg_temp.remote_try(conn text, stmt text) RETURNS text LANGUAGE sql AS $$
    SELECT r FROM dblink(conn, format('SELECT pg_temp.try(%L)', stmt)) AS t(r text)
$$;

-- An audited decision (Alice approving invoice_001: allowed), answered with its audit row's id.
CREATE TEMP TABLE t094_decision AS SELECT $$SELECT plystra.check(jsonb_build_object(
    'actor', jsonb_build_object('user_id', 'user_alice', 'member_id', 'member_finance_reviewer',
                                'user_member_id', 'um_alice_finance_reviewer', 'space_id', 'space_acme'),
    'resource_type', 'invoice', 'resource_id', 'invoice_001', 'action', 'approve')) ->> 'audit_log_id'$$ AS q;
-- Sends it in session X and waits up to 5 s for the answer (dblink_is_busy then says whether it came).
CREATE FUNCTION pg_temp.decide_audited_within_5s() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM dblink_send_query('t094_x', (SELECT q FROM t094_decision));
    FOR i IN 1 .. 100 LOOP
        EXIT WHEN dblink_is_busy('t094_x') = 0;
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;

SELECT dblink_connect('t094_x', pg_temp.connstr());
SELECT dblink_connect('t094_y', pg_temp.connstr());
SELECT dblink_exec('t094_y', $f$CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$$f$);
CREATE TEMP TABLE t094 AS SELECT pg_temp.pid_of('t094_x') AS x, pg_temp.pid_of('t094_y') AS y;

-- 1. Making a partition while a session holds the log and then truncates it.
SELECT dblink_exec('t094_y', 'BEGIN');
SELECT dblink_exec('t094_y', 'LOCK TABLE ONLY plystra.audit_logs IN ACCESS EXCLUSIVE MODE');
SELECT dblink_exec('t094_x', 'BEGIN');
SELECT dblink_send_query('t094_x', $$SELECT plystra.create_audit_partition('2033-05-01')$$);
SELECT is(pg_temp.awaited_relation((SELECT x FROM t094)), 'plystra.audit_logs',
          'the partition''s maker waits for the log');
SELECT is(pg_temp.partitions_held((SELECT x FROM t094)), '',
          'holding no partition of it (until 024: the DEFAULT partition)');
SELECT is(pg_temp.remote_try('t094_y', 'TRUNCATE plystra.audit_logs'), '42501',
          'a TRUNCATE of the log by the session that holds it meanwhile gets its refusal, not a deadlock');
SELECT dblink_exec('t094_y', 'ROLLBACK');
SELECT is((SELECT p FROM dblink_get_result('t094_x', false) AS t(p text)), 'audit_logs_2033_05',
          'and the partition is made once the log is free (until 024: 40P01, the upkeep''s month lost)');
SELECT pg_temp.free('t094_x');
SELECT dblink_exec('t094_x', 'ROLLBACK');

-- 2. Archiving while a session holds the log (and would then take a partition).
SELECT is((SELECT p FROM dblink('t094_x', $$SELECT plystra.create_audit_partition('2034-01-01')$$) AS t(p text)),
          'audit_logs_2034_01', 'a month to archive is made');
-- The archive takes the sealers' lock first; taken before the log is held, so that it is not behind a seal step of the
-- writer's that waits for the log.
SELECT dblink_exec('t094_x', 'BEGIN');
SELECT * FROM dblink('t094_x', 'SELECT 1 FROM plystra.audit_sealer FOR UPDATE') AS t(one int);
SELECT dblink_exec('t094_y', 'BEGIN');
SELECT dblink_exec('t094_y', 'LOCK TABLE ONLY plystra.audit_logs IN ACCESS EXCLUSIVE MODE');
SELECT dblink_send_query('t094_x',
    $$SELECT plystra.archive_audit_partitions(ARRAY['audit_logs_2034_01'], 0, 't094.jsonl', repeat('a', 64))$$);
SELECT is(pg_temp.awaited_relation((SELECT x FROM t094)), 'plystra.audit_logs', 'the archive waits for the log');
SELECT is(pg_temp.partitions_held((SELECT x FROM t094)), '',
          'holding none of its partitions (until 024: the archived one, SHARE)');
SELECT is(pg_temp.remote_try('t094_y', 'LOCK TABLE plystra.audit_logs_2034_01 IN ACCESS EXCLUSIVE MODE'), 'ok',
          'so the session that holds the log takes the partition without a deadlock');
SELECT dblink_exec('t094_y', 'ROLLBACK');
CREATE TEMP TABLE t094_archive AS SELECT * FROM dblink_get_result('t094_x', false) AS t(id bigint);
SELECT unalike(dblink_error_message('t094_x'), '%deadlock%',
                'the archive goes on once the log is free (until 024: 40P01, a deadlock)');
SELECT pg_temp.free('t094_x');
SELECT dblink_exec('t094_x', 'ROLLBACK');
SELECT is((SELECT count(*)::int FROM plystra.audit_partitions() WHERE partition_name = 'audit_logs_2034_01'), 1,
          'and, rolled back, leaves the partition attached');
SELECT dblink_exec('t094_x', 'ALTER TABLE plystra.audit_logs DETACH PARTITION plystra.audit_logs_2034_01');
SELECT dblink_exec('t094_x', 'DROP TABLE plystra.audit_logs_2034_01');

-- 3. The writer's upkeep against a session that holds the log while a month is missing: plystra_admin's (the REST
-- front's) read of the log, left open in its transaction. Before 1.20.0 the upkeep waited for it with every audited
-- decision behind the writer (and every other reader and writer of the log behind the upkeep's lock request).
CREATE TEMP TABLE t094_month AS
SELECT 'audit_logs_' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + interval '3 months', 'YYYY_MM') AS name,
       ((date_trunc('month', now() AT TIME ZONE 'UTC') + interval '3 months') AT TIME ZONE 'UTC') AS month_start;
SELECT dblink_exec('t094_x', format('ALTER TABLE plystra.audit_logs DETACH PARTITION plystra.%I', (SELECT name FROM t094_month)));
SELECT dblink_exec('t094_x', format('DROP TABLE plystra.%I', (SELECT name FROM t094_month)));
SELECT dblink_exec('t094_y', 'BEGIN');
SELECT dblink_exec('t094_y', 'SET LOCAL ROLE plystra_admin');
SELECT * FROM dblink('t094_y', 'SELECT count(*) FROM plystra.audit_logs WHERE false') AS t(n bigint);
-- A new writer makes the missing month at once.
CREATE TEMP TABLE t094_writer AS SELECT pid FROM pg_stat_activity WHERE backend_type = 'plystra audit writer';
SELECT ok(pg_terminate_backend((SELECT pid FROM t094_writer)), 'the audit writer is stopped (it restarts)');
DO $$
BEGIN
    FOR i IN 1 .. 200 LOOP
        -- pg_stat_activity is read once a transaction unless told to read again.
        PERFORM pg_stat_clear_snapshot();
        EXIT WHEN EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'plystra audit writer'
                            AND pid <> (SELECT pid FROM t094_writer))
                  AND plystra.audit_writer_active();
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
-- An audited decision, from another session, while the log is held.
SELECT pg_temp.decide_audited_within_5s();
SELECT is(dblink_is_busy('t094_x'), 0,
          'an audited decision is answered within 5 s while the writer''s upkeep cannot have the log (before: it waited for the log)');
SELECT dblink_exec('t094_y', 'ROLLBACK');
SELECT ok((SELECT id FROM dblink_get_result('t094_x', false) AS t(id text)) IS NOT NULL, 'with its audit row');
SELECT pg_temp.free('t094_x');
-- The writer tries the month again 10 s after it could not have the log (PARTITIONS_RETRY), not an hour later.
DO $$
BEGIN
    FOR i IN 1 .. 300 LOOP
        -- Asked in another session: this transaction's view of the catalog need not move while it runs.
        EXIT WHEN (SELECT made FROM dblink('t094_x', format('SELECT EXISTS (SELECT 1 FROM plystra.audit_partitions() '
                                                             'WHERE partition_name = %L)', (SELECT name FROM t094_month)))
                                    AS t(made boolean));
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
SELECT is((SELECT count(*)::int FROM plystra.audit_partitions() p, t094_month m WHERE p.partition_name = m.name), 1,
          'the writer makes the month it left once the log is free, within 30 s');

-- 4. Two makers of one month at once: the second waits, then finds the month made (in READ COMMITTED and in
-- REPEATABLE READ, whose snapshot predates the first maker's commit) and makes nothing.
CREATE FUNCTION pg_temp.second_maker(isolation text, month_start date) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    made text;
BEGIN
    PERFORM dblink_exec('t094_x', 'BEGIN');
    PERFORM * FROM dblink('t094_x', format('SELECT plystra.create_audit_partition(%L)', month_start)) AS t(p text);
    PERFORM dblink_exec('t094_y', 'BEGIN ISOLATION LEVEL ' || isolation);
    -- The transaction's snapshot, in REPEATABLE READ, is taken now.
    PERFORM * FROM dblink('t094_y', 'SELECT 1') AS t(n int);
    PERFORM dblink_send_query('t094_y', format('SELECT plystra.create_audit_partition(%L)', month_start));
    -- For the log, or (to look at the DEFAULT partition's rows) for the DEFAULT partition, which the first maker
    -- holds exclusively while it adds a partition beside it.
    IF pg_temp.awaited_relation((SELECT y FROM t094)) IS NULL THEN
        RETURN 'the second maker did not wait';
    END IF;
    PERFORM dblink_exec('t094_x', 'COMMIT');
    SELECT p INTO made FROM dblink_get_result('t094_y', false) AS t(p text);
    made := coalesce(made, 'NULL') || coalesce(' ' || nullif(dblink_error_message('t094_y'), 'OK'), '');
    PERFORM pg_temp.free('t094_y');
    PERFORM dblink_exec('t094_y', 'COMMIT');
    RETURN made;
END $$;
SELECT is(pg_temp.second_maker('READ COMMITTED', '2037-02-01'), 'NULL',
          'a second maker of the month, waiting in READ COMMITTED, makes nothing once the first commits');
SELECT is(pg_temp.second_maker('REPEATABLE READ', '2037-03-01'), 'NULL',
          'and so does one in REPEATABLE READ with an older snapshot (not an overlap error)');
SELECT is((SELECT count(*)::int FROM plystra.audit_partitions() WHERE partition_name IN ('audit_logs_2037_02', 'audit_logs_2037_03')), 2,
          'each month has its one partition');
SELECT dblink_exec('t094_x', 'ALTER TABLE plystra.audit_logs DETACH PARTITION plystra.audit_logs_2037_02');
SELECT dblink_exec('t094_x', 'DROP TABLE plystra.audit_logs_2037_02');
SELECT dblink_exec('t094_x', 'ALTER TABLE plystra.audit_logs DETACH PARTITION plystra.audit_logs_2037_03');
SELECT dblink_exec('t094_x', 'DROP TABLE plystra.audit_logs_2037_03');

-- 5. Making a month whose rows wait in the DEFAULT partition while another session holds that partition (read by
-- name, without the log): the maker, which holds the log, waits for it; a lock timeout there leaves everything as it
-- was (the rows in the DEFAULT partition, attached, no new partition), and once the partition is free the month is
-- made and takes its rows. All in one transaction of X's, rolled back.
SELECT dblink_exec('t094_x', $f$CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$$f$);
SELECT dblink_exec('t094_x', 'BEGIN');
SELECT * FROM dblink('t094_x', $$SELECT plystra.append_audit(jsonb_build_array(jsonb_build_object(
    'id', 'audit_t094_waiting', 'space_id', 'space_acme', 'action', 'invoice.read', 'decision', 'allow',
    'trace', '{}'::jsonb, 'created_at', '2037-06-15T12:00:00Z')))$$) AS t(r text);
SELECT dblink_exec('t094_y', 'BEGIN');
SELECT dblink_exec('t094_y', 'LOCK TABLE plystra.audit_logs_default IN ACCESS SHARE MODE');
SELECT dblink_exec('t094_x', $$SET LOCAL lock_timeout = '300ms'$$);
SELECT is(pg_temp.remote_try('t094_x', $$SELECT plystra.create_audit_partition('2037-06-01')$$), '55P03',
          'the maker moving rows out of a held DEFAULT partition gives up at its lock timeout');
SELECT is((SELECT r FROM dblink('t094_x', $$SELECT (SELECT tableoid::regclass::text FROM plystra.audit_logs WHERE id = 'audit_t094_waiting')
                                          || ' ' || (to_regclass('plystra.audit_logs_2037_06') IS NULL)
                                          || ' ' || (SELECT count(*) FROM plystra.audit_partitions() WHERE is_default)$$) AS t(r text)),
          'plystra.audit_logs_default true 1',
          'leaving the row in the DEFAULT partition, still attached, and no partition made');
SELECT dblink_exec('t094_y', 'ROLLBACK');
SELECT is((SELECT r FROM dblink('t094_x', $$SELECT plystra.create_audit_partition('2037-06-01')$$) AS t(r text))
          || ' ' || (SELECT r FROM dblink('t094_x', $$SELECT (SELECT tableoid::regclass::text FROM plystra.audit_logs WHERE id = 'audit_t094_waiting')
                                                  || ' ' || (SELECT count(*) FROM plystra.audit_partitions() WHERE is_default)$$) AS t(r text)),
          'audit_logs_2037_06 plystra.audit_logs_2037_06 1',
          'once the partition is free the month is made and takes its row');
SELECT dblink_exec('t094_x', 'ROLLBACK');

-- 6. A partition held exclusively by the owner (VACUUM FULL, CLUSTER, a LOCK TABLE), here next month's: the listing of
-- the partitions does not wait for it (until 1.21.0 it opened every partition to print its bounds), and audited
-- decisions are answered while it is held (until 1.21.0 the writer's seal step read every partition and waited,
-- with every audited decision behind it, as long as the partition was held).
CREATE TEMP TABLE t094_next AS
SELECT 'audit_logs_' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month', 'YYYY_MM') AS name;
CREATE TEMP TABLE t094_writer2 AS SELECT pid FROM pg_stat_activity WHERE backend_type = 'plystra audit writer';
SELECT dblink_exec('t094_y', 'BEGIN');
SELECT dblink_exec('t094_y', format('LOCK TABLE plystra.%I IN ACCESS EXCLUSIVE MODE', (SELECT name FROM t094_next)));
SELECT dblink_exec('t094_x', $$SET lock_timeout = '100ms'$$);
SELECT is(pg_temp.remote_try('t094_x', 'SELECT count(*) FROM plystra.audit_partitions()'), 'ok',
          'the partitions are listed while one is held (before 1.21.0: 55P03, it waited for the partition)');
SELECT dblink_exec('t094_x', 'RESET lock_timeout');
-- A seal step (every second) meets the held partition first.
SELECT pg_sleep(1.5);
SELECT pg_temp.decide_audited_within_5s();
SELECT is(dblink_is_busy('t094_x'), 0,
          'an audited decision is answered within 5 s while a partition is held (before 1.21.0: not until it was freed)');
SELECT dblink_exec('t094_y', 'ROLLBACK');
SELECT ok((SELECT id FROM dblink_get_result('t094_x', false) AS t(id text)) IS NOT NULL, 'with its audit row');
SELECT pg_temp.free('t094_x');
SELECT is((SELECT pid FROM pg_stat_activity WHERE backend_type = 'plystra audit writer'), (SELECT pid FROM t094_writer2),
          'by the same writer');

-- 7. An upkeep step that fails (here: the partitions' function broken by hand) is left for a later turn: the writer
-- goes on and audited decisions are answered. Until 1.21.0 the error ended the writer, and a writer that fails at
-- its start fails again at every restart, two seconds apart, each time failing the decisions that waited for it.
CREATE TEMP TABLE t094_ensure AS
SELECT pg_get_functiondef('plystra.ensure_audit_partitions(integer)'::regprocedure) AS def;
SELECT dblink_exec('t094_x', $f$CREATE OR REPLACE FUNCTION plystra.ensure_audit_partitions(months_ahead integer DEFAULT 3)
RETURNS SETOF text LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 't094: broken on purpose';
END $$$f$);
SELECT ok(pg_terminate_backend((SELECT pid FROM t094_writer2)), 'the audit writer is stopped (it restarts)');
DO $$
BEGIN
    FOR i IN 1 .. 200 LOOP
        PERFORM pg_stat_clear_snapshot();
        EXIT WHEN EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'plystra audit writer'
                            AND pid <> (SELECT pid FROM t094_writer2))
                  AND plystra.audit_writer_active();
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
-- The writers seen over 3 s, past the restart time (2 s): a writer that ended at its start would show as none at
-- times, and as others.
CREATE TEMP TABLE t094_seen (pid int);
DO $$
BEGIN
    FOR i IN 1 .. 30 LOOP
        PERFORM pg_stat_clear_snapshot();
        INSERT INTO t094_seen SELECT (SELECT pid FROM pg_stat_activity WHERE backend_type = 'plystra audit writer');
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
SELECT is((SELECT count(DISTINCT pid) || ' writer, absent ' || count(*) FILTER (WHERE pid IS NULL) || ' times' FROM t094_seen),
          '1 writer, absent 0 times', 'the writer whose upkeep fails at its start goes on');
SELECT ok((SELECT id FROM dblink('t094_x', (SELECT q FROM t094_decision)) AS t(id text)) IS NOT NULL,
          'and writes audited decisions');
SELECT dblink_exec('t094_x', (SELECT def FROM t094_ensure));

SELECT dblink_disconnect('t094_x');
SELECT dblink_disconnect('t094_y');
SELECT * FROM finish();
ROLLBACK;
