-- The audit writer is shared by every tenant of its database, so no one request may hold it: a single decision is not
-- queued behind another request's batch of many decisions, and the sealing of a backlog of rows written by ordinary
-- transactions (a bulk import's management rows) does not stop decisions from being recorded while it runs.
-- Needs the cluster started with the audit writer serving this database (scripts/test does).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS dblink;
SELECT plan(8);
-- Audit rows are never removed, so this run's request ids are unique.
CREATE TEMP TABLE run AS SELECT 'req_t089_' || substr(md5(random()::text || clock_timestamp()::text), 1, 10) || '_' AS p;
CREATE FUNCTION pg_temp.rid(name text) RETURNS text LANGUAGE sql AS $$ SELECT (SELECT p FROM run) || name $$;
CREATE FUNCTION pg_temp.connstr() RETURNS text LANGUAGE sql AS $$
    SELECT format('host=%s port=%s dbname=%s user=%s', split_part(current_setting('unix_socket_directories'), ',', 1),
                  current_setting('port'), current_database(), current_user)
$$;
CREATE FUNCTION pg_temp.single(request_id text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT plystra.check(jsonb_build_object(
        'actor', jsonb_build_object('user_id', 'user_alice', 'member_id', 'member_finance_reviewer',
                                    'user_member_id', 'um_alice_finance_reviewer', 'space_id', 'space_acme'),
        'resource_type', 'invoice', 'resource_id', 'invoice_001', 'action', 'approve',
        'request', jsonb_build_object('request_id', request_id)))
$$;
-- Waits (at most 60 s) until the backend running the statement tagged `tag` (at its start: pg_stat_activity keeps
-- only the first kilobyte of a statement) sleeps on the audit writer: a batch
-- does once every record it has is queued.
CREATE FUNCTION pg_temp.await_queued(tag text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. 12000 LOOP
        IF EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query LIKE '%' || tag || '%'
                   AND query NOT LIKE '%pg_stat_activity%' AND wait_event_type = 'Extension') THEN
            RETURN true;
        END IF;
        PERFORM pg_sleep(0.005);
    END LOOP;
    RETURN false;
END $$;

\ir helpers/await_audit_writer.sql

------------------------------------------------------------------------------------------------------------------
-- A batch of 1,000 decisions is queued (its records about fill the writer's buffer); a single decision asked right
-- after is recorded while the batch's rows are still being written, not after all of them.
------------------------------------------------------------------------------------------------------------------
SELECT dblink_connect('t089_bulk', pg_temp.connstr());
SELECT dblink_send_query('t089_bulk', format('/* %s */ SELECT jsonb_array_length(plystra.check_batch(%L::jsonb)->''results'')',
    pg_temp.rid('bulk_tag'),
    jsonb_build_object('actor', jsonb_build_object('user_id', 'user_alice', 'member_id', 'member_finance_reviewer',
                                                   'user_member_id', 'um_alice_finance_reviewer', 'space_id', 'space_acme'),
                       'items', (SELECT jsonb_agg(jsonb_build_object('resource_type', 'invoice', 'resource_id', 'invoice_001',
                                                                     'action', 'approve'))
                                 FROM generate_series(1, 1000)),
                       'request', jsonb_build_object('request_id', pg_temp.rid('bulk')))));
SELECT ok(pg_temp.await_queued(pg_temp.rid('bulk_tag')), 'the batch of 1,000 decisions is queued for the writer');
SELECT is(pg_temp.single(pg_temp.rid('single'))->>'decision', 'allow', 'a single decision asked meanwhile is answered');
SELECT is((SELECT n FROM dblink_get_result('t089_bulk') AS t(n int)), 1000, 'the batch is answered');
SELECT dblink_disconnect('t089_bulk');
SELECT is((SELECT count(*) FROM plystra.audit_logs WHERE request_id = pg_temp.rid('bulk')), 1000::bigint,
          'every decision of the batch has its row');
-- The writer stamps each row as it writes it: rows of the batch stamped after the single decision's were written
-- after it. (It used to take everything queued at once, so the single decision waited for the whole batch.)
SELECT cmp_ok((SELECT count(*) FROM plystra.audit_logs
               WHERE request_id = pg_temp.rid('bulk')
                 AND created_at > (SELECT created_at FROM plystra.audit_logs WHERE request_id = pg_temp.rid('single'))),
              '>', 0::bigint,
              'the single decision''s row was written before the batch''s last rows: it did not wait for the whole batch');

------------------------------------------------------------------------------------------------------------------
-- 3,000 rows written by an ordinary transaction (as a bulk import's management rows are) are left to the writer to
-- seal. It seals them a bounded step at a time and records decisions between steps: a decision asked once the
-- sealing has begun is answered while part of the backlog is still unsealed.
------------------------------------------------------------------------------------------------------------------
SELECT dblink_exec(pg_temp.connstr(), format(
    $$INSERT INTO plystra.audit_logs (id, space_id, action, decision, trace, request_id)
      SELECT %L || k, 'space_t089_backlog', 'resource.create', 'allow', '{}', %L FROM generate_series(1, 3000) k$$,
    'al_' || pg_temp.rid('backlog_'), pg_temp.rid('backlog')));
DO $$
BEGIN
    FOR i IN 1 .. 6000 LOOP
        EXIT WHEN EXISTS (SELECT 1 FROM plystra.audit_logs WHERE request_id = pg_temp.rid('backlog') AND row_hash IS NOT NULL);
        PERFORM pg_sleep(0.005);
    END LOOP;
END $$;
SELECT is(pg_temp.single(pg_temp.rid('during_seal'))->>'decision', 'allow', 'a decision asked once the sealing has begun is answered');
SELECT cmp_ok((SELECT count(*) FROM plystra.audit_logs WHERE request_id = pg_temp.rid('backlog') AND row_hash IS NULL),
              '>', 0::bigint,
              '... while part of the backlog is still unsealed: the writer did not seal the whole backlog first');

SELECT * FROM finish();
