-- Plystra 1.3.0 -> 1.4.0 (ALTER EXTENSION plystra UPDATE, or plystractl migrate up).
-- Applies migration 007 (plystra_admin may call plystra.decide_with_credential), records it in the ledger, and
-- creates plystra.decide_with_credential: the REST front's authz check and explain, credential and admin
-- permission included, in one statement; and plystra.check_batch (many decisions of one actor in one call).
-- tests/catalog_check.sh proves that an updated 1.0.0 equals a fresh 1.4.0.
-- The block between the markers is migrations/007_front_decision.sql, verbatim.
\echo Use "ALTER EXTENSION plystra UPDATE TO '1.4.0'" to load this file. \quit

-- BEGIN migrations/007_front_decision.sql
-- Plystra Core schema, version 007: the REST front's decision in one call.
--
-- plystra.decide_with_credential (a function of the extension's library, created after the migrations) checks
-- a presented credential, the route's admin permission on every scope an authz request touches, the session's
-- acting binding, and decides, in one statement. It is an administration function: this migration adds it to
-- plystra_admin's list in plystra.apply_privileges, which the install and every upgrade run once every function
-- exists. plystra.check_batch (many decisions of one actor in one call) is an application function: it joins
-- plystra_app's list. No table changes.

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
        'plystra.decide_with_credential(jsonb, text, jsonb, boolean, boolean)',
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
'api_key_permission, decide_with_credential, set_credential, audit_auth_event, verify_audit_chain, seal_audit; SELECT, INSERT, UPDATE on '
'the Core, credential and login tables, DELETE on login_failures, SELECT on the audit log, chain heads and '
'ledger). Run at the end of the install and of every upgrade; the one list of who may call what.';
-- END migrations/007_front_decision.sql

-- An older version's install script run with this build's library already records every bundled migration
-- (plystra.bundled_migrations() comes from the library), so the row may exist.
INSERT INTO plystra.schema_migrations (version, name, checksum) VALUES ('007', 'front_decision', '4814104c621285a59215cc46053bcc3a876c234f208a9a19cbb10a91cab5ac29')
ON CONFLICT (version) DO UPDATE SET name = excluded.name, checksum = excluded.checksum;

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

SELECT plystra.apply_privileges();
