-- Management audit (003): every INSERT or UPDATE of a Core row appends one audit_logs row with the right action,
-- Space, actor and request context; bookkeeping-only updates write nothing; no trace carries a sensitive key.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
SELECT plan(75);

-- audit_of(resource_type, resource_id): the audit rows of one Core row, oldest first.
CREATE FUNCTION pg_temp.audit_of(rtype text, rid text) RETURNS SETOF plystra.audit_logs LANGUAGE sql AS $f$
    SELECT * FROM plystra.audit_logs WHERE resource_type = rtype AND resource_id = rid ORDER BY seq
$f$;
-- last_audit(resource_type, resource_id): the newest one.
CREATE FUNCTION pg_temp.last_audit(rtype text, rid text) RETURNS plystra.audit_logs LANGUAGE sql AS $f$
    SELECT * FROM plystra.audit_logs WHERE resource_type = rtype AND resource_id = rid ORDER BY seq DESC LIMIT 1
$f$;
-- Rows written by this test only (the database may hold other audit rows, e.g. demo data).
CREATE TEMP TABLE start_seq ON COMMIT DROP AS SELECT coalesce(max(seq), 0) AS seq FROM plystra.audit_logs;
CREATE FUNCTION pg_temp.new_audit() RETURNS SETOF plystra.audit_logs LANGUAGE sql AS $f$
    SELECT * FROM plystra.audit_logs WHERE seq > (SELECT seq FROM start_seq) ORDER BY seq
$f$;
CREATE FUNCTION pg_temp.audit_total() RETURNS bigint LANGUAGE sql AS $f$ SELECT count(*) FROM pg_temp.new_audit() $f$;

DO $$ BEGIN
    PERFORM plystra.set_actor('t14_admin_u', 't14_admin_m', 't14_admin_um', 't14_sa');
    PERFORM plystra.set_request_context('req-t14-1', '203.0.113.7', 'pgtap/014');
END $$;

-- Fixture, written under that acting context: one row of every Core entity (Space A), plus Space B.
INSERT INTO plystra.users (id, email, password_hash, metadata)
    VALUES ('t14_u', 't14_u@example.test', 'argon2id$v=19$m=65536,t=3,p=2$U0VOU0lUSVZF$UEFTU1dPUkRIQVNI',
            '{"team": "finance", "Recovery_Token": "t14-recovery-token-value"}');
INSERT INTO plystra.spaces (id, name) VALUES ('t14_sa', 'Space A'), ('t14_sb', 'Space B');
INSERT INTO plystra.groups (id, space_id, path, name) VALUES ('t14_ga', 't14_sa', 'fin', 'Finance');
INSERT INTO plystra.members (id, space_id, display_name) VALUES ('t14_ma', 't14_sa', 'Alice'), ('t14_ma2', 't14_sa', 'Anna');
INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type)
    VALUES ('t14_um', 't14_u', 't14_ma', 't14_sa', 'self');
INSERT INTO plystra.roles (id, space_id, key, name) VALUES ('t14_ra', 't14_sa', 'reviewer', 'Reviewer');
INSERT INTO plystra.permissions (id, resource, action, scope) VALUES ('t14_p', 't14_invoice', 'approve', 'group');
INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id)
    VALUES ('t14_mr', 't14_ma', 't14_ra', 't14_sa', 't14_ga');
INSERT INTO plystra.role_permissions (id, role_id, permission_id) VALUES ('t14_rp', 't14_ra', 't14_p');
INSERT INTO plystra.resource_types (id, key, display_name) VALUES ('t14_rt', 't14_invoice', 'Invoice');
INSERT INTO plystra.resource_actions (id, resource_type_id, key, display_name) VALUES ('t14_rac', 't14_rt', 'approve', 'Approve');
INSERT INTO plystra.resource_mappings (id, resource_type_id) VALUES ('t14_rm', 't14_rt');
INSERT INTO plystra.resources (id, resource_type, space_id, group_id, metadata)
    VALUES ('t14_res', 't14_invoice', 't14_sa', 't14_ga',
            '{"amount": 42, "vendor": {"name": "ACME", "client_secret": "t14-nested-secret"},
              "attachments": [{"file": "a.pdf", "download_token": "t14-array-token"}, [{"Authorization": "Bearer t14"}]]}');
INSERT INTO plystra.admin_grants (id, user_id, level, space_id, permission_key)
    VALUES ('t14_ag', 't14_u', 'space_admin', 't14_sa', 'groups:manage');
INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, space_id, permission_keys)
    VALUES ('t14_ak', 'ci', 'ply_ak_t14_ak', 't14-key-hash-0123456789abcdef', 'space', 't14_sa', '["groups:read"]');

CREATE TEMP TABLE entities (entity text PRIMARY KEY, row_id text NOT NULL, ord serial) ON COMMIT DROP;
INSERT INTO entities (entity, row_id) VALUES
    ('user', 't14_u'), ('space', 't14_sa'), ('group', 't14_ga'), ('member', 't14_ma'), ('user_member', 't14_um'),
    ('role', 't14_ra'), ('permission', 't14_p'), ('member_role', 't14_mr'), ('role_permission', 't14_rp'),
    ('resource', 't14_res'), ('resource_type', 't14_rt'), ('resource_action', 't14_rac'),
    ('resource_mapping', 't14_rm'), ('admin_grant', 't14_ag'), ('api_key', 't14_ak');

-- Every INSERT leaves exactly one <entity>.created row.
SELECT is((SELECT array_agg(action ORDER BY seq) FROM pg_temp.audit_of(e.entity, e.row_id)),
          ARRAY[e.entity || '.created'], e.entity || ': INSERT writes exactly one ' || e.entity || '.created row')
  FROM entities AS e ORDER BY e.ord;
SELECT is((SELECT count(*)::int FROM pg_temp.new_audit()), 17,
          'the fixture wrote exactly one audit row per inserted row (17 rows)');

-- The shape of one row.
SELECT matches((pg_temp.last_audit('space', 't14_sa')).id, '^audit_[0-9a-f]{16}$', 'id is audit_<16 lowercase hex>');
SELECT is((pg_temp.last_audit('space', 't14_sa')).trace ->> 'trace_id',
          'trc_' || substr((pg_temp.last_audit('space', 't14_sa')).id, 7), 'trace_id is trc_<the same hex>');
SELECT is((SELECT count(DISTINCT id)::int FROM pg_temp.new_audit()), 17, 'ids are distinct');
SELECT row_eq($$SELECT space_id, actor_user_id, actor_member_id, actor_user_member_id, action, resource_type,
                      resource_id, decision, deny_code, request_id, ip_address, user_agent
                 FROM pg_temp.last_audit('space', 't14_sb')$$,
              ROW('t14_sb'::text, 't14_admin_u'::text, NULL::text, NULL::text, 'space.created'::text,
                  'space'::text, 't14_sb'::text, 'allow'::text, NULL::text, 'req-t14-1'::text, '203.0.113.7'::text,
                  'pgtap/014'::text),
              'columns: a Space''s own id as space_id, actor and request from the acting context (its user alone: '
              'the acting binding is Space A''s, migration 020), decision allow');
SELECT row_eq($$SELECT actor_user_id, actor_member_id, actor_user_member_id, trace -> 'actor' ->> 'space_id'
                 FROM pg_temp.last_audit('group', 't14_ga')$$,
              ROW('t14_admin_u'::text, 't14_admin_m'::text, 't14_admin_um'::text, 't14_sa'::text),
              'a row of the acting binding''s own Space records the whole acting context');
SELECT is((pg_temp.last_audit('space', 't14_sb')).trace - 'trace_id' - 'created_at' - 'details' - 'db_user',
          '{"trace_version": "1.0", "decision": "allow", "reason": "Core management mutation was accepted",
            "operation": "INSERT",
            "request": {"request_id": "req-t14-1", "ip": "203.0.113.7", "user_agent": "pgtap/014"},
            "actor": {"user_id": "t14_admin_u", "member_id": null, "user_member_id": null, "space_id": null},
            "target": {"resource_type": "space", "resource_id": "t14_sb"}, "credential": null}'::jsonb,
          'trace: version, decision, reason, operation, request, actor, credential (none set: plain SQL), target (and no "before" on INSERT)');
SELECT is((pg_temp.last_audit('space', 't14_sb')).trace -> 'details' ->> 'name', 'Space B', 'trace.details is the new row');
SELECT is((pg_temp.last_audit('space', 't14_sb')).trace ->> 'db_user', session_user::text, 'trace.db_user is the session user');
SELECT is(((pg_temp.last_audit('space', 't14_sb')).trace ->> 'created_at')::timestamptz,
          (pg_temp.last_audit('space', 't14_sb')).created_at, 'trace.created_at is the row''s created_at');

-- space_id: the row's Space, a RolePermission's Role's Space; an instance-level row the instance chain (NULL), never
-- the acting Space: that Space's audit readers would read the instance's administration (new users' e-mails,
-- instance keys and grants). Until migration 016 this file asserted t14_sa, the acting Space, for these rows.
SELECT is((pg_temp.last_audit('group', 't14_ga')).space_id, 't14_sa', 'group: space_id is the row''s');
SELECT is((pg_temp.last_audit('role_permission', 't14_rp')).space_id, 't14_sa', 'role_permission: space_id is its role''s');
SELECT is((pg_temp.last_audit('user', 't14_u')).space_id, NULL, 'user: the instance chain, not the acting Space');
SELECT is((pg_temp.last_audit('permission', 't14_p')).space_id, NULL, 'permission: the instance chain, not the acting Space');
SELECT is((pg_temp.last_audit('resource_type', 't14_rt')).space_id, NULL, 'resource_type: the instance chain, not the acting Space');
INSERT INTO plystra.groups (id, space_id, path, name) VALUES ('t14_gb', 't14_sb', 'ops', 'Ops B');
INSERT INTO plystra.roles (id, space_id, key, name) VALUES ('t14_rb', 't14_sb', 'reviewer', 'Reviewer B');
INSERT INTO plystra.role_permissions (id, role_id, permission_id) VALUES ('t14_rpb', 't14_rb', 't14_p');
INSERT INTO plystra.admin_grants (id, user_id, level, group_id, permission_key)
    VALUES ('t14_ag_group', 't14_u', 'group_admin', 't14_gb', 'groups:read');
INSERT INTO plystra.admin_grants (id, user_id, level, permission_key)
    VALUES ('t14_ag_inst', 't14_u', 'instance_admin', 'users:read');
SELECT is((pg_temp.last_audit('group', 't14_gb')).space_id, 't14_sb', 'a row of Space B audits under Space B while acting in A');
SELECT is((pg_temp.last_audit('role_permission', 't14_rpb')).space_id, 't14_sb', 'role_permission: Space of its role (B), not the acting Space');
SELECT is((pg_temp.last_audit('admin_grant', 't14_ag_group')).space_id, 't14_sb', 'group_admin grant: the Space derived from its group');
SELECT is((pg_temp.last_audit('admin_grant', 't14_ag_inst')).space_id, NULL, 'instance-level grant: the instance chain, not the acting Space');
-- A transaction may name the Space its instance-level rows are filed in (the REST front's audit_space_id); a row
-- of a Space stays in its own.
DO $$ BEGIN PERFORM plystra.set_audit_space('t14_sb'); END $$;
INSERT INTO plystra.users (id, email) VALUES ('t14_u3', 't14_u3@example.test');
INSERT INTO plystra.groups (id, space_id, path, name) VALUES ('t14_ga3', 't14_sa', 'named', 'Named');
SELECT is((pg_temp.last_audit('user', 't14_u3')).space_id, 't14_sb', 'set_audit_space: an instance-level row is filed in the Space named');
SELECT is((pg_temp.last_audit('group', 't14_ga3')).space_id, 't14_sa', 'set_audit_space: a row of a Space stays in its own');
DO $$ BEGIN PERFORM plystra.set_audit_space(NULL); END $$;

-- No acting context: actor and request columns are NULL, an instance-level row has no Space.
DO $$ BEGIN
    PERFORM plystra.set_actor(NULL, NULL, NULL, NULL);
    PERFORM plystra.set_request_context(NULL, NULL, NULL);
END $$;
INSERT INTO plystra.users (id, email) VALUES ('t14_u2', 't14_u2@example.test');
INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, permission_keys)
    VALUES ('t14_ak_inst', 'ops', 'ply_ak_t14_ak_inst', 't14-key-hash-inst', 'instance', '["users:read"]');
SELECT row_eq($$SELECT space_id, actor_user_id, actor_member_id, actor_user_member_id, request_id, ip_address, user_agent
                 FROM pg_temp.last_audit('user', 't14_u2')$$,
              ROW(NULL::text, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text),
              'without an acting context: user row with NULL space, actor and request');
SELECT is((pg_temp.last_audit('user', 't14_u2')).trace -> 'actor',
          '{"user_id": null, "member_id": null, "user_member_id": null, "space_id": null}'::jsonb,
          'without an acting context: trace.actor is all null');
SELECT is((pg_temp.last_audit('api_key', 't14_ak_inst')).space_id, NULL, 'instance-level API key without acting Space: NULL space_id');

-- A new acting context applies to what follows.
DO $$ BEGIN
    PERFORM plystra.set_actor('t14_u', 't14_ma', 't14_um', 't14_sa');
    PERFORM plystra.set_request_context('req-t14-2', '198.51.100.9', 'curl/8');
END $$;

-- Verbs
UPDATE plystra.spaces SET name = 'Space A (renamed)' WHERE id = 't14_sa';
SELECT is((pg_temp.last_audit('space', 't14_sa')).action, 'space.updated', 'space: a plain UPDATE is space.updated');
SELECT row_eq($$SELECT actor_user_id, actor_member_id, actor_user_member_id, request_id, ip_address, user_agent
                 FROM pg_temp.last_audit('space', 't14_sa')$$,
              ROW('t14_u'::text, 't14_ma'::text, 't14_um'::text, 'req-t14-2'::text, '198.51.100.9'::text, 'curl/8'::text),
              'the update carries the new actor and request context');
SELECT is((pg_temp.last_audit('space', 't14_sa')).trace ->> 'operation', 'UPDATE', 'trace.operation is UPDATE');
SELECT is((pg_temp.last_audit('space', 't14_sa')).trace -> 'before' ->> 'name', 'Space A', 'trace.before has the old row');
SELECT is((pg_temp.last_audit('space', 't14_sa')).trace -> 'details' ->> 'name', 'Space A (renamed)', 'trace.details has the new row');
UPDATE plystra.spaces SET status = 'disabled' WHERE id = 't14_sa';
SELECT is((pg_temp.last_audit('space', 't14_sa')).action, 'space.disabled', 'space: status -> disabled is space.disabled');
UPDATE plystra.spaces SET status = 'active' WHERE id = 't14_sa';
SELECT is((pg_temp.last_audit('space', 't14_sa')).action, 'space.restored', 'space: status -> active is space.restored');
UPDATE plystra.groups SET deleted_at = now() WHERE id = 't14_ga';
SELECT is((pg_temp.last_audit('group', 't14_ga')).action, 'group.deleted', 'group: setting deleted_at is group.deleted');
UPDATE plystra.groups SET deleted_at = NULL WHERE id = 't14_ga';
SELECT is((pg_temp.last_audit('group', 't14_ga')).action, 'group.restored', 'group: clearing deleted_at is group.restored');
UPDATE plystra.members SET status = 'disabled', deleted_at = now() WHERE id = 't14_ma2';
SELECT is((pg_temp.last_audit('member', 't14_ma2')).action, 'member.deleted', 'member: deleted_at wins over a status change');
UPDATE plystra.resources SET status = 'archived' WHERE id = 't14_res';
SELECT is((pg_temp.last_audit('resource', 't14_res')).action, 'resource.archived', 'resource: status -> archived');
UPDATE plystra.user_members SET status = 'revoked', revoked_at = now(), revoked_reason = 'left' WHERE id = 't14_um';
SELECT is((pg_temp.last_audit('user_member', 't14_um')).action, 'user_member.revoked', 'user_member: status -> revoked');
UPDATE plystra.member_roles SET status = 'revoked' WHERE id = 't14_mr';
SELECT is((pg_temp.last_audit('member_role', 't14_mr')).action, 'member_role.revoked', 'member_role: status -> revoked');
UPDATE plystra.api_keys SET status = 'revoked', revoked_at = now(), revoked_by_user_id = 't14_u' WHERE id = 't14_ak';
SELECT is((pg_temp.last_audit('api_key', 't14_ak')).action, 'api_key.revoked', 'api_key: status -> revoked');
UPDATE plystra.roles SET status = 'disabled' WHERE id = 't14_ra';
SELECT is((pg_temp.last_audit('role', 't14_ra')).action, 'role.disabled', 'role: status -> disabled');
UPDATE plystra.roles SET status = 'active' WHERE id = 't14_ra';
SELECT is((pg_temp.last_audit('role', 't14_ra')).action, 'role.restored', 'role: status -> active');
UPDATE plystra.users SET status = 'suspended' WHERE id = 't14_u2';
SELECT is((pg_temp.last_audit('user', 't14_u2')).action, 'user.updated', 'user: another status change is user.updated');
UPDATE plystra.resource_actions SET risk_level = 'high' WHERE id = 't14_rac';
SELECT is((pg_temp.last_audit('resource_action', 't14_rac')).action, 'resource_action.updated', 'resource_action (no deleted_at): updated');
UPDATE plystra.members SET display_name = display_name || '!' WHERE space_id = 't14_sa';
SELECT is((SELECT count(*)::int FROM pg_temp.new_audit() WHERE action = 'member.updated'), 2,
          'a multi-row UPDATE writes one row per changed row');

-- Bookkeeping-only updates write nothing.
CREATE TEMP TABLE total_before ON COMMIT DROP AS SELECT pg_temp.audit_total() AS n;
UPDATE plystra.api_keys SET last_used_at = now() WHERE id = 't14_ak';
SELECT is(pg_temp.audit_total(), (SELECT n FROM total_before), 'api_key: touching last_used_at writes nothing');
UPDATE plystra.users SET last_login_at = now() WHERE id = 't14_u';
SELECT is(pg_temp.audit_total(), (SELECT n FROM total_before), 'user: touching last_login_at writes nothing');
UPDATE plystra.groups SET updated_at = '2000-01-01' WHERE id = 't14_ga';
SELECT is(pg_temp.audit_total(), (SELECT n FROM total_before), 'group: touching updated_at writes nothing');
UPDATE plystra.groups SET name = name WHERE id = 't14_ga';
SELECT is(pg_temp.audit_total(), (SELECT n FROM total_before), 'group: an UPDATE that changes nothing writes nothing');
UPDATE plystra.api_keys SET last_used_at = now(), name = 'ci-renamed' WHERE id = 't14_ak';
SELECT is(pg_temp.audit_total(), (SELECT n FROM total_before) + 1, 'api_key: a real change next to last_used_at is audited');
SELECT is((pg_temp.last_audit('api_key', 't14_ak')).action, 'api_key.updated', '... as api_key.updated');

-- A writer without any privilege on audit_logs is audited all the same (the trigger is SECURITY DEFINER).
CREATE ROLE t14_writer NOLOGIN NOSUPERUSER;
GRANT USAGE ON SCHEMA plystra TO t14_writer;
GRANT INSERT, UPDATE ON plystra.groups TO t14_writer;
SET LOCAL ROLE t14_writer;
INSERT INTO plystra.groups (id, space_id, parent_group_id, path, name) VALUES ('t14_gw', 't14_sa', 't14_ga', 'fin.w', 'W');
RESET ROLE;
SELECT is((pg_temp.last_audit('group', 't14_gw')).action, 'group.created', 'a writer with no privilege on audit_logs is audited');
SELECT is((pg_temp.last_audit('group', 't14_gw')).trace ->> 'db_user', session_user::text,
          'db_user is the session user');
SELECT is(has_table_privilege('t14_writer', 'plystra.audit_logs', 'INSERT'), false, '(the writer cannot insert audit rows itself)');

-- Secrets never reach a trace.
SELECT is((SELECT count(*)::int FROM plystra.audit_logs AS a, jsonb_path_query(a.trace, 'strict $.**') AS v
            WHERE jsonb_typeof(v) = 'object'
              AND EXISTS (SELECT 1 FROM jsonb_object_keys(v) AS k WHERE plystra.sensitive_key(k))), 0,
          'no object anywhere in any stored trace has a sensitive key');
SELECT ok((SELECT count(*) FROM jsonb_path_query(to_jsonb(u), 'strict $.**') AS v
            WHERE jsonb_typeof(v) = 'object'
              AND EXISTS (SELECT 1 FROM jsonb_object_keys(v) AS k WHERE plystra.sensitive_key(k))) > 0,
          '(control: the same walk finds the sensitive keys of an unredacted users row)')
  FROM plystra.users AS u WHERE u.id = 't14_u';
SELECT is((SELECT count(*)::int FROM plystra.audit_logs
            WHERE strpos(trace::text, 'UEFTU1dPUkRIQVNI') > 0 OR strpos(trace::text, 't14-key-hash') > 0
               OR strpos(trace::text, 't14-recovery-token-value') > 0 OR strpos(trace::text, 't14-nested-secret') > 0
               OR strpos(trace::text, 't14-array-token') > 0 OR strpos(trace::text, 'Bearer t14') > 0), 0,
          'no password hash, key hash or secret value appears in any trace');
SELECT is((pg_temp.last_audit('user', 't14_u')).trace -> 'details' -> 'metadata', '{"team": "finance"}'::jsonb,
          'user: metadata keeps what is not sensitive');
SELECT ok(NOT ((pg_temp.last_audit('user', 't14_u')).trace -> 'details' ? 'password_hash'), 'user: password_hash is not in details');
SELECT ok(NOT ((pg_temp.last_audit('api_key', 't14_ak')).trace -> 'before' ? 'key_hash'), 'api_key: key_hash is not in before');
SELECT is((pg_temp.last_audit('api_key', 't14_ak')).trace -> 'details' ->> 'key_prefix', 'ply_ak_t14_ak',
          'api_key: key_prefix (not a secret) is kept');
SELECT is((pg_temp.last_audit('resource', 't14_res')).trace -> 'details' -> 'metadata',
          '{"amount": 42, "vendor": {"name": "ACME"}, "attachments": [{"file": "a.pdf"}, [{}]]}'::jsonb,
          'resource: nested metadata is redacted at every depth, arrays included');

SELECT * FROM finish();
ROLLBACK;
