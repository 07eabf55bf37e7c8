-- The row-level-security scan for a reader with a space-scope grant (the example's policy, whole-Space arm).
-- Run as invoices_app. Actors: t = 100 r + 5 inside Space s (role admin: invoice read with space scope).
\set r random(0, :rlsk - 1)
\set s random(0, :spaces - 1)
\set i (100 * :r + 5) * :spaces + :s
BEGIN;
SELECT plystra.set_actor('bu_' || :i, 'bm_' || :i, 'bum_' || :i, 'bsp_' || :s);
SELECT count(*), sum(amount_cents) FROM app.invoices;
COMMIT;
