-- Plystra 1.22.0 -> 1.23.0 (ALTER EXTENSION plystra UPDATE, or plystractl migrate up).
-- Applies, and records in the ledger:
--   027: the REST front's role holds UPDATE by column only, so it cannot take a lock stronger than ROW EXCLUSIVE
--        on the tables every decision reads; it no longer calls seal_audit.
-- tests/catalog_check.sh proves that an updated 1.0.0 equals a fresh 1.23.0.
-- Each block between markers is the migration file, verbatim.
\echo Use "ALTER EXTENSION plystra UPDATE TO '1.23.0'" to load this file. \quit

-- BEGIN migrations/027_admin_lock_modes.sql
-- Plystra Core schema, version 027: the REST front's role cannot hold the tables every decision reads.
--
-- PostgreSQL lets a role that holds UPDATE, DELETE or TRUNCATE on a table take every lock mode on it. plystra_admin
-- (the REST front's role) held UPDATE on every Core, Resource Registry and credential table for its management
-- routes, so whoever had the front's login could run `LOCK TABLE plystra.roles IN ACCESS EXCLUSIVE MODE` in an open
-- transaction and hold every decision of every application for as long as it liked. It now holds UPDATE on columns
-- only: every column but the primary key and created_at, which is every write the front makes; a column grant
-- allows a table lock no stronger than INSERT's ROW EXCLUSIVE, which no read waits for. Only login_failures keeps a
-- table-level DELETE (the front prunes it); no decision reads it.
-- The front serializes super-admin revocations with row locks (SELECT ... FOR UPDATE, which a column grant allows)
-- instead of a table lock.
-- plystra_admin also no longer calls plystra.seal_audit: an open transaction that had called it held the sealer's
-- row, and the audit writer's seal step, which skips a held sealer, left every row unsealed. The writer and the
-- extension's owner seal. tests/sql/096_admin_lock_modes.sql.

CREATE OR REPLACE FUNCTION plystra.apply_privileges()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- What an application role may call: decisions (compact answers only), its acting context, the set-based
    -- lookups and row predicates for row-level security, and the pure helpers. Nothing here returns another
    -- tenant's identity data; a role that may call set_actor is trusted to say who is acting.
    app_functions constant text[] := ARRAY[
        'plystra."check"(jsonb)',
        'plystra.check_batch(jsonb)',
        'plystra.allowed(text, text, text, text, text, text, text)',
        'plystra.set_actor(text, text, text, text)',
        'plystra.set_request_context(text, text, text)',
        'plystra.set_audit_space(text)',
        'plystra.current_actor()',
        'plystra.actor_space_id()',
        'plystra.reaches_space(text, text)',
        'plystra.reachable_space(text, text)',
        'plystra.reachable_owner(text, text)',
        'plystra.reachable_groups(text, text)',
        'plystra.reachable_group_ids(text, text)',
        'plystra.lookup_resources(text, text)',
        'plystra.allowed_resource(text, text, text)',
        'plystra.allowed_row(text, text, text, text, text)',
        'plystra.allowed_row_by_path(text, text, text, text, text)',
        'plystra.sensitive_key(text)',
        'plystra.redact_sensitive(jsonb)',
        'plystra.audit_writer_active()',
        'plystra.bundled_migrations()'];
    -- What only an administration backend may call, on top of the above: full traces (identity data of any
    -- actor), credentials' standing, the authenticated credential of a transaction, authentication events and
    -- the audit chain's tools. Archiving, dropping archived partitions and making partitions are the
    -- extension owner's alone: no role is granted them.
    admin_functions constant text[] := ARRAY[
        'plystra.explain(jsonb)',
        'plystra.decide_request(text, boolean)',
        'plystra.admin_permission(text, text, text, text)',
        'plystra.api_key_permission(text, text, text, text)',
        'plystra.authenticate(jsonb)',
        'plystra.decide_with_credential(jsonb, text, jsonb, boolean, boolean)',
        'plystra.lookup_subjects(text, text, text, text, integer)',
        'plystra.resolve_actor(text, text)',
        'plystra.replay(text, boolean)',
        'plystra.simulate(jsonb)',
        'plystra.set_credential(text, text, text, text, boolean)',
        'plystra.current_credential()',
        'plystra.audit_auth_event(text, text, text, text, jsonb)',
        'plystra.verify_audit_chain(text)',
        'plystra.audit_row_hash(plystra.audit_logs, bigint, text)',
        'plystra.audit_hash_input(plystra.audit_logs, bigint, text)',
        'plystra.audit_partitions()',
        'plystra.audit_writer_stats()'];
    -- Granted before 027, now the writer's and the owner's alone (an upgrade revokes them).
    withdrawn_functions constant text[] := ARRAY['plystra.seal_audit(integer)'];
    -- The administration backend (the REST front, connecting as a role that is a member of plystra_admin)
    -- reads and writes the Core, credential and login tables; it never deletes a Core row (soft delete), and
    -- it reads the audit log but writes it only through the functions above and the triggers. Its UPDATE is
    -- granted by column (every column but the primary key and created_at): a table-level UPDATE would let it take
    -- every lock mode on the table, ACCESS EXCLUSIVE included, and hold every decision that reads it.
    admin_tables constant text[] := ARRAY[
        'users', 'spaces', 'groups', 'members', 'user_members', 'roles', 'permissions', 'member_roles',
        'role_permissions', 'resources', 'resource_types', 'resource_actions', 'resource_mappings',
        'admin_grants', 'api_keys', 'sessions', 'login_failures'];
    admin_read_only constant text[] := ARRAY['audit_logs', 'audit_chain_heads', 'schema_migrations', 'usable_bindings',
                                              'active_admin_grants', 'audit_archives', 'audit_archive_partitions',
                                              'audit_archived_links'];
    f text;
    cols text;
BEGIN
    EXECUTE 'REVOKE ALL ON ALL FUNCTIONS IN SCHEMA plystra FROM PUBLIC';
    FOREACH f IN ARRAY admin_tables LOOP
        -- Revoking the table's UPDATE also revokes its column grants; they are granted again below.
        EXECUTE pg_catalog.format('REVOKE UPDATE ON plystra.%I FROM plystra_admin', f);
        EXECUTE pg_catalog.format('GRANT SELECT, INSERT ON plystra.%I TO plystra_admin', f);
        SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
        FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = ('plystra.' || pg_catalog.quote_ident(f))::regclass AND a.attnum > 0
          AND NOT a.attisdropped AND a.attname <> 'created_at'
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                          WHERE i.indrelid = a.attrelid AND i.indisprimary AND a.attnum = ANY (i.indkey));
        EXECUTE pg_catalog.format('GRANT UPDATE (%s) ON plystra.%I TO plystra_admin', cols, f);
    END LOOP;
    EXECUTE 'GRANT DELETE ON plystra.login_failures TO plystra_admin';
    FOREACH f IN ARRAY admin_read_only LOOP
        -- A table this build does not have yet (an upgrade in progress) is skipped, not an error.
        IF pg_catalog.to_regclass('plystra.' || pg_catalog.quote_ident(f)) IS NOT NULL THEN
            EXECUTE pg_catalog.format('GRANT SELECT ON plystra.%I TO plystra_admin', f);
        END IF;
    END LOOP;
    EXECUTE 'GRANT USAGE ON SCHEMA plystra TO plystra_app, plystra_admin';
    FOREACH f IN ARRAY app_functions LOOP
        -- A function this build does not have yet (an upgrade in progress) is skipped, not an error.
        IF pg_catalog.to_regprocedure(f) IS NOT NULL THEN
            EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO plystra_app', f);
        END IF;
    END LOOP;
    FOREACH f IN ARRAY admin_functions LOOP
        IF pg_catalog.to_regprocedure(f) IS NOT NULL THEN
            EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO plystra_admin', f);
        END IF;
    END LOOP;
    FOREACH f IN ARRAY withdrawn_functions LOOP
        IF pg_catalog.to_regprocedure(f) IS NOT NULL THEN
            EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM plystra_admin', f);
        END IF;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION plystra.apply_privileges() IS
'Revokes EXECUTE on every function of schema plystra from PUBLIC and grants the documented sets: plystra_app '
'(check, check_batch, allowed, set_actor, set_request_context, set_audit_space, current_actor and the '
'row-level-security lookups and row predicates; no table) and plystra_admin (member of plystra_app; also explain, '
'admin_permission, api_key_permission, authenticate, decide_with_credential, lookup_subjects, resolve_actor, '
'replay, simulate, set_credential, audit_auth_event, verify_audit_chain, audit_row_hash, audit_hash_input, '
'audit_partitions, audit_writer_stats; SELECT and INSERT on the Core, credential and login tables and UPDATE on '
'their columns but the primary key and created_at (no table-level UPDATE: it would allow every lock mode), '
'DELETE on login_failures, SELECT on the audit log, chain heads, archive records, ledger, usable_bindings '
'and active_admin_grants). Archiving, sealing and partition upkeep are granted to no role: the extension''s owner (and the audit writer) runs '
'them. Run at the end of the install and of every upgrade; the one list of who may call what.';

SELECT plystra.apply_privileges();
-- END migrations/027_admin_lock_modes.sql

-- An older version's install script run with this build's library already records every bundled migration
-- (plystra.bundled_migrations() comes from the library), so the row may exist.
INSERT INTO plystra.schema_migrations (version, name, checksum) VALUES ('027', 'admin_lock_modes', '961aba3be8ff889bf1800a65f01a64994230ef242bd48498b56133f26b65a490')
ON CONFLICT (version) DO UPDATE SET name = excluded.name, checksum = excluded.checksum;
