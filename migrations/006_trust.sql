-- Plystra Core schema, version 006: the trust model, in the database.
--
--   * Two documented roles: plystra_app (decisions, the acting context, the row-level-security lookups) and
--     plystra_admin (everything an administration backend such as the REST front needs). PUBLIC gets nothing:
--     plystra.apply_privileges() (called at the end of the install and of every upgrade) revokes EXECUTE on
--     every function of the schema from PUBLIC and grants the documented sets.
--   * The authenticated credential of a transaction (plystra.set_credential), recorded on every management audit
--     row beside the acting context, so that a body "actor" can never replace who really acted.
--   * Authentication events (login, lock-out, refresh, logout, member switch) as audit rows.
--   * API keys made by API keys: the parent link, a child never outlives its parent, revoking a key revokes the
--     keys it made.
--   * The instance always keeps an active super admin, whatever operation would remove the last one.
--   * Restores: a pg_dump / pg_restore session does not fabricate management audit rows for the rows it loads,
--     and the chain heads are dumped with the log.
--   * Sealing: one sealer at a time by a row lock that only the extension's owner can take (an advisory lock can
--     be taken by any role that can connect), and verification reports rows left unsealed too long.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'plystra_app') THEN
        CREATE ROLE plystra_app NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'plystra_admin') THEN
        CREATE ROLE plystra_admin NOLOGIN;
    END IF;
    IF NOT pg_catalog.pg_has_role('plystra_admin', 'plystra_app', 'MEMBER') THEN
        GRANT plystra_app TO plystra_admin;
    END IF;
END $$;

------------------------------------------------------------------------------------------------------------------
-- Privileges: the one list of what each role may call.
------------------------------------------------------------------------------------------------------------------

CREATE FUNCTION plystra.apply_privileges()
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
        'plystra.allowed(text, text, text, text, text, text, text)',
        'plystra.set_actor(text, text, text, text)',
        'plystra.set_request_context(text, text, text)',
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
    -- the audit chain's tools.
    admin_functions constant text[] := ARRAY[
        'plystra.explain(jsonb)',
        'plystra.decide_request(text, boolean)',
        'plystra.admin_permission(text, text, text, text)',
        'plystra.api_key_permission(text, text, text, text)',
        'plystra.set_credential(text, text, text, text, boolean)',
        'plystra.current_credential()',
        'plystra.audit_auth_event(text, text, text, text, jsonb)',
        'plystra.verify_audit_chain(text)',
        'plystra.audit_row_hash(plystra.audit_logs, bigint, text)',
        'plystra.seal_audit(integer)'];
    -- The administration backend (the REST front, connecting as a role that is a member of plystra_admin)
    -- reads and writes the Core, credential and login tables; it never deletes a Core row (soft delete), and
    -- it reads the audit log but writes it only through the functions above and the triggers.
    admin_tables constant text[] := ARRAY[
        'users', 'spaces', 'groups', 'members', 'user_members', 'roles', 'permissions', 'member_roles',
        'role_permissions', 'resources', 'resource_types', 'resource_actions', 'resource_mappings',
        'admin_grants', 'api_keys', 'sessions', 'login_failures'];
    admin_read_only constant text[] := ARRAY['audit_logs', 'audit_chain_heads', 'schema_migrations'];
    f text;
BEGIN
    EXECUTE 'REVOKE ALL ON ALL FUNCTIONS IN SCHEMA plystra FROM PUBLIC';
    FOREACH f IN ARRAY admin_tables LOOP
        EXECUTE pg_catalog.format('GRANT SELECT, INSERT, UPDATE ON plystra.%I TO plystra_admin', f);
    END LOOP;
    EXECUTE 'GRANT DELETE ON plystra.login_failures TO plystra_admin';
    FOREACH f IN ARRAY admin_read_only LOOP
        EXECUTE pg_catalog.format('GRANT SELECT ON plystra.%I TO plystra_admin', f);
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
'(check, allowed, set_actor, set_request_context, current_actor and the row-level-security lookups and row '
'predicates; no table) and plystra_admin (member of plystra_app; also explain, admin_permission, '
'api_key_permission, set_credential, audit_auth_event, verify_audit_chain, seal_audit; SELECT, INSERT, UPDATE on '
'the Core, credential and login tables, DELETE on login_failures, SELECT on the audit log, chain heads and '
'ledger). Run at the end of the install and of every upgrade; the one list of who may call what.';

------------------------------------------------------------------------------------------------------------------
-- The authenticated credential of a transaction.
------------------------------------------------------------------------------------------------------------------

CREATE FUNCTION plystra.set_credential(credential_type text, user_id text, session_id text, api_key_id text,
                                       actor_claimed boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF credential_type IS NULL OR credential_type NOT IN ('session', 'api_key') THEN
        RAISE EXCEPTION 'invalid credential type: %', coalesce(credential_type, 'null')
            USING ERRCODE = '22023', HINT = 'session or api_key';
    END IF;
    PERFORM pg_catalog.set_config('plystra.credential_type', credential_type, true),
            pg_catalog.set_config('plystra.credential_user_id', coalesce(user_id, ''), true),
            pg_catalog.set_config('plystra.credential_session_id', coalesce(session_id, ''), true),
            pg_catalog.set_config('plystra.credential_api_key_id', coalesce(api_key_id, ''), true),
            pg_catalog.set_config('plystra.credential_actor_claimed',
                                  CASE WHEN coalesce(actor_claimed, false) THEN 'true' ELSE 'false' END, true);
END;
$$;
COMMENT ON FUNCTION plystra.set_credential(text, text, text, text, boolean) IS
'set_credential(credential_type, user_id, session_id, api_key_id, actor_claimed): the authenticated credential '
'(session: its user and session id; api_key: the key id and its creator) of the rest of the current transaction. '
'Every management and authentication audit row records it beside the acting context (plystra.set_actor); '
'actor_claimed says that the acting context is an actor the caller named and was allowed to act as, not the '
'credential''s own. Only an administration backend (role plystra_admin) may call it.';

CREATE FUNCTION plystra.current_credential()
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN nullif(pg_catalog.current_setting('plystra.credential_type', true), '') IS NOT NULL THEN
        pg_catalog.jsonb_build_object(
            'type', pg_catalog.current_setting('plystra.credential_type', true),
            'user_id', nullif(pg_catalog.current_setting('plystra.credential_user_id', true), ''),
            'session_id', nullif(pg_catalog.current_setting('plystra.credential_session_id', true), ''),
            'api_key_id', nullif(pg_catalog.current_setting('plystra.credential_api_key_id', true), ''),
            'actor_claimed', pg_catalog.current_setting('plystra.credential_actor_claimed', true) = 'true')
    END;
$$;
COMMENT ON FUNCTION plystra.current_credential() IS
'The credential set by plystra.set_credential in this transaction, as {type, user_id, session_id, api_key_id, '
'actor_claimed}; NULL when none was set (plain SQL: the audit row then records session_user).';

------------------------------------------------------------------------------------------------------------------
-- Restores.
------------------------------------------------------------------------------------------------------------------

-- pg_dump's output and pg_restore both run with row_security = off and check_function_bodies = off (settings no
-- application sets), and a restore needs a superuser. Rows loaded that way are history, not new management acts:
-- their audit rows come from the dump itself.
CREATE FUNCTION plystra.restoring()
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.current_setting('row_security') = 'off'
       AND pg_catalog.current_setting('check_function_bodies') = 'off'
       AND coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user), false);
$$;
COMMENT ON FUNCTION plystra.restoring() IS
'Whether this session is restoring a dump: a superuser session with row_security and check_function_bodies off, '
'as pg_dump''s output and pg_restore set them. The management-audit trigger writes no row then (the dump holds '
'the original rows). A superuser could set the same to make changes unaudited; a superuser can also disable '
'triggers, so this grants no new power.';

------------------------------------------------------------------------------------------------------------------
-- Management audit: the credential beside the actor; nothing fabricated during a restore.
------------------------------------------------------------------------------------------------------------------

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
    actor_space text;
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

    -- The Space the row belongs to; instance-level rows fall back to the acting Space, else NULL. (The library
    -- is loaded first, as in append_context_audit, so that the setting read is one only set_actor could set.)
    PERFORM plystra.audit_writer_active();
    actor_space := nullif(pg_catalog.current_setting('plystra.actor_space_id', true), '');
    IF entity = 'space' THEN
        row_space := new_doc ->> 'id';
    ELSIF entity = 'role_permission' THEN
        SELECT r.space_id INTO row_space FROM plystra.roles AS r WHERE r.id = (new_doc ->> 'role_id');
    ELSE
        row_space := new_doc ->> 'space_id';
    END IF;
    row_space := coalesce(row_space, actor_space);

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
'writes nothing: logins and API-key use touch those all the time and are not management acts. Done in the '
'database so that plain SQL is audited exactly like HTTP. The row records the acting context (plystra.set_actor), '
'the authenticated credential (plystra.set_credential) and the database user. Writes nothing while a dump is '
'restored (plystra.restoring): the dump brings the original rows. The row snapshots go through '
'plystra.redact_sensitive, so password, token and key hashes never reach the log. SECURITY DEFINER because the '
'writer of a Core row usually has no privilege on audit_logs (and must not have one).';

-- One writer of context-carrying audit rows (management mutations and authentication events), so that both
-- record the acting context, the credential, the request and the database user the same way.
CREATE FUNCTION plystra.append_context_audit(row_space text, action text, resource_type text, resource_id text,
                                             decision text, body jsonb)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    uuid_hex text := pg_catalog.replace(pg_catalog.gen_random_uuid()::text, '-', '');
    rand_hex text;
    audit_id text;
    created timestamptz := pg_catalog.clock_timestamp();
    actor_user text;
    actor_member text;
    actor_user_member text;
    actor_space text;
    req_id text;
    req_ip text;
    req_agent text;
    -- The REST front's own id for the request, beside the caller's (which a caller may choose, even reuse).
    server_req_id text := nullif(pg_catalog.current_setting('plystra.server_request_id', true), '');
    request jsonb;
    trace jsonb;
BEGIN
    -- The settings read below are registered by the library as superuser-only. Calling one of its functions
    -- loads it if this session has not yet, which drops any value an unprivileged role set beforehand as a
    -- placeholder; only then are they read.
    PERFORM plystra.audit_writer_active();
    actor_user := nullif(pg_catalog.current_setting('plystra.actor_user_id', true), '');
    actor_member := nullif(pg_catalog.current_setting('plystra.actor_member_id', true), '');
    actor_user_member := nullif(pg_catalog.current_setting('plystra.actor_user_member_id', true), '');
    actor_space := nullif(pg_catalog.current_setting('plystra.actor_space_id', true), '');
    req_id := nullif(pg_catalog.current_setting('plystra.request_id', true), '');
    req_ip := nullif(pg_catalog.current_setting('plystra.request_ip', true), '');
    req_agent := nullif(pg_catalog.current_setting('plystra.request_user_agent', true), '');
    request := pg_catalog.jsonb_build_object('request_id', req_id, 'ip', req_ip, 'user_agent', req_agent);
    IF server_req_id IS NOT NULL THEN
        request := request || pg_catalog.jsonb_build_object('server_request_id', server_req_id);
    END IF;
    -- 16 random hex digits from a v4 UUID, skipping its fixed version digit (13th) and variant digit (17th).
    rand_hex := pg_catalog.substr(uuid_hex, 1, 12) || pg_catalog.substr(uuid_hex, 14, 3)
                || pg_catalog.substr(uuid_hex, 18, 1);
    audit_id := 'audit_' || rand_hex;
    trace := pg_catalog.jsonb_build_object(
        'trace_version', '1.0',
        'trace_id', 'trc_' || rand_hex,
        'decision', decision,
        'request', request,
        'actor', pg_catalog.jsonb_build_object('user_id', actor_user, 'member_id', actor_member,
                                               'user_member_id', actor_user_member, 'space_id', actor_space),
        'credential', plystra.current_credential(),
        'target', pg_catalog.jsonb_build_object('resource_type', resource_type, 'resource_id', resource_id),
        'db_user', session_user,
        'created_at', created) || coalesce(body, '{}');
    INSERT INTO plystra.audit_logs (id, space_id, actor_user_id, actor_member_id, actor_user_member_id, action,
                                    resource_type, resource_id, decision, deny_code, trace, request_id,
                                    ip_address, user_agent, created_at)
    VALUES (audit_id, row_space, actor_user, actor_member, actor_user_member, action,
            resource_type, resource_id, decision, NULL, trace, req_id, req_ip, req_agent, created);
    RETURN audit_id;
END;
$$;
COMMENT ON FUNCTION plystra.append_context_audit(text, text, text, text, text, jsonb) IS
'Appends one audit row for a management mutation or an authentication event, recording the acting context '
'(plystra.set_actor), the credential (plystra.set_credential), the request (plystra.set_request_context, and the '
'setting plystra.server_request_id as trace.request.server_request_id when the REST front set it) and the '
'database user; body is merged into the trace. Internal: called by tg_audit_mutation and audit_auth_event.';

CREATE FUNCTION plystra.audit_auth_event(action text, user_id text, space_id text, decision text, details jsonb)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF action IS NULL OR action !~ '^auth\.[a-z][a-z_]{0,63}$' THEN
        RAISE EXCEPTION 'invalid authentication event: %', coalesce(action, 'null')
            USING ERRCODE = '22023', HINT = 'auth.<event>, e.g. auth.login_succeeded';
    END IF;
    IF decision IS NULL OR decision NOT IN ('allow', 'deny') THEN
        RAISE EXCEPTION 'invalid decision: %', coalesce(decision, 'null') USING ERRCODE = '22023';
    END IF;
    RETURN plystra.append_context_audit(space_id, action, 'user', user_id, decision,
        pg_catalog.jsonb_build_object('reason', 'Authentication event',
                                      'details', plystra.redact_sensitive(coalesce(details, '{}'))));
END;
$$;
COMMENT ON FUNCTION plystra.audit_auth_event(text, text, text, text, jsonb) IS
'audit_auth_event(action, user_id, space_id, decision, details): appends one audit row for an authentication '
'event (auth.login_succeeded, auth.login_failed, auth.locked_out, auth.refreshed, auth.logged_out, '
'auth.member_switched, ...) with the credential and request of the transaction; details go through '
'plystra.redact_sensitive. Returns the audit row id. Only an administration backend (plystra_admin) may call it.';

------------------------------------------------------------------------------------------------------------------
-- API keys made by API keys.
------------------------------------------------------------------------------------------------------------------

ALTER TABLE plystra.api_keys ADD COLUMN created_by_api_key_id text REFERENCES plystra.api_keys (id);
CREATE INDEX api_keys_created_by_api_key_idx ON plystra.api_keys (created_by_api_key_id)
    WHERE created_by_api_key_id IS NOT NULL;

CREATE FUNCTION plystra.tg_api_keys_lineage()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parent plystra.api_keys;
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.created_by_api_key_id IS NULL OR plystra.restoring() THEN
            RETURN NEW;
        END IF;
        SELECT * INTO parent FROM plystra.api_keys k WHERE k.id = NEW.created_by_api_key_id;
        IF NOT FOUND OR parent.status <> 'active' OR parent.revoked_at IS NOT NULL OR parent.deleted_at IS NOT NULL
           OR (parent.expires_at IS NOT NULL AND parent.expires_at <= pg_catalog.statement_timestamp()) THEN
            RAISE EXCEPTION USING ERRCODE = '23514', CONSTRAINT = 'api_keys_parent_active',
                MESSAGE = 'plystra: an API key can only be created by an active API key';
        END IF;
        IF parent.expires_at IS NOT NULL AND (NEW.expires_at IS NULL OR NEW.expires_at > parent.expires_at) THEN
            RAISE EXCEPTION USING ERRCODE = '23514', CONSTRAINT = 'api_keys_child_outlives_parent',
                MESSAGE = 'plystra: an API key cannot outlive the API key that creates it',
                DETAIL = pg_catalog.format('The creating key expires at %s.', parent.expires_at);
        END IF;
        RETURN NEW;
    END IF;
    -- AFTER UPDATE: a key that stopped being usable takes the keys it made with it (they cascade further).
    IF (NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL)
       OR (NEW.status <> 'active' AND OLD.status = 'active')
       OR (NEW.deleted_at IS NOT NULL AND OLD.deleted_at IS NULL) THEN
        UPDATE plystra.api_keys c
        SET status = 'revoked', revoked_at = pg_catalog.now(), revoked_by_user_id = NEW.revoked_by_user_id,
            revoked_reason = 'the API key that created it was revoked (' || NEW.id || ')'
        WHERE c.created_by_api_key_id = NEW.id AND c.revoked_at IS NULL;
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION plystra.tg_api_keys_lineage() IS
'API keys created by an API key (created_by_api_key_id): BEFORE INSERT, the creating key must be active and the new '
'key must expire no later than it (SQLSTATE 23514, constraint api_keys_child_outlives_parent); AFTER UPDATE, '
'revoking, disabling or deleting a key revokes every key it created, and theirs in turn.';

CREATE TRIGGER trg_api_keys_lineage_insert BEFORE INSERT ON plystra.api_keys
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_api_keys_lineage();
CREATE TRIGGER trg_api_keys_lineage_revoke AFTER UPDATE ON plystra.api_keys
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_api_keys_lineage();

------------------------------------------------------------------------------------------------------------------
-- The last super admin.
------------------------------------------------------------------------------------------------------------------

CREATE FUNCTION plystra.active_super_admin_count()
RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(DISTINCT g.user_id)
    FROM plystra.admin_grants g
    JOIN plystra.users u ON u.id = g.user_id AND u.status = 'active' AND u.deleted_at IS NULL
    WHERE g.level = 'instance_super_admin' AND g.status = 'active' AND g.revoked_at IS NULL
      AND g.deleted_at IS NULL AND (g.expires_at IS NULL OR g.expires_at > pg_catalog.statement_timestamp());
$$;
COMMENT ON FUNCTION plystra.active_super_admin_count() IS
'How many active users hold an active, unexpired instance_super_admin grant (the rule plystra.admin_permission '
'applies).';

CREATE FUNCTION plystra.tg_keep_a_super_admin()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    was_super boolean;
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        was_super := OLD.status = 'active' AND OLD.deleted_at IS NULL
            AND (NEW.status <> 'active' OR NEW.deleted_at IS NOT NULL)
            AND EXISTS (SELECT 1 FROM plystra.admin_grants g
                        WHERE g.user_id = OLD.id AND g.level = 'instance_super_admin' AND g.status = 'active'
                          AND g.revoked_at IS NULL AND g.deleted_at IS NULL
                          AND (g.expires_at IS NULL OR g.expires_at > pg_catalog.statement_timestamp()));
    ELSE
        was_super := OLD.level = 'instance_super_admin' AND OLD.status = 'active' AND OLD.revoked_at IS NULL
            AND OLD.deleted_at IS NULL
            AND (NEW.level <> 'instance_super_admin' OR NEW.status <> 'active' OR NEW.revoked_at IS NOT NULL
                 OR NEW.deleted_at IS NOT NULL
                 OR (NEW.expires_at IS NOT NULL AND NEW.expires_at <= pg_catalog.statement_timestamp()));
    END IF;
    IF NOT was_super THEN
        RETURN NULL;
    END IF;
    -- Two concurrent removals of the last two super admins must not both pass: serialize them (these are rare
    -- administrative acts) and count again with a snapshot taken after the lock.
    LOCK TABLE plystra.admin_grants IN SHARE ROW EXCLUSIVE MODE;
    IF plystra.active_super_admin_count() = 0 THEN
        RAISE EXCEPTION USING ERRCODE = '23514', CONSTRAINT = 'last_super_admin',
            MESSAGE = 'plystra: the instance must keep an active super admin',
            DETAIL = 'This change would leave no active user with an instance_super_admin grant.',
            HINT = 'Grant instance_super_admin to another active user first.';
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION plystra.tg_keep_a_super_admin() IS
'AFTER UPDATE trigger on users and admin_grants: refuses (SQLSTATE 23514, constraint last_super_admin) any change '
'that leaves the instance with no active super admin (revoking, disabling, expiring or deleting the grant, or '
'disabling or deleting the user). Concurrent removals are serialized.';

CREATE TRIGGER trg_users_keep_a_super_admin AFTER UPDATE ON plystra.users
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_keep_a_super_admin();
CREATE TRIGGER trg_admin_grants_keep_a_super_admin AFTER UPDATE ON plystra.admin_grants
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_keep_a_super_admin();

------------------------------------------------------------------------------------------------------------------
-- Sealing and verification.
------------------------------------------------------------------------------------------------------------------

-- One row; whoever holds its row lock seals. Locking a row FOR UPDATE needs the UPDATE privilege, which only
-- the extension's owner has here, unlike an advisory lock, which any role that can connect can take.
CREATE TABLE plystra.audit_sealer (
    id boolean PRIMARY KEY DEFAULT true CONSTRAINT audit_sealer_one_row CHECK (id)
);
INSERT INTO plystra.audit_sealer DEFAULT VALUES;
COMMENT ON TABLE plystra.audit_sealer IS
'One row whose row lock is held by the session sealing the audit chains (append_audit, seal_audit).';

CREATE FUNCTION plystra.audit_sealer_lock()
RETURNS boolean
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM plystra.audit_sealer FOR UPDATE SKIP LOCKED);
$$;
COMMENT ON FUNCTION plystra.audit_sealer_lock() IS
'Takes the sealer''s row lock until the transaction ends, without waiting: true when taken, false when another '
'session seals now.';

-- The append-only trigger runs as the extension's owner: it calls audit_row_hash, which PUBLIC may not execute,
-- and a role granted UPDATE on the log must meet the append-only refusal, not a permission error on a helper.
ALTER FUNCTION plystra.tg_audit_logs_append_only() SECURITY DEFINER;

CREATE OR REPLACE FUNCTION plystra.append_audit(rows jsonb)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    batch plystra.audit_logs[];
    r plystra.audit_logs;
    n integer;
    heads jsonb := '{}';   -- space_key -> [position, hash], read once per chain per batch
    key text;
    pos bigint;
    prev text;
    -- One sealer at a time keeps each chain a line. If another holds the chains now, these rows go in unsealed
    -- and plystra.seal_audit() seals them within a second: decisions never wait on sealing.
    sealing boolean := plystra.audit_sealer_lock();
BEGIN
    -- Parsed once; each element is then updated in place (plpgsql keeps the array expanded).
    batch := ARRAY(SELECT p FROM pg_catalog.jsonb_populate_recordset(NULL::plystra.audit_logs, rows) AS p);
    n := coalesce(pg_catalog.array_length(batch, 1), 0);
    FOR i IN 1 .. n LOOP
        r := batch[i];
        r.created_at := coalesce(r.created_at, pg_catalog.clock_timestamp());
        IF sealing THEN
            key := coalesce(r.space_id, '');
            IF NOT heads ? key THEN
                SELECT h.chain_position, h.row_hash INTO pos, prev FROM plystra.audit_chain_heads h WHERE h.space_key = key;
                heads := heads || pg_catalog.jsonb_build_object(key, pg_catalog.jsonb_build_array(coalesce(pos, 0), coalesce(prev, '')));
            END IF;
            r.chain_position := (heads -> key ->> 0)::bigint + 1;
            r.prev_hash := heads -> key ->> 1;
            r.row_hash := plystra.audit_row_hash(r, r.chain_position, r.prev_hash);
            heads := pg_catalog.jsonb_set(heads, ARRAY[key], pg_catalog.jsonb_build_array(r.chain_position, r.row_hash));
        END IF;
        batch[i] := r;
    END LOOP;
    INSERT INTO plystra.audit_logs (id, space_id, actor_user_id, actor_member_id, actor_user_member_id, action,
                                    resource_type, resource_id, decision, deny_code, trace, request_id, ip_address,
                                    user_agent, created_at, chain_position, prev_hash, row_hash)
    SELECT b.id, b.space_id, b.actor_user_id, b.actor_member_id, b.actor_user_member_id, b.action, b.resource_type,
           b.resource_id, b.decision, b.deny_code, b.trace, b.request_id, b.ip_address, b.user_agent, b.created_at,
           b.chain_position, b.prev_hash, b.row_hash
    FROM pg_catalog.unnest(batch) AS b;
    INSERT INTO plystra.audit_chain_heads AS h (space_key, chain_position, row_hash)
    SELECT e.key, (e.value ->> 0)::bigint, e.value ->> 1 FROM pg_catalog.jsonb_each(heads) AS e
    ON CONFLICT (space_key) DO UPDATE SET chain_position = excluded.chain_position, row_hash = excluded.row_hash;
    RETURN n;
END;
$$;

-- SECURITY DEFINER: an administration role (plystra_admin) may seal without holding UPDATE on the log or the
-- sealer's lock itself; sealing only ever writes what the chain implies.
CREATE OR REPLACE FUNCTION plystra.seal_audit(max_rows integer DEFAULT 10000)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r plystra.audit_logs;
    link record;
    h text;
    n integer := 0;
BEGIN
    -- Another sealer is at work: it will seal these rows too.
    IF NOT plystra.audit_sealer_lock() THEN
        RETURN 0;
    END IF;
    FOR r IN SELECT * FROM plystra.audit_logs WHERE row_hash IS NULL ORDER BY seq LIMIT max_rows LOOP
        SELECT * INTO link FROM plystra.audit_chain_next(r.space_id);
        h := plystra.audit_row_hash(r, link.chain_position, link.prev_hash);
        UPDATE plystra.audit_logs SET chain_position = link.chain_position, prev_hash = link.prev_hash, row_hash = h
        WHERE id = r.id;
        UPDATE plystra.audit_chain_heads SET chain_position = link.chain_position, row_hash = h
        WHERE space_key = coalesce(r.space_id, '');
        n := n + 1;
    END LOOP;
    RETURN n;
END;
$$;

CREATE FUNCTION plystra.audit_unsealed_alarm()
RETURNS interval
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(nullif(pg_catalog.current_setting('plystra.audit_unsealed_alarm', true), '')::interval,
                    interval '10 seconds');
$$;
COMMENT ON FUNCTION plystra.audit_unsealed_alarm() IS
'How long an audit row may stay unsealed before verification reports it: the setting plystra.audit_unsealed_alarm '
'(an interval, default 10 seconds; the audit writer seals every second).';

-- '' names the instance-level chain (rows without a Space); rows left unsealed longer than
-- plystra.audit_unsealed_alarm (default 10 s) are a problem, not an intact chain.
CREATE OR REPLACE FUNCTION plystra.verify_audit_chain(space_id text DEFAULT NULL)
RETURNS TABLE (space_key text, sealed_rows bigint, unsealed_rows bigint, broken_at_position bigint,
               broken_audit_id text, problem text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH links AS (
        SELECT coalesce(a.space_id, '') AS space_key, a.id, a.chain_position, a.prev_hash, a.row_hash,
               plystra.audit_row_hash(a, a.chain_position, a.prev_hash) AS recomputed,
               lag(a.row_hash) OVER w AS previous_hash,
               lag(a.chain_position) OVER w AS previous_position
        FROM plystra.audit_logs a
        WHERE a.row_hash IS NOT NULL
          AND (verify_audit_chain.space_id IS NULL OR coalesce(a.space_id, '') = verify_audit_chain.space_id)
        WINDOW w AS (PARTITION BY coalesce(a.space_id, '') ORDER BY a.chain_position)
    ),
    unsealed AS (
        SELECT coalesce(a.space_id, '') AS space_key, count(*) AS rows,
               count(*) FILTER (WHERE a.created_at < pg_catalog.statement_timestamp() - plystra.audit_unsealed_alarm())
                   AS stale
        FROM plystra.audit_logs a
        WHERE a.row_hash IS NULL
          AND (verify_audit_chain.space_id IS NULL OR coalesce(a.space_id, '') = verify_audit_chain.space_id)
        GROUP BY 1
    ),
    problems AS (
        SELECT space_key, chain_position, id,
               CASE
                   WHEN chain_position <> coalesce(previous_position, 0) + 1
                       THEN format('link %s is missing (a sealed row was deleted)', coalesce(previous_position, 0) + 1)
                   WHEN prev_hash <> coalesce(previous_hash, '') THEN 'prev_hash does not match the previous row''s hash'
                   WHEN row_hash <> recomputed THEN 'the row''s content does not match its hash (it was changed)'
               END AS problem
        FROM links
    ),
    heads AS (
        SELECT h.space_key, h.chain_position, h.row_hash FROM plystra.audit_chain_heads h
        WHERE verify_audit_chain.space_id IS NULL OR h.space_key = verify_audit_chain.space_id
    ),
    last_links AS (
        SELECT DISTINCT ON (space_key) space_key, chain_position, row_hash FROM links ORDER BY space_key, chain_position DESC
    )
    SELECT k.space_key,
           (SELECT count(*) FROM links l WHERE l.space_key = k.space_key),
           coalesce(u.rows, 0),
           coalesce(p.chain_position, CASE WHEN t.chain_position IS DISTINCT FROM hd.chain_position
                                              OR t.row_hash IS DISTINCT FROM hd.row_hash THEN hd.chain_position END),
           p.id,
           coalesce(p.problem, CASE WHEN t.chain_position IS DISTINCT FROM hd.chain_position
                                       OR t.row_hash IS DISTINCT FROM hd.row_hash
                                    THEN 'the chain ends before its recorded head (sealed rows were deleted)' END,
                    CASE WHEN u.stale > 0
                         THEN format('%s rows left unsealed for longer than %s (sealing is held back or stopped)',
                                     u.stale, plystra.audit_unsealed_alarm()) END)
    FROM (SELECT space_key FROM heads UNION SELECT space_key FROM links UNION SELECT space_key FROM unsealed) k
    LEFT JOIN LATERAL (SELECT * FROM problems p WHERE p.space_key = k.space_key AND p.problem IS NOT NULL
                       ORDER BY p.chain_position LIMIT 1) p ON true
    LEFT JOIN heads hd ON hd.space_key = k.space_key
    LEFT JOIN last_links t ON t.space_key = k.space_key
    LEFT JOIN unsealed u ON u.space_key = k.space_key
    ORDER BY k.space_key
$$;
COMMENT ON FUNCTION plystra.verify_audit_chain(text) IS
'Verifies every Space''s audit chain (or one: a Space id, or '''' for the instance-level chain): one row per chain '
'with its sealed and unsealed row counts and, when something is wrong, what: a changed row, a deleted row, a chain '
'cut short of its head (with the first broken position and its audit row), or rows left unsealed for longer than '
'plystra.audit_unsealed_alarm (sealing held back). problem NULL means the chain is intact and sealed in time.';
