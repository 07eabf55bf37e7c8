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
