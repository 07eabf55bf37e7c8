-- Append-only audit_logs (002, rule 5): UPDATE, DELETE and TRUNCATE fail (42501, audit_logs_append_only) for the
-- table owner, for a non-superuser that holds UPDATE/DELETE/TRUNCATE, for a non-superuser owner, and with
-- session_replication_role = replica. INSERT keeps working.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
SELECT plan(38);

\ir helpers/rejects.sql

-- as_role(role, sql): runs sql as another role (error_of keeps it side-effect free) and returns what happened.
-- pgTAP itself is not called under the other role: its temporary tables belong to the session user.
CREATE FUNCTION pg_temp.as_role(role_name text, sql text) RETURNS jsonb LANGUAGE plpgsql AS $f$
DECLARE
    result jsonb;
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', role_name);
    result := pg_temp.error_of(sql);
    RESET ROLE;
    RETURN result;
END $f$;

INSERT INTO plystra.audit_logs (id, action, decision, deny_code, trace)
    VALUES ('t13_a1', 'invoice.approve', 'deny', 'NO_MATCHING_PERMISSION', '{"trace_version": "1.0"}');
CREATE TEMP TABLE before_snapshot ON COMMIT DROP AS SELECT * FROM plystra.audit_logs;

-- The enforcement is trigger-based and must survive replica mode.
SELECT is((SELECT tgenabled::text FROM pg_trigger WHERE tgrelid = 'plystra.audit_logs'::regclass
            AND tgname = 'trg_audit_logs_append_only'), 'A', 'the row trigger is ENABLE ALWAYS');
SELECT is((SELECT tgenabled::text FROM pg_trigger WHERE tgrelid = 'plystra.audit_logs'::regclass
            AND tgname = 'trg_audit_logs_append_only_truncate'), 'A', 'the TRUNCATE trigger is ENABLE ALWAYS');

-- As the table owner (the superuser that ran the migrations).
SELECT is((SELECT tableowner::text FROM pg_tables WHERE schemaname = 'plystra' AND tablename = 'audit_logs'),
          current_user::text, 'these tests run as the owner of audit_logs');
SELECT lives_ok($$INSERT INTO plystra.audit_logs (id, action, decision, trace)
                 VALUES ('t13_a2', 'invoice.read', 'allow', '{}')$$, 'owner: INSERT works');
SELECT * FROM pg_temp.rejects($$UPDATE plystra.audit_logs SET decision = 'allow' WHERE id = 't13_a1'$$,
                              '42501', 'audit_logs_append_only', 'owner: UPDATE');
SELECT * FROM pg_temp.rejects($$DELETE FROM plystra.audit_logs WHERE id = 't13_a1'$$,
                              '42501', 'audit_logs_append_only', 'owner: DELETE');
SELECT * FROM pg_temp.rejects($$TRUNCATE plystra.audit_logs$$, '42501', 'audit_logs_append_only', 'owner: TRUNCATE');
SELECT * FROM pg_temp.rejects($$DELETE FROM plystra.audit_logs$$, '42501', 'audit_logs_append_only', 'owner: DELETE of all rows');
SELECT throws_ok($$UPDATE plystra.audit_logs SET trace = '{}' WHERE id = 't13_a1'$$, '42501',
                 'plystra: plystra.audit_logs is append-only', 'the message says append-only');

-- With session_replication_role = replica (which skips ordinary triggers and foreign keys).
SET LOCAL session_replication_role = replica;
SELECT is(current_setting('session_replication_role'), 'replica', 'replica mode is on');
SELECT * FROM pg_temp.rejects($$UPDATE plystra.audit_logs SET decision = 'allow' WHERE id = 't13_a1'$$,
                              '42501', 'audit_logs_append_only', 'replica: UPDATE');
SELECT * FROM pg_temp.rejects($$DELETE FROM plystra.audit_logs WHERE id = 't13_a1'$$,
                              '42501', 'audit_logs_append_only', 'replica: DELETE');
SELECT * FROM pg_temp.rejects($$TRUNCATE plystra.audit_logs$$, '42501', 'audit_logs_append_only', 'replica: TRUNCATE');
RESET session_replication_role;

-- As a non-superuser that was granted every privilege on the table.
CREATE ROLE t13_writer NOLOGIN NOSUPERUSER;
GRANT USAGE ON SCHEMA plystra TO t13_writer;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON plystra.audit_logs TO t13_writer;
SELECT is(pg_temp.as_role('t13_writer', $$SELECT 1 FROM plystra.users$$) ->> 'sqlstate', '42501',
          'as_role really switches role (t13_writer may not read plystra.users)');
SELECT is(pg_temp.as_role('t13_writer', $$INSERT INTO plystra.audit_logs (id, action, decision, trace)
                                          VALUES ('t13_w', 'invoice.read', 'allow', '{}')$$) ->> 'sqlstate',
          '00000', 'granted role: INSERT works');
SELECT is(pg_temp.as_role('t13_writer', $$UPDATE plystra.audit_logs SET decision = 'allow' WHERE id = 't13_a1'$$)
            - 'message', '{"sqlstate": "42501", "constraint": "audit_logs_append_only"}'::jsonb,
          'granted role: UPDATE fails');
SELECT is(pg_temp.as_role('t13_writer', $$DELETE FROM plystra.audit_logs WHERE id = 't13_a1'$$) - 'message',
          '{"sqlstate": "42501", "constraint": "audit_logs_append_only"}'::jsonb, 'granted role: DELETE fails');
SELECT is(pg_temp.as_role('t13_writer', $$TRUNCATE plystra.audit_logs$$) - 'message',
          '{"sqlstate": "42501", "constraint": "audit_logs_append_only"}'::jsonb, 'granted role: TRUNCATE fails');
SELECT is(pg_temp.as_role('t13_writer', $$UPDATE plystra.audit_logs SET decision = 'allow' WHERE id = 't13_a1'$$)
            ->> 'message', 'plystra: plystra.audit_logs is append-only', 'granted role: the message says append-only');
SELECT is(pg_temp.as_role('t13_writer', $$SET session_replication_role = replica$$) ->> 'sqlstate',
          '42501', 'a non-superuser cannot switch to replica mode at all');

-- As a non-superuser that owns the table.
CREATE ROLE t13_owner NOLOGIN NOSUPERUSER;
GRANT USAGE ON SCHEMA plystra TO t13_owner;
ALTER TABLE plystra.audit_logs OWNER TO t13_owner;
SELECT is(pg_temp.as_role('t13_owner', $$UPDATE plystra.audit_logs SET decision = 'allow' WHERE id = 't13_a1'$$)
            - 'message', '{"sqlstate": "42501", "constraint": "audit_logs_append_only"}'::jsonb,
          'non-superuser owner: UPDATE fails');
SELECT is(pg_temp.as_role('t13_owner', $$DELETE FROM plystra.audit_logs WHERE id = 't13_a1'$$) - 'message',
          '{"sqlstate": "42501", "constraint": "audit_logs_append_only"}'::jsonb, 'non-superuser owner: DELETE fails');
SELECT is(pg_temp.as_role('t13_owner', $$TRUNCATE plystra.audit_logs$$) - 'message',
          '{"sqlstate": "42501", "constraint": "audit_logs_append_only"}'::jsonb, 'non-superuser owner: TRUNCATE fails');
ALTER TABLE plystra.audit_logs OWNER TO CURRENT_USER;

-- Nothing that existed before was changed or removed.
SELECT set_eq($$SELECT id, seq, trace, decision, created_at FROM before_snapshot$$,
              $$SELECT id, seq, trace, decision, created_at FROM plystra.audit_logs WHERE id IN (SELECT id FROM before_snapshot)$$,
              'every audit row is unchanged');

SELECT * FROM finish();
ROLLBACK;
