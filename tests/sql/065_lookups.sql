-- The lookups answer with check's rules, both ways. Over the demo plus a generated world (12 Members with
-- bindings in every state, Roles for every scope, grants anchored across the group tree, resources in every group, an archived one, a second Space): for every resource and action, the
-- bindings plystra.lookup_subjects returns are exactly those plystra.check allows; for every usable binding,
-- plystra.lookup_resources returns exactly the resources check allows. Then paging, the grants named, audit,
-- bad input and privileges. Rolled back at the end.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
SELECT plan(16);
SET LOCAL plystra.audit_mode = 'off';
SELECT setseed(0.42);

INSERT INTO plystra.spaces (id, name, slug, type) VALUES ('space_lk_other', 'Other', 'lk-other', 'custom');
INSERT INTO plystra.groups (id, space_id, parent_group_id, name, display_name, path) VALUES
    ('group_lk_other', 'space_lk_other', NULL, 'Other', 'Other', 'other');
INSERT INTO plystra.users (id, email, status)
SELECT 'user_lk_' || i, 'lk' || i || '@example.com', CASE WHEN i = 7 THEN 'disabled' ELSE 'active' END
FROM generate_series(0, 11) i;
INSERT INTO plystra.members (id, space_id, display_name, member_type, status)
SELECT 'member_lk_' || i, CASE WHEN i = 11 THEN 'space_lk_other' ELSE 'space_acme' END, 'LK ' || i, 'human',
       CASE WHEN i = 6 THEN 'disabled' ELSE 'active' END
FROM generate_series(0, 11) i;
-- Bindings: usable ones, and one revoked (3), one expired (4), one of the disabled user (7).
INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type, status, expires_at)
SELECT 'um_lk_' || i, 'user_lk_' || i, 'member_lk_' || i, CASE WHEN i = 11 THEN 'space_lk_other' ELSE 'space_acme' END,
       'login', CASE WHEN i = 3 THEN 'revoked' ELSE 'active' END,
       CASE WHEN i = 4 THEN now() - interval '1 day' END
FROM generate_series(0, 11) i;
-- A second binding for member 0, through user 1 (a delegate).
INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type)
VALUES ('um_lk_0_delegate', 'user_lk_1', 'member_lk_0', 'space_acme', 'delegate');

INSERT INTO plystra.permissions (id, resource, action, scope)
SELECT 'perm_lk_' || a || '_' || s, 'invoice', a, s
FROM unnest(ARRAY['read', 'approve', 'reject', 'delete']) a, unnest(ARRAY['self', 'group', 'group_tree', 'space', 'global']) s
ON CONFLICT (resource, action, scope) DO NOTHING;
INSERT INTO plystra.roles (id, space_id, key, name, status)
SELECT 'role_lk_' || s, 'space_acme', 'lk_' || s, 'LK ' || s, 'active' FROM unnest(ARRAY['self', 'group', 'group_tree', 'space', 'global']) s;
INSERT INTO plystra.roles (id, space_id, key, name, status) VALUES ('role_lk_inactive', 'space_acme', 'lk_inactive', 'LK inactive', 'disabled');
INSERT INTO plystra.roles (id, space_id, key, name) VALUES ('role_lk_other', 'space_lk_other', 'lk_other', 'LK other');
INSERT INTO plystra.role_permissions (id, role_id, permission_id)
SELECT 'rp_lk_' || r.id || '_' || p.id, r.id, p.id
FROM plystra.roles r JOIN plystra.permissions p ON p.resource = 'invoice'
 AND p.scope = CASE r.id WHEN 'role_lk_inactive' THEN 'space' WHEN 'role_lk_other' THEN 'space' ELSE substr(r.id, 9) END
WHERE r.id LIKE 'role_lk_%' AND random() < 0.8;
UPDATE plystra.role_permissions SET deleted_at = now() WHERE id IN (SELECT id FROM plystra.role_permissions WHERE id LIKE 'rp_lk_%' ORDER BY id LIMIT 2);
-- Grants: each Member gets some of its Space's Roles anchored at a random group (or none), one grant inactive.
INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id, status)
SELECT DISTINCT ON (m.i, r.id) 'mr_lk_' || m.i || '_' || r.id, 'member_lk_' || m.i, r.id, r.space_id,
       CASE WHEN r.space_id = 'space_lk_other' THEN 'group_lk_other'
            ELSE (ARRAY[NULL, 'group_finance', 'group_finance_apac', 'group_legal', 'group_legal_emea', 'group_finance_emea'])[1 + floor(random() * 6)::int] END,
       CASE WHEN m.i = 5 AND r.id = 'role_lk_space' THEN 'revoked' ELSE 'active' END
FROM generate_series(0, 11) m(i), plystra.roles r
WHERE r.id LIKE 'role_lk_%' AND (r.space_id = 'space_lk_other') = (m.i = 11) AND random() < 0.45;
INSERT INTO plystra.resources (id, resource_type, space_id, group_id, owner_member_id, status)
SELECT 'invoice_lk_' || i, 'invoice', CASE WHEN i = 9 THEN 'space_lk_other' ELSE 'space_acme' END,
       CASE WHEN i = 9 THEN 'group_lk_other'
            ELSE (ARRAY[NULL, 'group_finance', 'group_finance_apac', 'group_legal', 'group_legal_emea', 'group_finance_emea'])[1 + i % 6] END,
       CASE WHEN i = 9 THEN 'member_lk_11' ELSE 'member_lk_' || (i % 11) END, CASE WHEN i = 8 THEN 'archived' ELSE 'active' END
FROM generate_series(0, 11) i;

CREATE FUNCTION pg_temp.allows(um plystra.user_members, res text, act text) RETURNS boolean LANGUAGE sql AS $$
    SELECT (plystra.check(jsonb_build_object(
        'actor', jsonb_build_object('user_id', um.user_id, 'member_id', um.member_id, 'user_member_id', um.id,
                                    'space_id', um.space_id),
        'resource_type', 'invoice', 'resource_id', res, 'action', act)) ->> 'allow')::boolean
$$;
CREATE TEMP TABLE questions AS
SELECT r.id AS res, a AS act FROM plystra.resources r, unnest(ARRAY['read', 'approve', 'reject', 'delete']) a
WHERE r.resource_type = 'invoice';
CREATE TEMP TABLE allowed AS
SELECT q.res, q.act, um.id AS um FROM questions q, plystra.user_members um WHERE pg_temp.allows(um, q.res, q.act);
CREATE TEMP TABLE looked_up AS
SELECT q.res, q.act, s.user_member_id AS um FROM questions q, plystra.lookup_subjects('invoice', q.res, q.act, NULL, 1000) s;

SELECT cmp_ok((SELECT count(*) FROM allowed), '>=', 30::bigint,
              'the generated world has allowed decisions to compare (at least 30)');
SELECT cmp_ok((SELECT count(*) FROM questions q, plystra.user_members um) - (SELECT count(*) FROM allowed), '>=', 300::bigint,
              'and denied ones (at least 300)');
SELECT is_empty($$SELECT res, act, um FROM looked_up EXCEPT SELECT res, act, um FROM allowed$$,
                'every binding lookup_subjects returns is allowed by check');
SELECT is_empty($$SELECT res, act, um FROM allowed EXCEPT SELECT res, act, um FROM looked_up$$,
                'every binding check allows is returned by lookup_subjects');

-- The forward lookup, for every binding: the same resources as check.
CREATE FUNCTION pg_temp.reachable(um plystra.user_members, act text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM plystra.set_actor(um.user_id, um.member_id, um.id, um.space_id);
    RETURN QUERY SELECT plystra.lookup_resources('invoice', act);
END $$;
SELECT is_empty($$
    (SELECT um.id, a, r FROM plystra.user_members um, unnest(ARRAY['read', 'approve', 'reject', 'delete']) a,
            pg_temp.reachable(um, a) r
     EXCEPT SELECT um, act, res FROM allowed)
    UNION ALL
    (SELECT um, act, res FROM allowed
     EXCEPT SELECT um.id, a, r FROM plystra.user_members um, unnest(ARRAY['read', 'approve', 'reject', 'delete']) a,
                   pg_temp.reachable(um, a) r)$$,
    'for every binding and action, lookup_resources returns exactly the resources check allows');

-- The demo: Alice and Bob (both bindings of the Finance Reviewer) may approve invoice_001, through the grant
-- anchored at finance; the revoked and expired bindings may not.
SELECT results_eq($$SELECT user_member_id, member_id, user_id FROM plystra.lookup_subjects('invoice', 'invoice_001', 'approve')
                    WHERE member_id = 'member_finance_reviewer'$$,
                  $$VALUES ('um_alice_finance_reviewer', 'member_finance_reviewer', 'user_alice'),
                           ('um_bob_finance_reviewer', 'member_finance_reviewer', 'user_bob')$$,
                  'who may approve invoice_001: the usable bindings of the Finance Reviewer');
SELECT is((SELECT grants FROM plystra.lookup_subjects('invoice', 'invoice_001', 'approve') WHERE user_member_id = 'um_alice_finance_reviewer'),
          '[{"scope_rule": "target_path = anchor_path OR target_path LIKE anchor_path || ''.%''", "scope": "group_tree", "role_id": "role_finance_approver", "role_key": "finance_approver",
             "permission_id": "perm_invoice_approve_group_tree", "member_role_id": "mr_finance_reviewer_approver_finance",
             "anchor_group_id": "group_finance", "anchor_group_path": "finance"}]'::jsonb,
          'each binding comes with the grant that lets it (role, scope, anchor)');

-- Paging: max_rows and after walk the same list.
SELECT results_eq(
    $$SELECT s.user_member_id FROM plystra.lookup_subjects('invoice', 'invoice_lk_1', 'read', NULL, 2) s$$,
    $$SELECT s.user_member_id FROM plystra.lookup_subjects('invoice', 'invoice_lk_1', 'read') s LIMIT 2$$,
    'max_rows cuts the list');
SELECT results_eq(
    $$SELECT s.user_member_id FROM plystra.lookup_subjects('invoice', 'invoice_lk_1', 'read',
        (SELECT max(x.user_member_id) FROM plystra.lookup_subjects('invoice', 'invoice_lk_1', 'read', NULL, 2) x)) s$$,
    $$SELECT s.user_member_id FROM plystra.lookup_subjects('invoice', 'invoice_lk_1', 'read') s OFFSET 2$$,
    'after continues where the page ended');

SET LOCAL plystra.audit_mode = 'always';
SELECT is((SELECT count(*) FROM plystra.lookup_subjects('invoice', 'invoice_001', 'approve')) > 0
          AND (SELECT count(*) FROM plystra.audit_logs WHERE created_at = now()) = 0, true,
          'a lookup writes no audit row, even with audit_mode always');
SET LOCAL plystra.audit_mode = 'off';

SELECT throws_ok($$SELECT * FROM plystra.lookup_subjects(NULL, 'invoice_001', 'approve')$$, '22023', NULL,
                 'a NULL resource type is 22023');
SELECT throws_ok($$SELECT * FROM plystra.lookup_subjects('invoice', 'invoice_001', 'approve', NULL, 0)$$, '22023', NULL,
                 'max_rows 0 is 22023');
SELECT throws_ok($$SELECT * FROM plystra.lookup_subjects('invoice', 'invoice_001', 'approve', NULL, 1001)$$, '22023', NULL,
                 'max_rows over 1000 is 22023');
SELECT ok(NOT has_function_privilege('plystra_app', 'plystra.lookup_subjects(text, text, text, text, integer)', 'EXECUTE')
          AND has_function_privilege('plystra_admin', 'plystra.lookup_subjects(text, text, text, text, integer)', 'EXECUTE'),
          'who can? names identities: plystra_admin may call it, plystra_app (and so PUBLIC) may not');

-- Overlapping grants: group_tree at finance, group at finance.apac and group_tree at finance.emea (both inside
-- finance's subtree). The reachable groups are each listed once, and are exactly finance's subtree.
INSERT INTO plystra.users (id, email) VALUES ('user_lk_ov', 'lkov@example.com');
INSERT INTO plystra.members (id, space_id, display_name, member_type) VALUES ('member_lk_ov', 'space_acme', 'LK ov', 'human');
INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type)
VALUES ('um_lk_ov', 'user_lk_ov', 'member_lk_ov', 'space_acme', 'login');
INSERT INTO plystra.roles (id, space_id, key, name) VALUES
    ('role_lk_ov_tree', 'space_acme', 'lk_ov_tree', 'LK ov tree'), ('role_lk_ov_group', 'space_acme', 'lk_ov_group', 'LK ov group');
INSERT INTO plystra.role_permissions (id, role_id, permission_id)
SELECT 'rp_lk_ov_' || s, 'role_lk_ov_' || s, p.id FROM plystra.permissions p, unnest(ARRAY['tree', 'group']) s
WHERE p.resource = 'invoice' AND p.action = 'read' AND p.scope = CASE s WHEN 'tree' THEN 'group_tree' ELSE 'group' END;
INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id) VALUES
    ('mr_lk_ov_1', 'member_lk_ov', 'role_lk_ov_tree', 'space_acme', 'group_finance'),
    ('mr_lk_ov_2', 'member_lk_ov', 'role_lk_ov_group', 'space_acme', 'group_finance_apac'),
    ('mr_lk_ov_3', 'member_lk_ov', 'role_lk_ov_tree', 'space_acme', 'group_finance_emea');
SELECT plystra.set_actor('user_lk_ov', 'member_lk_ov', 'um_lk_ov', 'space_acme');
SELECT is((SELECT count(*) FROM unnest(plystra.reachable_group_ids('invoice', 'read'))),
          (SELECT count(DISTINCT g) FROM unnest(plystra.reachable_group_ids('invoice', 'read')) g),
          'overlapping grants: each reachable group is listed once');
SELECT is(ARRAY(SELECT g FROM unnest(plystra.reachable_group_ids('invoice', 'read')) g ORDER BY 1),
          ARRAY(SELECT id FROM plystra.groups WHERE space_id = 'space_acme' AND (path = 'finance' OR path LIKE 'finance.%')
                AND deleted_at IS NULL AND status = 'active' ORDER BY 1),
          '... and they are exactly finance''s subtree');

SELECT * FROM finish();
ROLLBACK;
