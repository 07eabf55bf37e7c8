-- Immutable columns and updated_at (002, rule 3): id never changes on any table that has one, space_id never
-- changes on space-scoped tables (both 23514, <table>_id_immutable / <table>_space_immutable), and every UPDATE
-- sets updated_at to now().
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
SELECT plan(85);

\ir helpers/rejects.sql

-- Fixture: one row in every Core table.
INSERT INTO plystra.users (id, email, password_hash) VALUES ('t16_u', 't16_u@example.test', 'argon2id$v=19$m=65536,t=3,p=2$c2FsdA$aGFzaA');
INSERT INTO plystra.spaces (id, name) VALUES ('t16_s', 'Space');
INSERT INTO plystra.groups (id, space_id, path, name) VALUES ('t16_g', 't16_s', 'fin', 'Finance');
INSERT INTO plystra.members (id, space_id, display_name) VALUES ('t16_m', 't16_s', 'Alice');
INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type) VALUES ('t16_um', 't16_u', 't16_m', 't16_s', 'self');
INSERT INTO plystra.roles (id, space_id, key, name) VALUES ('t16_r', 't16_s', 'reviewer', 'Reviewer');
INSERT INTO plystra.permissions (id, resource, action, scope) VALUES ('t16_p', 't16_invoice', 'approve', 'group');
INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id) VALUES ('t16_mr', 't16_m', 't16_r', 't16_s', 't16_g');
INSERT INTO plystra.role_permissions (id, role_id, permission_id) VALUES ('t16_rp', 't16_r', 't16_p');
INSERT INTO plystra.resource_types (id, key, display_name) VALUES ('t16_rt', 't16_invoice', 'Invoice');
INSERT INTO plystra.resource_actions (id, resource_type_id, key, display_name) VALUES ('t16_ra', 't16_rt', 'approve', 'Approve');
INSERT INTO plystra.resource_mappings (id, resource_type_id) VALUES ('t16_rm', 't16_rt');
INSERT INTO plystra.resources (id, resource_type, space_id, group_id, owner_member_id) VALUES ('t16_res', 't16_invoice', 't16_s', 't16_g', 't16_m');
INSERT INTO plystra.admin_grants (id, user_id, member_id, level, space_id, permission_key)
    VALUES ('t16_ag', 't16_u', 't16_m', 'space_admin', 't16_s', 'groups:manage');
INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, space_id, permission_keys)
    VALUES ('t16_ak', 'ci', 'ply_ak_t16_ak', 't16_key_hash_value', 'space', 't16_s', '["groups:read"]');
INSERT INTO plystra.sessions (id, user_id, active_space_id, active_member_id, active_user_member_id,
                              access_token_hash, refresh_token_hash, expires_at, refresh_expires_at)
    VALUES ('t16_sess', 't16_u', 't16_s', 't16_m', 't16_um', 't16_access_hash', 't16_refresh_hash',
            now() + interval '15 minutes', now() + interval '30 days');

-- (table, id of its fixture row) for every soft-delete-only table.
CREATE TEMP TABLE core_rows (tbl text PRIMARY KEY, row_id text NOT NULL, ord serial) ON COMMIT DROP;
INSERT INTO core_rows (tbl, row_id) VALUES
    ('users', 't16_u'), ('spaces', 't16_s'), ('groups', 't16_g'), ('members', 't16_m'), ('user_members', 't16_um'),
    ('roles', 't16_r'), ('permissions', 't16_p'), ('member_roles', 't16_mr'), ('role_permissions', 't16_rp'),
    ('resources', 't16_res'), ('resource_types', 't16_rt'), ('resource_actions', 't16_ra'),
    ('resource_mappings', 't16_rm'), ('admin_grants', 't16_ag'), ('api_keys', 't16_ak');
INSERT INTO core_rows (tbl, row_id) VALUES ('sessions', 't16_sess');
INSERT INTO plystra.spaces (id, name) VALUES ('t16_s2', 'Other Space');

-- id
SELECT t.r FROM core_rows AS c,
    LATERAL pg_temp.rejects(format('UPDATE plystra.%I SET id = %L WHERE id = %L', c.tbl, c.row_id || '_renamed', c.row_id),
                            '23514', c.tbl || '_id_immutable', c.tbl || ': id cannot change') AS t(r)
 ORDER BY c.ord;

-- space_id
SELECT t.r FROM core_rows AS c,
    LATERAL pg_temp.rejects(format('UPDATE plystra.%I SET space_id = %L WHERE id = %L', c.tbl, 't16_s2', c.row_id),
                            '23514', c.tbl || '_space_immutable', c.tbl || ': space_id cannot change') AS t(r)
 WHERE c.tbl IN ('groups', 'members', 'user_members', 'roles', 'member_roles', 'resources')
 ORDER BY c.ord;
SELECT throws_ok($$UPDATE plystra.members SET space_id = 't16_s2' WHERE id = 't16_m'$$, '23514',
                 'plystra: members.space_id is immutable', 'the message names the column');
SELECT lives_ok($$UPDATE plystra.members SET id = id, space_id = space_id, display_name = 'Alice B.' WHERE id = 't16_m'$$,
                'assigning the current id and space_id is not a change');

-- updated_at: an UPDATE that tries to set it to the past still ends with now().
CREATE FUNCTION pg_temp.touch_check(tbl text, row_id text) RETURNS boolean LANGUAGE plpgsql AS $f$
DECLARE
    ts timestamptz;
BEGIN
    EXECUTE format('UPDATE plystra.%I SET updated_at = %L WHERE id = %L', tbl, '2000-01-01 00:00:00+00', row_id);
    EXECUTE format('SELECT updated_at FROM plystra.%I WHERE id = %L', tbl, row_id) INTO ts;
    RETURN ts = now();
END $f$;
SELECT ok(pg_temp.touch_check(c.tbl, c.row_id), c.tbl || ': UPDATE sets updated_at to now()')
  FROM core_rows AS c ORDER BY c.ord;
INSERT INTO plystra.roles (id, space_id, key, name, created_at, updated_at)
    VALUES ('t16_old_role', 't16_s', 'old', 'Old', '2001-01-01', '2001-01-01');
UPDATE plystra.roles SET name = 'Renamed' WHERE id = 't16_old_role';
SELECT row_eq($$SELECT created_at, updated_at FROM plystra.roles WHERE id = 't16_old_role'$$,
              ROW('2001-01-01'::timestamptz, now()), 'a real change moves updated_at to now() and leaves created_at');

SELECT * FROM finish();
ROLLBACK;
