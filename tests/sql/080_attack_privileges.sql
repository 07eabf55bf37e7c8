-- Attacks at the SQL level by roles with less standing than the extension's owner: an application role that is
-- only a member of plystra_app, an administration role that is only a member of plystra_admin, a role with no
-- plystra role at all, and the RLS example's application role. Every assertion states the SAFE behaviour: a
-- failing assertion is a hole. Everything rolls back (roles included).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
\ir ../../sql/examples/invoices_rls.sql
SELECT plan(65);

\ir helpers/sqlstate_as.sql

CREATE ROLE attack_app NOLOGIN IN ROLE plystra_app;
CREATE ROLE attack_admin NOLOGIN IN ROLE plystra_admin;
CREATE ROLE attack_nobody NOLOGIN;
-- A reporting role with table access to the RLS example but no plystra role.
GRANT USAGE ON SCHEMA app TO attack_nobody;
GRANT SELECT ON app.invoices TO attack_nobody;

-- Another tenant: a Space with a group whose path equals one of space_acme's, a mirrored resource and invoices.
INSERT INTO plystra.spaces (id, name) VALUES ('space_attack_evil', 'Attack evil');
INSERT INTO plystra.groups (id, space_id, name, path)
VALUES ('group_attack_evil_fin', 'space_attack_evil', 'Fin', 'finance');
INSERT INTO plystra.resources (id, resource_type, space_id, group_id)
VALUES ('res_attack_evil_1', 'invoice', 'space_attack_evil', 'group_attack_evil_fin');
INSERT INTO app.invoices (id, space_id, group_id, owner_member_id, number, amount_cents) VALUES
    ('inv_attack_evil_1', 'space_attack_evil', 'group_attack_evil_fin', NULL, 'EVIL-1', 1),
    ('inv_attack_evil_2', 'space_attack_evil', NULL, 'member_finance_reviewer', 'EVIL-2', 2);

-- An incompressible 3,200-byte string (above btree's 2,704-byte key limit).
CREATE FUNCTION pg_temp.big() RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(md5(i::text || 'attack'), '') FROM generate_series(1, 100) i
$$;
GRANT EXECUTE ON FUNCTION pg_temp.big() TO attack_app;

------------------------------------------------------------------------------------------------------------------
-- Catalog: what PUBLIC and the roles hold.
------------------------------------------------------------------------------------------------------------------

SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    WHERE p.pronamespace = 'plystra'::regnamespace AND has_function_privilege('public', p.oid, 'EXECUTE')$$,
    'attack: no function of schema plystra is executable by PUBLIC');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    WHERE p.pronamespace = 'plystra'::regnamespace AND p.prosecdef
      AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c = 'search_path=pg_catalog, pg_temp')$$,
    'attack: every SECURITY DEFINER function pins search_path to pg_catalog, pg_temp');
SELECT ok(NOT has_schema_privilege('public', 'plystra', 'CREATE') AND NOT has_schema_privilege('attack_app', 'plystra', 'CREATE')
          AND NOT has_schema_privilege('attack_admin', 'plystra', 'CREATE') AND NOT has_schema_privilege('public', 'plystra', 'USAGE'),
          'attack: nobody but the owner creates objects in schema plystra; PUBLIC has no USAGE');
SELECT is_empty($$
    SELECT c.oid::regclass::text FROM pg_class c WHERE c.relnamespace = 'plystra'::regnamespace
      AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND (has_table_privilege('public', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
           OR has_table_privilege('attack_app', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'))$$,
    'attack: no table, partition or view of plystra is reachable by PUBLIC or plystra_app (any privilege)');
SELECT is_empty($$
    SELECT c.oid::regclass::text FROM pg_class c WHERE c.relnamespace = 'plystra'::regnamespace AND c.relkind = 'S'
      AND (has_sequence_privilege('public', c.oid, 'USAGE, SELECT, UPDATE')
           OR has_sequence_privilege('attack_app', c.oid, 'USAGE, SELECT, UPDATE')
           OR has_sequence_privilege('attack_admin', c.oid, 'USAGE, UPDATE'))$$,
    'attack: no sequence (actor/catalog versions, audit seq) can be advanced by PUBLIC, plystra_app or plystra_admin');
SELECT is_empty($$
    SELECT c.oid::regclass::text FROM pg_class c WHERE c.relnamespace = 'plystra'::regnamespace
      AND c.relname IN ('audit_logs_default', 'audit_log_keys', 'actor_versions', 'actor_user_stamps', 'catalog_version',
                        'audit_sealer', 'audit_chain_heads', 'audit_archives')
      AND has_table_privilege('attack_admin', c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')$$,
    'attack: plystra_admin writes none of the audit bookkeeping, version or key tables');

------------------------------------------------------------------------------------------------------------------
-- The audit log, as plystra_admin (the REST front's role).
------------------------------------------------------------------------------------------------------------------

SELECT is(pg_temp.sqlstate_as('attack_admin', $$INSERT INTO plystra.audit_logs (id, action, decision, trace)
    VALUES ('audit_attack0000000001', 'auth.login_succeeded', 'allow', '{}')$$), '42501', 'attack: admin INSERT into audit_logs');
SELECT is(pg_temp.sqlstate_as('attack_admin', $$UPDATE plystra.audit_logs SET decision = 'allow'$$), '42501',
    'attack: admin UPDATE of audit_logs');
SELECT is(pg_temp.sqlstate_as('attack_admin', $$DELETE FROM plystra.audit_logs$$), '42501', 'attack: admin DELETE of audit_logs');
SELECT is(pg_temp.sqlstate_as('attack_admin', $$TRUNCATE plystra.audit_logs$$), '42501', 'attack: admin TRUNCATE of audit_logs');
SELECT is(pg_temp.sqlstate_as('attack_admin', $$INSERT INTO plystra.audit_logs_default (id, action, decision, trace)
    VALUES ('audit_attack0000000002', 'x', 'allow', '{}')$$), '42501', 'attack: admin INSERT into the DEFAULT partition directly');
SELECT is(pg_temp.sqlstate_as('attack_admin', $$SET LOCAL session_replication_role = replica$$), '42501',
    'attack: admin cannot set session_replication_role');
SELECT is(pg_temp.sqlstate_as('attack_admin', $$COPY plystra.audit_logs (id, action, decision, trace) FROM PROGRAM 'true'$$),
    '42501', 'attack: admin COPY into audit_logs');
SELECT is(pg_temp.sqlstate_as('attack_admin', $$ALTER TABLE plystra.audit_logs DETACH PARTITION plystra.audit_logs_default$$),
    '42501', 'attack: admin detaches a partition');
SELECT is(pg_temp.sqlstate_as('attack_admin', $$ALTER TABLE plystra.audit_logs DISABLE TRIGGER USER$$), '42501',
    'attack: admin disables the append-only triggers');
SELECT is(pg_temp.sqlstate_as('attack_admin', $$UPDATE plystra.audit_chain_heads SET chain_position = 0$$), '42501',
    'attack: admin rewrites a chain head');
SELECT is(pg_temp.sqlstate_as('attack_admin', $$SELECT plystra.append_context_audit('space_acme', 'auth.login_succeeded',
    'user', 'user_alice', 'allow', '{}')$$), '42501', 'attack: admin calls the internal audit appender');
SELECT is(pg_temp.sqlstate_as('attack_admin', $$SELECT plystra.append_audit('[{"id": "audit_attack0000000003", "action": "x", "decision": "allow", "trace": {}}]')$$),
    '42501', 'attack: admin calls the batch appender');
SELECT is(pg_temp.sqlstate_as('attack_admin', $$SELECT * FROM plystra.audit_log_keys$$), '42501',
    'attack: admin reads the audit key table');
SELECT is(pg_temp.sqlstate_as('attack_admin', $$CREATE TRIGGER attack_t AFTER INSERT ON plystra.audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.seal_audit()$$), '42501', 'attack: admin adds a trigger to the log');

-- The owner (a superuser) too: the README promises append-only "for every role, owner included".
DO $$ BEGIN PERFORM plystra.seal_audit(); END $$;
SELECT is(pg_temp.sqlstate_as('postgres', $$UPDATE plystra.audit_logs SET decision = 'deny' WHERE row_hash IS NOT NULL$$),
    '42501', 'attack: the owner cannot UPDATE a sealed row');
SELECT is(pg_temp.sqlstate_as('postgres', $$TRUNCATE plystra.audit_logs_default$$), '42501',
    'attack: the owner cannot TRUNCATE the DEFAULT partition directly');
SELECT is(pg_temp.sqlstate_as('postgres', $$SET LOCAL session_replication_role = replica;
    DELETE FROM plystra.audit_logs$$), '42501',
    'attack: session_replication_role = replica does not bypass the append-only trigger');
SELECT is(pg_temp.sqlstate_as('postgres', $$UPDATE plystra.audit_logs SET row_hash = NULL WHERE row_hash IS NOT NULL$$),
    '42501', 'attack: a sealed row cannot be unsealed (to be resealed with new content)');

------------------------------------------------------------------------------------------------------------------
-- The acting context: settings only the setters change.
------------------------------------------------------------------------------------------------------------------

SELECT is(pg_temp.sqlstate_as('attack_app', $$SELECT set_config('plystra.actor_space_id', 'space_attack_evil', true)$$),
    '42501', 'attack: plystra_app cannot set_config the actor Space');
SELECT is(pg_temp.sqlstate_as('attack_app', $$CREATE FUNCTION pg_temp.attack_f() RETURNS text LANGUAGE sql
    SET plystra.actor_space_id = 'space_attack_evil' AS 'SELECT plystra.actor_space_id()';
    SELECT pg_temp.attack_f()$$), '42501',
    'attack: a temp function with SET plystra.actor_space_id is refused (creation or call)');
SELECT is(pg_temp.sqlstate_as('attack_app', $$ALTER ROLE attack_app SET plystra.actor_user_id = 'user_alice'$$),
    '42501', 'attack: plystra_app cannot make the actor a role default');
SELECT is(pg_temp.sqlstate_as('attack_app', $$SET LOCAL plystra.credential_type = 'api_key'$$), '42501',
    'attack: plystra_app cannot SET the credential');
SELECT is(pg_temp.sqlstate_as('attack_app', $$RESET plystra.audit_mode$$), '42501',
    'attack: plystra_app cannot reset the audit mode');
-- The Space an instance-level management row is filed in (extension 1.11.0): only through its setter.
SELECT is(pg_temp.sqlstate_as('attack_app', $$SET LOCAL plystra.audit_space_id = 'space_acme'$$), '42501',
    'attack: plystra_app cannot SET the audit Space directly');
SELECT is(pg_temp.sqlstate_as('attack_nobody', $$SELECT plystra.set_audit_space('space_acme')$$), '42501',
    'attack: a role with no plystra role cannot call set_audit_space');
SELECT is(pg_temp.sqlstate_as('attack_nobody',
    $$SELECT plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme')$$),
    '42501', 'attack: a role with no plystra role cannot call set_actor');
-- A savepoint rolled back restores the actor before it.
SELECT plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme');
SAVEPOINT attack_sp;
SELECT plystra.set_actor('user_attack_eve', 'member_attack_eve', 'um_attack_eve', 'space_attack_evil');
ROLLBACK TO SAVEPOINT attack_sp;
SELECT is(plystra.current_actor() ->> 'space_id', 'space_acme', 'attack: a rolled-back savepoint restores the actor');

------------------------------------------------------------------------------------------------------------------
-- Another tenant's rows under the RLS example.
------------------------------------------------------------------------------------------------------------------

SELECT plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme');
SET LOCAL ROLE invoices_app;
SELECT is((SELECT count(*) FROM app.invoices WHERE space_id = 'space_attack_evil'), 0::bigint,
    'attack: Alice (space_acme) reads no row of another Space, even one owned by her Member id');
SELECT is(pg_temp.sqlstate_as('invoices_app', $$INSERT INTO app.invoices (id, space_id, group_id, number)
    VALUES ('inv_attack_x', 'space_attack_evil', 'group_attack_evil_fin', 'X')$$), '42501',
    'attack: Alice cannot insert an invoice into another Space');
SELECT is(pg_temp.sqlstate_as('invoices_app', $$INSERT INTO app.invoices (id, space_id, group_id, number)
    VALUES ('inv_attack_y', 'space_attack_evil', 'group_finance', 'Y')$$), '42501',
    'attack: nor with one of her own groups');
SELECT is(pg_temp.sqlstate_as('invoices_app', $$UPDATE app.invoices SET space_id = 'space_attack_evil' WHERE id = 'inv_apac_1'$$),
    '42501', 'attack: Alice cannot move an invoice into another Space');
SELECT is((SELECT count(*) FROM app.invoices WHERE id = 'inv_apac_1' AND space_id = 'space_acme'), 1::bigint,
    'attack: the invoice stays in space_acme');
SELECT ok(NOT plystra.allowed_row('invoice', 'read', 'space_attack_evil', 'group_attack_evil_fin', NULL),
    'attack: allowed_row: another Space''s group');
SELECT ok(NOT plystra.allowed_row('invoice', 'read', 'space_attack_evil', NULL, 'member_finance_reviewer'),
    'attack: allowed_row: another Space, claiming her own Member as owner');
SELECT ok(NOT plystra.allowed_row_by_path('invoice', 'read', 'space_attack_evil', 'finance', NULL),
    'attack: allowed_row_by_path: the same path in another Space');
SELECT ok(NOT coalesce(plystra.allowed_row_by_path('invoice', 'read', 'space_acme', 'finance_x', NULL), false)
          AND NOT coalesce(plystra.allowed_row_by_path('invoice', 'read', 'space_acme', 'financeapac', NULL), false)
          AND NOT coalesce(plystra.allowed_row_by_path('invoice', 'read', 'space_acme', 'finance%', NULL), false),
    'attack: group_tree reach stops at label boundaries and treats wildcards as data');
SELECT ok(NOT ('res_attack_evil_1' = ANY (ARRAY(SELECT plystra.lookup_resources('invoice', 'read')))),
    'attack: lookup_resources lists no resource of another Space');
SELECT ok(NOT coalesce(plystra.allowed_resource('invoice', 'res_attack_evil_1', 'read'), false),
    'attack: allowed_resource on another Space''s resource');
SELECT ok(NOT ('group_attack_evil_fin' = ANY (plystra.reachable_group_ids('invoice', 'read'))),
    'attack: reachable_group_ids holds no group of another Space');
-- A mixed actor: Alice's binding, but naming the other Space.
SELECT plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_attack_evil');
SET LOCAL ROLE invoices_app;
SELECT is((SELECT count(*) FROM app.invoices), 0::bigint, 'attack: a binding claimed in another Space reaches nothing');
RESET ROLE;
SELECT plystra.set_actor(NULL, NULL, NULL, NULL);

-- A role without plystra_app that can read the table: never a row (refused, or nothing visible).
SELECT ok(pg_temp.sqlstate_as('attack_nobody', $q$DO $d$ BEGIN
    IF (SELECT count(*) FROM app.invoices) > 0 THEN RAISE EXCEPTION 'rows visible' USING ERRCODE = 'P0099'; END IF;
END $d$$q$) IN ('42501', '00000'), 'attack: a role without plystra_app reads no invoice');

------------------------------------------------------------------------------------------------------------------
-- Credentials: plystra_app reads no hash.
------------------------------------------------------------------------------------------------------------------

SELECT is(pg_temp.sqlstate_as('attack_app', $$SELECT password_hash FROM plystra.users$$), '42501',
    'attack: plystra_app reads no password hash');
SELECT is(pg_temp.sqlstate_as('attack_app', $$SELECT * FROM plystra.api_keys$$), '42501',
    'attack: plystra_app reads no API key hash');
SELECT is(pg_temp.sqlstate_as('attack_app', $$SELECT * FROM plystra.sessions$$), '42501',
    'attack: plystra_app reads no session hash');

------------------------------------------------------------------------------------------------------------------
-- Audit rows an application role can make appear.
------------------------------------------------------------------------------------------------------------------

-- A decision's audit action is "<resource_type>.<action>", both chosen by the caller: with resource_type "auth" a
-- decision row would carry the action of an authentication event (which only plystra_admin may record), and with a
-- management entity's name and one of the management trigger's verbs that of a management mutation. Every decision
-- form refuses such a target with 22023 before anything is decided or queued (extension 1.12.0), and the Resource
-- Registry refuses the reserved types as keys, so no such row can appear, in either audit mode. A type named like
-- an entity stays usable with the application's own verbs.
SELECT is(pg_temp.sqlstate_as('attack_app', $$SELECT plystra.check('{"actor": {"user_id": "user_alice",
    "member_id": "member_finance_reviewer", "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
    "resource_type": "auth", "resource_id": "user_bob", "action": "login_failed"}')$$), '22023',
    'attack: plystra_app asking a decision about resource_type auth, action login_failed, is refused (22023)');
SELECT is(pg_temp.sqlstate_as('attack_app', $$SELECT plystra.check('{"actor": {"user_id": "user_alice",
    "member_id": "member_finance_reviewer", "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
    "resource_type": "Auth", "resource_id": "user_bob", "action": "login_failed"}')$$), '22023',
    'attack: the same in another letter case (Auth) is refused too (22023)');
SELECT is(pg_temp.sqlstate_as('attack_app', $$SELECT plystra.check('{"actor": {"user_id": "user_alice",
    "member_id": "member_finance_reviewer", "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
    "resource_type": "auth.login_failed", "resource_id": "user_bob", "action": "x"}')$$), '22023',
    'attack: a resource type that only begins with auth. (auth.login_failed.x, found by LIKE ''auth.%'') is refused too');
SELECT is((SELECT count(*) FROM plystra.audit_logs WHERE action ILIKE 'auth.%' AND resource_id = 'user_bob'), 0::bigint,
    'attack: a decision by plystra_app never writes an audit row whose action is an authentication event (auth.*)');
SELECT is(pg_temp.sqlstate_as('attack_app', $$SELECT plystra.allowed('user_alice', 'member_finance_reviewer',
    'um_alice_finance_reviewer', 'space_acme', 'user_member', 'um_bob_finance_reviewer', 'revoked')$$), '22023',
    'attack: plystra_app asking (typed form) about resource_type user_member, action revoked, is refused (22023)');
SELECT is(pg_temp.sqlstate_as('attack_app', $$SELECT plystra.allowed('user_alice', 'member_finance_reviewer',
    'um_alice_finance_reviewer', 'space_acme', U&'api_\212Aey', 'k_app', 'revoked')$$), '22023',
    'attack: the same with a Kelvin sign for k (api_\u212Aey, which lower() and ILIKE read as api_key) is refused (22023)');
SELECT is(pg_temp.sqlstate_as('attack_app', $$SELECT plystra.check_batch('{"actor": {"user_id": "user_alice",
    "member_id": "member_finance_reviewer", "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
    "items": [{"resource_type": "invoice", "resource_id": "invoice_001", "action": "read"},
              {"resource": {"type": "space", "id": "space_acme"}, "action": "created"}]}')$$), '22023',
    'attack: a batch with one item about resource type space, action created, is refused whole (22023)');
SELECT is((SELECT count(*) FROM plystra.audit_logs
           WHERE action IN ('user_member.revoked', 'space.created') AND decision = 'deny'), 0::bigint,
    'attack: a decision by plystra_app never writes an audit row named like a management mutation');
SELECT is(pg_temp.sqlstate_as('attack_app', $$SELECT plystra.check('{"actor": {"user_id": "user_alice",
    "member_id": "member_finance_reviewer", "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
    "resource_type": "user", "resource_id": "user_bob", "action": "read"}')$$), '00000',
    'an application''s own resource type named user is still decided with its own verbs');
SELECT is(pg_temp.sqlstate_as('attack_admin', $$INSERT INTO plystra.resource_types (id, key, display_name)
    VALUES ('rt_attack_auth', 'auth', 'Auth')$$), '23514',
    'attack: the Resource Registry refuses the reserved key auth (resource_types_key_reserved)');
SELECT is(pg_temp.sqlstate_as('attack_admin', $$INSERT INTO plystra.resource_types (id, key, display_name)
    VALUES ('rt_attack_audit_partition', 'audit_partition', 'Audit partition')$$), '23514',
    'attack: the Resource Registry refuses the reserved key audit_partition');

-- Unbounded input on the paths that do not go through check's 256-byte limits (the typed allowed() takes any text,
-- set_request_context any request id): a row carrying it could not be indexed, and with the audit writer serving
-- this database it failed the writer's batch INSERT, so the writer exited and every decision waiting on that batch
-- failed with 57P03 (seen: the writer's pid changed). Such a decision is refused with 22023, naming the field,
-- before anything is queued; the writer lives on.
DO $$ BEGIN PERFORM pg_stat_clear_snapshot(); END $$;
CREATE TEMP TABLE attack_writer AS
    SELECT pid FROM pg_stat_activity WHERE backend_type = 'plystra audit writer' AND datname = current_database();
SELECT is(pg_temp.sqlstate_as('attack_app', $$SELECT plystra.allowed('user_alice', 'member_finance_reviewer',
    'um_alice_finance_reviewer', 'space_acme', 'invoice', pg_temp.big(), 'read')$$),
    CASE WHEN current_setting('plystra.audit_mode') = 'off' THEN '00000' ELSE '22023' END,
    'attack: allowed() with a 3,200-byte resource id is refused as invalid (22023) when audited, never a failed audit insert');
SELECT is(pg_temp.sqlstate_as('attack_app', $$SELECT plystra.set_request_context(pg_temp.big(), NULL, NULL);
    SELECT plystra.allowed('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme',
                           'invoice', 'invoice_001', 'read')$$),
    CASE WHEN current_setting('plystra.audit_mode') = 'off' THEN '00000' ELSE '22023' END,
    'attack: a 3,200-byte request id from set_request_context is refused (22023) when audited, never a failed audit insert');
DO $$ BEGIN PERFORM pg_stat_clear_snapshot(); END $$;
SELECT is((SELECT count(*) FROM pg_stat_activity a JOIN attack_writer w USING (pid)
           WHERE a.backend_type = 'plystra audit writer'),
          (SELECT count(*) FROM attack_writer),
    'attack: the audit writer serving this database (if any) is the same process after those requests');

------------------------------------------------------------------------------------------------------------------
-- Crafted input: never an internal error.
------------------------------------------------------------------------------------------------------------------

CREATE TEMP TABLE attack_fuzz (stmt text, state text);
GRANT ALL ON attack_fuzz TO attack_app;
INSERT INTO attack_fuzz (stmt) VALUES
($$SELECT plystra.check_batch('{"actor": {"user_id": "user_alice"}, "items": [null]}')$$),
($$SELECT plystra.check_batch('{"actor": {"user_id": "user_alice"}, "items": [{"resource": {"type":"invoice","id":"x","group_path":"a..b"}, "action":"read"}]}')$$),
($$SELECT plystra.check_batch('{"actor": {"user_id": "user_alice"}, "items": [{"resource": {"type":"invoice","id":"x","group_id":"group_attack_evil_fin"}, "action":"read"}]}')$$),
($$SELECT plystra.check(('{"actor": {"user_id": "user_alice"}, "resource": {"type":"invoice","id":"x","metadata": ' || repeat('[', 5000) || repeat(']', 5000) || '}, "action":"read"}')::jsonb)$$),
($$SELECT plystra.check('{"actor": {"user_id": "user_alice"}, "resource": {"type":"invoice","id":"x","metadata": {"n": 1e1000}}, "action":"read"}')$$),
($$SELECT plystra.check('{"actor": {"user_id": "user_alice"}, "resource": {"type":"invoice","id":"x","space_id": ""}, "action":"read"}')$$),
($$SELECT plystra.check('{"actor": {"user_id": "user_alice"}, "resource": {"type":"invoice","id":"x","group_path": ""}, "action":"read"}')$$),
($$SELECT plystra.allowed('', '', '', '', '', '', '')$$),
($$SELECT plystra.allowed_row_by_path('invoice', 'read', 'space_acme', repeat('a.', 10000) || 'a', NULL)$$),
($$SELECT plystra.allowed_row_by_path('invoice', 'read', 'space_acme', '', NULL)$$),
($$SELECT plystra.allowed_row('', '', '', '', '')$$),
($$SELECT plystra.reachable_group_ids(repeat('x', 1000000), 'read')$$),
($$SELECT plystra.allowed_resource('invoice', '', 'read')$$),
($$SELECT plystra.redact_sensitive(('' || repeat('{"a":', 3000) || '1' || repeat('}', 3000))::jsonb)$$);
SET LOCAL ROLE attack_app;
DO $d$ DECLARE r record; st text; BEGIN
    FOR r IN SELECT stmt FROM attack_fuzz LOOP
        BEGIN
            PERFORM plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme');
            EXECUTE r.stmt;
            st := '00000';
        EXCEPTION WHEN OTHERS THEN GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
        END;
        UPDATE attack_fuzz SET state = st WHERE stmt = r.stmt;
    END LOOP;
END $d$;
RESET ROLE;
SELECT is_empty($$SELECT stmt, state FROM attack_fuzz WHERE state IS NULL OR state LIKE 'XX%' OR state LIKE '58%'$$,
    'attack: crafted input to the plystra_app functions never raises an internal error');

SELECT * FROM finish();
ROLLBACK;
