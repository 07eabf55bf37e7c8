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
