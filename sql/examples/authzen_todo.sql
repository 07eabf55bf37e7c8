-- The OpenID AuthZEN todo scenario in Plystra's own model: one shared todo list, five users, four roles.
-- Load it into any database where `CREATE EXTENSION plystra` ran:   psql -f sql/examples/authzen_todo.sql
-- Loading it twice changes nothing. plystra_http/tests/authzen.rs loads it, starts the REST front and sends every
-- case of the interop's decision file (plystra_http/tests/data/authzen-todo/, as published) to
-- /access/v1/evaluation and /access/v1/evaluations.
--
-- How the scenario maps onto the model:
--
-- * Users. The AuthZEN subject id is the Plystra User id, verbatim: the interop's PEP sends the identity
--   provider's subject ids (`CiRmZDA2...`), so those are the users' ids, and their e-mails are their e-mails.
-- * One Space, `space_authzen_todo`; each user acts through one Member of it (bound by a primary binding, so an
--   AuthZEN request that names only the user resolves to it). A Member's id is its user's e-mail, because the
--   todo backend records a todo's owner (`ownerID`) as the owner's e-mail.
-- * Roles are the scenario's: `viewer` reads users and todos; `editor` also creates todos and updates and
--   deletes its own (scope `self`: the todo's owner is the acting Member); `admin` is an editor who deletes any
--   todo, `evil_genius` an editor who updates any todo (scope `space`). Rick holds both.
-- * Resource types `user` and `todo`, their actions named as the interop names them (`can_read_user`, ...).
--   Todos are not registered in Plystra: the PEP describes each one inline (`resource.properties`), and the
--   `todo` mapping says that a todo's owner Member is its `ownerID` property. A resource that is not registered
--   lies in the acting Member's Space.

BEGIN;
SELECT plystra.set_request_context('req_seed_authzen_todo', NULL, 'plystra authzen todo example');

INSERT INTO plystra.spaces (id, name, slug, type, status) VALUES
    ('space_authzen_todo', 'AuthZEN Todo', 'authzen-todo', 'custom', 'active')
ON CONFLICT (id) DO NOTHING;

-- No passwords: these users act only through a PEP that holds an API key.
INSERT INTO plystra.users (id, email, username, status, metadata) VALUES
    ('CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs', 'rick@the-citadel.com', 'Rick Sanchez', 'active',
     '{"picture": "https://www.topaz.sh/assets/templates/citadel/img/Rick%20Sanchez.jpg"}'),
    ('CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs', 'morty@the-citadel.com', 'Morty Smith', 'active',
     '{"picture": "https://www.topaz.sh/assets/templates/citadel/img/Morty%20Smith.jpg"}'),
    ('CiRmZDI2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs', 'summer@the-smiths.com', 'Summer Smith', 'active',
     '{"picture": "https://www.topaz.sh/assets/templates/citadel/img/Summer%20Smith.jpg"}'),
    ('CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs', 'beth@the-smiths.com', 'Beth Smith', 'active',
     '{"picture": "https://www.topaz.sh/assets/templates/citadel/img/Beth%20Smith.jpg"}'),
    ('CiRmZDQ2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs', 'jerry@the-smiths.com', 'Jerry Smith', 'active',
     '{"picture": "https://www.topaz.sh/assets/templates/citadel/img/Jerry%20Smith.jpg"}')
ON CONFLICT (id) DO NOTHING;

INSERT INTO plystra.members (id, space_id, display_name, member_type) VALUES
    ('rick@the-citadel.com', 'space_authzen_todo', 'Rick Sanchez', 'human'),
    ('morty@the-citadel.com', 'space_authzen_todo', 'Morty Smith', 'human'),
    ('summer@the-smiths.com', 'space_authzen_todo', 'Summer Smith', 'human'),
    ('beth@the-smiths.com', 'space_authzen_todo', 'Beth Smith', 'human'),
    ('jerry@the-smiths.com', 'space_authzen_todo', 'Jerry Smith', 'human')
ON CONFLICT (id) DO NOTHING;

INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type, status, is_primary) VALUES
    ('um_todo_rick', 'CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs', 'rick@the-citadel.com',
     'space_authzen_todo', 'login', 'active', true),
    ('um_todo_morty', 'CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs', 'morty@the-citadel.com',
     'space_authzen_todo', 'login', 'active', true),
    ('um_todo_summer', 'CiRmZDI2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs', 'summer@the-smiths.com',
     'space_authzen_todo', 'login', 'active', true),
    ('um_todo_beth', 'CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs', 'beth@the-smiths.com',
     'space_authzen_todo', 'login', 'active', true),
    ('um_todo_jerry', 'CiRmZDQ2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs', 'jerry@the-smiths.com',
     'space_authzen_todo', 'login', 'active', true)
ON CONFLICT (id) DO NOTHING;

-- The Resource Registry: what can be asked about.
INSERT INTO plystra.resource_types (id, key, display_name, description, source) VALUES
    ('rt_todo_user', 'user', 'User', 'A user of the todo application (its picture is shown beside its todos).', 'custom'),
    ('rt_todo_todo', 'todo', 'Todo', 'An item of the shared todo list; the PEP describes it inline.', 'custom')
ON CONFLICT (id) DO NOTHING;

INSERT INTO plystra.resource_actions (id, resource_type_id, key, display_name, risk_level) VALUES
    ('ra_todo_can_read_user', 'rt_todo_user', 'can_read_user', 'View a user''s information', 'low'),
    ('ra_todo_can_read_todos', 'rt_todo_todo', 'can_read_todos', 'View all todos', 'low'),
    ('ra_todo_can_create_todo', 'rt_todo_todo', 'can_create_todo', 'Create a todo', 'normal'),
    ('ra_todo_can_update_todo', 'rt_todo_todo', 'can_update_todo', '(Un)complete a todo', 'normal'),
    ('ra_todo_can_delete_todo', 'rt_todo_todo', 'can_delete_todo', 'Delete a todo', 'high')
ON CONFLICT (id) DO NOTHING;

-- A todo described inline names its owner Member in its `ownerID` property (the owner's e-mail, which is the
-- owner's Member id here). Its Space is the acting Member's: the PEP sends none.
INSERT INTO plystra.resource_mappings (id, resource_type_id, storage_kind, table_name, id_field, space_field,
                                       owner_member_field, status, metadata) VALUES
    ('rm_todo_todo', 'rt_todo_todo', 'external', NULL, 'ID', 'space_id', 'ownerID', 'active',
     '{"source": "the todo backend''s store (interop/authzen-todo-backend)"}')
ON CONFLICT (id) DO NOTHING;

-- Permissions are (resource type, action, scope). `space` reaches every resource of the Space; `self` only the
-- resources whose owner is the acting Member.
INSERT INTO plystra.permissions (id, resource, action, scope, description) VALUES
    ('perm_todo_user_can_read_user_space', 'user', 'can_read_user', 'space', 'View any user''s information'),
    ('perm_todo_todo_can_read_todos_space', 'todo', 'can_read_todos', 'space', 'View the todo list'),
    ('perm_todo_todo_can_create_todo_space', 'todo', 'can_create_todo', 'space', 'Create todos'),
    ('perm_todo_todo_can_update_todo_self', 'todo', 'can_update_todo', 'self', 'Update one''s own todos'),
    ('perm_todo_todo_can_delete_todo_self', 'todo', 'can_delete_todo', 'self', 'Delete one''s own todos'),
    ('perm_todo_todo_can_update_todo_space', 'todo', 'can_update_todo', 'space', 'Update any todo'),
    ('perm_todo_todo_can_delete_todo_space', 'todo', 'can_delete_todo', 'space', 'Delete any todo')
ON CONFLICT (id) DO NOTHING;

INSERT INTO plystra.roles (id, space_id, key, name, description) VALUES
    ('role_todo_viewer', 'space_authzen_todo', 'viewer', 'Viewer', 'Views the todo list and its owners'),
    ('role_todo_editor', 'space_authzen_todo', 'editor', 'Editor', 'A viewer who creates todos and updates and deletes their own'),
    ('role_todo_admin', 'space_authzen_todo', 'admin', 'Admin', 'An editor who deletes any todo'),
    ('role_todo_evil_genius', 'space_authzen_todo', 'evil_genius', 'Evil Genius', 'An editor who updates any todo')
ON CONFLICT (id) DO NOTHING;

-- Each role holds its whole permission set (roles do not inherit in Plystra): viewer's two, editor's five,
-- admin's and evil_genius's six.
INSERT INTO plystra.role_permissions (id, role_id, permission_id)
SELECT 'rp_' || md5(role_id || ':' || permission_id), role_id, permission_id
FROM (VALUES
    ('role_todo_viewer', 'perm_todo_user_can_read_user_space'),
    ('role_todo_viewer', 'perm_todo_todo_can_read_todos_space'),
    ('role_todo_editor', 'perm_todo_user_can_read_user_space'),
    ('role_todo_editor', 'perm_todo_todo_can_read_todos_space'),
    ('role_todo_editor', 'perm_todo_todo_can_create_todo_space'),
    ('role_todo_editor', 'perm_todo_todo_can_update_todo_self'),
    ('role_todo_editor', 'perm_todo_todo_can_delete_todo_self'),
    ('role_todo_admin', 'perm_todo_user_can_read_user_space'),
    ('role_todo_admin', 'perm_todo_todo_can_read_todos_space'),
    ('role_todo_admin', 'perm_todo_todo_can_create_todo_space'),
    ('role_todo_admin', 'perm_todo_todo_can_update_todo_self'),
    ('role_todo_admin', 'perm_todo_todo_can_delete_todo_space'),
    ('role_todo_evil_genius', 'perm_todo_user_can_read_user_space'),
    ('role_todo_evil_genius', 'perm_todo_todo_can_read_todos_space'),
    ('role_todo_evil_genius', 'perm_todo_todo_can_create_todo_space'),
    ('role_todo_evil_genius', 'perm_todo_todo_can_update_todo_space'),
    ('role_todo_evil_genius', 'perm_todo_todo_can_delete_todo_self')
) AS grants (role_id, permission_id)
ON CONFLICT (id) DO NOTHING;

-- Who holds which role (the interop's directory): Rick is admin and evil_genius, Morty and Summer are editors,
-- Beth and Jerry viewers. Space-scope and self-scope grants need no anchor group.
INSERT INTO plystra.member_roles (id, member_id, role_id, space_id) VALUES
    ('mr_todo_rick_admin', 'rick@the-citadel.com', 'role_todo_admin', 'space_authzen_todo'),
    ('mr_todo_rick_evil_genius', 'rick@the-citadel.com', 'role_todo_evil_genius', 'space_authzen_todo'),
    ('mr_todo_morty_editor', 'morty@the-citadel.com', 'role_todo_editor', 'space_authzen_todo'),
    ('mr_todo_summer_editor', 'summer@the-smiths.com', 'role_todo_editor', 'space_authzen_todo'),
    ('mr_todo_beth_viewer', 'beth@the-smiths.com', 'role_todo_viewer', 'space_authzen_todo'),
    ('mr_todo_jerry_viewer', 'jerry@the-smiths.com', 'role_todo_viewer', 'space_authzen_todo')
ON CONFLICT (id) DO NOTHING;

COMMIT;
