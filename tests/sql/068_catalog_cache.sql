-- The catalog a backend keeps between decisions (plystra_pg/src/catalog.rs, migration 011): the Resource
-- Registry's types and actions, Roles, Permissions and RolePermissions. Only transactions that have written
-- nothing use it; whatever is kept, a decision answers as the tables read under its own snapshot would: a change
-- committed by another session counts from the next statement in READ COMMITTED and never inside a REPEATABLE READ
-- snapshot that predates it; a writing transaction sees its own writes and savepoints as SQL does.
-- The backends put to the test are second and third ones (dblink, autocommit: the path a service's connection
-- takes), deciding while a writer backend changes the tables under them.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS dblink;
BEGIN;
SELECT plan(24);

CREATE FUNCTION pg_temp.code(act text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(plystra.check(jsonb_build_object(
        'actor', jsonb_build_object('user_id', 'user_alice', 'member_id', 'member_finance_reviewer',
                                    'user_member_id', 'um_alice_finance_reviewer', 'space_id', 'space_acme'),
        'resource_type', 'invoice', 'resource_id', 'invoice_001', 'action', act))->>'deny_code', 'ALLOW')
$$;

-- The backends that decide and write beside this one (they must run before this transaction takes any lock on
-- the version row: a rename below needs it alone).
SELECT dblink_connect('t67_writer', format('host=%s port=%s dbname=%s user=%s',
    split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_database(), current_user));
SELECT dblink_connect('t67_decider', format('host=%s port=%s dbname=%s user=%s options=-cplystra.audit_mode=off',
    split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_database(), current_user));
CREATE FUNCTION pg_temp.decide_on(conn text, act text) RETURNS text LANGUAGE sql AS $$
    SELECT code FROM dblink(conn, format($q$
        SELECT coalesce(plystra.check(jsonb_build_object(
            'actor', jsonb_build_object('user_id', 'user_alice', 'member_id', 'member_finance_reviewer',
                                        'user_member_id', 'um_alice_finance_reviewer', 'space_id', 'space_acme'),
            'resource_type', 'invoice', 'resource_id', 'invoice_001', 'action', %L))->>'deny_code', 'ALLOW')$q$, act))
        AS t(code text)
$$;
CREATE FUNCTION pg_temp.decider(act text) RETURNS text LANGUAGE sql AS $$ SELECT pg_temp.decide_on('t67_decider', act) $$;

-- A schema not yet updated to the library's version (the library replaced before ALTER EXTENSION UPDATE) has no
-- catalog version: the deciding backend goes on deciding, keeping nothing.
SELECT dblink_exec('t67_writer', 'ALTER TABLE plystra.catalog_version RENAME TO catalog_version_not_yet');
\ir helpers/or_error.sql
SELECT pg_temp.or_error($$SELECT pg_temp.decider('approve')$$) AS without_version \gset
SELECT dblink_exec('t67_writer', 'ALTER TABLE plystra.catalog_version_not_yet RENAME TO catalog_version');
SELECT is(:'without_version'::text, 'ALLOW', 'without plystra.catalog_version (an older schema) a decision still answers');

CREATE FUNCTION pg_temp.version() RETURNS bigint LANGUAGE sql AS $$
    SELECT version FROM plystra.catalog_version WHERE name = 'catalog'
$$;

------------------------------------------------------------------------------------------------------------------
-- This transaction's own writes.
------------------------------------------------------------------------------------------------------------------
SELECT is(pg_temp.code('approve'), 'ALLOW', 'Alice may approve invoice_001 (the catalog is now kept)');

SAVEPOINT s;
UPDATE plystra.role_permissions SET deleted_at = now()
 WHERE role_id = 'role_finance_approver' AND permission_id = 'perm_invoice_approve_group_tree';
SELECT is(pg_temp.code('approve'), 'NO_MATCHING_PERMISSION', 'a RolePermission removed earlier in the transaction denies');
ROLLBACK TO SAVEPOINT s;
SELECT is(pg_temp.code('approve'), 'ALLOW', 'after the savepoint is rolled back, the removal is forgotten too');

SAVEPOINT s;
UPDATE plystra.resource_actions SET key = 'approve_renamed' WHERE key = 'approve';
SELECT is(pg_temp.code('approve'), 'INVALID_RESOURCE_ACTION', 'a registry change earlier in the transaction is seen');
ROLLBACK TO SAVEPOINT s;

SAVEPOINT s;
UPDATE plystra.permissions SET status = 'disabled' WHERE id = 'perm_invoice_approve_group_tree';
SELECT is(pg_temp.code('approve'), 'NO_MATCHING_PERMISSION', 'a Permission disabled earlier in the transaction denies');
ROLLBACK TO SAVEPOINT s;

SAVEPOINT s;
SELECT pg_temp.code('approve');  -- the catalog kept under the version this savepoint starts from
SET LOCAL session_replication_role = replica;
UPDATE plystra.roles SET status = 'disabled' WHERE id = 'role_finance_approver';
SET LOCAL session_replication_role = origin;
SELECT is(pg_temp.code('approve'), 'NO_MATCHING_PERMISSION',
          'a Role disabled with session_replication_role = replica denies (the version trigger fires always)');
ROLLBACK TO SAVEPOINT s;
SELECT is(pg_temp.code('approve'), 'ALLOW', 'and all of it rolled back, Alice may approve again');

-- A decision inside the very statement that writes (its version trigger fires only at the statement's end): it
-- sees the write as any SQL in that statement would.
SAVEPOINT s;
SELECT pg_temp.code('approve');
WITH u AS (
    UPDATE plystra.role_permissions SET deleted_at = now()
     WHERE role_id = 'role_finance_approver' AND permission_id = 'perm_invoice_approve_group_tree'
    RETURNING pg_temp.code('approve') AS c)
SELECT is((SELECT c FROM u), 'NO_MATCHING_PERMISSION',
          'a decision in the RETURNING of the statement that removes the RolePermission sees the removal');
ROLLBACK TO SAVEPOINT s;

-- Every statement writing one of the five tables moves the version; decisions do not.
SELECT pg_temp.version() AS v0 \gset
SELECT pg_temp.code('approve');
SELECT is(pg_temp.version(), :v0::bigint, 'a decision leaves the catalog version as it is');
SAVEPOINT s;
INSERT INTO plystra.roles (id, space_id, key, name) VALUES ('role_t67_version', 'space_acme', 't67_version', 'T67');
SELECT cmp_ok(pg_temp.version(), '>', :v0::bigint, 'creating a Role moves the catalog version');
ROLLBACK TO SAVEPOINT s;

-- Who may do what with it: the administration role writes Roles without any privilege on the version (the trigger
-- is SECURITY DEFINER); an application role can neither read the version nor change the memory bound.
CREATE ROLE t67_admin NOLOGIN;
GRANT plystra_admin TO t67_admin;
CREATE ROLE t67_app NOLOGIN;
GRANT plystra_app TO t67_app;
\ir helpers/sqlstate_as.sql
-- (In a savepoint: a writer holds the version row until it commits, and the sessions below write too.)
SAVEPOINT s;
SELECT is(pg_temp.sqlstate_as('t67_admin', $$INSERT INTO plystra.roles (id, space_id, key, name)
                                          VALUES ('role_t67_admin', 'space_acme', 't67_admin', 'T67')$$), '00000',
          'plystra_admin creates a Role (and so moves the version) without privileges on it');
ROLLBACK TO SAVEPOINT s;
SELECT is(pg_temp.sqlstate_as('t67_app', $$SELECT version FROM plystra.catalog_version$$), '42501',
          'an application role cannot read the catalog version');
SELECT is(pg_temp.sqlstate_as('t67_app', $$SET plystra.catalog_cache_entries = 5$$), '42501',
          'an application role cannot change the memory bound');

------------------------------------------------------------------------------------------------------------------
-- Another backend that only decides, with changes committed by a third.
------------------------------------------------------------------------------------------------------------------
-- A Role of this run (ids are unique per run: nothing here is ever deleted), granted to Alice's Member over
-- Finance, holding nothing yet; the grants of earlier runs that did not finish are revoked first.
SELECT 'role_t67_' || txid_current() AS role_id, 'mr_t67_' || txid_current() AS grant_id,
       'rp_t67_' || txid_current() AS rp_id \gset
SELECT dblink_exec('t67_writer', format($$
    UPDATE plystra.member_roles SET status = 'revoked' WHERE id LIKE 'mr\_t67\_%%' AND status <> 'revoked';
    INSERT INTO plystra.roles (id, space_id, key, name) VALUES (%1$L, 'space_acme', %1$L, 'T67 reject');
    INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id)
    VALUES (%2$L, 'member_finance_reviewer', %1$L, 'space_acme', 'group_finance')$$, :'role_id', :'grant_id'));
SELECT is(pg_temp.decider('reject'), 'NO_MATCHING_PERMISSION',
          'the deciding backend: Alice may not reject (its catalog now holds the new Role with nothing)');
SELECT dblink_exec('t67_writer', format($$INSERT INTO plystra.role_permissions (id, role_id, permission_id)
    VALUES (%L, %L, 'perm_invoice_reject_group_tree')$$, :'rp_id', :'role_id'));
SELECT is(pg_temp.decider('reject'), 'ALLOW', 'a RolePermission committed by another session counts from the next statement');

-- A REPEATABLE READ transaction keeps its snapshot, kept catalog or not.
SELECT dblink_exec('t67_decider', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT pg_temp.decider('reject');
SELECT dblink_exec('t67_writer', format($$UPDATE plystra.role_permissions SET deleted_at = now() WHERE id = %L$$, :'rp_id'));
SELECT pg_temp.decider('reject') AS inside_rr \gset
SELECT dblink_exec('t67_decider', 'COMMIT');
SELECT is(:'inside_rr'::text, 'ALLOW', 'inside a REPEATABLE READ snapshot taken before the removal, the removal is not seen');
SELECT is(pg_temp.decider('reject'), 'NO_MATCHING_PERMISSION', 'after that transaction, the committed removal denies');
-- Only a superuser can change the tables without moving the version (triggers disabled): then the kept catalog
-- answers as it was (which proves it is kept), and keeping nothing, or moving the version by hand, reads anew.
SELECT dblink_exec('t67_writer', format($$INSERT INTO plystra.role_permissions (id, role_id, permission_id)
    VALUES (%L, %L, 'perm_invoice_delete_space')$$, :'rp_id' || '_delete', :'role_id'));
SELECT is(pg_temp.decider('delete'), 'ALLOW', 'the deciding backend: the run''s Role now lets Alice delete');
SELECT dblink_exec('t67_writer', format($$BEGIN;
    ALTER TABLE plystra.role_permissions DISABLE TRIGGER catalog_changed;
    UPDATE plystra.role_permissions SET deleted_at = now() WHERE id = %L;
    ALTER TABLE plystra.role_permissions ENABLE ALWAYS TRIGGER catalog_changed;
    COMMIT$$, :'rp_id' || '_delete'));
SELECT is(pg_temp.decider('delete'), 'ALLOW', 'a removal committed without moving the version: the kept catalog answers');
SELECT dblink_exec('t67_decider', 'SET plystra.catalog_cache_entries = 0');
SELECT is(pg_temp.decider('delete'), 'NO_MATCHING_PERMISSION', 'keeping nothing (catalog_cache_entries = 0) reads the tables');
SELECT dblink_exec('t67_decider', 'RESET plystra.catalog_cache_entries');
SELECT dblink_exec('t67_writer', $$UPDATE plystra.catalog_version SET version = nextval('plystra.catalog_version_seq')$$);
SELECT is(pg_temp.decider('delete'), 'NO_MATCHING_PERMISSION', 'moving the version by hand makes the backend read anew');

-- Leave Alice as she was: the run's grant revoked.
SELECT dblink_exec('t67_writer', format($$UPDATE plystra.member_roles SET status = 'revoked' WHERE id = %L$$, :'grant_id'));

-- A new incarnation of the schema (DROP/CREATE EXTENSION, committed) whose version takes the very number a
-- deciding backend kept its catalog under: that catalog is not used. In a scratch database of this run.
SELECT dblink_exec('t67_writer', 'DROP DATABASE IF EXISTS plystra_t67_incarnation WITH (FORCE)');
SELECT dblink_exec('t67_writer', 'CREATE DATABASE plystra_t67_incarnation');
SELECT dblink_connect('t67_scratch', format('host=%s port=%s dbname=plystra_t67_incarnation user=%s',
    split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_user));
SELECT dblink_connect('t67_scratch_decider', format('host=%s port=%s dbname=plystra_t67_incarnation user=%s options=-cplystra.audit_mode=off',
    split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_user));
\set demo `cat sql/demo.sql`
SELECT dblink_exec('t67_scratch', 'CREATE EXTENSION plystra');
SELECT dblink_exec('t67_scratch', :'demo');
SELECT is(pg_temp.decide_on('t67_scratch_decider', 'approve'), 'ALLOW', 'a deciding backend keeps the first incarnation''s catalog');
SELECT version AS first_version FROM dblink('t67_scratch', 'SELECT version FROM plystra.catalog_version') AS t(version bigint) \gset
SELECT dblink_exec('t67_scratch', 'DROP EXTENSION plystra CASCADE');
SELECT dblink_exec('t67_scratch', 'CREATE EXTENSION plystra');
SELECT dblink_exec('t67_scratch', :'demo');
SELECT dblink_exec('t67_scratch', format($$BEGIN;
    ALTER TABLE plystra.role_permissions DISABLE TRIGGER catalog_changed;
    UPDATE plystra.role_permissions SET deleted_at = now()
     WHERE role_id = 'role_finance_approver' AND permission_id = 'perm_invoice_approve_group_tree';
    ALTER TABLE plystra.role_permissions ENABLE ALWAYS TRIGGER catalog_changed;
    UPDATE plystra.catalog_version SET version = %s;
    COMMIT$$, :first_version));
SELECT is(pg_temp.decide_on('t67_scratch_decider', 'approve'), 'NO_MATCHING_PERMISSION',
          'after DROP/CREATE EXTENSION the same backend reads the new tables, even under the same version number');
SELECT dblink_disconnect('t67_scratch_decider');
SELECT dblink_disconnect('t67_scratch');
SELECT dblink_exec('t67_writer', 'DROP DATABASE plystra_t67_incarnation WITH (FORCE)');
SELECT dblink_disconnect('t67_writer');
SELECT dblink_disconnect('t67_decider');

SELECT * FROM finish();
ROLLBACK;
