-- Every decision rule, each with a test that fails when the rule breaks: actor state, cross-space, scopes,
-- union, candidate filtering, audit modes, snapshots, redaction and label-boundary matching.
-- Runs against a database with the extension and sql/demo.sql loaded; everything rolls back.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
SELECT plan(36);

CREATE FUNCTION pg_temp.req(u text, um text, res text, act text, rtype text DEFAULT 'invoice',
                            mem text DEFAULT 'member_finance_reviewer', sp text DEFAULT 'space_acme')
RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('actor', jsonb_build_object('user_id', u, 'member_id', mem, 'user_member_id', um,
                                                          'space_id', sp),
                              'resource_type', rtype, 'resource_id', res, 'action', act)
$$;
CREATE FUNCTION pg_temp.code(r jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(plystra.check(r)->>'deny_code', 'ALLOW')
$$;
-- Alice approving invoice_001: allowed in the demo; each rule below breaks it in one way.
CREATE FUNCTION pg_temp.alice(res text DEFAULT 'invoice_001', act text DEFAULT 'approve') RETURNS text LANGUAGE sql AS $$
    SELECT pg_temp.code(pg_temp.req('user_alice', 'um_alice_finance_reviewer', res, act))
$$;

-- A second Space with its own registered invoice, group and Member, for cross-space cases.
INSERT INTO plystra.spaces (id, name) VALUES ('space_other', 'Other');
INSERT INTO plystra.groups (id, space_id, name, path) VALUES ('group_other', 'space_other', 'Other', 'finance');
INSERT INTO plystra.members (id, space_id, display_name) VALUES ('member_other', 'space_other', 'Other Member');
INSERT INTO plystra.resources (id, resource_type, space_id, group_id) VALUES ('invoice_other', 'invoice', 'space_other', 'group_other');

-- Actor state, in order: user, member, space, binding, expiry.
SAVEPOINT s;
UPDATE plystra.users SET status = 'disabled' WHERE id = 'user_alice';
UPDATE plystra.members SET status = 'disabled' WHERE id = 'member_finance_reviewer';
UPDATE plystra.spaces SET status = 'disabled' WHERE id = 'space_acme';
SELECT is(pg_temp.alice(), 'ACTOR_USER_INACTIVE', 'an inactive user denies first');
UPDATE plystra.users SET status = 'active' WHERE id = 'user_alice';
SELECT is(pg_temp.alice(), 'ACTOR_MEMBER_INACTIVE', 'then an inactive Member');
UPDATE plystra.members SET status = 'active' WHERE id = 'member_finance_reviewer';
SELECT is(pg_temp.alice(), 'SPACE_INACTIVE', 'then an inactive Space (before the binding)');
SELECT is(pg_temp.code(pg_temp.req('user_alice', 'um_alice_finance_reviewer_revoked', 'invoice_001', 'approve')),
          'SPACE_INACTIVE', 'the Space is checked before the binding status');
ROLLBACK TO SAVEPOINT s;
SELECT is(pg_temp.alice(), 'ALLOW', 'restored, the same request allows again');

-- A soft-deleted user is gone: ACTOR_NOT_FOUND.
SAVEPOINT s;
UPDATE plystra.users SET deleted_at = now() WHERE id = 'user_alice';
SELECT is(pg_temp.alice(), 'ACTOR_NOT_FOUND', 'a soft-deleted user is not found');
ROLLBACK TO SAVEPOINT s;

-- The seven cross-space mutations. Three are requests the data allows; four need data the database refuses
-- (same-Space triggers), so the triggers are switched off for the insert to prove the engine checks too.
SELECT is(pg_temp.code(pg_temp.req('user_alice', 'um_alice_finance_reviewer', 'invoice_001', 'approve', mem => 'member_other')),
          'CROSS_SPACE_VIOLATION', 'cross-space 1: a Member of another Space');
SELECT is(pg_temp.code(pg_temp.req('user_alice', 'um_alice_finance_reviewer', 'invoice_001', 'approve', mem => 'member_invoice_creator')),
          'CROSS_SPACE_VIOLATION', 'cross-space 2: the binding joins another Member');
SELECT is(pg_temp.alice('invoice_other'), 'CROSS_SPACE_VIOLATION', 'cross-space 3: a resource of another Space');
SAVEPOINT s;
ALTER TABLE plystra.resources DISABLE TRIGGER USER;
UPDATE plystra.resources SET group_id = 'group_other' WHERE id = 'invoice_001';
SELECT is(pg_temp.alice(), 'CROSS_SPACE_VIOLATION', 'cross-space 4: the target group is in another Space');
ROLLBACK TO SAVEPOINT s;
SAVEPOINT s;
INSERT INTO plystra.roles (id, space_id, key, name) VALUES ('role_other', 'space_other', 'finance_approver', 'Other');
INSERT INTO plystra.role_permissions (id, role_id, permission_id) VALUES ('rp_other', 'role_other', 'perm_invoice_approve_group_tree');
ALTER TABLE plystra.member_roles DISABLE TRIGGER USER;
INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id)
VALUES ('mr_other_role', 'member_finance_reviewer', 'role_other', 'space_acme', 'group_finance');
SELECT is(pg_temp.alice(), 'CROSS_SPACE_VIOLATION', 'cross-space 5: a grant of another Space''s role');
ROLLBACK TO SAVEPOINT s;
SAVEPOINT s;
ALTER TABLE plystra.member_roles DISABLE TRIGGER USER;
UPDATE plystra.member_roles SET space_id = 'space_other' WHERE id = 'mr_finance_reviewer_approver_finance';
SELECT is(pg_temp.alice(), 'CROSS_SPACE_VIOLATION', 'cross-space 6: the grant itself is in another Space');
ROLLBACK TO SAVEPOINT s;
SAVEPOINT s;
ALTER TABLE plystra.member_roles DISABLE TRIGGER USER;
UPDATE plystra.member_roles SET scope_anchor_group_id = 'group_other' WHERE id = 'mr_finance_reviewer_approver_finance';
SELECT is(pg_temp.alice(), 'CROSS_SPACE_VIOLATION', 'cross-space 7: the anchor group is in another Space');
ROLLBACK TO SAVEPOINT s;

-- Scopes. A fresh Member for Alice with one grant at a time.
INSERT INTO plystra.members (id, space_id, display_name) VALUES ('member_t', 'space_acme', 'Test Member');
INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type) VALUES ('um_t', 'user_alice', 'member_t', 'space_acme', 'login');
INSERT INTO plystra.roles (id, space_id, key, name) VALUES ('role_t', 'space_acme', 'tester', 'Tester');
INSERT INTO plystra.member_roles (id, member_id, role_id, space_id) VALUES ('mr_t', 'member_t', 'role_t', 'space_acme');
INSERT INTO plystra.permissions (id, resource, action, scope) VALUES ('perm_invoice_approve_global', 'invoice', 'approve', 'global');
CREATE FUNCTION pg_temp.t(res text, act text) RETURNS text LANGUAGE sql AS $$
    SELECT pg_temp.code(pg_temp.req('user_alice', 'um_t', res, act, mem => 'member_t'))
$$;
CREATE FUNCTION pg_temp.only_grant(perm text) RETURNS void LANGUAGE sql AS $$
    UPDATE plystra.role_permissions SET deleted_at = now() WHERE role_id = 'role_t' AND deleted_at IS NULL;
    INSERT INTO plystra.role_permissions (id, role_id, permission_id) VALUES ('rp_t_' || perm, 'role_t', perm)
    ON CONFLICT (role_id, permission_id) DO UPDATE SET deleted_at = NULL;
$$;

SELECT pg_temp.only_grant('perm_invoice_approve_global');
SELECT is(pg_temp.t('invoice_001', 'approve'), 'GLOBAL_SCOPE_DISABLED', 'a global-scope grant is reserved and denies');
SELECT pg_temp.only_grant('perm_invoice_approve_group_tree');
SELECT is(pg_temp.t('invoice_001', 'approve'), 'SCOPE_ANCHOR_MISSING', 'a group_tree grant without an anchor denies');
UPDATE plystra.member_roles SET scope_anchor_group_id = 'group_finance' WHERE id = 'mr_t';
INSERT INTO plystra.resources (id, resource_type, space_id) VALUES ('invoice_nogroup', 'invoice', 'space_acme');
SELECT is(pg_temp.t('invoice_nogroup', 'approve'), 'TARGET_GROUP_MISSING', 'a target without a group denies group scopes');
SELECT pg_temp.only_grant('perm_invoice_read_self');
SELECT is(pg_temp.t('invoice_001', 'read'), 'SCOPE_OUT_OF_BOUNDS', 'self scope denies a resource owned by another Member');
UPDATE plystra.resources SET owner_member_id = 'member_t' WHERE id = 'invoice_001';
SELECT is(pg_temp.t('invoice_001', 'read'), 'ALLOW', 'self scope allows the owner');
SELECT pg_temp.only_grant('perm_invoice_delete_space');
SELECT is(pg_temp.t('invoice_002', 'delete'), 'ALLOW', 'space scope allows any resource of the Space');
SELECT is(pg_temp.t('invoice_other', 'delete'), 'CROSS_SPACE_VIOLATION', 'space scope never reaches another Space');

-- Union: adding a covering grant to an uncovered one allows; the first candidate's code wins otherwise.
SELECT pg_temp.only_grant('perm_invoice_approve_group_tree');
SELECT is(pg_temp.t('invoice_002', 'approve'), 'SCOPE_OUT_OF_BOUNDS', 'group_tree on finance does not cover legal.emea');
INSERT INTO plystra.permissions (id, resource, action, scope) VALUES ('perm_invoice_approve_space', 'invoice', 'approve', 'space');
INSERT INTO plystra.role_permissions (id, role_id, permission_id) VALUES ('rp_t_space', 'role_t', 'perm_invoice_approve_space');
SELECT is(pg_temp.t('invoice_002', 'approve'), 'ALLOW', 'union: any covering grant allows');

-- Candidates count only when the grant, role, role-permission and permission are all active and not deleted.
SAVEPOINT s;
UPDATE plystra.member_roles SET status = 'revoked' WHERE id = 'mr_finance_reviewer_approver_finance';
SELECT is(pg_temp.alice(), 'NO_MATCHING_PERMISSION', 'a revoked MemberRole grant does not count');
ROLLBACK TO SAVEPOINT s;
SAVEPOINT s;
UPDATE plystra.roles SET status = 'disabled' WHERE id = 'role_finance_approver';
SELECT is(pg_temp.alice(), 'NO_MATCHING_PERMISSION', 'a disabled Role does not count');
ROLLBACK TO SAVEPOINT s;
SAVEPOINT s;
UPDATE plystra.role_permissions SET deleted_at = now() WHERE role_id = 'role_finance_approver';
SELECT is(pg_temp.alice(), 'NO_MATCHING_PERMISSION', 'a deleted RolePermission does not count');
ROLLBACK TO SAVEPOINT s;
SAVEPOINT s;
UPDATE plystra.permissions SET status = 'disabled' WHERE id = 'perm_invoice_approve_group_tree';
SELECT is(pg_temp.alice(), 'NO_MATCHING_PERMISSION', 'a disabled Permission does not count');
ROLLBACK TO SAVEPOINT s;

-- group_tree matches on label boundaries; `_` is an ordinary character.
INSERT INTO plystra.groups (id, space_id, name, path) VALUES
    ('group_fin_ops', 'space_acme', 'Fin Ops', 'fin_ops'), ('group_finxops', 'space_acme', 'Finx', 'finxops'),
    ('group_finance_old', 'space_acme', 'Old', 'finance_old');
INSERT INTO plystra.groups (id, space_id, parent_group_id, name, path) VALUES
    ('group_finxops_a', 'space_acme', 'group_finxops', 'A', 'finxops.a');
INSERT INTO plystra.resources (id, resource_type, space_id, group_id) VALUES
    ('invoice_finxops', 'invoice', 'space_acme', 'group_finxops_a'), ('invoice_old', 'invoice', 'space_acme', 'group_finance_old');
UPDATE plystra.role_permissions SET deleted_at = now() WHERE id = 'rp_t_space';
UPDATE plystra.member_roles SET scope_anchor_group_id = 'group_fin_ops' WHERE id = 'mr_t';
SELECT is(pg_temp.t('invoice_finxops', 'approve'), 'SCOPE_OUT_OF_BOUNDS', 'anchor fin_ops does not cover finxops.a');
SELECT is(pg_temp.alice('invoice_old'), 'SCOPE_OUT_OF_BOUNDS', 'anchor finance does not cover finance_old');

-- Audit modes.
SAVEPOINT s;
SET LOCAL plystra.audit_mode = 'off';
SELECT is(plystra.check(pg_temp.req('user_alice', 'um_alice_finance_reviewer', 'invoice_002', 'approve'))->'audit_log_id',
          'null'::jsonb, 'audit off: no row, audit_log_id null');
SET LOCAL plystra.audit_mode = 'deny_only';
SELECT is(plystra.check(pg_temp.req('user_alice', 'um_alice_finance_reviewer', 'invoice_001', 'approve'))->'audit_log_id',
          'null'::jsonb, 'deny_only: an allow writes nothing');
CREATE TEMP TABLE denied AS
SELECT plystra.check(pg_temp.req('user_alice', 'um_alice_finance_reviewer', 'invoice_002', 'approve'))->>'audit_log_id' AS id;
SELECT ok((SELECT count(*) = 1 FROM plystra.audit_logs WHERE id = (SELECT id FROM denied)), 'deny_only: a deny writes its row');
ROLLBACK TO SAVEPOINT s;

-- An old audit row does not change when the grant, the group or the binding changes later.
CREATE TEMP TABLE old AS
SELECT plystra.check(pg_temp.req('user_alice', 'um_alice_finance_reviewer', 'invoice_001', 'approve'))->>'audit_log_id' AS id;
CREATE TEMP TABLE old_trace AS SELECT trace FROM plystra.audit_logs WHERE id = (SELECT id FROM old);
UPDATE plystra.member_roles SET status = 'revoked' WHERE id = 'mr_finance_reviewer_approver_finance';
UPDATE plystra.groups SET display_name = 'Renamed' WHERE id = 'group_finance';
UPDATE plystra.user_members SET status = 'revoked' WHERE id = 'um_alice_finance_reviewer';
SELECT is((SELECT trace FROM plystra.audit_logs WHERE id = (SELECT id FROM old)), (SELECT trace FROM old_trace),
          'an old audit row says what was true when it was written');
SELECT is((SELECT trace->>'decision' FROM old_trace), 'allow', '... and it was an allow');
SELECT is(pg_temp.alice(), 'USER_MEMBER_REVOKED', 'the same transaction already sees the revocation');

-- No key in a stored trace names a credential, whatever the resource metadata holds.
UPDATE plystra.resources SET metadata = '{"number": "INV-9", "password": "p", "nested": {"api_key": "k", "AccessToken": "t"}}'
WHERE id = 'invoice_002';
CREATE TEMP TABLE leaky AS
SELECT plystra.check(pg_temp.req('user_bob', 'um_bob_finance_reviewer', 'invoice_002', 'approve'))->>'audit_log_id' AS id;
SELECT is((SELECT trace#>'{target,resource,metadata}' FROM plystra.audit_logs WHERE id = (SELECT id FROM leaky)),
          '{"number": "INV-9", "nested": {}}'::jsonb, 'credential-like keys are removed from the stored trace');
SELECT is((SELECT count(*) FROM plystra.audit_logs a,
                  jsonb_path_query(a.trace, '$.** ? (@.type() == "object").keyvalue().key') AS k
           WHERE plystra.sensitive_key(k #>> '{}')), 0::bigint,
          'no stored trace anywhere holds a sensitive key');

SELECT * FROM finish();
ROLLBACK;
