-- A row the database refuses fails only its own decision. The audit writer inserts a drained batch in one
-- transaction and, if that fails, rolls it back and inserts each row in a subtransaction of its own: the refused decision gets the database's error
-- (its SQLSTATE, "audit row refused"), the batch's other rows are committed, and the writer goes on. Before, any
-- insert error ended the writer, and every decision waiting on that batch failed with 57P03, in every tenant.
-- Input cannot make a row the log refuses (every field is bounded before it is queued), so the refusal here is a
-- constraint added for the test, committed before the test's transaction and dropped after it.
-- Needs the audit writer serving this database (scripts/test).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS dblink;
ALTER TABLE plystra.audit_logs ADD CONSTRAINT t041_refused_many CHECK (resource_id NOT LIKE 't041\_many\_%');
ALTER TABLE plystra.audit_logs ADD CONSTRAINT t041_refused CHECK (resource_id IS DISTINCT FROM 'invoice_t041_refused');
-- A refusal checked at commit: a deferred constraint trigger. Before, the writer's row-by-row retry committed
-- outside every row's subtransaction, so this one stopped the writer (57P03 for every waiting decision).
CREATE FUNCTION public.t041_refuse_deferred() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.resource_id = 'invoice_t041_deferred' THEN
        RAISE EXCEPTION 't041_deferred refuses this row' USING ERRCODE = '23514';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER t041_deferred AFTER INSERT ON plystra.audit_logs DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION public.t041_refuse_deferred();
BEGIN;
SELECT plan(21);
CREATE TEMP TABLE run AS SELECT 'req_t041_' || substr(md5(random()::text || clock_timestamp()::text), 1, 10) || '_' AS p;
CREATE FUNCTION pg_temp.rid(name text) RETURNS text LANGUAGE sql AS $$ SELECT (SELECT p FROM run) || name $$;
CREATE FUNCTION pg_temp.actor() RETURNS jsonb LANGUAGE sql AS $$
    SELECT '{"user_id": "user_alice", "member_id": "member_finance_reviewer",
             "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"}'::jsonb
$$;
CREATE FUNCTION pg_temp.req(res text, request_id text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('actor', pg_temp.actor(), 'resource_type', 'invoice', 'resource_id', res,
                              'action', 'approve', 'request', jsonb_build_object('request_id', request_id))
$$;
CREATE FUNCTION pg_temp.writer() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_stat_clear_snapshot();
    RETURN (SELECT pid FROM pg_stat_activity WHERE backend_type = 'plystra audit writer' AND datname = current_database());
END $$;
\ir helpers/await_audit_writer.sql
SELECT isnt(current_setting('plystra.audit_mode'), 'off', 'decisions are audited');
CREATE TEMP TABLE writer_before AS SELECT pg_temp.writer() AS pid;

-- One decision whose row is refused: its own error, not "audit unavailable".
SELECT throws_like(format('SELECT plystra.check(%L)', pg_temp.req('invoice_t041_refused', pg_temp.rid('alone'))),
    '%audit row of this decision was refused%t041_refused%',
    'a decision whose row the log refuses fails with the database''s reason');
SELECT is(pg_temp.writer(), (SELECT pid FROM writer_before), 'the audit writer is the same process after it');
SELECT throws_ok(format('SELECT plystra.check(%L)', pg_temp.req('invoice_t041_refused', pg_temp.rid('alone2'))), '23514',
    NULL, 'with the database''s SQLSTATE (23514 here), not 57P03');
SELECT is((SELECT count(*) FROM plystra.audit_logs WHERE request_id IN (pg_temp.rid('alone'), pg_temp.rid('alone2'))),
    0::bigint, 'and no row was written for it');

-- Refused only at commit (the deferred trigger): the same, and the writer goes on.
SELECT throws_ok(format('SELECT plystra.check(%L)', pg_temp.req('invoice_t041_deferred', pg_temp.rid('deferred'))),
    '23514', NULL, 'a row refused at commit fails its decision with the database''s SQLSTATE, not 57P03');
SELECT is(pg_temp.writer(), (SELECT pid FROM writer_before), 'the audit writer is the same process after it');
SELECT is(plystra.check(pg_temp.req('invoice_001', pg_temp.rid('after_deferred')))->>'decision', 'allow',
    'and the next decision is answered');

-- A batch whose rows go to the writer together: the refused item fails the call, the others are committed (a row
-- without an answer is allowed, an answer without a row never).
SELECT throws_ok(format('SELECT plystra.check_batch(%L)', jsonb_build_object('actor', pg_temp.actor(),
    'request', jsonb_build_object('request_id', pg_temp.rid('batch')),
    'items', jsonb_build_array(
        jsonb_build_object('resource_type', 'invoice', 'resource_id', 'invoice_001', 'action', 'approve'),
        jsonb_build_object('resource_type', 'invoice', 'resource_id', 'invoice_t041_refused', 'action', 'approve'),
        jsonb_build_object('resource_type', 'invoice', 'resource_id', 'invoice_002', 'action', 'approve')))),
    '23514', NULL, 'a batch with one refused row fails as a call');
SELECT is((SELECT array_agg(resource_id ORDER BY resource_id) FROM plystra.audit_logs WHERE request_id = pg_temp.rid('batch')),
    ARRAY['invoice_001', 'invoice_002'], 'its other rows were committed, each its own');

-- The writer lives on and the next decision is answered with its row.
SELECT is(pg_temp.writer(), (SELECT pid FROM writer_before), 'the audit writer is still the same process after the batch');
SELECT is(plystra.check(pg_temp.req('invoice_001', pg_temp.rid('after')))->>'decision', 'allow',
    'the next decision is answered');
SELECT is((SELECT count(*) FROM plystra.audit_logs WHERE request_id = pg_temp.rid('after')), 1::bigint,
    'with its row');

-- More refusals at once than the queue remembers (64): another tenant's decision, committed in the same drain,
-- is answered. Before, a waiter the ring had lost track of failed ("more rows were refused since than the queue
-- remembers") although its row was committed; now it looks for its row in the log. The writer is held on a lock
-- so that three decisions queue in a known order: P (taken alone), then B, then A's batch of 100 refused items.
\ir helpers/conninfo.sql
SELECT dblink_connect('t041_l', :'conninfo'), dblink_connect('t041_p', :'conninfo'),
       dblink_connect('t041_b', :'conninfo'), dblink_connect('t041_a', :'conninfo');
CREATE FUNCTION pg_temp.pid_of(conn text) RETURNS int LANGUAGE sql AS $$
    SELECT pid FROM dblink(conn, 'SELECT pg_backend_pid()') AS t(pid int)
$$;
CREATE TEMP TABLE t041_pids AS
    SELECT pg_temp.pid_of('t041_p') AS p, pg_temp.pid_of('t041_b') AS b, pg_temp.pid_of('t041_a') AS a;
-- Waits (at most 10 s) until the process waits on the given kind of event.
CREATE FUNCTION pg_temp.until_waiting(who int, kind text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..1000 LOOP
        PERFORM pg_stat_clear_snapshot();
        IF EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = who AND wait_event_type = kind) THEN
            RETURN true;
        END IF;
        PERFORM pg_sleep(0.01);
    END LOOP;
    RETURN false;
END $$;
SELECT dblink_exec('t041_l', 'BEGIN'),
       dblink_exec('t041_l', 'LOCK TABLE plystra.audit_chain_heads IN ACCESS EXCLUSIVE MODE');
SELECT dblink_send_query('t041_p', format('SELECT plystra.check(%L)->>''decision''', pg_temp.req('invoice_001', pg_temp.rid('p'))));
SELECT ok(pg_temp.until_waiting(pg_temp.writer(), 'Lock'), 'the writer is held, P''s row drained alone');
SELECT dblink_send_query('t041_b', format('SELECT plystra.check(%L)->>''decision''', pg_temp.req('invoice_001', pg_temp.rid('b'))));
SELECT ok(pg_temp.until_waiting((SELECT b FROM t041_pids), 'Extension'), 'B waits, queued first');
SELECT dblink_send_query('t041_a', format('SELECT plystra.check_batch(%L) IS NOT NULL', jsonb_build_object(
    'actor', pg_temp.actor(), 'request', jsonb_build_object('request_id', pg_temp.rid('a')),
    'items', (SELECT jsonb_agg(jsonb_build_object('resource_type', 'invoice', 'resource_id', 't041_many_' || i,
                                                  'action', 'approve')) FROM generate_series(1, 100) AS i))));
SELECT ok(pg_temp.until_waiting((SELECT a FROM t041_pids), 'Extension'), 'A waits, its 100 rows queued after B''s');
SELECT dblink_exec('t041_l', 'COMMIT');
SELECT is((SELECT d FROM dblink_get_result('t041_p', false) AS t(d text)), 'allow', 'P, taken alone, is answered');
SELECT is((SELECT d FROM dblink_get_result('t041_b', false) AS t(d text)), 'allow',
    'B, committed with 100 refused rows of another decision, is answered');
SELECT is((SELECT count(*) FROM plystra.audit_logs WHERE request_id = pg_temp.rid('b')), 1::bigint, 'with its row');
SELECT count(*) FROM dblink_get_result('t041_a', false) AS t(x boolean);
SELECT matches(dblink_error_message('t041_a'), 'audit row of this decision was refused',
    'A''s batch, every row refused, fails');
SELECT dblink_disconnect('t041_l'), dblink_disconnect('t041_p'), dblink_disconnect('t041_b'),
       dblink_disconnect('t041_a');

SELECT * FROM finish();
ROLLBACK;
ALTER TABLE plystra.audit_logs DROP CONSTRAINT t041_refused;
ALTER TABLE plystra.audit_logs DROP CONSTRAINT t041_refused_many;
DROP TRIGGER t041_deferred ON plystra.audit_logs;
DROP FUNCTION public.t041_refuse_deferred();
