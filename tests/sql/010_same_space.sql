-- Same-Space rules (002, rule 1): no row points at a Member, Role or Group of another Space, on INSERT or UPDATE;
-- group-scoped admin grants and API keys take their Space from the group.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
SELECT plan(82);

\ir helpers/rejects.sql

-- Fixture: two Spaces with look-alike contents.
INSERT INTO plystra.spaces (id, name) VALUES ('t10_sa', 'Space A'), ('t10_sb', 'Space B');
INSERT INTO plystra.groups (id, space_id, path, name) VALUES ('t10_ga', 't10_sa', 'fin', 'Finance A'),
                                                             ('t10_gb', 't10_sb', 'fin', 'Finance B');
INSERT INTO plystra.members (id, space_id, display_name) VALUES ('t10_ma', 't10_sa', 'Alice'),
                                                                ('t10_ma2', 't10_sa', 'Anna'),
                                                                ('t10_mb', 't10_sb', 'Bob');
INSERT INTO plystra.users (id, email) VALUES ('t10_u1', 't10_u1@example.test');
INSERT INTO plystra.roles (id, space_id, key, name) VALUES ('t10_ra', 't10_sa', 'reviewer', 'Reviewer A'),
                                                           ('t10_rb', 't10_sb', 'reviewer', 'Reviewer B');
INSERT INTO plystra.resource_types (id, key, display_name) VALUES ('t10_rt', 't10_invoice', 'Invoice');
INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type)
    VALUES ('t10_um', 't10_u1', 't10_ma', 't10_sa', 'self');
INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id)
    VALUES ('t10_mr', 't10_ma', 't10_ra', 't10_sa', 't10_ga');
INSERT INTO plystra.resources (id, resource_type, space_id, group_id, owner_member_id)
    VALUES ('t10_res', 't10_invoice', 't10_sa', 't10_ga', 't10_ma');
INSERT INTO plystra.admin_grants (id, user_id, member_id, level, space_id, permission_key)
    VALUES ('t10_ag', 't10_u1', 't10_ma', 'space_admin', 't10_sa', 'groups:manage');

-- user_members
SELECT lives_ok($$INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type, linked_by_member_id)
                 VALUES ('t10_um2', 't10_u1', 't10_ma2', 't10_sa', 'delegate', 't10_ma')$$,
                'user_members: member and linker in the row''s Space insert');
SELECT * FROM pg_temp.rejects($$INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type)
                                VALUES ('t10_x', 't10_u1', 't10_mb', 't10_sa', 'self')$$,
                              '23514', 'user_members_member_same_space', 'user_members: INSERT with a Member of another Space');
SELECT * FROM pg_temp.rejects($$INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type, linked_by_member_id)
                                VALUES ('t10_x', 't10_u1', 't10_ma2', 't10_sa', 'self', 't10_mb')$$,
                              '23514', 'user_members_linked_by_same_space', 'user_members: INSERT linked by a Member of another Space');
SELECT * FROM pg_temp.rejects($$UPDATE plystra.user_members SET member_id = 't10_mb' WHERE id = 't10_um'$$,
                              '23514', 'user_members_member_same_space', 'user_members: UPDATE to a Member of another Space');
SELECT * FROM pg_temp.rejects($$UPDATE plystra.user_members SET linked_by_member_id = 't10_mb' WHERE id = 't10_um'$$,
                              '23514', 'user_members_linked_by_same_space', 'user_members: UPDATE linker to a Member of another Space');
SELECT lives_ok($$UPDATE plystra.user_members SET linked_by_member_id = 't10_ma2' WHERE id = 't10_um'$$,
                'user_members: UPDATE linker within the Space works');
SELECT throws_ok($$INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type)
                   VALUES ('t10_x', 't10_u1', 't10_nobody', 't10_sa', 'self')$$,
                 '23503', NULL, 'user_members: an unknown Member is still the foreign key''s error');

-- member_roles
SELECT lives_ok($$INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id)
                 VALUES ('t10_mr2', 't10_ma2', 't10_ra', 't10_sa', 't10_ga')$$,
                'member_roles: member, role and anchor in the row''s Space insert');
SELECT lives_ok($$INSERT INTO plystra.member_roles (id, member_id, role_id, space_id)
                 VALUES ('t10_mr3', 't10_ma2', 't10_ra', 't10_sa')$$,
                'member_roles: an unanchored grant inserts');
SELECT * FROM pg_temp.rejects($$INSERT INTO plystra.member_roles (id, member_id, role_id, space_id)
                                VALUES ('t10_x', 't10_mb', 't10_ra', 't10_sa')$$,
                              '23514', 'member_roles_member_same_space', 'member_roles: INSERT with a Member of another Space');
SELECT * FROM pg_temp.rejects($$INSERT INTO plystra.member_roles (id, member_id, role_id, space_id)
                                VALUES ('t10_x', 't10_ma', 't10_rb', 't10_sa')$$,
                              '23514', 'member_roles_role_same_space', 'member_roles: INSERT with a Role of another Space');
SELECT * FROM pg_temp.rejects($$INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id)
                                VALUES ('t10_x', 't10_ma2', 't10_ra', 't10_sa', 't10_gb')$$,
                              '23514', 'member_roles_anchor_same_space', 'member_roles: INSERT anchored to a Group of another Space');
SELECT throws_ok($$INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id)
                   VALUES ('t10_x', 't10_ma2', 't10_ra', 't10_sa', 't10_gb')$$,
                 '23514', 'plystra: member_roles.scope_anchor_group_id must belong to member_roles.space_id',
                 'member_roles: the message names the rule');
SELECT * FROM pg_temp.rejects($$UPDATE plystra.member_roles SET scope_anchor_group_id = 't10_gb' WHERE id = 't10_mr'$$,
                              '23514', 'member_roles_anchor_same_space', 'member_roles: UPDATE anchor to a Group of another Space');
SELECT * FROM pg_temp.rejects($$UPDATE plystra.member_roles SET role_id = 't10_rb' WHERE id = 't10_mr'$$,
                              '23514', 'member_roles_role_same_space', 'member_roles: UPDATE to a Role of another Space');
SELECT * FROM pg_temp.rejects($$UPDATE plystra.member_roles SET member_id = 't10_mb' WHERE id = 't10_mr'$$,
                              '23514', 'member_roles_member_same_space', 'member_roles: UPDATE to a Member of another Space');

-- resources
SELECT lives_ok($$INSERT INTO plystra.resources (id, resource_type, space_id, group_id, owner_member_id)
                 VALUES ('t10_res2', 't10_invoice', 't10_sa', 't10_ga', 't10_ma2')$$,
                'resources: group and owner in the row''s Space insert');
SELECT lives_ok($$INSERT INTO plystra.resources (id, resource_type, space_id) VALUES ('t10_res3', 't10_invoice', 't10_sa')$$,
                'resources: no group and no owner inserts');
SELECT * FROM pg_temp.rejects($$INSERT INTO plystra.resources (id, resource_type, space_id, group_id)
                                VALUES ('t10_x', 't10_invoice', 't10_sa', 't10_gb')$$,
                              '23514', 'resources_group_same_space', 'resources: INSERT in a Group of another Space');
SELECT * FROM pg_temp.rejects($$INSERT INTO plystra.resources (id, resource_type, space_id, owner_member_id)
                                VALUES ('t10_x', 't10_invoice', 't10_sa', 't10_mb')$$,
                              '23514', 'resources_owner_same_space', 'resources: INSERT owned by a Member of another Space');
SELECT * FROM pg_temp.rejects($$UPDATE plystra.resources SET group_id = 't10_gb' WHERE id = 't10_res'$$,
                              '23514', 'resources_group_same_space', 'resources: UPDATE into a Group of another Space');
SELECT * FROM pg_temp.rejects($$UPDATE plystra.resources SET owner_member_id = 't10_mb' WHERE id = 't10_res'$$,
                              '23514', 'resources_owner_same_space', 'resources: UPDATE owner to a Member of another Space');

-- groups
SELECT * FROM pg_temp.rejects($$INSERT INTO plystra.groups (id, space_id, parent_group_id, path, name)
                                VALUES ('t10_x', 't10_sa', 't10_gb', 'fin.ops', 'Ops')$$,
                              '23514', 'groups_parent_same_space', 'groups: a parent in another Space (even with a matching path)');
SELECT lives_ok($$INSERT INTO plystra.groups (id, space_id, parent_group_id, path, name)
                 VALUES ('t10_gops', 't10_sa', 't10_ga', 'fin.ops', 'Ops')$$,
                'groups: a child of a Group in the same Space inserts');

-- admin_grants
SELECT lives_ok($$INSERT INTO plystra.admin_grants (id, user_id, level, group_id, permission_key)
                 VALUES ('t10_ag_derived', 't10_u1', 'group_admin', 't10_ga', 'groups:read')$$,
                'admin_grants: a group_admin grant without space_id inserts');
SELECT is((SELECT space_id FROM plystra.admin_grants WHERE id = 't10_ag_derived'), 't10_sa',
          'admin_grants: space_id of a group_admin grant is derived from its group');
SELECT lives_ok($$INSERT INTO plystra.admin_grants (id, user_id, level, space_id, group_id, permission_key)
                 VALUES ('t10_ag_explicit', 't10_u1', 'group_admin', 't10_sa', 't10_ga', 'groups:read')$$,
                'admin_grants: a group_admin grant with its group''s space_id inserts');
SELECT * FROM pg_temp.rejects($$INSERT INTO plystra.admin_grants (id, user_id, level, space_id, group_id, permission_key)
                                VALUES ('t10_x', 't10_u1', 'group_admin', 't10_sb', 't10_ga', 'groups:read')$$,
                              '23514', 'admin_grants_group_same_space', 'admin_grants: group_admin with a space_id other than its group''s');
SELECT * FROM pg_temp.rejects($$INSERT INTO plystra.admin_grants (id, user_id, member_id, level, space_id, permission_key)
                                VALUES ('t10_x', 't10_u1', 't10_mb', 'space_admin', 't10_sa', 'groups:read')$$,
                              '23514', 'admin_grants_member_same_space', 'admin_grants: space_admin for a Member of another Space');
SELECT * FROM pg_temp.rejects($$INSERT INTO plystra.admin_grants (id, user_id, member_id, level, group_id, permission_key)
                                VALUES ('t10_x', 't10_u1', 't10_mb', 'group_admin', 't10_ga', 'groups:read')$$,
                              '23514', 'admin_grants_member_same_space', 'admin_grants: member checked against the derived Space');
SELECT * FROM pg_temp.rejects($$UPDATE plystra.admin_grants SET member_id = 't10_mb' WHERE id = 't10_ag'$$,
                              '23514', 'admin_grants_member_same_space', 'admin_grants: UPDATE member to one of another Space');
SELECT * FROM pg_temp.rejects($$UPDATE plystra.admin_grants SET group_id = 't10_gb' WHERE id = 't10_ag_derived'$$,
                              '23514', 'admin_grants_group_same_space', 'admin_grants: UPDATE group to one of another Space');
SELECT lives_ok($$INSERT INTO plystra.admin_grants (id, user_id, member_id, level, permission_key)
                 VALUES ('t10_ag_inst', 't10_u1', 't10_mb', 'instance_admin', 'groups:read')$$,
                'admin_grants: an instance-level grant names a Member of any Space');

-- api_keys
SELECT lives_ok($$INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, group_id)
                 VALUES ('t10_ak', 'ci', 'ply_ak_t10_ak', 't10_hash_1', 'group', 't10_ga')$$,
                'api_keys: a group key without space_id inserts');
SELECT is((SELECT space_id FROM plystra.api_keys WHERE id = 't10_ak'), 't10_sa',
          'api_keys: space_id of a group key is derived from its group');
SELECT * FROM pg_temp.rejects($$INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, space_id, group_id)
                                VALUES ('t10_x', 'ci', 'ply_ak_t10_x', 't10_hash_2', 'group', 't10_sb', 't10_ga')$$,
                              '23514', 'api_keys_group_same_space', 'api_keys: group key with a space_id other than its group''s');
SELECT * FROM pg_temp.rejects($$UPDATE plystra.api_keys SET group_id = 't10_gb' WHERE id = 't10_ak'$$,
                              '23514', 'api_keys_group_same_space', 'api_keys: UPDATE group to one of another Space');
SELECT lives_ok($$INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, space_id)
                 VALUES ('t10_ak2', 'ci', 'ply_ak_t10_ak2', 't10_hash_3', 'space', 't10_sb')$$,
                'api_keys: a space key inserts');

SELECT * FROM finish();
ROLLBACK;
