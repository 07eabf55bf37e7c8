-- The audit writer (a background worker): a decision's row survives the caller's rollback, is durable before
-- the decision returns, is sealed into its Space's hash chain, and N concurrent decisions leave exactly N rows.
-- Needs the cluster started with shared_preload_libraries = 'plystra' and plystra.audit_writer_database set to
-- this database (scripts/test does both).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS dblink;
BEGIN;
SELECT plan(23);
-- Audit rows outlive this test's ROLLBACK (that is the point), so this run's request ids are unique.
CREATE TEMP TABLE run AS SELECT 'req_' || substr(md5(random()::text || clock_timestamp()::text), 1, 10) || '_' AS p;
CREATE FUNCTION pg_temp.rid(name text) RETURNS text LANGUAGE sql AS $$ SELECT (SELECT p FROM run) || name $$;

CREATE FUNCTION pg_temp.req(res text, request_id text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('actor', jsonb_build_object('user_id', 'user_alice', 'member_id', 'member_finance_reviewer',
                                                          'user_member_id', 'um_alice_finance_reviewer', 'space_id', 'space_acme'),
                              'resource_type', 'invoice', 'resource_id', res, 'action', 'approve',
                              'request', jsonb_build_object('request_id', request_id))
$$;
CREATE FUNCTION pg_temp.connstr() RETURNS text LANGUAGE sql AS $$
    SELECT format('host=%s port=%s dbname=%s user=%s', split_part(current_setting('unix_socket_directories'), ',', 1),
                  current_setting('port'), current_database(), current_user)
$$;

\ir helpers/await_audit_writer.sql

-- A decision over a resource with 600 kB of tenant metadata: its trace is bounded, so its row still goes through
-- the writer and survives the rollback (it used to be written in the caller's transaction and vanish).
SAVEPOINT big;
INSERT INTO plystra.resources (id, space_id, resource_type, group_id, metadata)
VALUES ('invoice_t040_big', 'space_acme', 'invoice', 'group_finance_apac', jsonb_build_object('blob', repeat('A', 600000)));
SELECT plystra.check(pg_temp.req('invoice_t040_big', pg_temp.rid('big')));
ROLLBACK TO SAVEPOINT big;
SELECT is((SELECT count(*) FROM plystra.audit_logs WHERE request_id = pg_temp.rid('big')), 1::bigint,
          'a decision over 600 kB of metadata keeps its row after the caller''s rollback');
SELECT cmp_ok((SELECT octet_length(trace::text) FROM plystra.audit_logs WHERE request_id = pg_temp.rid('big')), '<', 65536,
              'and its trace is bounded (the metadata is replaced by a note of its size)');

-- Rollback: the caller's transaction is undone, its decision's row is not.
SAVEPOINT s;
CREATE TEMP TABLE rolled_back AS SELECT plystra.check(pg_temp.req('invoice_001', pg_temp.rid('rollback')))->>'audit_log_id' AS id;
CREATE TEMP TABLE rolled_back_id AS SELECT id FROM rolled_back;
ROLLBACK TO SAVEPOINT s;
SELECT is((SELECT count(*) FROM plystra.audit_logs WHERE request_id = pg_temp.rid('rollback')), 1::bigint,
          'a decision''s audit row survives the rollback of the transaction that asked');
SELECT is((SELECT count(*) FROM dblink(pg_temp.connstr(), format('SELECT id FROM plystra.audit_logs WHERE request_id = %L', pg_temp.rid('rollback')))
           AS t(id text)), 1::bigint, 'another session sees it: it was committed before the decision returned');

-- Sealed as written: a chain position, the previous hash, and a hash that verifies.
SELECT ok((SELECT row_hash IS NOT NULL AND chain_position IS NOT NULL AND row_hash = plystra.audit_row_hash(a, chain_position, prev_hash)
           FROM plystra.audit_logs a WHERE request_id = pg_temp.rid('rollback')), 'the writer seals the row into its Space''s chain');

-- A read-only transaction can still decide: the writer records it.
SAVEPOINT s;
SET LOCAL transaction_read_only = on;
SELECT is(plystra.check(pg_temp.req('invoice_002', pg_temp.rid('read_only')))->>'deny_code', 'SCOPE_OUT_OF_BOUNDS',
          'plystra.check works in a read-only transaction');
ROLLBACK TO SAVEPOINT s;
SELECT is((SELECT count(*) FROM plystra.audit_logs WHERE request_id = pg_temp.rid('read_only')), 1::bigint, '... and its row is there');

-- N concurrent decisions from 4 sessions leave exactly N rows.
SELECT dblink_connect('c' || i, pg_temp.connstr()) FROM generate_series(1, 4) AS i;
SELECT dblink_send_query('c' || i, format($$SELECT count(plystra.check(jsonb_build_object(
        'actor', jsonb_build_object('user_id', 'user_bob', 'member_id', 'member_finance_reviewer',
                                    'user_member_id', 'um_bob_finance_reviewer', 'space_id', 'space_acme'),
        'resource_type', 'invoice', 'resource_id', CASE WHEN n %% 2 = 0 THEN 'invoice_001' ELSE 'invoice_002' END,
        'action', 'approve', 'request', jsonb_build_object('request_id', %L || n))))
    FROM generate_series(1, 50) AS n$$, pg_temp.rid('concurrent_' || i || '_'))) FROM generate_series(1, 4) AS i;
SELECT is((SELECT sum(n) FROM generate_series(1, 4) AS i, dblink_get_result('c' || i) AS t(n bigint)), 200::numeric,
          'four sessions made 200 decisions');
SELECT dblink_disconnect('c' || i) FROM generate_series(1, 4) AS i;
SELECT is((SELECT count(*) FROM plystra.audit_logs WHERE starts_with(request_id, pg_temp.rid('concurrent_'))), 200::bigint,
          '200 concurrent decisions left exactly 200 rows');
SELECT is((SELECT count(DISTINCT chain_position) FROM plystra.audit_logs WHERE starts_with(request_id, pg_temp.rid('concurrent_'))), 200::bigint,
          'each has its own link in the chain');

-- Rows written by ordinary transactions (management mutations) are sealed within about a second of commit.
-- (its own root group, committed: nothing else in the shared test database may depend on it)
SELECT dblink_exec(pg_temp.connstr(), $$INSERT INTO plystra.groups (id, space_id, name, path)
    VALUES ('group_seal_' || md5(random()::text), 'space_acme', 'Seal', 'seal_' || substr(md5(random()::text), 1, 12))$$);
SELECT pg_sleep(2.5);
SELECT is((SELECT count(*) FROM plystra.audit_logs WHERE action = 'group.created' AND row_hash IS NULL
           AND created_at < now() - interval '2 seconds'), 0::bigint, 'committed management rows are sealed by the writer');
SELECT is((SELECT count(*) FROM plystra.verify_audit_chain() WHERE broken_at_position IS NOT NULL), 0::bigint,
          'every chain verifies');

-- Decisions never wait on sealing: while this session holds the chains, a decision still returns at once,
-- its row goes in unsealed, and it is sealed within about a second once the chains are free.
SAVEPOINT s;
SELECT 1 FROM plystra.audit_sealer FOR UPDATE;  -- the sealers' lock (a row only the owner may lock)
CREATE TEMP TABLE busy_started AS SELECT clock_timestamp() AS t;
SELECT is(plystra.check(pg_temp.req('invoice_001', pg_temp.rid('chain_busy')))->>'decision', 'allow',
          'a decision returns while the chains are held');
SELECT ok((SELECT clock_timestamp() - t < interval '5 seconds' FROM busy_started), '... at once, not after a timeout');
SELECT row_hash IS NULL AS busy_unsealed FROM plystra.audit_logs WHERE request_id = pg_temp.rid('chain_busy') \gset
ROLLBACK TO SAVEPOINT s;
SELECT ok(:'busy_unsealed'::boolean, '... and its row went in unsealed');
SELECT pg_sleep(2.5);
SELECT ok((SELECT row_hash IS NOT NULL FROM plystra.audit_logs WHERE request_id = pg_temp.rid('chain_busy')),
          'it is sealed once the chains are free');

-- Four sessions each ask for a batch of 1,000 decisions at once: their audit records (about 4 kB each) are four times
-- the writer's 4 MiB buffer, so backends find it full and wait for the writer to free space (they are woken when
-- it drains); every decision is still answered, and has its row.
CREATE FUNCTION pg_temp.big_batch(request_id text) RETURNS text LANGUAGE sql AS $$
    SELECT format('SELECT jsonb_array_length(plystra.check_batch(%L::jsonb)->''results'')',
                  jsonb_build_object('actor', jsonb_build_object('user_id', 'user_alice', 'member_id', 'member_finance_reviewer',
                                                                 'user_member_id', 'um_alice_finance_reviewer', 'space_id', 'space_acme'),
                                     'items', (SELECT jsonb_agg(jsonb_build_object('resource_type', 'invoice', 'resource_id', 'invoice_001',
                                                                                   'action', 'approve'))
                                               FROM generate_series(1, 1000)),
                                     'request', jsonb_build_object('request_id', request_id)))
$$;
SELECT count(dblink_connect('t040_full_' || i, pg_temp.connstr())) FROM generate_series(1, 4) i;
SELECT count(dblink_send_query('t040_full_' || i, pg_temp.big_batch(pg_temp.rid('full_' || i)))) FROM generate_series(1, 4) i;
SELECT is((SELECT sum(n) FROM generate_series(1, 4) i, dblink_get_result('t040_full_' || i) AS t(n int)), 4000::bigint,
          'four concurrent batches of 1,000 decisions, four times the writer''s buffer, are all answered');
SELECT count(dblink_disconnect('t040_full_' || i)) FROM generate_series(1, 4) i;
SELECT is((SELECT count(*) FROM plystra.audit_logs WHERE starts_with(request_id, pg_temp.rid('full_'))), 4000::bigint,
          '... and each decision has its row');

-- Forgery behind the triggers' back is found: a superuser edits and deletes sealed rows.
SAVEPOINT s;
ALTER TABLE plystra.audit_logs DISABLE TRIGGER USER;
UPDATE plystra.audit_logs SET decision = 'allow', deny_code = NULL WHERE request_id = pg_temp.rid('read_only');
SELECT is((SELECT problem FROM plystra.verify_audit_chain('space_acme')),
          'the row''s content does not match its hash (it was changed)', 'an edited row breaks the chain');
SELECT is((SELECT broken_audit_id FROM plystra.verify_audit_chain('space_acme')),
          (SELECT id FROM plystra.audit_logs WHERE request_id = pg_temp.rid('read_only')), '... at that row');
ROLLBACK TO SAVEPOINT s;
SAVEPOINT s;
ALTER TABLE plystra.audit_logs DISABLE TRIGGER USER;
DELETE FROM plystra.audit_logs WHERE request_id = pg_temp.rid('rollback');
SELECT matches((SELECT problem FROM plystra.verify_audit_chain('space_acme')), 'missing|cut short',
               'a deleted row breaks the chain');
ROLLBACK TO SAVEPOINT s;
SELECT is((SELECT count(*) FROM plystra.verify_audit_chain() WHERE broken_at_position IS NOT NULL), 0::bigint,
          'undone, every chain verifies again');

SELECT * FROM finish();
ROLLBACK;
