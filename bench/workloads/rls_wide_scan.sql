-- The row-level-security scan for a reader whose ONE group_tree grant reaches a wide subtree (database bench_wide,
-- bench/generate_wide.sql): reader w<wr> reaches about 10, 1,000 or 50,000 groups (wr = 0, 1, 2), under the
-- example's policy (sql/examples/invoices_rls.sql). Run as invoices_app.
BEGIN;
SELECT plystra.set_actor('bu_w' || :wr, 'bm_w' || :wr, 'bum_w' || :wr, 'bsp_w');
SELECT count(*), sum(amount_cents) FROM app.invoices;
COMMIT;
