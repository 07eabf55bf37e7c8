-- The audit log's keys (migration 012): plystra.audit_log_keys keeps id, seq and a Space's chain position unique
-- across every partition of plystra.audit_logs, follows sealing, keeps the keys of rows that move out of the
-- DEFAULT partition, is append-only for every role, and no application or administration role may touch it.
-- (Two sessions at once, archives, drops and restores: tests/retention_check.sh and tests/backup_check.sh.)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
SELECT plan(41);

\ir helpers/rejects.sql

CREATE FUNCTION pg_temp.as_role(role_name text, sql text) RETURNS jsonb LANGUAGE plpgsql AS $f$
DECLARE
    result jsonb;
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', role_name);
    result := pg_temp.error_of(sql);
    RESET ROLE;
    RETURN result;
END $f$;
CREATE FUNCTION pg_temp.key_of(audit_id text) RETURNS text LANGUAGE sql AS $f$
    SELECT k.seq || '/' || k.space_key || '/' || coalesce(k.chain_position::text, 'NULL')
    FROM plystra.audit_log_keys k WHERE k.id = audit_id
$f$;

-- The machinery.
SELECT has_table('plystra', 'audit_log_keys', 'plystra.audit_log_keys exists');
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgname LIKE 'trg_audit_logs_unique%'), 0,
          'the statement triggers that probed every partition are gone');
SELECT is(plystra.create_audit_partition('2031-01-01'), 'audit_logs_2031_01', 'a monthly partition is made');
SELECT is((SELECT count(*)::int FROM plystra.audit_partitions() p
           WHERE (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = ('plystra.' || p.partition_name)::regclass
                    AND t.tgname IN ('trg_audit_log_keys_insert', 'trg_audit_log_keys_seal') AND t.tgenabled = 'A') <> 2), 0,
          'every partition (a new one and the DEFAULT one too) carries both key triggers, enabled ALWAYS');
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'plystra.audit_log_keys'::regclass
           AND tgname LIKE 'trg_audit_log_keys_append_only%' AND tgenabled = 'A'), 2,
          'the key table''s append-only triggers are enabled ALWAYS');
SELECT is((SELECT count(*)::int FROM plystra.audit_logs a WHERE NOT EXISTS (
               SELECT 1 FROM plystra.audit_log_keys k WHERE k.id = a.id AND k.seq = a.seq
                 AND k.space_key = coalesce(a.space_id, '') AND k.chain_position IS NOT DISTINCT FROM a.chain_position)),
          0, 'every row of the log has its key');

-- Duplicates across two partitions (2031-01 and the DEFAULT one).
INSERT INTO plystra.audit_logs (id, space_id, action, decision, trace, created_at, chain_position, prev_hash, row_hash)
VALUES ('t69_a', 't69_dup', 'x', 'allow', '{}', '2031-01-15', 1, '', 'x');
SELECT is(pg_temp.key_of('t69_a'), (SELECT seq FROM plystra.audit_logs WHERE id = 't69_a') || '/t69_dup/1',
          'an insert records the row''s key (seq, Space, chain position)');
SELECT throws_ok($$INSERT INTO plystra.audit_logs (id, action, decision, trace, created_at)
                   VALUES ('t69_a', 'x', 'allow', '{}', '2099-01-01')$$, '23505', NULL,
                 'an id held in another partition is refused');
SELECT is(pg_temp.error_of($$INSERT INTO plystra.audit_logs (id, action, decision, trace, created_at)
                             VALUES ('t69_a', 'x', 'allow', '{}', '2099-01-01')$$) ->> 'constraint',
          'audit_logs_id_key', '... naming audit_logs_id_key');
SELECT is(pg_temp.error_of(format($$INSERT INTO plystra.audit_logs (id, seq, action, decision, trace, created_at)
                                    OVERRIDING SYSTEM VALUE VALUES ('t69_b', %s, 'x', 'allow', '{}', '2099-01-01')$$,
                                  (SELECT seq FROM plystra.audit_logs WHERE id = 't69_a'))) - 'message',
          '{"sqlstate": "23505", "constraint": "audit_logs_seq_key"}', 'a seq held in another partition is refused');
SELECT is(pg_temp.error_of($$INSERT INTO plystra.audit_logs (id, space_id, action, decision, trace, created_at,
                                                             chain_position, prev_hash, row_hash)
                             VALUES ('t69_c', 't69_dup', 'x', 'allow', '{}', '2099-01-01', 1, '', 'x')$$) - 'message',
          '{"sqlstate": "23505", "constraint": "audit_logs_chain_position_key"}',
          'a Space''s chain position held in another partition is refused');
SELECT is(pg_temp.error_of($$INSERT INTO plystra.audit_logs (id, space_id, action, decision, trace, created_at,
                                                             chain_position, prev_hash, row_hash)
                             VALUES ('t69_c', 't69_other', 'x', 'allow', '{}', '2099-01-01', 1, '', 'x')$$) ->> 'sqlstate',
          '00000', 'the same chain position in another Space is fine');
SELECT is(pg_temp.error_of($$INSERT INTO plystra.audit_logs (id, action, decision, trace, created_at)
                             VALUES ('t69_d', 'x', 'allow', '{}', '2031-01-16'), ('t69_d', 'x', 'allow', '{}', '2099-01-02')$$)
            ->> 'constraint', 'audit_logs_id_key', 'one statement putting an id into two partitions is refused');

-- Sealing gives the key its chain position; a row written with the triggers off gets its key then.
INSERT INTO plystra.audit_logs (id, space_id, action, decision, trace, created_at)
VALUES ('t69_u', 't69_space', 'x', 'allow', '{}', '2031-01-17');
SELECT is(pg_temp.key_of('t69_u'), (SELECT seq FROM plystra.audit_logs WHERE id = 't69_u') || '/t69_space/NULL',
          'an unsealed row''s key has no chain position yet');
ALTER TABLE plystra.audit_logs DISABLE TRIGGER trg_audit_log_keys_insert;
INSERT INTO plystra.audit_logs (id, space_id, action, decision, trace, created_at)
VALUES ('t69_v', 't69_space', 'x', 'allow', '{}', '2031-01-18');
ALTER TABLE plystra.audit_logs ENABLE ALWAYS TRIGGER trg_audit_log_keys_insert;
SELECT is(pg_temp.key_of('t69_v'), NULL, 'a row written with the key trigger off has no key');
SELECT cmp_ok(plystra.seal_audit(), '>=', 2, 'sealing seals both');
SELECT is(pg_temp.key_of('t69_u'), (SELECT seq || '/t69_space/' || chain_position FROM plystra.audit_logs WHERE id = 't69_u'),
          'sealing gives the key its chain position');
SELECT is(pg_temp.key_of('t69_v'), (SELECT seq || '/t69_space/' || chain_position FROM plystra.audit_logs WHERE id = 't69_v'),
          'sealing gives a row without a key its key');
SELECT is(pg_temp.error_of($$UPDATE plystra.audit_log_keys SET chain_position = chain_position + 100 WHERE id = 't69_u'$$) - 'message',
          '{"sqlstate": "42501", "constraint": "audit_log_keys_append_only"}', 'a sealed key''s position does not change');

-- plystra.restore_audit_log_keys() makes missing keys (after a restore with --disable-triggers), and only those.
ALTER TABLE plystra.audit_logs DISABLE TRIGGER trg_audit_log_keys_insert;
INSERT INTO plystra.audit_logs (id, action, decision, trace, created_at) VALUES ('t69_w', 'x', 'allow', '{}', '2031-01-19');
INSERT INTO plystra.audit_logs (id, action, decision, trace, created_at) VALUES ('t69_a', 'x', 'allow', '{}', '2099-01-03');
ALTER TABLE plystra.audit_logs ENABLE ALWAYS TRIGGER trg_audit_log_keys_insert;
SELECT is(pg_temp.error_of($$SELECT plystra.restore_audit_log_keys()$$) - 'message',
          '{"sqlstate": "23505", "constraint": "audit_logs_id_key"}',
          'restore_audit_log_keys refuses a key another row holds (a duplicate loaded with the triggers off)');
ALTER TABLE plystra.audit_logs_default DISABLE TRIGGER trg_audit_logs_append_only;
DELETE FROM plystra.audit_logs_default WHERE id = 't69_a';
ALTER TABLE plystra.audit_logs_default ENABLE ALWAYS TRIGGER trg_audit_logs_append_only;
SELECT is(plystra.restore_audit_log_keys(), 1::bigint, 'restore_audit_log_keys makes the one missing key');
SELECT is(pg_temp.key_of('t69_w'), (SELECT seq || '//NULL' FROM plystra.audit_logs WHERE id = 't69_w'), '... the right one');
SELECT is(plystra.restore_audit_log_keys(), 0::bigint, 'and nothing the second time');

-- Rows that move out of the DEFAULT partition into their new month keep their keys.
INSERT INTO plystra.audit_logs (id, space_id, action, decision, trace, created_at)
VALUES ('t69_m', 't69_space', 'x', 'allow', '{}', '2032-03-05');
SELECT cmp_ok(plystra.seal_audit(), '>=', 1, 'the row in the DEFAULT partition is sealed');
CREATE TEMP TABLE t69_key_before ON COMMIT DROP AS SELECT * FROM plystra.audit_log_keys WHERE id = 't69_m';
SELECT is(plystra.create_audit_partition('2032-03-01'), 'audit_logs_2032_03', 'the month''s partition is made');
SELECT is((SELECT tableoid::regclass::text FROM plystra.audit_logs WHERE id = 't69_m'), 'plystra.audit_logs_2032_03',
          'the row moved into it');
SELECT is((SELECT row_to_json(k)::text FROM plystra.audit_log_keys k WHERE id = 't69_m'),
          (SELECT row_to_json(k)::text FROM t69_key_before k), 'its key is unchanged');
SELECT is((SELECT string_agg(tgname || '=' || tgenabled::text, ' ' ORDER BY tgname) FROM pg_trigger
           WHERE tgrelid = 'plystra.audit_logs_2032_03'::regclass AND tgname LIKE 'trg_audit_log_keys%'),
          'trg_audit_log_keys_insert=A trg_audit_log_keys_seal=A', 'the new partition''s key triggers are on (ALWAYS)');
SELECT is(pg_temp.error_of($$INSERT INTO plystra.audit_logs (id, action, decision, trace) VALUES ('t69_m', 'x', 'allow', '{}')$$)
            ->> 'constraint', 'audit_logs_id_key', 'the moved row''s id is still taken');

-- Append-only, for the owner too, and in replica mode.
SELECT * FROM pg_temp.rejects($$DELETE FROM plystra.audit_log_keys WHERE id = 't69_a'$$, '42501',
                              'audit_log_keys_append_only', 'owner: DELETE of a key');
SELECT is(pg_temp.error_of($$UPDATE plystra.audit_log_keys SET id = 't69_z' WHERE id = 't69_a'$$) ->> 'constraint',
          'audit_log_keys_append_only', 'owner: UPDATE of an id');
SELECT is(pg_temp.error_of($$TRUNCATE plystra.audit_log_keys$$) ->> 'constraint', 'audit_log_keys_append_only',
          'owner: TRUNCATE');
SET LOCAL session_replication_role = replica;
SELECT is(pg_temp.error_of($$DELETE FROM plystra.audit_log_keys WHERE id = 't69_a'$$) ->> 'constraint',
          'audit_log_keys_append_only', 'replica mode: DELETE of a key');
RESET session_replication_role;

-- Nobody but the owner: no privilege on the table or the repair function; a role that may insert into the log
-- gets its rows' keys written (SECURITY DEFINER) but cannot write keys itself.
SELECT is((SELECT count(*)::int FROM pg_class c, aclexplode(c.relacl) a
           WHERE c.oid = 'plystra.audit_log_keys'::regclass AND a.grantee <> c.relowner), 0,
          'no role but the owner holds a privilege on plystra.audit_log_keys');
SELECT ok(NOT has_function_privilege('plystra_admin', 'plystra.restore_audit_log_keys()', 'EXECUTE')
          AND NOT has_function_privilege('plystra_app', 'plystra.restore_audit_log_keys()', 'EXECUTE'),
          'neither plystra_app nor plystra_admin may call restore_audit_log_keys');
CREATE ROLE t69_writer NOLOGIN NOSUPERUSER;
GRANT USAGE ON SCHEMA plystra TO t69_writer;
GRANT INSERT ON plystra.audit_logs TO t69_writer;
SELECT is(pg_temp.as_role('t69_writer', $$INSERT INTO plystra.audit_logs (id, action, decision, trace)
                                          VALUES ('t69_by_writer', 'x', 'allow', '{}')$$) ->> 'sqlstate', '00000',
          'a role that may insert into the log inserts (its key is written for it; rolled back)');
SELECT is(pg_temp.as_role('t69_writer', $$INSERT INTO plystra.audit_log_keys VALUES ('t69_forged', 999999999, '', NULL)$$)
            ->> 'sqlstate', '42501', '... but cannot write a key itself');
SELECT is(pg_temp.as_role('plystra_admin', $$SELECT count(*) FROM plystra.audit_log_keys$$) ->> 'sqlstate', '42501',
          'plystra_admin cannot read the keys');
SELECT is(pg_temp.as_role('plystra_admin', $$DELETE FROM plystra.audit_log_keys$$) ->> 'sqlstate', '42501',
          'plystra_admin cannot delete keys');

SELECT * FROM finish();
ROLLBACK;
