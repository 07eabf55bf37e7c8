-- Floor of rls_space_scan: the same rows with row-level security off (run as the table owner, which bypasses
-- the policies): every row of the actor's Space, by a plain WHERE clause, in the same transaction shape.
\set r random(0, :rlsk - 1)
\set s random(0, :spaces - 1)
\set i (100 * :r + 5) * :spaces + :s
BEGIN;
SELECT plystra.set_actor('bu_' || :i, 'bm_' || :i, 'bum_' || :i, 'bsp_' || :s);
SELECT count(*), sum(amount_cents) FROM app.invoices WHERE space_id = 'bsp_' || :s;
COMMIT;
