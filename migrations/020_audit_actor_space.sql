-- Plystra Core schema, version 020: an audit row of one Space names no Member or binding of another.
--
-- Management and authentication rows record the acting context (plystra.set_actor). A session acting through a
-- binding of one Space may hold admin standing in another; its changes there were filed in that Space with its
-- acting Member and binding, so one tenant's trail named another tenant's binding, Member and Space id. Such a row
-- now records the acting user alone (its credential, request and database user as before), as the member-switch
-- rows already did (plystra_http/tests/attack_tenancy.rs).

CREATE OR REPLACE FUNCTION plystra.append_context_audit(row_space text, action text, resource_type text, resource_id text,
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
    -- A row of one Space names no Member or binding of another: an actor whose acting binding lies in another
    -- Space (a session with admin standing here whose active binding is elsewhere) is recorded by its user alone.
    IF row_space IS NOT NULL AND actor_space IS NOT NULL AND actor_space <> row_space THEN
        actor_member := NULL;
        actor_user_member := NULL;
        actor_space := NULL;
    END IF;
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
'database user (an acting Member and binding only when they belong to the row''s Space: another Space''s are left '
'out, the user kept); body is merged into the trace. Internal: called by tg_audit_mutation and audit_auth_event.';
