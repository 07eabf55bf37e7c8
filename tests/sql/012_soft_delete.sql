-- Soft delete only (002, rule 4): DELETE and TRUNCATE fail on every Core entity that audit rows refer to
-- (23001, <table>_soft_delete_only); sessions and schema_migrations stay deletable.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
SELECT plan(108);

\ir helpers/rejects.sql

-- Fixture: one row in every Core table.
INSERT INTO plystra.users (id, email, password_hash) VALUES ('t12_u', 't12_u@example.test', 'argon2id$v=19$m=65536,t=3,p=2$c2FsdA$aGFzaA');
INSERT INTO plystra.spaces (id, name) VALUES ('t12_s', 'Space');
INSERT INTO plystra.groups (id, space_id, path, name) VALUES ('t12_g', 't12_s', 'fin', 'Finance');
INSERT INTO plystra.members (id, space_id, display_name) VALUES ('t12_m', 't12_s', 'Alice');
INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type) VALUES ('t12_um', 't12_u', 't12_m', 't12_s', 'self');
INSERT INTO plystra.roles (id, space_id, key, name) VALUES ('t12_r', 't12_s', 'reviewer', 'Reviewer');
INSERT INTO plystra.permissions (id, resource, action, scope) VALUES ('t12_p', 't12_invoice', 'approve', 'group');
INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id) VALUES ('t12_mr', 't12_m', 't12_r', 't12_s', 't12_g');
INSERT INTO plystra.role_permissions (id, role_id, permission_id) VALUES ('t12_rp', 't12_r', 't12_p');
INSERT INTO plystra.resource_types (id, key, display_name) VALUES ('t12_rt', 't12_invoice', 'Invoice');
INSERT INTO plystra.resource_actions (id, resource_type_id, key, display_name) VALUES ('t12_ra', 't12_rt', 'approve', 'Approve');
INSERT INTO plystra.resource_mappings (id, resource_type_id) VALUES ('t12_rm', 't12_rt');
INSERT INTO plystra.resources (id, resource_type, space_id, group_id, owner_member_id) VALUES ('t12_res', 't12_invoice', 't12_s', 't12_g', 't12_m');
INSERT INTO plystra.admin_grants (id, user_id, member_id, level, space_id, permission_key)
    VALUES ('t12_ag', 't12_u', 't12_m', 'space_admin', 't12_s', 'groups:manage');
INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, space_id, permission_keys)
    VALUES ('t12_ak', 'ci', 'ply_ak_t12_ak', 't12_key_hash_value', 'space', 't12_s', '["groups:read"]');
INSERT INTO plystra.sessions (id, user_id, active_space_id, active_member_id, active_user_member_id,
                              access_token_hash, refresh_token_hash, expires_at, refresh_expires_at)
    VALUES ('t12_sess', 't12_u', 't12_s', 't12_m', 't12_um', 't12_access_hash', 't12_refresh_hash',
            now() + interval '15 minutes', now() + interval '30 days');

-- (table, id of its fixture row) for every soft-delete-only table.
CREATE TEMP TABLE core_rows (tbl text PRIMARY KEY, row_id text NOT NULL, ord serial) ON COMMIT DROP;
INSERT INTO core_rows (tbl, row_id) VALUES
    ('users', 't12_u'), ('spaces', 't12_s'), ('groups', 't12_g'), ('members', 't12_m'), ('user_members', 't12_um'),
    ('roles', 't12_r'), ('permissions', 't12_p'), ('member_roles', 't12_mr'), ('role_permissions', 't12_rp'),
    ('resources', 't12_res'), ('resource_types', 't12_rt'), ('resource_actions', 't12_ra'),
    ('resource_mappings', 't12_rm'), ('admin_grants', 't12_ag'), ('api_keys', 't12_ak');

SELECT t.r FROM core_rows AS c,
    LATERAL pg_temp.rejects(format('DELETE FROM plystra.%I WHERE id = %L', c.tbl, c.row_id),
                            '23001', c.tbl || '_soft_delete_only', 'DELETE FROM plystra.' || c.tbl) AS t(r)
 ORDER BY c.ord;
SELECT t.r FROM core_rows AS c,
    LATERAL pg_temp.rejects(format('TRUNCATE plystra.%I CASCADE', c.tbl),
                            '23001', c.tbl || '_soft_delete_only', 'TRUNCATE plystra.' || c.tbl || ' CASCADE') AS t(r)
 ORDER BY c.ord;
SELECT * FROM pg_temp.rejects($$TRUNCATE plystra.member_roles$$, '23001', 'member_roles_soft_delete_only',
                              'TRUNCATE without CASCADE');
SELECT * FROM pg_temp.rejects($$DELETE FROM plystra.groups$$, '23001', 'groups_soft_delete_only',
                              'DELETE without WHERE');
SELECT throws_ok($$DELETE FROM plystra.groups WHERE id = 't12_g'$$, '23001',
                 'plystra: plystra.groups rows are soft-delete only (audit rows refer to them): set deleted_at or status instead of DELETE',
                 'the DELETE message says what to do instead');
SELECT throws_ok($$TRUNCATE plystra.groups CASCADE$$, '23001',
                 'plystra: plystra.groups rows are soft-delete only (audit rows refer to them): set deleted_at or status instead of TRUNCATE',
                 'the TRUNCATE message says what to do instead');
SELECT is((SELECT count(*)::int FROM core_rows AS c
            WHERE (xpath('//n/text()',
                         query_to_xml(format('SELECT count(*) AS n FROM plystra.%I WHERE id = %L', c.tbl, c.row_id),
                                      false, false, '')))[1]::text = '1'),
          15, 'every fixture row is still there');

-- What is allowed
SELECT lives_ok($$UPDATE plystra.groups SET deleted_at = now() WHERE id = 't12_g'$$, 'soft delete: set deleted_at');
SELECT lives_ok($$UPDATE plystra.resource_types SET status = 'disabled' WHERE id = 't12_rt'$$, 'soft delete: set status');
SELECT lives_ok($$DELETE FROM plystra.groups WHERE id = 'no-such-group'$$, 'a DELETE that matches no row is harmless');
SELECT lives_ok($$DELETE FROM plystra.sessions WHERE id = 't12_sess'$$, 'sessions rows can be deleted');
SELECT is((SELECT count(*)::int FROM plystra.sessions WHERE id = 't12_sess'), 0, 'the session row is gone');
SELECT lives_ok($$TRUNCATE plystra.sessions$$, 'sessions can be truncated');
SELECT lives_ok($$INSERT INTO plystra.schema_migrations (version, name, checksum) VALUES ('999', 'test', repeat('a', 64))$$,
                'schema_migrations accepts a row');
SELECT lives_ok($$DELETE FROM plystra.schema_migrations WHERE version = '999'$$, 'schema_migrations rows can be deleted');
SELECT lives_ok($$TRUNCATE plystra.schema_migrations$$, 'schema_migrations can be truncated');

SELECT * FROM finish();
ROLLBACK;
