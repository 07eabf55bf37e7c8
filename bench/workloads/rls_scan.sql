-- The row-level-security scan (sql/examples/invoices_rls.sql): the application role reads app.invoices; the
-- policy asks Plystra once per statement (InitPlans and a hashed SubPlan). Run as invoices_app.
-- Actors: t = 100 r + 11 inside Space s (plain readers: no self, space or approver grant, a usable binding).
\set r random(0, :rlsk - 1)
\set s random(0, :spaces - 1)
\set i (100 * :r + 11) * :spaces + :s
BEGIN;
SELECT plystra.set_actor('bu_' || :i, 'bm_' || :i, 'bum_' || :i, 'bsp_' || :s);
SELECT count(*), sum(amount_cents) FROM app.invoices;
COMMIT;
