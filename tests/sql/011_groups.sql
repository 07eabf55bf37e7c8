-- Group paths (002, rule 2): a root has one label, a child's path is its parent's path + '.' + one label,
-- path and parent_group_id never change, depth is derived. `_` is an ordinary character in paths.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
SELECT plan(70);

\ir helpers/rejects.sql

INSERT INTO plystra.spaces (id, name) VALUES ('t11_sa', 'Space A'), ('t11_sb', 'Space B');

-- Roots
SELECT lives_ok($$INSERT INTO plystra.groups (id, space_id, path, name) VALUES ('t11_fin', 't11_sa', 'fin', 'Finance')$$,
                'a root group with a one-label path inserts');
SELECT is((SELECT depth FROM plystra.groups WHERE id = 't11_fin'), 0, 'a root group has depth 0');
SELECT lives_ok($$INSERT INTO plystra.groups (id, space_id, path, name) VALUES ('t11_fin_b', 't11_sb', 'fin', 'Finance B')$$,
                'the same root path in another Space inserts');
SELECT * FROM pg_temp.rejects($$INSERT INTO plystra.groups (id, space_id, path, name) VALUES ('t11_x', 't11_sa', 'hr.payroll', 'x')$$,
                              '23514', 'groups_path_parent', 'a root group with a two-label path');
SELECT throws_ok($$INSERT INTO plystra.groups (id, space_id, path, name) VALUES ('t11_x', 't11_sa', 'hr.payroll', 'x')$$,
                 '23514', 'plystra: a root group (no groups.parent_group_id) must have a one-label groups.path',
                 'the root-path message names the rule');

-- Children
SELECT lives_ok($$INSERT INTO plystra.groups (id, space_id, parent_group_id, path, name)
                 VALUES ('t11_ops', 't11_sa', 't11_fin', 'fin.ops', 'Operations')$$,
                'a child whose path is parent.path || ''.'' || label inserts');
SELECT lives_ok($$INSERT INTO plystra.groups (id, space_id, parent_group_id, path, name)
                 VALUES ('t11_ap', 't11_sa', 't11_ops', 'fin.ops.ap', 'Accounts payable')$$,
                'a grandchild inserts');
SELECT is((SELECT depth FROM plystra.groups WHERE id = 't11_ops'), 1, 'a child has depth 1');
SELECT is((SELECT depth FROM plystra.groups WHERE id = 't11_ap'), 2, 'a grandchild has depth 2');
SELECT throws_ok($$INSERT INTO plystra.groups (id, space_id, parent_group_id, path, name, depth)
                   VALUES ('t11_x', 't11_sa', 't11_fin', 'fin.y', 'y', 1)$$,
                 '428C9', NULL, 'depth is generated and cannot be supplied');
SELECT * FROM pg_temp.rejects($$INSERT INTO plystra.groups (id, space_id, parent_group_id, path, name)
                                VALUES ('t11_x', 't11_sa', 't11_fin', 'hr.ops', 'x')$$,
                              '23514', 'groups_path_parent', 'a child path that does not start with the parent''s');
SELECT * FROM pg_temp.rejects($$INSERT INTO plystra.groups (id, space_id, parent_group_id, path, name)
                                VALUES ('t11_x', 't11_sa', 't11_fin', 'fin.a.b', 'x')$$,
                              '23514', 'groups_path_parent', 'a child path that adds two labels');
SELECT * FROM pg_temp.rejects($$INSERT INTO plystra.groups (id, space_id, parent_group_id, path, name)
                                VALUES ('t11_x', 't11_sa', 't11_fin', 'fin', 'x')$$,
                              '23514', 'groups_path_parent', 'a child path equal to the parent''s');
SELECT * FROM pg_temp.rejects($$INSERT INTO plystra.groups (id, space_id, parent_group_id, path, name)
                                VALUES ('t11_x', 't11_sa', 't11_fin', 'finops', 'x')$$,
                              '23514', 'groups_path_parent', 'a child path that extends the parent''s label without a dot');
SELECT * FROM pg_temp.rejects($$INSERT INTO plystra.groups (id, space_id, parent_group_id, path, name)
                                VALUES ('t11_x', 't11_sa', 't11_ops', 'fin.x', 'x')$$,
                              '23514', 'groups_path_parent', 'a grandchild path that skips its parent');
SELECT * FROM pg_temp.rejects($$INSERT INTO plystra.groups (id, space_id, parent_group_id, path, name)
                                VALUES ('t11_x', 't11_sa', 't11_ops', 'fin.ops', 'x')$$,
                              '23514', 'groups_path_parent', 'a grandchild with its parent''s own path');
SELECT throws_ok($$INSERT INTO plystra.groups (id, space_id, parent_group_id, path, name)
                   VALUES ('t11_x', 't11_sa', 't11_fin', 'fin.Bad', 'x')$$,
                 '23514', NULL, 'a label outside [a-z][a-z0-9_]* is still rejected (groups_path_format)');
SELECT throws_ok($$INSERT INTO plystra.groups (id, space_id, parent_group_id, path, name)
                   VALUES ('t11_x', 't11_sa', 't11_nowhere', 'fin.x', 'x')$$,
                 '23503', NULL, 'an unknown parent is the foreign key''s error');

-- `_` is literal: fin_ops and finxops are different trees.
SELECT lives_ok($$INSERT INTO plystra.groups (id, space_id, path, name) VALUES ('t11_fin_ops', 't11_sa', 'fin_ops', 'Fin ops')$$,
                'root fin_ops inserts');
SELECT lives_ok($$INSERT INTO plystra.groups (id, space_id, path, name) VALUES ('t11_finxops', 't11_sa', 'finxops', 'Finx ops')$$,
                'root finxops inserts next to fin_ops (distinct paths)');
SELECT lives_ok($$INSERT INTO plystra.groups (id, space_id, parent_group_id, path, name)
                 VALUES ('t11_fin_ops_a', 't11_sa', 't11_fin_ops', 'fin_ops.a', 'A')$$,
                'a child of fin_ops with path fin_ops.a inserts');
SELECT * FROM pg_temp.rejects($$INSERT INTO plystra.groups (id, space_id, parent_group_id, path, name)
                                VALUES ('t11_x', 't11_sa', 't11_fin_ops', 'finxops.a', 'x')$$,
                              '23514', 'groups_path_parent', 'a child of fin_ops must start with fin_ops. (finxops.a is not a LIKE match)');
SELECT * FROM pg_temp.rejects($$INSERT INTO plystra.groups (id, space_id, parent_group_id, path, name)
                                VALUES ('t11_x', 't11_sa', 't11_finxops', 'fin_ops.b', 'x')$$,
                              '23514', 'groups_path_parent', 'a child of finxops cannot take a fin_ops. path');
SELECT * FROM pg_temp.rejects($$INSERT INTO plystra.groups (id, space_id, parent_group_id, path, name)
                                VALUES ('t11_x', 't11_sa', 't11_fin_ops', 'fin_opsx.a', 'x')$$,
                              '23514', 'groups_path_parent', 'a child of fin_ops cannot take a fin_opsx. path');

-- Immutability
SELECT * FROM pg_temp.rejects($$UPDATE plystra.groups SET path = 'fin.operations' WHERE id = 't11_ops'$$,
                              '23514', 'groups_path_immutable', 'path cannot change');
SELECT * FROM pg_temp.rejects($$UPDATE plystra.groups SET path = 'finz', space_id = 't11_sb' WHERE id = 't11_finxops'$$,
                              '23514', 'groups_space_immutable', 'moving a group to another Space reports space_id first');
SELECT * FROM pg_temp.rejects($$UPDATE plystra.groups SET parent_group_id = NULL WHERE id = 't11_ops'$$,
                              '23514', 'groups_parent_immutable', 'parent_group_id cannot be cleared');
SELECT * FROM pg_temp.rejects($$UPDATE plystra.groups SET parent_group_id = 't11_fin_ops' WHERE id = 't11_ops'$$,
                              '23514', 'groups_parent_immutable', 'parent_group_id cannot be changed');
SELECT * FROM pg_temp.rejects($$UPDATE plystra.groups SET parent_group_id = 't11_fin' WHERE id = 't11_finxops'$$,
                              '23514', 'groups_parent_immutable', 'a root cannot be given a parent');
SELECT * FROM pg_temp.rejects($$UPDATE plystra.groups SET space_id = 't11_sb' WHERE id = 't11_finxops'$$,
                              '23514', 'groups_space_immutable', 'space_id cannot change');
SELECT * FROM pg_temp.rejects($$UPDATE plystra.groups SET id = 't11_renamed' WHERE id = 't11_finxops'$$,
                              '23514', 'groups_id_immutable', 'id cannot change');
SELECT throws_ok($$UPDATE plystra.groups SET path = 'fin.operations' WHERE id = 't11_ops'$$,
                 '23514', 'plystra: groups.path is immutable', 'the immutability message names the column');
SELECT lives_ok($$UPDATE plystra.groups SET name = 'Ops', display_name = 'Operations', sort_order = 5,
                        status = 'disabled', metadata = '{"k": 1}' WHERE id = 't11_ops'$$,
                'other columns of a group can change');
SELECT lives_ok($$UPDATE plystra.groups SET path = path, parent_group_id = parent_group_id, space_id = space_id
                  WHERE id = 't11_ops'$$,
                'setting immutable columns to their current values is allowed');
SELECT lives_ok($$UPDATE plystra.groups SET deleted_at = now() WHERE id = 't11_ap'$$, 'a group can be soft-deleted');
SELECT row_eq($$SELECT path, depth, parent_group_id, space_id FROM plystra.groups WHERE id = 't11_ops'$$,
              ROW('fin.ops'::text, 1, 't11_fin'::text, 't11_sa'::text),
              'path, depth, parent and space are unchanged after the rejected updates');

SELECT * FROM finish();
ROLLBACK;
