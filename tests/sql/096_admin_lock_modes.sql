-- What the REST front's role (plystra_admin) can lock (migration 027). PostgreSQL lets a role that holds UPDATE,
-- DELETE or TRUNCATE on a table take every lock mode on it, ACCESS EXCLUSIVE included; until 027 plystra_admin held
-- UPDATE on every Core, registry and credential table, so whoever had the front's login could run
-- `LOCK TABLE plystra.roles IN ACCESS EXCLUSIVE MODE` in an open transaction and hold every decision of every
-- application (each reads those tables) for as long as it liked. Now it holds UPDATE on columns only (every column
-- but the primary key and created_at): the same writes, and INSERT's ROW EXCLUSIVE as its strongest table lock,
-- which no decision's read waits for. It also no longer calls plystra.seal_audit: holding the sealer's row in an
-- open transaction left every audit row unsealed (the writer's seal step skips a held sealer).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
SELECT plan(13);

\ir helpers/sqlstate_as.sql

CREATE ROLE t96_admin NOLOGIN IN ROLE plystra_admin;

-- Every table a decision reads (the Core, the Resource Registry, credentials) and the login table's neighbours.
CREATE TEMP TABLE t96_tables AS
SELECT c.oid::regclass AS t FROM pg_class c
WHERE c.relnamespace = 'plystra'::regnamespace AND c.relkind IN ('r', 'p')
  AND c.relname IN ('users', 'spaces', 'groups', 'members', 'user_members', 'roles', 'permissions', 'member_roles',
                    'role_permissions', 'resources', 'resource_types', 'resource_actions', 'resource_mappings',
                    'admin_grants', 'api_keys', 'sessions');
SELECT is((SELECT count(*)::int FROM t96_tables), 16, 'the sixteen tables the front writes and decisions read exist');
GRANT SELECT ON t96_tables TO t96_admin;

-- The rule as PostgreSQL checks it (LockTableAclCheck): a table-level UPDATE, DELETE or TRUNCATE allows every mode.
SELECT is_empty($$
    SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'plystra'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
      AND c.relname <> 'login_failures'
      AND has_table_privilege('plystra_admin', c.oid, 'UPDATE, DELETE, TRUNCATE')$$,
    'plystra_admin holds no table-level UPDATE, DELETE or TRUNCATE on any relation but login_failures');

-- Every mode above ROW EXCLUSIVE is refused on every one of them, as the front's role.
CREATE FUNCTION pg_temp.lock_states(lock_mode text) RETURNS text[] LANGUAGE sql AS $$
    SELECT array_agg(DISTINCT pg_temp.sqlstate_as('t96_admin', format('LOCK TABLE %s IN %s MODE', t, lock_mode)))
    FROM t96_tables
$$;
SELECT is(pg_temp.lock_states('ACCESS EXCLUSIVE'), ARRAY['42501'],
          'plystra_admin cannot take ACCESS EXCLUSIVE on any table a decision reads (before 027: every one)');
SELECT is(pg_temp.lock_states('EXCLUSIVE'), ARRAY['42501'], 'nor EXCLUSIVE');
SELECT is(pg_temp.lock_states('SHARE ROW EXCLUSIVE'), ARRAY['42501'], 'nor SHARE ROW EXCLUSIVE');
SELECT is(pg_temp.lock_states('SHARE'), ARRAY['42501'], 'nor SHARE');
SELECT is(pg_temp.lock_states('SHARE UPDATE EXCLUSIVE'), ARRAY['42501'], 'nor SHARE UPDATE EXCLUSIVE');
SELECT is(pg_temp.lock_states('ROW EXCLUSIVE'), ARRAY['00000'],
          'ROW EXCLUSIVE (what its own INSERTs and UPDATEs take; no read waits for it) stays allowed');

-- The writes the front makes still work: every column but the key and created_at is updatable, by column grant.
SELECT is_empty($$
    SELECT c.relname || '.' || a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
    WHERE c.relnamespace = 'plystra'::regnamespace
      AND c.relname IN ('users', 'spaces', 'groups', 'members', 'user_members', 'roles', 'permissions', 'member_roles',
                        'role_permissions', 'resources', 'resource_types', 'resource_actions', 'resource_mappings',
                        'admin_grants', 'api_keys', 'sessions', 'login_failures')
      AND a.attnum > 0 AND NOT a.attisdropped
      AND has_column_privilege('plystra_admin', c.oid, a.attnum, 'UPDATE')
          = (a.attname = 'created_at' OR a.attnum = ANY (SELECT unnest(i.indkey) FROM pg_index i
                                                           WHERE i.indrelid = c.oid AND i.indisprimary))$$,
    'plystra_admin may update every column of its tables but the primary key and created_at, and no other');
SELECT is(pg_temp.sqlstate_as('t96_admin', $$UPDATE plystra.roles SET description = 'locked out', updated_at = now()
    WHERE id = 'role_finance_reviewer'$$), '00000', 'a management update as the front''s role still works');
SELECT is(pg_temp.sqlstate_as('t96_admin', $$UPDATE plystra.roles SET id = 'role_renamed' WHERE id = 'role_finance_reviewer'$$),
          '42501', 'a row''s id cannot be changed');
SELECT is(pg_temp.sqlstate_as('t96_admin', $$SELECT 1 FROM plystra.admin_grants WHERE level = 'instance_super_admin' FOR UPDATE$$),
          '00000', 'row locks (what serializes super-admin revocations) stay allowed');

-- The sealer: only the extension's owner (and the audit writer) seal.
SELECT is(pg_temp.sqlstate_as('t96_admin', $$SELECT plystra.seal_audit(0)$$), '42501',
          'plystra_admin cannot call seal_audit (and so cannot hold the sealer in an open transaction)');

SELECT * FROM finish();
ROLLBACK;
