-- Plystra 1.10.0 -> 1.11.0 (ALTER EXTENSION plystra UPDATE, or plystractl migrate up).
-- Applies, and records in the ledger:
--   016: a management audit row for an instance-level row (a User, a Permission, a registry entry, an instance API
--        key or admin grant) is filed in the instance chain, or in the Space plystra.set_audit_space names, never
--        in the acting Space by default.
-- tests/catalog_check.sh proves that an updated 1.0.0 equals a fresh 1.11.0.
-- Each block between markers is the migration file, verbatim.
\echo Use "ALTER EXTENSION plystra UPDATE TO '1.11.0'" to load this file. \quit

-- BEGIN migrations/016_instance_rows_audit.sql
-- Plystra Core schema, version 016: instance-level management rows stay out of the tenants' audit trails.
--
-- Until now a management audit row for a row that belongs to no Space (a User, a Permission, a Resource Registry
-- entry, an instance-level API key or admin grant) was filed in the acting Space: an instance super admin acting
-- through a binding in a tenant's Space filed the instance's administration (new users with their e-mail, instance
-- keys with their permissions, instance super-admin grants) in that tenant's audit trail, where anyone holding
-- audit:read on that Space read it. Now such a row is filed in the instance chain (space_id NULL), or in the one
-- Space the transaction names explicitly with plystra.set_audit_space (the REST front's audit_space_id, accepted
-- from instance credentials only). A row of a Space is filed in its Space, as before.

CREATE FUNCTION plystra.set_audit_space(space_id text)
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.set_config('plystra.audit_space_id', coalesce(space_id, ''), true);
$$;
COMMENT ON FUNCTION plystra.set_audit_space(text) IS
'Names, for the rest of the current transaction, the Space in which management audit rows for instance-level '
'rows (Users, Permissions, registry entries, instance API keys and admin grants) are filed; NULL or empty: the '
'instance chain, the default. Rows that belong to a Space are filed in their Space whatever this says.';

CREATE OR REPLACE FUNCTION plystra.tg_audit_mutation()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- Columns that change on every login or API-key use; an UPDATE touching only these is not a management act.
    bookkeeping constant text[] := ARRAY['updated_at', 'last_used_at', 'last_login_at'];
    entity constant text := TG_ARGV[0];
    new_doc constant jsonb := pg_catalog.to_jsonb(NEW);
    old_doc jsonb;
    verb text;
    row_space text;
    audit_space text;
    trace jsonb;
BEGIN
    IF entity IS NULL OR entity = '' THEN
        RAISE EXCEPTION 'plystra: tg_audit_mutation() on %.% needs the entity name as its argument',
            TG_TABLE_SCHEMA, TG_TABLE_NAME USING ERRCODE = '39P01';
    END IF;
    IF plystra.restoring() THEN
        RETURN NULL;
    END IF;

    IF TG_OP = 'INSERT' THEN
        verb := 'created';
    ELSIF TG_OP = 'UPDATE' THEN
        old_doc := pg_catalog.to_jsonb(OLD);
        IF (new_doc - bookkeeping) = (old_doc - bookkeeping) THEN
            RETURN NULL;  -- only bookkeeping columns changed (or nothing at all)
        END IF;
        verb := CASE
            WHEN (new_doc ->> 'deleted_at') IS NOT NULL AND (old_doc ->> 'deleted_at') IS NULL THEN 'deleted'
            WHEN (new_doc ->> 'deleted_at') IS NULL AND (old_doc ->> 'deleted_at') IS NOT NULL THEN 'restored'
            WHEN (new_doc ->> 'status') IS DISTINCT FROM (old_doc ->> 'status') THEN
                CASE new_doc ->> 'status'
                    WHEN 'active' THEN 'restored'
                    WHEN 'disabled' THEN 'disabled'
                    WHEN 'revoked' THEN 'revoked'
                    WHEN 'archived' THEN 'archived'
                    ELSE 'updated'
                END
            ELSE 'updated'
        END;
    ELSE
        RAISE EXCEPTION 'plystra: tg_audit_mutation() fires on INSERT and UPDATE only, not %', TG_OP
            USING ERRCODE = '39P01';
    END IF;

    -- The Space the row belongs to; an instance-level row (a User, a Permission, a registry entry, an instance
    -- API key or admin grant) is filed in the Space plystra.set_audit_space named for this transaction, else in
    -- the instance chain (NULL). Never in the acting Space by default: a Space's audit readers would read the
    -- instance's administration there. (The library is loaded first, as in append_context_audit, so that the
    -- setting read is one only the setter could set.)
    PERFORM plystra.audit_writer_active();
    audit_space := nullif(pg_catalog.current_setting('plystra.audit_space_id', true), '');
    IF entity = 'space' THEN
        row_space := new_doc ->> 'id';
    ELSIF entity = 'role_permission' THEN
        SELECT r.space_id INTO row_space FROM plystra.roles AS r WHERE r.id = (new_doc ->> 'role_id');
    ELSE
        row_space := new_doc ->> 'space_id';
    END IF;
    row_space := coalesce(row_space, audit_space);

    trace := pg_catalog.jsonb_build_object(
        'reason', 'Core management mutation was accepted',
        'operation', TG_OP,
        'details', plystra.redact_sensitive(new_doc));
    IF TG_OP = 'UPDATE' THEN
        trace := trace || pg_catalog.jsonb_build_object('before', plystra.redact_sensitive(old_doc));
    END IF;
    PERFORM plystra.append_context_audit(row_space, entity || '.' || verb, entity, new_doc ->> 'id', 'allow', trace);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION plystra.tg_audit_mutation() IS
'AFTER INSERT OR UPDATE row trigger on every Core table (argument: the entity name, e.g. member_role). Appends '
'one plystra.audit_logs row per management mutation, action <entity>.<verb>: created; deleted / restored when '
'deleted_at is set / cleared; restored, disabled, revoked or archived when status changes to active, disabled, '
'revoked or archived; updated otherwise. An UPDATE that changes only updated_at, last_used_at or last_login_at '
'writes nothing: logins and API-key use touch those all the time and are not management acts. The row is filed '
'in the Space of the changed row (a RolePermission: its Role''s); an instance-level row in the Space '
'plystra.set_audit_space named for the transaction, else in the instance chain (space_id NULL), never in the '
'acting Space by default. Done in the '
'database so that plain SQL is audited exactly like HTTP. The row records the acting context (plystra.set_actor), '
'the authenticated credential (plystra.set_credential) and the database user. Writes nothing while a dump is '
'restored (plystra.restoring): the dump brings the original rows. The row snapshots go through '
'plystra.redact_sensitive, so password, token and key hashes never reach the log. SECURITY DEFINER because the '
'writer of a Core row usually has no privilege on audit_logs (and must not have one).';

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
        'plystra.seal_audit(integer)'];
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
'(check, check_batch, allowed, set_actor, set_request_context, set_audit_space, current_actor and the row-level-security lookups and row '
'predicates; no table) and plystra_admin (member of plystra_app; also explain, admin_permission, '
'api_key_permission, authenticate, decide_with_credential, lookup_subjects, resolve_actor, replay, simulate, set_credential, audit_auth_event, '
'verify_audit_chain, audit_row_hash, audit_hash_input, audit_partitions, seal_audit; SELECT, INSERT, UPDATE on '
'the Core, credential and login tables, DELETE on login_failures, SELECT on the audit log, chain heads, '
'archive records, ledger, usable_bindings and active_admin_grants). Archiving and partition upkeep are granted to '
'no role: the extension''s owner runs them. Run at the end of the install and of every upgrade; the one list of who '
'may call what.';
-- END migrations/016_instance_rows_audit.sql

-- An older version's install script run with this build's library already records every bundled migration
-- (plystra.bundled_migrations() comes from the library), so the row may exist.
INSERT INTO plystra.schema_migrations (version, name, checksum) VALUES ('016', 'instance_rows_audit', 'dd5926953e88d484814c13dba41d21ae4b1417136bd181fe7524d8bd38ace740')
ON CONFLICT (version) DO UPDATE SET name = excluded.name, checksum = excluded.checksum;

-- Last: who may call what (PUBLIC nothing; plystra_app and plystra_admin their documented sets).
SELECT plystra.apply_privileges();
