-- plystra.audit_writer_stats() (migration 022): the audit writer's queue as operators watch it. Each lane counts the
-- rows its writer committed (single: one decision's row; bulk: the rows of a request of many decisions), nothing
-- waits once a decision has its answer, and the function is plystra_admin's, not an application's.
-- Needs the cluster started with the audit writer serving this database (scripts/test does).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS dblink;
SELECT plan(12);
\ir helpers/await_audit_writer.sql

SET plystra.audit_mode = 'always';
CREATE FUNCTION pg_temp.actor() RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('user_id', 'user_alice', 'member_id', 'member_finance_reviewer',
                              'user_member_id', 'um_alice_finance_reviewer', 'space_id', 'space_acme')
$$;

SELECT plystra.audit_writer_stats() AS s0 \gset
SELECT is(ARRAY[(:'s0'::jsonb)->>'active', (:'s0'::jsonb)->>'preloaded'], ARRAY['true', 'true'],
          'the writer serves this database (the library is preloaded)');
SELECT is(ARRAY[(:'s0'::jsonb)#>>'{lanes,single,capacity_bytes}', (:'s0'::jsonb)#>>'{lanes,bulk,capacity_bytes}'],
          ARRAY['4194304', '4194304'], 'each lane''s ring holds 4 MiB');

-- One decision: one row in the single lane.
SELECT plystra.check(jsonb_build_object('actor', pg_temp.actor(), 'resource_type', 'invoice',
                                        'resource_id', 'invoice_001', 'action', 'approve')) IS NOT NULL AS checked \gset
SELECT plystra.audit_writer_stats() AS s1 \gset
SELECT is(((:'s1'::jsonb)#>>'{lanes,single,rows_committed}')::bigint
          - ((:'s0'::jsonb)#>>'{lanes,single,rows_committed}')::bigint, 1::bigint,
          'an audited decision: one row committed in the single lane');
SELECT is(((:'s1'::jsonb)#>>'{lanes,bulk,rows_committed}')::bigint,
          ((:'s0'::jsonb)#>>'{lanes,bulk,rows_committed}')::bigint, '... none in the bulk lane');
SELECT cmp_ok(((:'s1'::jsonb)->>'transactions')::bigint, '>', ((:'s0'::jsonb)->>'transactions')::bigint,
              '... taken by a transaction of the writer');

-- A batch of three decisions: three rows in the bulk lane.
SELECT jsonb_array_length(plystra.check_batch(jsonb_build_object('actor', pg_temp.actor(), 'items',
    (SELECT jsonb_agg(jsonb_build_object('resource_type', 'invoice', 'resource_id', 'invoice_001', 'action', a))
     FROM unnest(ARRAY['approve', 'read', 'delete']) a)))->'results') AS answered \gset
SELECT plystra.audit_writer_stats() AS s2 \gset
SELECT is(((:'s2'::jsonb)#>>'{lanes,bulk,rows_committed}')::bigint
          - ((:'s1'::jsonb)#>>'{lanes,bulk,rows_committed}')::bigint, 3::bigint,
          'a batch of three decisions: three rows committed in the bulk lane');
SELECT is(((:'s2'::jsonb)#>>'{lanes,single,rows_committed}')::bigint
          - ((:'s1'::jsonb)#>>'{lanes,single,rows_committed}')::bigint, 0::bigint, '... none in the single lane');
-- Nothing else queues for this database's writer while this file runs.
SELECT is(ARRAY[(:'s2'::jsonb)#>>'{lanes,single,queued_records}', (:'s2'::jsonb)#>>'{lanes,bulk,queued_records}',
                (:'s2'::jsonb)#>>'{lanes,single,queued_bytes}', (:'s2'::jsonb)#>>'{lanes,bulk,queued_bytes}'],
          ARRAY['0', '0', '0', '0'], 'once the decisions are answered nothing of theirs waits in the queue');

-- Who may read it.
SELECT ok(has_function_privilege('plystra_admin', 'plystra.audit_writer_stats()', 'EXECUTE'),
          'plystra_admin may read the writer''s queue');
SELECT ok(NOT has_function_privilege('plystra_app', 'plystra.audit_writer_stats()', 'EXECUTE')
          AND NOT has_function_privilege('public', 'plystra.audit_writer_stats()', 'EXECUTE'),
          'an application role (plystra_app) and PUBLIC may not');
-- A database the writer does not serve sees that, and not the served database's counters.
DROP DATABASE IF EXISTS t092_other WITH (FORCE);
CREATE DATABASE t092_other;
SELECT format('host=%s port=%s dbname=t092_other user=%s',
              split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_user)
       AS other \gset
SELECT dblink_exec(:'other', 'CREATE EXTENSION plystra');
SELECT is((SELECT s FROM dblink(:'other', 'SELECT plystra.audit_writer_stats()') AS t (s jsonb)),
          '{"active": false, "preloaded": true}'::jsonb,
          'in a database the writer does not serve: not active, and no other database''s counters');
DROP DATABASE t092_other WITH (FORCE);
SELECT * FROM finish();
