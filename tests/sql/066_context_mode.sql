-- Context Mode and actors named by their User.
-- An inline target is a resource Plystra does not hold: described in the request (its fields, or its metadata
-- read through the type's mapping), it is decided with Core's actor and grants. A registered resource is always
-- Core's, even when the request describes it otherwise, and an archived one is never revived by a description.
-- Inline grants and actor metadata (the caller supplying the answer's own facts) come only from an API key
-- through the gate, which also checks the key's scope over everything inline. An actor named by its User alone
-- acts through its only binding, else its usable primary one; otherwise ACTOR_NOT_FOUND or
-- ACTOR_BINDING_AMBIGUOUS. Rolled back at the end.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
SELECT plan(52);
SET LOCAL plystra.audit_mode = 'off';

CREATE FUNCTION pg_temp.alice(resource jsonb, action text DEFAULT 'approve') RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object(
        'actor', jsonb_build_object('user_id', 'user_alice', 'member_id', 'member_finance_reviewer',
                                    'user_member_id', 'um_alice_finance_reviewer', 'space_id', 'space_acme'),
        'resource', resource, 'action', action)
$$;
CREATE FUNCTION pg_temp.code(answer jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(answer ->> 'deny_code', answer ->> 'decision')
$$;

-- v1.0's engine case: a proposed invoice in finance.apac, no row anywhere.
SELECT is(pg_temp.code(plystra.check(pg_temp.alice(
              '{"type": "invoice", "id": "invoice_draft_001", "group_path": "finance.apac"}'))), 'allow',
          'a proposed invoice in finance.apac is allowed without a row (group_tree from finance)');
SELECT is((SELECT count(*) FROM plystra.resources WHERE id = 'invoice_draft_001'), 0::bigint, 'and no row exists');
SELECT is(pg_temp.code(plystra.check(pg_temp.alice(
              '{"type": "invoice", "id": "invoice_draft_001", "group_path": "legal.emea"}'))), 'SCOPE_OUT_OF_BOUNDS',
          'the same proposal in legal.emea is out of bounds');
SELECT is(plystra.explain(pg_temp.alice('{"type": "invoice", "id": "invoice_draft_001", "group_path": "finance.apac"}'))
          -> 'context_mode', '{"actor": "core", "target": "inline", "grants": "core"}'::jsonb,
          'the trace says the target came inline and the actor and grants from Core');
SELECT is(plystra.explain(pg_temp.alice('{"type": "invoice", "id": "invoice_draft_001", "group_path": "finance.apac"}'))
          #>> '{target,group,id}', 'group_finance_apac', 'a path Core holds is Core''s group');
SELECT matches(plystra.explain(pg_temp.alice('{"type": "invoice", "id": "d", "group_path": "finance.apac.new_team"}'))
               #>> '{target,group,id}', '^group_inline_[0-9a-f]{16}$', 'a path Core does not hold is synthesised');
SELECT is(pg_temp.code(plystra.check(pg_temp.alice('{"type": "invoice", "id": "d", "group_path": "finance.apac.new_team"}'))),
          'allow', 'and placed by its path: inside finance, so allowed');
SELECT is(pg_temp.code(plystra.check(pg_temp.alice('{"type": "invoice", "id": "d", "group_path": "finance_old"}'))),
          'SCOPE_OUT_OF_BOUNDS', 'a synthesised path is matched on label boundaries like any other');
SELECT is(pg_temp.code(plystra.check(pg_temp.alice('{"type": "invoice", "id": "d", "group_id": "group_nowhere"}'))),
          'TARGET_GROUP_MISSING', 'an unknown group id with no path places nothing: the target group is missing');
SELECT is(pg_temp.code(plystra.check(pg_temp.alice('{"type": "invoice", "id": "d", "metadata": {}}'))),
          'TARGET_GROUP_MISSING', 'a description with no group is a resource with no group');
SELECT is(plystra.explain(pg_temp.alice('{"type": "invoice", "id": "d", "metadata": {}}')) #>> '{target,resource,space_id}',
          'space_acme', 'an inline resource with no Space is in the actor''s Space');

-- A group Core holds but that is not live places nothing, whatever the request says about it.
INSERT INTO plystra.groups (id, space_id, name, path, status, parent_group_id)
VALUES ('group_ctx_off', 'space_acme', 'Off', 'finance.off', 'disabled', 'group_finance');
SELECT is(pg_temp.code(plystra.check(pg_temp.alice('{"type": "invoice", "id": "d", "group_path": "finance.off"}'))),
          'TARGET_GROUP_MISSING', 'a disabled group''s path is not synthesised into a live one');
SELECT is(pg_temp.code(plystra.check(pg_temp.alice('{"type": "invoice", "id": "d", "group_id": "group_ctx_off", "group_path": "finance.apac"}'))),
          'TARGET_GROUP_MISSING', 'nor is its id, whatever path comes with it');

-- The metadata is read through the type's mapping (the demo's: space_id, group_id, owner_member_id).
SELECT is(pg_temp.code(plystra.check(pg_temp.alice('{"type": "invoice", "id": "d", "metadata": {"group_id": "group_finance_apac"}}'))),
          'allow', 'the mapping''s group_field names the group in the metadata');
SELECT is(pg_temp.code(plystra.check(pg_temp.alice(
              '{"type": "invoice", "id": "d", "group_path": "legal", "metadata": {"group_id": "group_finance_apac"}}'))),
          'SCOPE_OUT_OF_BOUNDS', 'a field given explicitly wins over the metadata (the group path here)');
SELECT is(pg_temp.code(plystra.check(pg_temp.alice('{"type": "invoice", "id": "d", "group_path": "finance", "metadata": {"space_id": "space_other"}}'))),
          'CROSS_SPACE_VIOLATION', 'a Space read from the metadata is judged like a row''s: another Space is a violation');
INSERT INTO plystra.spaces (id, name) VALUES ('space_ctx_other', 'Other');
INSERT INTO plystra.groups (id, space_id, name, path) VALUES ('group_ctx_other', 'space_ctx_other', 'Finance', 'finance');
SELECT is(pg_temp.code(plystra.check(pg_temp.alice('{"type": "invoice", "id": "d", "group_id": "group_ctx_other"}'))),
          'CROSS_SPACE_VIOLATION', 'another Space''s group named by id is that Space''s group: a violation');
INSERT INTO plystra.roles (id, space_id, key, name) VALUES ('role_ctx_reader', 'space_acme', 'ctx_reader', 'Reader');
INSERT INTO plystra.role_permissions (id, role_id, permission_id) VALUES ('rp_ctx_reader', 'role_ctx_reader', 'perm_invoice_read_self');
INSERT INTO plystra.member_roles (id, member_id, role_id, space_id) VALUES ('mr_ctx_reader', 'member_finance_reviewer', 'role_ctx_reader', 'space_acme');
SELECT is(pg_temp.code(plystra.check(pg_temp.alice('{"type": "invoice", "id": "d", "metadata": {"owner_member_id": "member_finance_reviewer"}}', 'read'))),
          'allow', 'the mapping''s owner field makes the acting Member the owner: self scope covers it');
SELECT is(pg_temp.code(plystra.check(pg_temp.alice('{"type": "invoice", "id": "d", "metadata": {"owner_member_id": "member_someone"}}', 'read'))),
          'SCOPE_OUT_OF_BOUNDS', 'another owner is not covered');

-- A registered resource is Core's.
SELECT is(pg_temp.code(plystra.check(pg_temp.alice('{"type": "invoice", "id": "invoice_002", "group_path": "finance.apac"}'))),
          'SCOPE_OUT_OF_BOUNDS', 'describing Legal EMEA''s invoice_002 as in finance.apac changes nothing');
SELECT is(plystra.explain(pg_temp.alice('{"type": "invoice", "id": "invoice_002", "group_path": "finance.apac", "metadata": {}}'))
          -> 'context_mode', '{"actor": "core", "target": "core", "grants": "core",
                               "ignored_inline_fields": ["resource.group_path", "resource.metadata"]}'::jsonb,
          'and the trace lists the inline fields it ignored');
INSERT INTO plystra.resources (id, resource_type, space_id, group_id, status)
VALUES ('invoice_ctx_archived', 'invoice', 'space_acme', 'group_finance_apac', 'archived');
SELECT is(pg_temp.code(plystra.check(pg_temp.alice('{"type": "invoice", "id": "invoice_ctx_archived", "group_path": "finance.apac"}'))),
          'RESOURCE_NOT_FOUND', 'an archived resource is not revived by a description');
SELECT is(pg_temp.code(plystra.check(pg_temp.alice('{"type": "invoice", "id": "invoice_never"}'))),
          'RESOURCE_NOT_FOUND', 'without a description, an unknown resource is still not found');

-- Audited like any decision, with the trace saying what came inline.
SET LOCAL plystra.audit_mode = 'always';
CREATE TEMP TABLE audited AS
SELECT plystra.check(pg_temp.alice('{"type": "invoice", "id": "invoice_draft_002", "group_path": "finance"}')) ->> 'audit_log_id' AS id;
SELECT is((SELECT l.trace -> 'context_mode' ->> 'target' FROM plystra.audit_logs l JOIN audited a USING (id)),
          'inline', 'the audit row''s trace records the inline target');
SET LOCAL plystra.audit_mode = 'off';

-- A batch item may describe its resource.
SELECT is(plystra.check_batch(jsonb_build_object('actor', pg_temp.alice('{}') -> 'actor', 'items', jsonb_build_array(
              jsonb_build_object('resource', '{"type": "invoice", "id": "n1", "group_path": "finance.apac"}'::jsonb, 'action', 'approve'),
              jsonb_build_object('resource', '{"type": "invoice", "id": "n1", "group_path": "legal"}'::jsonb, 'action', 'approve'),
              jsonb_build_object('resource_type', 'invoice', 'resource_id', 'invoice_001', 'action', 'approve'))))
          -> 'results' @? '$[0] ? (@.decision == "allow")' AND
          plystra.check_batch(jsonb_build_object('actor', pg_temp.alice('{}') -> 'actor', 'items', jsonb_build_array(
              jsonb_build_object('resource', '{"type": "invoice", "id": "n1", "group_path": "finance.apac"}'::jsonb, 'action', 'approve'),
              jsonb_build_object('resource', '{"type": "invoice", "id": "n1", "group_path": "legal"}'::jsonb, 'action', 'approve'))))
          #>> '{results,1,deny_code}' = 'SCOPE_OUT_OF_BOUNDS',
          true, 'batch items are described each on its own');

-- From SQL, inline grants and actor metadata are refused (the caller would supply the answer's own facts).
SELECT throws_like(format('SELECT plystra.check(%L)', pg_temp.alice('{"type": "invoice", "id": "x"}')
                          || '{"grants": [{"resource": "invoice", "action": "approve", "scope": "space"}]}'),
                   'invalid request: grants is accepted only from a server-side API key%', 'inline grants are refused in SQL');
SELECT throws_ok(format('SELECT plystra.check(%L)', pg_temp.alice('{"type": "invoice", "id": "x"}')
                        || '{"grants": [{"resource": "invoice", "action": "approve", "scope": "space"}]}'),
                 '22023', NULL, 'with SQLSTATE 22023');

-- Actors named by their User alone.
CREATE FUNCTION pg_temp.by_user(actor jsonb, res text DEFAULT 'invoice_001') RETURNS jsonb LANGUAGE sql AS $$
    SELECT plystra.check(jsonb_build_object('actor', actor, 'resource_type', 'invoice', 'resource_id', res, 'action', 'approve'))
$$;
SELECT is(pg_temp.by_user('{"user_id": "user_alice"}') -> 'audit' ->> 'actor_user_member_id', 'um_alice_finance_reviewer',
          'a User with one binding acts through it');
SELECT is(pg_temp.code(pg_temp.by_user('{"user_id": "user_alice"}')), 'allow', 'and is decided as that binding');
SELECT is(pg_temp.code(pg_temp.by_user('{"user_id": "user_nobody"}')), 'ACTOR_NOT_FOUND', 'an unknown User is not found');
SELECT is(pg_temp.code(pg_temp.by_user('{"user_id": "user_alice", "space_id": "space_ctx_other"}')), 'ACTOR_NOT_FOUND',
          'a User with no binding in the Space named is not found');
INSERT INTO plystra.members (id, space_id, display_name) VALUES ('member_ctx_second', 'space_acme', 'Second');
INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type) VALUES ('um_ctx_second', 'user_alice', 'member_ctx_second', 'space_acme', 'login');
UPDATE plystra.user_members SET is_primary = false WHERE id = 'um_alice_finance_reviewer';
SELECT is(pg_temp.code(pg_temp.by_user('{"user_id": "user_alice"}')), 'ACTOR_BINDING_AMBIGUOUS',
          'two usable bindings, none primary: ambiguous');
SELECT is(pg_temp.by_user('{"user_id": "user_alice"}') ->> 'reason',
          'actor User has several UserMember bindings and none is primary: name the binding or the Space',
          'with a reason that says what to do');
UPDATE plystra.user_members SET is_primary = true WHERE id = 'um_alice_finance_reviewer';
SELECT is(pg_temp.by_user('{"user_id": "user_alice"}') -> 'audit' ->> 'actor_user_member_id', 'um_alice_finance_reviewer',
          'the usable primary binding is chosen');
UPDATE plystra.user_members SET is_primary = false WHERE id = 'um_alice_finance_reviewer';
UPDATE plystra.user_members SET status = 'revoked', revoked_at = now() WHERE id = 'um_ctx_second';
SELECT is(pg_temp.by_user('{"user_id": "user_alice"}') -> 'audit' ->> 'actor_user_member_id', 'um_alice_finance_reviewer',
          'the only usable binding is chosen over a revoked one');
UPDATE plystra.user_members SET status = 'revoked', revoked_at = now() WHERE id = 'um_alice_finance_reviewer';
SELECT is(pg_temp.code(pg_temp.by_user('{"user_id": "user_alice"}')), 'ACTOR_BINDING_AMBIGUOUS',
          'two revoked bindings: nothing to choose');
SELECT is(plystra.explain(jsonb_build_object('actor', '{"user_id": "user_alice"}'::jsonb, 'resource_type', 'invoice',
                                             'resource_id', 'invoice_001', 'action', 'approve')) #>> '{requested,actor_naming}',
          'by_user: several bindings, none primary', 'the trace says how the actor was named');
UPDATE plystra.user_members SET status = 'active', revoked_at = NULL WHERE id = 'um_alice_finance_reviewer';
SELECT is(pg_temp.code(pg_temp.by_user('{"user_id": "user_alice", "space_id": "space_acme"}')), 'allow',
          'the usable one again');
SELECT is(plystra.resolve_actor('user_alice', 'space_acme'),
          '{"user_id": "user_alice", "member_id": "member_finance_reviewer", "user_member_id": "um_alice_finance_reviewer",
            "space_id": "space_acme"}'::jsonb, 'resolve_actor answers the same binding');
SELECT is(plystra.resolve_actor('user_nobody', NULL), '{"deny_code": "ACTOR_NOT_FOUND"}'::jsonb, 'or the deny code');
SELECT throws_ok($$SELECT plystra.resolve_actor(NULL, NULL)$$, '22023', NULL, 'resolve_actor without a User is 22023');
SELECT throws_ok($$SELECT plystra.resolve_actor('u', '')$$, '22023', NULL, 'an empty Space is 22023');
SELECT throws_ok($$SELECT plystra.check('{"actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer"},
                   "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"}')$$, '22023', NULL,
                 'a Member without a binding is neither a tuple nor a User alone: 22023');

-- "A usable binding" is one rule: plystra.usable_bindings holds exactly the bindings check does not deny for the
-- actor's own state, over bindings in every state.
INSERT INTO plystra.users (id, email, status) VALUES ('user_ctx_off', 'ctx-off@example.com', 'disabled');
INSERT INTO plystra.members (id, space_id, display_name, status) VALUES ('member_ctx_off', 'space_acme', 'Off', 'disabled');
INSERT INTO plystra.members (id, space_id, display_name) VALUES ('member_ctx_b', 'space_ctx_other', 'B');
INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type, expires_at) VALUES
    ('um_ctx_user_off', 'user_ctx_off', 'member_finance_reviewer', 'space_acme', 'login', NULL),
    ('um_ctx_member_off', 'user_bob', 'member_ctx_off', 'space_acme', 'login', NULL),
    ('um_ctx_expired', 'user_bob', 'member_ctx_second', 'space_acme', 'login', now() - interval '1 minute'),
    ('um_ctx_later', 'user_ctx_off', 'member_ctx_second', 'space_acme', 'login', now() + interval '1 day'),
    ('um_ctx_space_b', 'user_bob', 'member_ctx_b', 'space_ctx_other', 'login', NULL);
UPDATE plystra.spaces SET status = 'archived' WHERE id = 'space_ctx_other';
INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type) VALUES
    ('um_ctx_deleted', 'user_bob', 'member_ctx_second', 'space_acme', 'login');
UPDATE plystra.user_members SET deleted_at = now() WHERE id = 'um_ctx_deleted';
SELECT cmp_ok((SELECT count(DISTINCT um.status || (um.expires_at IS NULL)::text || u.status || m.status || s.status)
               FROM plystra.user_members um JOIN plystra.users u ON u.id = um.user_id
               JOIN plystra.members m ON m.id = um.member_id JOIN plystra.spaces s ON s.id = um.space_id), '>=', 5::bigint,
              'the bindings cover five states or more');
SELECT is_empty($$
    SELECT d.id FROM (
        SELECT um.id, EXISTS (SELECT 1 FROM plystra.usable_bindings ub WHERE ub.id = um.id) AS usable,
               coalesce(plystra.check(jsonb_build_object(
                   'actor', jsonb_build_object('user_id', um.user_id, 'member_id', um.member_id,
                                               'user_member_id', um.id, 'space_id', um.space_id),
                   'resource_type', 'invoice', 'resource_id', 'invoice_001', 'action', 'approve')) ->> 'deny_code', '') AS code
        FROM plystra.user_members um) AS d
    WHERE d.usable <> (d.code <> ALL (ARRAY['ACTOR_NOT_FOUND', 'ACTOR_USER_INACTIVE', 'ACTOR_MEMBER_INACTIVE',
                                           'SPACE_INACTIVE', 'USER_MEMBER_REVOKED', 'USER_MEMBER_EXPIRED']))
    $$, 'usable_bindings holds exactly the bindings check finds usable');

-- "An active AdminGrant" is one rule too: for a user holding one grant, the grant is in
-- plystra.active_admin_grants exactly when admin_permission lets it count, in every state a grant can be in.
INSERT INTO plystra.users (id, email) SELECT 'user_ctx_grant_' || n, 'ctx-grant-' || n || '@example.com'
FROM generate_series(1, 5) n;
INSERT INTO plystra.admin_grants (id, user_id, level, permission_key, space_id, expires_at)
SELECT 'ag_ctx_' || n, 'user_ctx_grant_' || n, 'space_admin', 'users:read', 'space_acme',
       CASE n WHEN 3 THEN now() - interval '1 minute' WHEN 5 THEN now() + interval '1 day' END
FROM generate_series(1, 5) n;
UPDATE plystra.admin_grants SET status = 'revoked', revoked_at = now() WHERE id = 'ag_ctx_2';
UPDATE plystra.admin_grants SET deleted_at = now() WHERE id = 'ag_ctx_4';
SELECT is_empty($$
    SELECT g.id FROM plystra.admin_grants g
    WHERE g.id LIKE 'ag_ctx_%'
      AND EXISTS (SELECT 1 FROM plystra.active_admin_grants a WHERE a.id = g.id)
          <> (plystra.admin_permission(g.user_id, 'users:read', 'space_acme', NULL) ->> 'allowed')::boolean
    $$, 'active_admin_grants holds exactly the grants admin_permission counts (active, revoked, expired, deleted, expiring)');

-- Through the gate: inline context needs an API key, within its scope.
INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, permission_keys, created_by_user_id, space_id, group_id)
VALUES ('ak_ctx_instance', 'ctx', 'ply_ak_ctx_i', 'hash_ctx_i', 'instance', '["authz:check"]', 'user_alice', NULL, NULL),
       ('ak_ctx_apac', 'ctx', 'ply_ak_ctx_a', 'hash_ctx_a', 'group', '["authz:check"]', 'user_alice', 'space_acme', 'group_finance_apac');
INSERT INTO plystra.sessions (id, user_id, access_token_hash, refresh_token_hash, expires_at, refresh_expires_at,
                              active_space_id, active_member_id, active_user_member_id)
VALUES ('ses_ctx_alice', 'user_alice', 'hash_ctx_session', 'hash_ctx_refresh', now() + interval '1 hour',
        now() + interval '1 day', 'space_acme', 'member_finance_reviewer', 'um_alice_finance_reviewer');
INSERT INTO plystra.admin_grants (id, user_id, level, permission_key, space_id)
VALUES ('ag_ctx_alice', 'user_alice', 'instance_admin', 'authz:check', NULL);
CREATE FUNCTION pg_temp.gate(key text, request jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT plystra.decide_with_credential(
        CASE WHEN key LIKE 'hash_ctx_session' THEN jsonb_build_object('session_token_hashes', jsonb_build_array(key))
             ELSE jsonb_build_object('api_key_id', replace(replace(key, 'hash_ctx_i', 'ak_ctx_instance'), 'hash_ctx_a', 'ak_ctx_apac'),
                                     'api_key_hashes', jsonb_build_array(key)) END,
        'authz:check', request, false, false)
$$;
CREATE FUNCTION pg_temp.pure(grant_scope text, anchor text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object(
        'actor', '{"user_id": "u_ext", "member_id": "m_ext", "user_member_id": "b_ext", "space_id": "space_acme",
                   "user_email": "ext@example.com"}'::jsonb,
        'resource', '{"type": "invoice", "id": "proposal_1", "group_path": "finance.apac"}'::jsonb,
        'grants', jsonb_build_array(jsonb_build_object('resource', 'invoice', 'action', 'approve', 'scope', grant_scope,
                                                       'scope_anchor_group_path', anchor)),
        'action', 'approve')
$$;
SELECT is(pg_temp.gate('hash_ctx_i', pg_temp.pure('group_tree', 'finance')) #>> '{decision,decision}', 'allow',
          'an instance key decides a pure-inline request: actor and grants from the request');
SELECT is(pg_temp.gate('hash_ctx_i', pg_temp.pure('group_tree', 'legal')) #>> '{decision,deny_code}', 'SCOPE_OUT_OF_BOUNDS',
          'judged by the same rules');
SELECT is(pg_temp.gate('hash_ctx_session', pg_temp.alice('{"type": "invoice", "id": "d", "group_path": "finance"}')) ->> 'code',
          'INLINE_CONTEXT_REQUIRES_API_KEY', 'a session may not describe anything inline');
SELECT is(pg_temp.gate('hash_ctx_a', pg_temp.alice('{"type": "invoice", "id": "d", "group_path": "finance.apac"}')) #>> '{decision,decision}',
          'allow', 'a key scoped to finance.apac asks about a proposal inside its group');
SELECT is(pg_temp.gate('hash_ctx_a', pg_temp.alice('{"type": "invoice", "id": "d", "group_path": "legal.emea"}')) ->> 'code',
          'ADMIN_PERMISSION_REQUIRED', 'but not about one placed outside it');
SELECT is(pg_temp.gate('hash_ctx_a', pg_temp.pure('group_tree', 'finance')) ->> 'code', 'ADMIN_PERMISSION_REQUIRED',
          'nor with a grant anchored outside it (finance is above its group)');

SELECT * FROM finish();
ROLLBACK;
