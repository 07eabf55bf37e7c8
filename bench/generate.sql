-- Plystra benchmark data generator. Deterministic: every id, path, status and grant is a function of its
-- index, and the few random values (amounts) come from setseed(:seed). Run by bench/run with psql variables:
--
--   spaces S, breadth b (>= 2), depth d (1..8): one full b-ary group tree per Space, S * (b + b^2 + ... + b^d)
--                                                groups; group (level L, index k) has linear index
--                                                g = (b^L - b)/(b - 1) + k, id bg_<s>_<g>, and the path
--                                                n<digit>.n<digit>... of k's base-b digits (one label a level)
--   members M                                   users bu_<i>, members bm_<i>, bindings bum_<i> (i < M), in
--                                                Space i % S; t = i / S is the index inside the Space
--   resq Q                                      mirrored resources per Space (S * Q in all): resource
--                                                bres_<j>, Space j % S, group (j / S) % G (G = groups a Space)
--   app_rows N                                  rows of app.invoices (the row-level-security example's table),
--                                                distributed as the resources
--   seed                                        setseed() argument (a fraction in [-1, 1])
--
-- Which actors are special (bench/workloads/*.sql and bench/harness.py compute the same from t):
--   t % 50 = 47: binding with a future expiry (allowed)    t % 50 = 48: binding revoked
--   t % 50 = 49: binding expired                            t % 100 = 46: member inactive
--   every member: role reader (invoice read + create, group_tree) anchored at level 1 + t % A (A = min(3, d)),
--                 index (t / A) % b^level
--   t % 10 = 0: role approver (invoice approve, group) anchored at a leaf, index (t / S) % b^d
--   t % 10 = 3: role owner (invoice read, self)             t % 100 = 5: role admin (invoice read + delete, space)
--
-- Loaded after sql/demo.sql and sql/examples/invoices_rls.sql (it reuses the demo's Resource Registry and
-- permissions, and fills the example's app.invoices), with session_replication_role = replica: the same-Space,
-- group-tree and management-audit triggers and the foreign keys do not fire, so the data is correct by
-- construction. bench/harness.py then checks every row against the triggers' and foreign keys' rules.

\set ON_ERROR_STOP 1
SET session_replication_role = replica;
SET max_parallel_workers_per_gather = 0;   -- one process: random() is drawn in a fixed order
SET synchronous_commit = off;              -- a bulk load; the benchmark's own workloads keep the server default
SELECT setseed(:seed);

BEGIN;

-- Parameters as a one-row table, so that the statements below read alike.
CREATE TEMP TABLE p AS
SELECT :spaces::int AS s_n, :breadth::int AS b, :depth::int AS d, :members::bigint AS m_n, :resq::bigint AS q_n,
       :app_rows::bigint AS app_n, least(3, :depth::int) AS a_n,
       ((power(:breadth::numeric, :depth::int + 1) - :breadth) / (:breadth - 1))::bigint AS g_n;

INSERT INTO plystra.spaces (id, name, slug, type, status)
SELECT 'bsp_' || s, 'Bench space ' || s, 'bench-' || s, 'custom', 'active'
FROM p, generate_series(0, p.s_n - 1) AS s;

-- Groups, level by level (breadth first): a child's path is its parent's plus one label.
INSERT INTO plystra.groups (id, space_id, parent_group_id, name, display_name, path, sort_order)
WITH RECURSIVE t (s, lvl, k, path) AS (
    SELECT s, 1, c::bigint, 'n' || c
    FROM p, generate_series(0, p.s_n - 1) AS s, generate_series(0, p.b - 1) AS c
    UNION ALL
    SELECT t.s, t.lvl + 1, t.k * p.b + c, t.path || '.n' || c
    FROM t, p, generate_series(0, p.b - 1) AS c
    WHERE t.lvl < p.d
)
SELECT 'bg_' || t.s || '_' || ((power(p.b::numeric, t.lvl) - p.b) / (p.b - 1) + t.k)::bigint,
       'bsp_' || t.s,
       CASE WHEN t.lvl > 1
            THEN 'bg_' || t.s || '_' || ((power(p.b::numeric, t.lvl - 1) - p.b) / (p.b - 1) + t.k / p.b)::bigint END,
       split_part(t.path, '.', t.lvl), upper(split_part(t.path, '.', t.lvl)), t.path, (t.k % p.b)::int
FROM t, p
ORDER BY t.s, t.lvl, t.k;

INSERT INTO plystra.users (id, email, status)
SELECT 'bu_' || i, 'bu_' || i || '@bench.example', 'active'
FROM p, generate_series(0, p.m_n - 1) AS i;

INSERT INTO plystra.members (id, space_id, display_name, member_type, status)
SELECT 'bm_' || i, 'bsp_' || (i % p.s_n), 'Bench member ' || i, 'human',
       CASE WHEN (i / p.s_n) % 100 = 46 THEN 'inactive' ELSE 'active' END
FROM p, generate_series(0, p.m_n - 1) AS i;

INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type, status, is_primary, expires_at,
                                  revoked_at, revoked_reason)
SELECT 'bum_' || i, 'bu_' || i, 'bm_' || i, 'bsp_' || (i % p.s_n), 'login',
       CASE WHEN (i / p.s_n) % 50 = 48 THEN 'revoked' ELSE 'active' END,
       true,
       CASE (i / p.s_n) % 50 WHEN 47 THEN timestamptz '2100-01-01 00:00:00+00'
                             WHEN 49 THEN timestamptz '2020-01-01 00:00:00+00' END,
       CASE WHEN (i / p.s_n) % 50 = 48 THEN timestamptz '2024-01-01 00:00:00+00' END,
       CASE WHEN (i / p.s_n) % 50 = 48 THEN 'bench: revoked' END
FROM p, generate_series(0, p.m_n - 1) AS i;

-- The Resource Registry and the permissions are the Finance demo's (sql/demo.sql, loaded first, with the
-- row-level-security example): type invoice, actions read, create, approve, reject, delete. Two permissions are
-- added; no role here is granted reject (NO_MATCHING_PERMISSION).
INSERT INTO plystra.permissions (id, resource, action, scope) VALUES
    ('perm_invoice_approve_group', 'invoice', 'approve', 'group'),
    ('perm_invoice_read_space', 'invoice', 'read', 'space');

INSERT INTO plystra.roles (id, space_id, key, name)
SELECT 'br_' || s || '_' || r.key, 'bsp_' || s, r.key, initcap(r.key)
FROM p, generate_series(0, p.s_n - 1) AS s,
     (VALUES ('reader'), ('approver'), ('owner'), ('admin')) AS r (key);

INSERT INTO plystra.role_permissions (id, role_id, permission_id)
SELECT 'brp_' || s || '_' || rp.role || '_' || rp.perm, 'br_' || s || '_' || rp.role, rp.perm
FROM p, generate_series(0, p.s_n - 1) AS s,
     (VALUES ('reader', 'perm_invoice_read_group_tree'), ('reader', 'perm_invoice_create_group_tree'),
             ('approver', 'perm_invoice_approve_group'), ('owner', 'perm_invoice_read_self'),
             ('admin', 'perm_invoice_read_space'), ('admin', 'perm_invoice_delete_space')) AS rp (role, perm);

-- Grants, anchored across the tree: readers at levels 1..A (subtrees of every size), approvers at leaves.
INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id)
SELECT 'bmr_' || i || '_reader', 'bm_' || i, 'br_' || (i % p.s_n) || '_reader', 'bsp_' || (i % p.s_n),
       'bg_' || (i % p.s_n) || '_'
           || ((power(p.b::numeric, 1 + (i / p.s_n) % p.a_n) - p.b) / (p.b - 1)
               + ((i / p.s_n) / p.a_n) % power(p.b::numeric, 1 + (i / p.s_n) % p.a_n))::bigint
FROM p, generate_series(0, p.m_n - 1) AS i;

INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id)
SELECT 'bmr_' || i || '_approver', 'bm_' || i, 'br_' || (i % p.s_n) || '_approver', 'bsp_' || (i % p.s_n),
       'bg_' || (i % p.s_n) || '_'
           || ((power(p.b::numeric, p.d) - p.b) / (p.b - 1) + (i / p.s_n) % power(p.b::numeric, p.d))::bigint
FROM p, generate_series(0, p.m_n - 1) AS i
WHERE (i / p.s_n) % 10 = 0;

INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id)
SELECT 'bmr_' || i || '_' || r.key, 'bm_' || i, 'br_' || (i % p.s_n) || '_' || r.key, 'bsp_' || (i % p.s_n), NULL
FROM p, generate_series(0, p.m_n - 1) AS i, (VALUES ('owner', 10, 3), ('admin', 100, 5)) AS r (key, modulus, rest)
WHERE (i / p.s_n) % r.modulus = r.rest;

-- Mirrored resources: Space j % S, group (j / S) % G, owned by a Member of the same Space; one in a thousand
-- soft-deleted (RESOURCE_NOT_FOUND).
INSERT INTO plystra.resources (id, resource_type, space_id, group_id, owner_member_id, display_name, visibility,
                               metadata, deleted_at)
SELECT 'bres_' || j, 'invoice', 'bsp_' || (j % p.s_n), 'bg_' || (j % p.s_n) || '_' || ((j / p.s_n) % p.g_n),
       'bm_' || (((j / p.s_n) % (p.m_n / p.s_n)) * p.s_n + j % p.s_n), 'Invoice ' || j, 'private',
       jsonb_build_object('number', 'INV-' || j),
       CASE WHEN (j / p.s_n) % 1000 = 999 THEN timestamptz '2024-01-01 00:00:00+00' END
FROM p, generate_series(0, p.s_n * p.q_n - 1) AS j;

-- The application's own table (sql/examples/invoices_rls.sql, loaded first): rows carry Space, group and owner
-- and are distributed as the resources.
INSERT INTO app.invoices (id, space_id, group_id, owner_member_id, number, amount_cents)
SELECT 'inv_' || r, 'bsp_' || (r % p.s_n), 'bg_' || (r % p.s_n) || '_' || ((r / p.s_n) % p.g_n),
       'bm_' || (((r / p.s_n) % (p.m_n / p.s_n)) * p.s_n + r % p.s_n), 'INV-' || r, (random() * 1000000)::bigint
FROM p, generate_series(0, p.app_n - 1) AS r;

COMMIT;
