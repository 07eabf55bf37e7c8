-- Floor of rls_wide_scan: the same rows with row-level security off (run as the table owner, which bypasses the
-- policies), selected by a plain WHERE clause over the reader's precomputed reach (bench.actor_reach, filled from
-- plystra.reachable_groups when the data was loaded), in the same transaction shape.
BEGIN;
SELECT plystra.set_actor('bu_w' || :wr, 'bm_w' || :wr, 'bum_w' || :wr, 'bsp_w');
SELECT count(*), sum(amount_cents) FROM app.invoices
 WHERE space_id = 'bsp_w' AND group_id IN (SELECT group_id FROM bench.actor_reach WHERE member_id = 'bm_w' || :wr);
COMMIT;
