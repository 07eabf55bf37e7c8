-- Plystra 1.18.0 -> 1.19.0 (ALTER EXTENSION plystra UPDATE, or plystractl migrate up).
-- Applies, and records in the ledger:
--   023: a transaction that has written may still use what the backends keep, unless it wrote a kept table (a BEFORE
--        STATEMENT trigger on each kept table marks the transaction; plystra_pg/src/kept_writes.rs).
-- tests/catalog_check.sh proves that an updated 1.0.0 equals a fresh 1.19.0.
-- Each block between markers is the migration file, verbatim.
\echo Use "ALTER EXTENSION plystra UPDATE TO '1.19.0'" to load this file. \quit

-- The mark (plystra_pg/src/kept_writes.rs), before the migration's trigger calls it.
CREATE FUNCTION plystra."mark_kept_rows_written"()
RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'mark_kept_rows_written_wrapper';

-- BEGIN migrations/023_kept_rows_written.sql
-- Plystra Core schema, version 023: a transaction that has written may still use what the backends keep, unless it
-- wrote a table whose rows they keep.
--
-- The backends keep the catalog (Resource Registry, Roles, Permissions, RolePermissions, mappings, what the REST
-- front's gate reads of API keys and session Users) and actors (User, Member, binding, Space, grants, anchor groups)
-- under version rows that every committed change moves (migrations 011, 014, 015, 019, 021). A transaction's own
-- writes move a version only at the end of their statement, so until now a transaction that had written anything
-- read every decision from the tables: an application that inserts its own rows and then selects under the example
-- policy loaded the actor and the catalog again at every statement.
--
-- Every statement that writes one of the kept tables or a version row now first fires a BEFORE STATEMENT trigger
-- that marks its transaction in the backend (plystra.tg_kept_rows_written, which calls the library's
-- plystra.mark_kept_rows_written(); it changes no row). A transaction that has written but is not marked changed no
-- kept row, so for the kept tables its snapshot shows committed rows only, exactly as a read-only transaction's
-- does, and it may use and fill what is kept (plystra_pg/src/kept_writes.rs states the rule). The triggers are
-- ENABLE ALWAYS, like the version triggers: a session with session_replication_role = replica marks too. The
-- trigger function runs as its owner, so that the mark needs no grant: it is granted to no role, and a caller can
-- only ever mark (never unmark) its own transaction. Without the library (this file applied by psql alone) it marks
-- nothing.
CREATE FUNCTION plystra.tg_kept_rows_written()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.to_regprocedure('plystra.mark_kept_rows_written()') IS NOT NULL THEN
        PERFORM plystra.mark_kept_rows_written();
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION plystra.tg_kept_rows_written() IS
'Trigger (BEFORE ... FOR EACH STATEMENT on every table whose rows the backends keep, and on the version rows): marks '
'the transaction as having written kept rows (plystra.mark_kept_rows_written), so that its decisions read those '
'tables instead of what is kept. Changes no row. A transaction that has written other tables only still uses what '
'is kept.';

DO $$
DECLARE
    kept_tables constant text[] := ARRAY[
        'users', 'spaces', 'groups', 'members', 'user_members', 'member_roles', 'roles', 'permissions',
        'role_permissions', 'resource_types', 'resource_actions', 'resource_mappings', 'admin_grants', 'api_keys',
        'actor_versions', 'actor_user_stamps', 'catalog_version'];
    t text;
BEGIN
    FOREACH t IN ARRAY kept_tables LOOP
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER kept_rows_written BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON plystra.%I '
            'FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_kept_rows_written()', t);
        EXECUTE pg_catalog.format('ALTER TABLE plystra.%I ENABLE ALWAYS TRIGGER kept_rows_written', t);
    END LOOP;
END;
$$;

-- The transaction that runs this may have written kept rows before the triggers existed (ALTER EXTENSION UPDATE
-- after such writes): a statement on a version table marks it.
UPDATE plystra.actor_versions SET version = version WHERE false;
-- END migrations/023_kept_rows_written.sql

-- An older version's install script run with this build's library already records every bundled migration
-- (plystra.bundled_migrations() comes from the library), so the row may exist.
INSERT INTO plystra.schema_migrations (version, name, checksum) VALUES ('023', 'kept_rows_written', 'd9bbe2e3e0de051cdd2fd836108184aa7390787cbda43948da0560f309a1f563')
ON CONFLICT (version) DO UPDATE SET name = excluded.name, checksum = excluded.checksum;

COMMENT ON FUNCTION plystra.mark_kept_rows_written() IS
'Marks this transaction as having written rows the backends keep: its decisions read the kept tables from then on '
'(until the transaction ends). Called by the trigger plystra.tg_kept_rows_written; granted to no role.';

-- Last: who may call what (PUBLIC nothing; plystra_app and plystra_admin their documented sets).
SELECT plystra.apply_privileges();
