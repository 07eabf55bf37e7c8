-- The same scan with row-level security off (run as the table owner, which bypasses the policies): the same
-- rows, selected by a plain WHERE clause over a precomputed reach table (bench.actor_reach, filled from
-- plystra.reachable_groups when the data was loaded), in the same transaction shape.
\set r random(0, :rlsk - 1)
\set s random(0, :spaces - 1)
\set i (100 * :r + 11) * :spaces + :s
BEGIN;
SELECT plystra.set_actor('bu_' || :i, 'bm_' || :i, 'bum_' || :i, 'bsp_' || :s);
SELECT count(*), sum(amount_cents) FROM app.invoices
 WHERE space_id = 'bsp_' || :s AND group_id IN (SELECT group_id FROM bench.actor_reach WHERE member_id = 'bm_' || :i);
COMMIT;
