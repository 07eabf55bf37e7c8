-- Plystra 1.3.0 -> 1.4.0 (ALTER EXTENSION plystra UPDATE, or plystractl migrate up).
-- Applies migration 007 (who may call the four new functions; a revoked row is never active), records it in the
-- ledger, and creates plystra.check_batch (many decisions of one actor in one call), plystra.decide_with_credential
-- (the REST front's authz check, explain and batch, credential and admin permission included, in one statement),
-- plystra.authenticate (which presented credential is live) and plystra.lookup_subjects ("who can?").
-- tests/catalog_check.sh proves that an updated 1.0.0 equals a fresh 1.4.0.
-- The block between the markers is migrations/007_front_decision.sql, verbatim.
\echo Use "ALTER EXTENSION plystra UPDATE TO '1.4.0'" to load this file. \quit

-- BEGIN migrations/007_front_decision.sql
-- Plystra Core schema, version 007: the REST front's decision in one call.
--
-- plystra.decide_with_credential (a function of the extension's library, created after the migrations) checks
-- a presented credential, the route's admin permission on every scope an authz request touches, the session's
-- acting binding, and decides, in one statement. plystra.lookup_subjects answers "who can?" for a resource and an
-- action, naming bindings, Members and Users. plystra.authenticate says which presented credential is live. All
-- three are administration functions: this migration adds them to
-- plystra_admin's list in plystra.apply_privileges, which the install and every upgrade run once every function
-- exists. plystra.check_batch (many decisions of one actor in one call) is an application function: it joins
-- plystra_app's list.
--
-- A revoked row is never active: user_members, admin_grants and api_keys get a CHECK that revoked_at set means a
-- status other than 'active' (before, a binding with revoked_at set and status 'active' was allowed by check and
-- refused at login). Existing rows in that state take status 'revoked', the state every reader but one already
-- gave them.

UPDATE plystra.user_members SET status = 'revoked' WHERE revoked_at IS NOT NULL AND status = 'active';
UPDATE plystra.admin_grants SET status = 'revoked' WHERE revoked_at IS NOT NULL AND status = 'active';
UPDATE plystra.api_keys SET status = 'revoked' WHERE revoked_at IS NOT NULL AND status = 'active';
ALTER TABLE plystra.user_members
    ADD CONSTRAINT user_members_revoked_not_active CHECK (revoked_at IS NULL OR status <> 'active');
ALTER TABLE plystra.admin_grants
    ADD CONSTRAINT admin_grants_revoked_not_active CHECK (revoked_at IS NULL OR status <> 'active');
ALTER TABLE plystra.api_keys
    ADD CONSTRAINT api_keys_revoked_not_active CHECK (revoked_at IS NULL OR status <> 'active');

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
        'plystra.authenticate(jsonb)',
        'plystra.decide_with_credential(jsonb, text, jsonb, boolean, boolean)',
        'plystra.lookup_subjects(text, text, text, text, integer)',
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
'(check, check_batch, allowed, set_actor, set_request_context, current_actor and the row-level-security lookups and row '
'predicates; no table) and plystra_admin (member of plystra_app; also explain, admin_permission, '
'api_key_permission, authenticate, decide_with_credential, lookup_subjects, set_credential, audit_auth_event, verify_audit_chain, seal_audit; SELECT, INSERT, UPDATE on '
'the Core, credential and login tables, DELETE on login_failures, SELECT on the audit log, chain heads and '
'ledger). Run at the end of the install and of every upgrade; the one list of who may call what.';
-- END migrations/007_front_decision.sql

-- An older version's install script run with this build's library already records every bundled migration
-- (plystra.bundled_migrations() comes from the library), so the row may exist.
INSERT INTO plystra.schema_migrations (version, name, checksum) VALUES ('007', 'front_decision', '6f3c6620e4cfce26d7f8ef15360944fce416ca20b229f8a8b4a619d3e3d2533d')
ON CONFLICT (version) DO UPDATE SET name = excluded.name, checksum = excluded.checksum;

-- Many decisions of one actor in one call (plystra_pg/src/api.rs); plystra_app may call it, as check.
CREATE FUNCTION plystra.check_batch(request jsonb)
RETURNS jsonb
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'plystra_check_batch_jsonb';

COMMENT ON FUNCTION plystra.check_batch(jsonb) IS
'Many decisions for one actor in one call: {"actor": {...as check...}, "items": [{"resource_type", "resource_id", '
'"action"} or {"resource": {"type", "id"}, "action"}, ...], "request": {request_id, ip, user_agent}} returns '
'{"results": [...]}, for each item in order exactly the compact answer of plystra.check. One snapshot and one load '
'of the actor for the whole batch; each item is its own decision with its own trace id and, per '
'plystra.audit_mode, its own audit row (the row plystra.check would write). 1 to 1000 items; a malformed request '
'raises SQLSTATE 22023 naming the field (items[3].action).';

-- The REST front's authz routes in one statement (plystra_pg/src/gate.rs). Only plystra_admin may call it
-- (plystra.apply_privileges): it answers as any credential whose token HMAC the caller knows.
CREATE FUNCTION plystra.decide_with_credential(credential jsonb, permission text, request jsonb, explain boolean,
                                               authorize_only boolean)
RETURNS jsonb
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'plystra_decide_with_credential';

COMMENT ON FUNCTION plystra.decide_with_credential(jsonb, text, jsonb, boolean, boolean) IS
'The REST front''s authz check and explain in one call. credential is {"session_token_hashes": [...]} or '
'{"api_key_id": ..., "api_key_hashes": [...]} (the HMACs of the presented token under the front''s secrets). '
'In order: the credential must be a live session or an active API key, else {"outcome": "unauthenticated"}; it '
'must hold permission on every scope the request touches (the resource''s Space and Group, the actor''s Space, '
'binding and Member; an id that names nothing needs the instance), else {"outcome": "forbidden", "code": '
'"ADMIN_PERMISSION_REQUIRED"}; with authorize_only the answer is then {"outcome": "authorized"}; a session acts '
'through its active binding or must name one of its usable bindings, else "ACTIVE_MEMBER_REQUIRED"; then the '
'decision of plystra.check (or plystra.explain when explain), audited per plystra.audit_mode, as '
'{"outcome": "decided", "decision": ...}. A request with "items" is a batch (plystra.check_batch''s document): '
'the credential must hold permission on every scope any of its items would touch asked alone, and the decision '
'is {"results": [...]}. Every answer but unauthenticated names the credential. A malformed argument or request '
'raises 22023.';

-- Which presented credential is live (plystra_pg/src/credential.rs): the REST front asks it for every admin route.
CREATE FUNCTION plystra.authenticate(credential jsonb)
RETURNS jsonb
LANGUAGE c STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'plystra_authenticate';

COMMENT ON FUNCTION plystra.authenticate(jsonb) IS
'The live credential a presented token stands for, or NULL. credential is {"session_token_hashes": [...]} or '
'{"api_key_id": ..., "api_key_hashes": [...]}: the HMACs of the token under the front''s current and previous '
'secrets (the database keeps only HMACs). A session is live when not revoked, not expired and its user active; '
'an API key when active, not revoked, not deleted and not expired. Answers {"kind": "session", session_id, '
'user_id, email, user_status, active_space_id, active_member_id, active_user_member_id, expires_at, '
'refresh_expires_at} or {"kind": "api_key", api_key_id, name, level, space_id, group_id, permission_keys, '
'created_by_user_id, created_by_member_id}. A malformed argument raises 22023. For administration backends only.';

-- "Who can?" (plystra_pg/src/lookup.rs).
CREATE FUNCTION plystra.lookup_subjects(resource_type text, resource_id text, action text, after text DEFAULT NULL,
                                        max_rows integer DEFAULT 100)
RETURNS TABLE (user_member_id text, member_id text, user_id text, grants jsonb)
STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'lookup_subjects_wrapper';

COMMENT ON FUNCTION plystra.lookup_subjects(text, text, text, text, integer) IS
'lookup_subjects(resource_type, resource_id, action, after => NULL, max_rows => 100): who can? The bindings '
'(user_member_id, member_id, user_id) that plystra.check allows to perform action on the mirrored resource, in '
'binding-id order after `after`, at most max_rows (1 to 1000), each with the grants that let it (member_role_id, '
'role, permission, scope, anchor group). Decided by the same engine as check; no audit row. NULL '
'resource_type, resource_id or action, or max_rows outside 1..1000, raise 22023. For administration backends only.';

SELECT plystra.apply_privileges();
