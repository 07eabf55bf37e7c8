-- The trust model in the database (006): who may call what, the credential on every management audit row,
-- authentication events, the last super admin, API keys made by API keys, and the restore guard.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
SELECT plan(44);

\ir helpers/sqlstate_as.sql

------------------------------------------------------------------------------------------------------------------
-- Privileges (F12): PUBLIC may execute nothing; the roles get exactly their documented sets.
------------------------------------------------------------------------------------------------------------------

SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    WHERE p.pronamespace = 'plystra'::regnamespace AND has_function_privilege('public', p.oid, 'EXECUTE')$$,
    'no function of schema plystra is executable by PUBLIC');

SELECT set_eq($$
    SELECT p.oid::regprocedure::text FROM pg_proc p, aclexplode(p.proacl) a
    WHERE p.pronamespace = 'plystra'::regnamespace AND a.grantee = 'plystra_app'::regrole AND a.privilege_type = 'EXECUTE'$$,
    ARRAY['plystra."check"(jsonb)', 'plystra.check_batch(jsonb)', 'plystra.allowed(text,text,text,text,text,text,text)',
          'plystra.set_actor(text,text,text,text)', 'plystra.set_request_context(text,text,text)',
          'plystra.set_audit_space(text)', 'plystra.current_actor()', 'plystra.actor_space_id()', 'plystra.reaches_space(text,text)',
          'plystra.reachable_space(text,text)', 'plystra.reachable_owner(text,text)',
          'plystra.reachable_groups(text,text)', 'plystra.reachable_group_ids(text,text)',
          'plystra.lookup_resources(text,text)', 'plystra.allowed_resource(text,text,text)',
          'plystra.allowed_row(text,text,text,text,text)', 'plystra.allowed_row_by_path(text,text,text,text,text)',
          'plystra.sensitive_key(text)', 'plystra.redact_sensitive(jsonb)', 'plystra.audit_writer_active()',
          'plystra.bundled_migrations()'],
    'plystra_app may execute exactly the decision, acting-context and row-level-security functions');

SELECT set_eq($$
    SELECT p.oid::regprocedure::text FROM pg_proc p, aclexplode(p.proacl) a
    WHERE p.pronamespace = 'plystra'::regnamespace AND a.grantee = 'plystra_admin'::regrole AND a.privilege_type = 'EXECUTE'$$,
    ARRAY['plystra.explain(jsonb)', 'plystra.decide_request(text,boolean)',
          'plystra.admin_permission(text,text,text,text)', 'plystra.api_key_permission(text,text,text,text)',
          'plystra.authenticate(jsonb)', 'plystra.decide_with_credential(jsonb,text,jsonb,boolean,boolean)',
          'plystra.lookup_subjects(text,text,text,text,integer)',
          'plystra.resolve_actor(text,text)',
          'plystra.replay(text,boolean)',
          'plystra.simulate(jsonb)',
          'plystra.set_credential(text,text,text,text,boolean)', 'plystra.current_credential()',
          'plystra.audit_auth_event(text,text,text,text,jsonb)', 'plystra.verify_audit_chain(text)',
          'plystra.audit_row_hash(plystra.audit_logs,bigint,text)',
          'plystra.audit_hash_input(plystra.audit_logs,bigint,text)', 'plystra.audit_partitions()',
          'plystra.audit_writer_stats()'],
    'plystra_admin may execute exactly its administration functions (and, as a member, plystra_app''s)');

SELECT ok(pg_has_role('plystra_admin', 'plystra_app', 'MEMBER'), 'plystra_admin is a member of plystra_app');
SELECT is_empty($$
    SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'plystra'::regnamespace AND c.relkind IN ('r', 'S', 'v')
      AND (has_table_privilege('plystra_app', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
           OR has_table_privilege('public', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE'))$$,
    'neither PUBLIC nor plystra_app holds any privilege on a table');
SELECT is_empty($$
    SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'plystra'::regnamespace AND c.relkind = 'r'
      AND (has_table_privilege('plystra_admin', c.oid, 'DELETE, TRUNCATE') AND c.relname <> 'login_failures'
           OR c.relname IN ('audit_logs', 'audit_chain_heads', 'audit_sealer', 'schema_migrations')
              AND has_table_privilege('plystra_admin', c.oid, 'INSERT, UPDATE'))$$,
    'plystra_admin deletes no Core row and writes the audit log, its heads, the sealer and the ledger only through the extension');

-- The two views that state the rules "usable binding" and "active admin grant" once (008): plystra_admin reads
-- them and writes neither; an application role reads neither.
SELECT is(ARRAY(SELECT c.relname::text FROM pg_class c
                 WHERE c.relnamespace = 'plystra'::regnamespace AND c.relkind IN ('v', 'm') ORDER BY 1),
          ARRAY['active_admin_grants', 'usable_bindings'], 'the schema''s views are exactly the two rule views');
SELECT ok(bool_and(has_table_privilege('plystra_admin', v, 'SELECT')
                   AND NOT has_table_privilege('plystra_admin', v, 'INSERT, UPDATE, DELETE, TRUNCATE')),
          'plystra_admin reads usable_bindings and active_admin_grants and writes neither')
  FROM unnest(ARRAY['plystra.usable_bindings', 'plystra.active_admin_grants']) v;

-- A role with USAGE on the schema and nothing else (what the RLS example used to grant) reads nothing.
CREATE ROLE t40_usage_only NOLOGIN;
GRANT USAGE ON SCHEMA plystra TO t40_usage_only;
CREATE ROLE t40_app NOLOGIN;
GRANT plystra_app TO t40_app;

SELECT is(pg_temp.sqlstate_as('t40_usage_only', $$SELECT plystra.explain('{"actor": {"user_id": "user_alice",
    "member_id": "member_finance_reviewer", "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
    "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"}')$$), '42501',
    'schema USAGE alone: explain (e-mails, statuses, grants of any actor) is refused');
SELECT is(pg_temp.sqlstate_as('t40_usage_only', $$SELECT plystra.admin_permission('user_alice', '*', NULL, NULL)$$),
    '42501', 'schema USAGE alone: admin_permission (who holds which admin grant) is refused');
SELECT is(pg_temp.sqlstate_as('t40_usage_only', $$SELECT plystra.api_key_permission('ak_x', 'authz:check', NULL, NULL)$$),
    '42501', 'schema USAGE alone: api_key_permission is refused');
SELECT is(pg_temp.sqlstate_as('t40_usage_only',
    $$SELECT plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme')$$),
    '42501', 'schema USAGE alone: set_actor is refused');
SELECT is(pg_temp.sqlstate_as('t40_usage_only', $$SELECT plystra.lookup_resources('invoice', 'read')$$), '42501',
    'schema USAGE alone: lookup_resources is refused');

SELECT is(pg_temp.sqlstate_as('t40_app', $$SELECT plystra.check('{"actor": {"user_id": "user_alice",
    "member_id": "member_finance_reviewer", "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
    "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"}')$$), '00000',
    'plystra_app: check works');
SELECT is(pg_temp.sqlstate_as('t40_app', $$SELECT plystra.allowed('user_alice', 'member_finance_reviewer',
    'um_alice_finance_reviewer', 'space_acme', 'invoice', 'invoice_001', 'approve')$$), '00000',
    'plystra_app: allowed works');
SELECT is(pg_temp.sqlstate_as('t40_app', $$SELECT plystra.explain('{"actor": {"user_id": "user_alice",
    "member_id": "member_finance_reviewer", "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
    "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"}')$$), '42501',
    'plystra_app: explain is refused (full traces are for administration)');
SELECT is(pg_temp.sqlstate_as('t40_app', $$SELECT count(*) FROM plystra.usable_bindings, plystra.active_admin_grants$$), '42501',
          'an application role reads neither rule view (who holds which binding or admin grant)');
SELECT is(pg_temp.sqlstate_as('t40_app', $$SELECT plystra.decide_request('{}', true)$$), '42501',
    'plystra_app: decide_request (explain by another name) is refused');
SELECT is(pg_temp.sqlstate_as('t40_app', $$SELECT plystra.set_credential('session', 'user_alice', 's', NULL, false)$$),
    '42501', 'plystra_app: set_credential is refused (only an administration backend names the credential)');
SELECT is(pg_temp.sqlstate_as('t40_app', $$SELECT plystra.audit_auth_event('auth.login_succeeded', 'user_alice', NULL, 'allow', '{}')$$),
    '42501', 'plystra_app: audit_auth_event is refused');
SELECT is(pg_temp.sqlstate_as('t40_app', $$SELECT plystra.admin_permission('user_alice', '*', NULL, NULL)$$), '42501',
    'plystra_app: admin_permission is refused');
SELECT is(pg_temp.sqlstate_as('t40_app', $$SELECT plystra.tg_audit_mutation()$$), '42501',
    'plystra_app: trigger and internal functions are refused');
SELECT is(pg_temp.sqlstate_as('t40_app', $$SELECT * FROM plystra.audit_sealer FOR UPDATE$$), '42501',
    'plystra_app: the sealer''s lock cannot be taken');

-- The acting context, request context and credential are SUSET settings: set_config cannot do what the setters
-- (and their EXECUTE grants) decide.
SELECT is(pg_temp.sqlstate_as('t40_usage_only', $$SELECT set_config('plystra.actor_user_id', 'user_alice', true)$$),
    '42501', 'without set_actor, set_config cannot name the acting user either');
SELECT is(pg_temp.sqlstate_as('t40_app', $$SELECT set_config('plystra.credential_user_id', 'user_alice', true)$$),
    '42501', 'plystra_app cannot forge the credential with set_config');
SELECT is(pg_temp.sqlstate_as('t40_app', $$SELECT set_config('plystra.request_ip', '10.9.9.9', true)$$),
    '42501', 'nor the request context');
SELECT is(pg_temp.sqlstate_as('t40_app', $q$DO $d$ BEGIN
    PERFORM plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme');
    IF plystra.current_actor() ->> 'user_id' IS DISTINCT FROM 'user_alice' THEN RAISE EXCEPTION 'not set'; END IF;
    IF plystra.actor_space_id() IS DISTINCT FROM 'space_acme' THEN RAISE EXCEPTION 'not usable'; END IF;
END $d$$q$), '00000', 'plystra_app sets the actor through set_actor, and the RLS helpers see it');
SELECT plystra.set_actor(NULL, NULL, NULL, NULL);
SELECT is(pg_temp.sqlstate_as('t40_usage_only', $$SET LOCAL plystra.actor_space_id = 'space_acme'$$), '42501',
    'SET LOCAL is refused as well');

------------------------------------------------------------------------------------------------------------------
-- The credential on management audit rows (F2) and authentication events (F14).
------------------------------------------------------------------------------------------------------------------

SELECT plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme');
SELECT plystra.set_credential('api_key', 'user_bob', NULL, 'ak_t40', true);
SELECT plystra.set_request_context('req-t40', '198.51.100.4', 'pgtap/040');
SELECT set_config('plystra.server_request_id', 'req_server_t40', true);
INSERT INTO plystra.groups (id, space_id, name, path) VALUES ('group_t40', 'space_acme', 'T40', 't40');
SELECT is((SELECT trace -> 'credential' FROM plystra.audit_logs WHERE resource_id = 'group_t40' AND action = 'group.created'),
    '{"type": "api_key", "user_id": "user_bob", "session_id": null, "api_key_id": "ak_t40", "actor_claimed": true}'::jsonb,
    'a management audit row records the credential beside the (claimed) actor');
SELECT is((SELECT actor_user_id FROM plystra.audit_logs WHERE resource_id = 'group_t40' AND action = 'group.created'),
    'user_alice', 'and the acting context as set');
SELECT is((SELECT trace -> 'request' FROM plystra.audit_logs WHERE resource_id = 'group_t40' AND action = 'group.created'),
    '{"request_id": "req-t40", "ip": "198.51.100.4", "user_agent": "pgtap/040", "server_request_id": "req_server_t40"}'::jsonb,
    'the request: the caller''s id and the server''s own id beside it');
SELECT throws_ok($$SELECT plystra.set_credential('root', 'u', NULL, NULL, false)$$, '22023', NULL,
    'an unknown credential type is refused');

SELECT plystra.set_credential('session', 'user_alice', 'sess_t40', NULL, false);
SELECT ok((SELECT plystra.audit_auth_event('auth.login_succeeded', 'user_alice', NULL, 'allow',
                                           '{"password": "hunter2", "method": "password"}')) LIKE 'audit_%',
    'audit_auth_event appends a row and returns its id');
SELECT is((SELECT jsonb_build_array(resource_type, resource_id, decision, request_id, trace -> 'credential' ->> 'session_id',
                                    trace -> 'details' ->> 'method', trace -> 'details' ? 'password')
           FROM plystra.audit_logs WHERE action = 'auth.login_succeeded' AND resource_id = 'user_alice'
           ORDER BY seq DESC LIMIT 1),
    '["user", "user_alice", "allow", "req-t40", "sess_t40", "password", false]'::jsonb,
    'an authentication event records the user, decision, request and credential, and no secret');
SELECT throws_ok($$SELECT plystra.audit_auth_event('user.created', 'u', NULL, 'allow', '{}')$$, '22023', NULL,
    'audit_auth_event takes auth.* events only');

------------------------------------------------------------------------------------------------------------------
-- The last super admin (F9).
------------------------------------------------------------------------------------------------------------------

-- Only this test's super admins count: end every other one first (inside this transaction).
ALTER TABLE plystra.admin_grants DISABLE TRIGGER trg_admin_grants_keep_a_super_admin;
UPDATE plystra.admin_grants SET status = 'revoked', revoked_at = now()
WHERE level = 'instance_super_admin' AND revoked_at IS NULL;
ALTER TABLE plystra.admin_grants ENABLE TRIGGER trg_admin_grants_keep_a_super_admin;
INSERT INTO plystra.users (id, email, status) VALUES ('t40_sa1', 't40_sa1@example.test', 'active'),
                                                     ('t40_sa2', 't40_sa2@example.test', 'active');
INSERT INTO plystra.admin_grants (id, user_id, level, permission_key)
VALUES ('ag_t40_sa1', 't40_sa1', 'instance_super_admin', '*'), ('ag_t40_sa2', 't40_sa2', 'instance_super_admin', '*');
SELECT is(plystra.active_super_admin_count(), 2::bigint, 'two active super admins');
SELECT lives_ok($$UPDATE plystra.users SET status = 'disabled' WHERE id = 't40_sa1'$$,
    'disabling one of two super admins is allowed');
SELECT throws_ok($$UPDATE plystra.users SET status = 'disabled' WHERE id = 't40_sa2'$$, '23514',
    'plystra: the instance must keep an active super admin', 'disabling the last one is refused');
SELECT throws_ok($$UPDATE plystra.users SET deleted_at = now() WHERE id = 't40_sa2'$$, '23514', NULL,
    'soft-deleting the last one is refused');
SELECT throws_ok($$UPDATE plystra.admin_grants SET status = 'revoked', revoked_at = now() WHERE id = 'ag_t40_sa2'$$,
    '23514', NULL, 'revoking the last grant is refused');
SELECT throws_ok($$UPDATE plystra.admin_grants SET expires_at = now() - interval '1 second' WHERE id = 'ag_t40_sa2'$$,
    '23514', NULL, 'expiring the last grant is refused');

------------------------------------------------------------------------------------------------------------------
-- API keys made by API keys (F10).
------------------------------------------------------------------------------------------------------------------

INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, expires_at)
VALUES ('ak_t40_parent', 'parent', 'p', 'hash_t40_parent', 'instance', now() + interval '1 day');
SELECT throws_ok($$INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, created_by_api_key_id)
                   VALUES ('ak_t40_forever', 'child', 'c', 'hash_t40_forever', 'instance', 'ak_t40_parent')$$,
    '23514', NULL, 'a key made by an expiring key must expire (no later than its parent)');
INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, created_by_api_key_id, expires_at)
VALUES ('ak_t40_child', 'child', 'c', 'hash_t40_child', 'instance', 'ak_t40_parent', now() + interval '1 hour');
INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, created_by_api_key_id, expires_at)
VALUES ('ak_t40_grandchild', 'grandchild', 'g', 'hash_t40_grandchild', 'instance', 'ak_t40_child', now() + interval '1 hour');
UPDATE plystra.api_keys SET status = 'revoked', revoked_at = now(), revoked_reason = 'test' WHERE id = 'ak_t40_parent';
SELECT is((SELECT array_agg(status || ':' || (revoked_at IS NOT NULL) ORDER BY id) FROM plystra.api_keys
           WHERE id IN ('ak_t40_child', 'ak_t40_grandchild')),
    ARRAY['revoked:true', 'revoked:true'], 'revoking a key revokes the keys it made, and theirs');
SELECT throws_ok($$INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, created_by_api_key_id, expires_at)
                   VALUES ('ak_t40_orphan', 'x', 'x', 'hash_t40_orphan', 'instance', 'ak_t40_parent', now())$$,
    '23514', NULL, 'a revoked key makes no keys');

SELECT * FROM finish();
ROLLBACK;
