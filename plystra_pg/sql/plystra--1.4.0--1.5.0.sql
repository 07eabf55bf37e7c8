-- Plystra 1.4.0 -> 1.5.0 (ALTER EXTENSION plystra UPDATE, or plystractl migrate up).
-- Applies migration 008 (the view plystra.usable_bindings; plystra.resolve_actor joins plystra_admin's list),
-- records it in the ledger, creates plystra.resolve_actor (the binding an actor named by its User alone acts
-- through) and states what check, explain, check_batch and decide_with_credential now read: Context Mode (an
-- inline target; inline grants and actor from an API key) and actors named by their User. The decisions themselves
-- live in the library.
-- tests/catalog_check.sh proves that an updated 1.0.0 equals a fresh 1.5.0.
-- The block between the markers is migrations/008_context_mode.sql, verbatim.
\echo Use "ALTER EXTENSION plystra UPDATE TO '1.5.0'" to load this file. \quit

-- BEGIN migrations/008_context_mode.sql
-- Plystra Core schema, version 008: Context Mode and actors named by their User.
--
-- A decision request may now describe its target inline (a resource Plystra does not hold yet), and, from a
-- server-side API key through the REST front, its actor and grants (Context Mode); and it may name its actor by
-- the User alone, the binding then being resolved (the only one, else the usable primary one). Neither needs a
-- table: this migration adds plystra.resolve_actor (the binding a User alone acts through, for the REST front's
-- AuthZEN searches) to plystra_admin's list in plystra.apply_privileges.
--
-- "A usable binding" is written once, as the view plystra.usable_bindings: the binding active, not revoked,
-- deleted or expired, and its User, Member and Space active and not deleted (exactly the actor state a decision
-- requires before anything else). The extension (a session's actor, the resolution of a User's binding) and the
-- REST front (login's bindings, the actor a management request claims) read it instead of restating it;
-- plystra_admin may read it. "An active AdminGrant" likewise, as plystra.active_admin_grants (the grant active, not
-- revoked, deleted or expired; whether its User may use it is the reader's to add): the extension's admin
-- permission and the front's standing and last-super-admin rules read it. Expiry is judged at the statement's
-- time, as decisions judge a binding's.

-- A Member id may hold '@' (and '+'): applications name Members by an e-mail-like handle (the AuthZEN todo interop
-- records a todo's owner as the owner's e-mail, and Context Mode reads that owner as the Member id). Every id that
-- passed the old format passes the new one.
ALTER TABLE plystra.members DROP CONSTRAINT members_id_format;
ALTER TABLE plystra.members
    ADD CONSTRAINT members_id_format CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,127}$');

CREATE VIEW plystra.usable_bindings AS
SELECT um.id, um.user_id, um.member_id, um.space_id, um.relation_type, um.is_primary, um.expires_at
FROM plystra.user_members um
JOIN plystra.users u ON u.id = um.user_id AND u.status = 'active' AND u.deleted_at IS NULL
JOIN plystra.members m ON m.id = um.member_id AND m.status = 'active' AND m.deleted_at IS NULL
JOIN plystra.spaces s ON s.id = um.space_id AND s.status = 'active' AND s.deleted_at IS NULL
WHERE um.status = 'active' AND um.revoked_at IS NULL AND um.deleted_at IS NULL
  AND (um.expires_at IS NULL OR um.expires_at > statement_timestamp());
CREATE VIEW plystra.active_admin_grants AS
SELECT g.id, g.user_id, g.level, g.permission_key, g.space_id, g.group_id, g.expires_at
FROM plystra.admin_grants g
WHERE g.status = 'active' AND g.revoked_at IS NULL AND g.deleted_at IS NULL
  AND (g.expires_at IS NULL OR g.expires_at > statement_timestamp());
COMMENT ON VIEW plystra.active_admin_grants IS
'The AdminGrants in force now: active, not revoked, deleted or expired. The one statement of the rule; whether the '
'grant''s User is active is for the reader to add (a disabled account''s grants confer nothing on it, yet count '
'as grants for the rule that keeps one super admin).';
COMMENT ON VIEW plystra.usable_bindings IS
'The bindings an actor can act through now: active, not revoked, deleted or expired, with an active, not-deleted '
'User, Member and Space. The one statement of the rule; plystra.check denies every other binding with its actor '
'state code.';

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
        'plystra.resolve_actor(text, text)',
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
    admin_read_only constant text[] := ARRAY['audit_logs', 'audit_chain_heads', 'schema_migrations', 'usable_bindings',
                                              'active_admin_grants'];
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
'api_key_permission, authenticate, decide_with_credential, lookup_subjects, resolve_actor, set_credential, audit_auth_event, verify_audit_chain, seal_audit; SELECT, INSERT, UPDATE on '
'the Core, credential and login tables, DELETE on login_failures, SELECT on the audit log, chain heads, '
'ledger, usable_bindings and active_admin_grants). Run at the end of the install and of every upgrade; the one list of who may call what.';
-- END migrations/008_context_mode.sql

-- An older version's install script run with this build's library already records every bundled migration
-- (plystra.bundled_migrations() comes from the library), so the row may exist.
INSERT INTO plystra.schema_migrations (version, name, checksum) VALUES ('008', 'context_mode', '54d62263504e9dae453d09acf97a9132a1a1737dbe8783ea6c93a68149d8faab')
ON CONFLICT (version) DO UPDATE SET name = excluded.name, checksum = excluded.checksum;

-- The binding a User alone acts through (plystra_pg/src/lookup.rs); only plystra_admin may call it.
CREATE FUNCTION plystra.resolve_actor(user_id text, space_id text)
RETURNS jsonb
STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'resolve_actor_wrapper';

COMMENT ON FUNCTION plystra.resolve_actor(text, text) IS
'resolve_actor(user_id, space_id => NULL): the binding an actor named by its User alone acts through, by the rule '
'of plystra.check: among the User''s not-deleted bindings (in space_id when given), the only one, else the usable '
'primary one, else the only usable one. Returns {user_id, member_id, user_member_id, space_id}, or {deny_code} '
'(ACTOR_NOT_FOUND, ACTOR_BINDING_AMBIGUOUS). A NULL or empty user_id raises 22023. For administration backends only.';

COMMENT ON FUNCTION plystra."check"(jsonb) IS
'Decides whether the actor {user_id, member_id, user_member_id, space_id} may perform action on resource '
'(resource_type, resource_id) and returns the compact answer {allow, decision, deny_code, reason, trace_id, '
'audit_log_id, audit}. Writes one audit row according to plystra.audit_mode. The actor may be named by its User '
'alone ({user_id} or {user_id, space_id}): the binding is the only one, else the usable primary one '
'(ACTOR_BINDING_AMBIGUOUS when none can be chosen). Context Mode: "resource": {type, id, space_id, group_id, '
'group_path, owner_member_id, display_name, visibility, status, metadata} describes a resource Plystra does not '
'hold (fields not given are read from metadata through the type''s mapping; the Space defaults to the actor''s); '
'a registered resource is always Core''s. Inline grants and actor metadata are accepted only from an API key '
'through the REST front. A malformed request raises SQLSTATE 22023 naming the field; unknown actors and '
'resources are denies (ACTOR_NOT_FOUND, RESOURCE_NOT_FOUND).';

COMMENT ON FUNCTION plystra.explain(jsonb) IS
'Same decision as plystra.check (and the same audit row), returning the full decision-time trace: actor, space, '
'target, resource registry, matched candidates with their scope checks, request context, reason and audit; with '
'Context Mode, context_mode says which of actor, target and grants came inline.';

COMMENT ON FUNCTION plystra.check_batch(jsonb) IS
'Many decisions for one actor in one call: {"actor": {...as check...}, "items": [{"resource_type", "resource_id", '
'"action"} or {"resource": {"type", "id", ...inline fields as check}, "action"}, ...], "request": {request_id, ip, '
'user_agent}} returns '
'{"results": [...]}, for each item in order exactly the compact answer of plystra.check. One snapshot and one load '
'of the actor for the whole batch; each item is its own decision with its own trace id and, per '
'plystra.audit_mode, its own audit row (the row plystra.check would write). 1 to 1000 items; a malformed request '
'raises SQLSTATE 22023 naming the field (items[3].action).';

COMMENT ON FUNCTION plystra.decide_with_credential(jsonb, text, jsonb, boolean, boolean) IS
'The REST front''s authz check and explain in one call. credential is {"session_token_hashes": [...]} or '
'{"api_key_id": ..., "api_key_hashes": [...]} (the HMACs of the presented token under the front''s secrets). '
'In order: the credential must be a live session or an active API key, else {"outcome": "unauthenticated"}; it '
'must hold permission on every scope the request touches (the resource''s Space and Group, the actor''s Space, '
'binding and Member; an id that names nothing needs the instance), else {"outcome": "forbidden", "code": '
'"ADMIN_PERMISSION_REQUIRED"}; with authorize_only the answer is then {"outcome": "authorized"}; a session acts '
'through its active binding or must name one of its usable bindings, else "ACTIVE_MEMBER_REQUIRED"; then the '
'decision of plystra.check (or plystra.explain when explain), audited per plystra.audit_mode, as '
'{"outcome": "decided", "decision": ...}. Inline context (Context Mode) needs an API key (a session gets '
'"INLINE_CONTEXT_REQUIRES_API_KEY"), and every Space and Group it names (inline target, grants and their anchors) '
'is a scope the key must hold; an actor named by its User alone is resolved in the request''s Space, else in a '
'scoped key''s Space. A request with "items" is a batch (plystra.check_batch''s document): '
'the credential must hold permission on every scope any of its items would touch asked alone, and the decision '
'is {"results": [...]}. Every answer but unauthenticated names the credential. A malformed argument or request '
'raises 22023.';

SELECT plystra.apply_privileges();
