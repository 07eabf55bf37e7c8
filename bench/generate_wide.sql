-- Wide-reach readers for the row-level-security example (bench/run's database `bench_wide`; issue 13, "Reach that
-- grows"). Loaded after sql/demo.sql and sql/examples/invoices_rls.sql, with psql variables:
--
--   c_n, d_n, e_n   one Space bsp_w whose group `w` has c_n children w.c<c>, each with d_n children w.c<c>.d<d>,
--                   each with e_n leaves w.c<c>.d<d>.e<e>; and a sibling group `o` with c_n * d_n children
--   rows            rows of app.invoices in bsp_w: even-numbered ones spread evenly over the groups on or below
--                   `w`, odd-numbered ones over `o` and its children (outside every reader's reach)
--   seed            setseed() argument (amounts only)
--
-- Three readers, each with ONE group_tree grant (role reader: invoice read, group_tree), bu_/bm_/bum_w<r>:
--   r = 0: anchored at w.c0.d0   (reaches 1 + e_n groups: 10 at full size)
--   r = 1: anchored at w.c0      (reaches 1 + d_n + d_n e_n groups: 1,001 at full size)
--   r = 2: anchored at w         (reaches 1 + c_n + c_n d_n + c_n d_n e_n groups: 50,051 at full size)
--
-- Like bench/generate.sql, loaded with session_replication_role = replica (the triggers and foreign keys do not
-- fire): every row is correct by construction, and bench/harness.py compares each reader's reach with the rows
-- selected without row-level security.

\set ON_ERROR_STOP 1
SET session_replication_role = replica;
SET max_parallel_workers_per_gather = 0;
SET synchronous_commit = off;
SELECT setseed(:seed);

BEGIN;

CREATE TEMP TABLE p AS SELECT :c_n::int AS c_n, :d_n::int AS d_n, :e_n::int AS e_n, :rows::bigint AS rows_n;

INSERT INTO plystra.spaces (id, name, slug, type, status) VALUES ('bsp_w', 'Bench wide space', 'bench-wide', 'custom', 'active');

CREATE TEMP TABLE wg (id text, parent text, path text, under_w bool);
INSERT INTO wg VALUES ('bgw_w', NULL, 'w', true), ('bgw_o', NULL, 'o', false);
INSERT INTO wg SELECT 'bgw_c' || c, 'bgw_w', 'w.c' || c, true FROM p, generate_series(0, p.c_n - 1) AS c;
INSERT INTO wg SELECT 'bgw_c' || c || '_d' || d, 'bgw_c' || c, 'w.c' || c || '.d' || d, true
FROM p, generate_series(0, p.c_n - 1) AS c, generate_series(0, p.d_n - 1) AS d;
INSERT INTO wg SELECT 'bgw_c' || c || '_d' || d || '_e' || e, 'bgw_c' || c || '_d' || d, 'w.c' || c || '.d' || d || '.e' || e, true
FROM p, generate_series(0, p.c_n - 1) AS c, generate_series(0, p.d_n - 1) AS d, generate_series(0, p.e_n - 1) AS e;
INSERT INTO wg SELECT 'bgw_o' || k, 'bgw_o', 'o.k' || k, false FROM p, generate_series(0, p.c_n * p.d_n - 1) AS k;

INSERT INTO plystra.groups (id, space_id, parent_group_id, name, display_name, path, sort_order)
SELECT id, 'bsp_w', parent, split_part(path, '.', -1), upper(split_part(path, '.', -1)), path, 0
FROM wg ORDER BY path;

INSERT INTO plystra.users (id, email, status)
SELECT 'bu_w' || r, 'bu_w' || r || '@bench.example', 'active' FROM generate_series(0, 2) AS r;
INSERT INTO plystra.members (id, space_id, display_name, member_type, status)
SELECT 'bm_w' || r, 'bsp_w', 'Wide reader ' || r, 'human', 'active' FROM generate_series(0, 2) AS r;
INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type, status, is_primary)
SELECT 'bum_w' || r, 'bu_w' || r, 'bm_w' || r, 'bsp_w', 'login', 'active', true FROM generate_series(0, 2) AS r;
INSERT INTO plystra.roles (id, space_id, key, name) VALUES ('br_w_reader', 'bsp_w', 'reader', 'Reader');
INSERT INTO plystra.role_permissions (id, role_id, permission_id)
VALUES ('brp_w_reader_read', 'br_w_reader', 'perm_invoice_read_group_tree');
INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id) VALUES
    ('bmr_w0', 'bm_w0', 'br_w_reader', 'bsp_w', 'bgw_c0_d0'),
    ('bmr_w1', 'bm_w1', 'br_w_reader', 'bsp_w', 'bgw_c0'),
    ('bmr_w2', 'bm_w2', 'br_w_reader', 'bsp_w', 'bgw_w');

-- Rows: even n under w (group k = (n / 2) mod |w|), odd n under o.
CREATE TEMP TABLE wk AS
SELECT under_w, (row_number() OVER (PARTITION BY under_w ORDER BY path) - 1)::bigint AS k, id FROM wg;
CREATE TEMP TABLE wn AS SELECT under_w, count(*) AS n FROM wg GROUP BY under_w;
INSERT INTO app.invoices (id, space_id, group_id, owner_member_id, number, amount_cents)
SELECT 'winv_' || r, 'bsp_w', wk.id, NULL, 'W-' || r, (random() * 1000000)::bigint
FROM p, generate_series(0, p.rows_n - 1) AS r
JOIN wn ON wn.under_w = (r % 2 = 0)
JOIN wk ON wk.under_w = wn.under_w AND wk.k = (r / 2) % wn.n
ORDER BY r;

COMMIT;
