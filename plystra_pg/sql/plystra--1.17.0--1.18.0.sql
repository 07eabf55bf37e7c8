-- Plystra 1.17.0 -> 1.18.0 (ALTER EXTENSION plystra UPDATE, or plystractl migrate up).
-- Applies, and records in the ledger:
--   022: the audit writer's queue is visible to operators (plystra.audit_writer_stats, granted to plystra_admin).
-- 1.18.0's library also keeps a reach answer's array for repeated calls, and shares a reach between the questions
-- of one statement in a transaction that has written (no schema change for either).
-- tests/catalog_check.sh proves that an updated 1.0.0 equals a fresh 1.18.0.
-- Each block between markers is the migration file, verbatim.
\echo Use "ALTER EXTENSION plystra UPDATE TO '1.18.0'" to load this file. \quit

-- The audit writer's queue, read from shared memory (plystra_pg/src/audit_writer.rs).
CREATE FUNCTION plystra.audit_writer_stats()
RETURNS jsonb
STRICT VOLATILE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'audit_writer_stats_wrapper';

-- BEGIN migrations/022_audit_writer_stats.sql
-- Plystra Core schema, version 022: the audit writer's queue is visible to operators.
--
-- Every audited decision waits for the audit writer (a background worker) to commit its row. When the writer falls
-- behind, decisions queue for it; until now nothing showed that but their latency. plystra.audit_writer_stats()
-- (the library's; it reads the queue in shared memory) returns whether a writer serves this database, how often a
-- writer started, its transactions and refused rows, and for each lane (single decisions; requests of many) the
-- records waiting, their bytes against the lane's ring and the rows committed. The REST front's /metrics exports it
-- (plystra_audit_writer_*). It is granted to plystra_admin with the audit chain's other tools: this file adds it to
-- plystra.apply_privileges, the one list of who may call what (the install and every upgrade run it).

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
        'plystra.seal_audit(integer)',
        'plystra.audit_writer_stats()'];
    -- The administration backend (the REST front, connecting as a role that is a member of plystra_admin)
    -- reads and writes the Core, credential and login tables; it never deletes a Core row (soft delete), and
    -- it reads the audit log but writes it only through the functions above and the triggers.
    admin_tables constant text[] := ARRAY[
        'users', 'spaces', 'groups', 'members', 'user_members', 'roles', 'permissions', 'member_roles',
        'role_permissions', 'resources', 'resource_types', 'resource_actions', 'resource_mappings',
        'admin_grants', 'api_keys', 'sessions', 'login_failures'];
    admin_read_only constant text[] := ARRAY['audit_logs', 'audit_chain_heads', 'schema_migrations', 'usable_bindings',
                                              'active_admin_grants', 'audit_archives', 'audit_archive_partitions',
                                              'audit_archived_links'];
    f text;
BEGIN
    EXECUTE 'REVOKE ALL ON ALL FUNCTIONS IN SCHEMA plystra FROM PUBLIC';
    FOREACH f IN ARRAY admin_tables LOOP
        EXECUTE pg_catalog.format('GRANT SELECT, INSERT, UPDATE ON plystra.%I TO plystra_admin', f);
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
END;
$$;
COMMENT ON FUNCTION plystra.apply_privileges() IS
'Revokes EXECUTE on every function of schema plystra from PUBLIC and grants the documented sets: plystra_app '
'(check, check_batch, allowed, set_actor, set_request_context, set_audit_space, current_actor and the '
'row-level-security lookups and row predicates; no table) and plystra_admin (member of plystra_app; also explain, '
'admin_permission, api_key_permission, authenticate, decide_with_credential, lookup_subjects, resolve_actor, '
'replay, simulate, set_credential, audit_auth_event, verify_audit_chain, audit_row_hash, audit_hash_input, '
'audit_partitions, seal_audit, audit_writer_stats; SELECT, INSERT, UPDATE on the Core, credential and login '
'tables, DELETE on login_failures, SELECT on the audit log, chain heads, archive records, ledger, usable_bindings '
'and active_admin_grants). Archiving and partition upkeep are granted to no role: the extension''s owner runs '
'them. Run at the end of the install and of every upgrade; the one list of who may call what.';
-- END migrations/022_audit_writer_stats.sql

-- An older version's install script run with this build's library already records every bundled migration
-- (plystra.bundled_migrations() comes from the library), so the row may exist.
INSERT INTO plystra.schema_migrations (version, name, checksum) VALUES ('022', 'audit_writer_stats', 'c9c1a3af4a8cce8b732134f4236e53f284af72c3bb1f7e286bdb3e942cba4261')
ON CONFLICT (version) DO UPDATE SET name = excluded.name, checksum = excluded.checksum;

COMMENT ON FUNCTION plystra.audit_writer_stats() IS
'The audit writer''s queue (needs shared_preload_libraries = ''plystra''): {active (a writer serves this '
'database), preloaded, writer_starts, transactions, rows_refused, lanes: {single, bulk: {queued_records, '
'queued_bytes, capacity_bytes, rows_committed}}}. single holds one decision''s row, bulk the rows of requests of '
'many decisions; queued_* is what waits in the lane''s ring now, the rest count from the server''s start. In a '
'database the writer does not serve, only {active: false, preloaded}: the counters are another database''s. '
'Granted to plystra_admin (the REST front exports it on /metrics).';

-- Last: who may call what (PUBLIC nothing; plystra_app and plystra_admin their documented sets).
SELECT plystra.apply_privileges();
