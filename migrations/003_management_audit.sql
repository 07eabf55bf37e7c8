-- Plystra Core schema, version 003: every Core management mutation leaves an audit row.
--
-- The reference wrote management audit rows from its HTTP handlers only (recordMutationAudit), so a change made
-- in plain SQL, a migration or a console went unrecorded, and rows without a Space were skipped. Here the
-- database writes the row itself, from an AFTER INSERT OR UPDATE trigger on every Core table: a change made
-- through SQL leaves the same audit row as one made through HTTP, and the actor and request come from the
-- acting context of the transaction (plystra.set_actor / plystra.set_request_context, sql/actor_context.sql).
-- Deletes need no audit: 002 makes these tables soft-delete only, so "deleted" is an UPDATE of deleted_at.
--
-- The trigger reads the acting-context settings directly with current_setting(..., true) rather than through
-- plystra.current_actor(), so that this file does not depend on the order in which actor_context.sql is loaded.

CREATE FUNCTION plystra.tg_audit_mutation()
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
    uuid_hex text;
    rand_hex text;
    audit_id text;
    trace_id text;
    created timestamptz;
    actor_user text := nullif(pg_catalog.current_setting('plystra.actor_user_id', true), '');
    actor_member text := nullif(pg_catalog.current_setting('plystra.actor_member_id', true), '');
    actor_user_member text := nullif(pg_catalog.current_setting('plystra.actor_user_member_id', true), '');
    actor_space text := nullif(pg_catalog.current_setting('plystra.actor_space_id', true), '');
    req_id text := nullif(pg_catalog.current_setting('plystra.request_id', true), '');
    req_ip text := nullif(pg_catalog.current_setting('plystra.request_ip', true), '');
    req_agent text := nullif(pg_catalog.current_setting('plystra.request_user_agent', true), '');
    trace jsonb;
BEGIN
    IF entity IS NULL OR entity = '' THEN
        RAISE EXCEPTION 'plystra: tg_audit_mutation() on %.% needs the entity name as its argument',
            TG_TABLE_SCHEMA, TG_TABLE_NAME USING ERRCODE = '39P01';
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

    -- The Space the row belongs to; instance-level rows fall back to the acting Space, else NULL.
    IF entity = 'space' THEN
        row_space := new_doc ->> 'id';
    ELSIF entity = 'role_permission' THEN
        SELECT r.space_id INTO row_space FROM plystra.roles AS r WHERE r.id = (new_doc ->> 'role_id');
    ELSE
        row_space := new_doc ->> 'space_id';
    END IF;
    row_space := coalesce(row_space, actor_space);

    -- 16 random hex digits from a v4 UUID, skipping its fixed version digit (13th) and variant digit (17th).
    uuid_hex := pg_catalog.replace(pg_catalog.gen_random_uuid()::text, '-', '');
    rand_hex := pg_catalog.substr(uuid_hex, 1, 12) || pg_catalog.substr(uuid_hex, 14, 3)
                || pg_catalog.substr(uuid_hex, 18, 1);
    audit_id := 'audit_' || rand_hex;
    trace_id := 'trc_' || rand_hex;
    created := pg_catalog.clock_timestamp();

    trace := pg_catalog.jsonb_build_object(
        'trace_version', '1.0',
        'trace_id', trace_id,
        'decision', 'allow',
        'reason', 'Core management mutation was accepted',
        'operation', TG_OP,
        'request', pg_catalog.jsonb_build_object('request_id', req_id, 'ip', req_ip, 'user_agent', req_agent),
        'actor', pg_catalog.jsonb_build_object('user_id', actor_user, 'member_id', actor_member,
                                               'user_member_id', actor_user_member, 'space_id', actor_space),
        'target', pg_catalog.jsonb_build_object('resource_type', entity, 'resource_id', new_doc ->> 'id'),
        'details', plystra.redact_sensitive(new_doc),
        'db_user', session_user,
        'created_at', created);
    IF TG_OP = 'UPDATE' THEN
        trace := trace || pg_catalog.jsonb_build_object('before', plystra.redact_sensitive(old_doc));
    END IF;

    INSERT INTO plystra.audit_logs (id, space_id, actor_user_id, actor_member_id, actor_user_member_id, action,
                                    resource_type, resource_id, decision, deny_code, trace, request_id,
                                    ip_address, user_agent, created_at)
    VALUES (audit_id, row_space, actor_user, actor_member, actor_user_member, entity || '.' || verb,
            entity, new_doc ->> 'id', 'allow', NULL, trace, req_id, req_ip, req_agent, created);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION plystra.tg_audit_mutation() IS
'AFTER INSERT OR UPDATE row trigger on every Core table (argument: the entity name, e.g. member_role). Appends '
'one plystra.audit_logs row per management mutation, action <entity>.<verb>: created; deleted / restored when '
'deleted_at is set / cleared; restored, disabled, revoked or archived when status changes to active, disabled, '
'revoked or archived; updated otherwise. An UPDATE that changes only updated_at, last_used_at or last_login_at '
'writes nothing: logins and API-key use touch those all the time and are not management acts. Done in the '
'database so that plain SQL is audited exactly like HTTP; actor and request come from the transaction''s acting '
'context. The row snapshots in the trace go through plystra.redact_sensitive, so password, token and key hashes '
'never reach the log. SECURITY DEFINER because the writer of a Core row usually has no privilege on audit_logs '
'(and must not have one).';

CREATE TRIGGER trg_users_audit_mutation AFTER INSERT OR UPDATE ON plystra.users
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_audit_mutation('user');
CREATE TRIGGER trg_spaces_audit_mutation AFTER INSERT OR UPDATE ON plystra.spaces
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_audit_mutation('space');
CREATE TRIGGER trg_groups_audit_mutation AFTER INSERT OR UPDATE ON plystra.groups
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_audit_mutation('group');
CREATE TRIGGER trg_members_audit_mutation AFTER INSERT OR UPDATE ON plystra.members
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_audit_mutation('member');
CREATE TRIGGER trg_user_members_audit_mutation AFTER INSERT OR UPDATE ON plystra.user_members
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_audit_mutation('user_member');
CREATE TRIGGER trg_roles_audit_mutation AFTER INSERT OR UPDATE ON plystra.roles
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_audit_mutation('role');
CREATE TRIGGER trg_permissions_audit_mutation AFTER INSERT OR UPDATE ON plystra.permissions
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_audit_mutation('permission');
CREATE TRIGGER trg_member_roles_audit_mutation AFTER INSERT OR UPDATE ON plystra.member_roles
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_audit_mutation('member_role');
CREATE TRIGGER trg_role_permissions_audit_mutation AFTER INSERT OR UPDATE ON plystra.role_permissions
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_audit_mutation('role_permission');
CREATE TRIGGER trg_resources_audit_mutation AFTER INSERT OR UPDATE ON plystra.resources
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_audit_mutation('resource');
CREATE TRIGGER trg_resource_types_audit_mutation AFTER INSERT OR UPDATE ON plystra.resource_types
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_audit_mutation('resource_type');
CREATE TRIGGER trg_resource_actions_audit_mutation AFTER INSERT OR UPDATE ON plystra.resource_actions
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_audit_mutation('resource_action');
CREATE TRIGGER trg_resource_mappings_audit_mutation AFTER INSERT OR UPDATE ON plystra.resource_mappings
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_audit_mutation('resource_mapping');
CREATE TRIGGER trg_admin_grants_audit_mutation AFTER INSERT OR UPDATE ON plystra.admin_grants
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_audit_mutation('admin_grant');
CREATE TRIGGER trg_api_keys_audit_mutation AFTER INSERT OR UPDATE ON plystra.api_keys
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_audit_mutation('api_key');
