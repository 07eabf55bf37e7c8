-- The scan with a per-row decision function: plystra.allowed_row for every candidate row of the actor's Space.
-- Bounded: the first :perrow rows of the Space only (bench/run scales the time to the whole Space and says so).
-- Run as the table owner (no policy), in the same transaction shape as the other scans.
\set r random(0, :rlsk - 1)
\set s random(0, :spaces - 1)
\set i (100 * :r + 11) * :spaces + :s
BEGIN;
SELECT plystra.set_actor('bu_' || :i, 'bm_' || :i, 'bum_' || :i, 'bsp_' || :s);
SELECT count(*), sum(amount_cents)
  FROM (SELECT * FROM app.invoices WHERE space_id = 'bsp_' || :s ORDER BY id LIMIT :perrow) AS candidate
 WHERE plystra.allowed_row('invoice', 'read', space_id, group_id, owner_member_id);
COMMIT;
