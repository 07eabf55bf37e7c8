-- A worked example: an application's own `invoices` table, protected by row-level-security policies that ask
-- Plystra. Nothing is mirrored into plystra.resources: each row carries its Space, group and owner Member.
-- Load after `CREATE EXTENSION plystra` and sql/demo.sql, as a superuser:  psql -f sql/examples/invoices_rls.sql
--
-- The backend connects as `invoices_app` (not the table owner, so the policies apply) and, in each
-- transaction, says who is acting:   SELECT plystra.set_actor(user_id, member_id, user_member_id, space_id);

CREATE SCHEMA IF NOT EXISTS app;

CREATE TABLE IF NOT EXISTS app.invoices (
    id              text PRIMARY KEY,
    space_id        text NOT NULL,
    group_id        text,
    owner_member_id text,
    number          text NOT NULL,
    amount_cents    bigint NOT NULL DEFAULT 0
);
-- The policy's arms are served by these indexes: (Space, group) for the whole-Space and group arms, the owner
-- for the self arm.
CREATE INDEX IF NOT EXISTS invoices_space_group_idx ON app.invoices (space_id, group_id);
CREATE INDEX IF NOT EXISTS invoices_owner_idx ON app.invoices (owner_member_id);

ALTER TABLE app.invoices ENABLE ROW LEVEL SECURITY;

-- SELECT: the rows of the actor's Space that a grant reaches. Two conditions, each asking Plystra once per
-- statement (every (SELECT ...) is an InitPlan; the calls of one statement share one load of the actor's grants):
--
-- 1. WHERE TO LOOK, four arms that are each an index condition, so the planner serves them with a BitmapOr and
--    the statement visits only the rows these arms select:
--      * the whole Space, under a space-scope grant (reachable_space is the actor's Space then, else NULL);
--      * the reached groups (group and group_tree grants, expanded by reachable_group_ids), when there are at
--        most 5,000 of them: one index descent per group;
--      * the whole Space again when a grant reaches MORE than 5,000 groups (else NULL): past that, reading the
--        Space once is cheaper than thousands of descents, and an array that long must never be searched row
--        by row (`= ANY` over a run-time array is a linear search, and PostgreSQL evaluates it per row when it
--        chooses a sequential scan or when a bitmap too large for work_mem goes lossy);
--      * its own rows, under a self-scope grant (reachable_owner).
--    The whole-Space arms are written as BETWEEN, not =, for the planner's sake: an equality with a value known
--    only at run time is estimated at 1 / (number of Spaces) of the table, enough to tip the plan into a
--    sequential scan, a range at 0.5%.
-- 2. WHICH ROWS, exactly, when the reach is wider than 5,000 groups (otherwise condition 1 is already exact and
--    this is one comparison of a value computed once): the Space, the owner, or the group found in a hash
--    table built once per statement from the reached groups (a hashed SubPlan), so the cost per row does not
--    grow with the reach.
--
-- bench/run measures readers reaching about 10, 1,000 and 50,000 groups (bench/results/latest.md).
DROP POLICY IF EXISTS invoices_select ON app.invoices;
CREATE POLICY invoices_select ON app.invoices FOR SELECT
USING (
    space_id = (SELECT plystra.actor_space_id())
    AND (   space_id BETWEEN (SELECT plystra.reachable_space('invoice', 'read'))
                         AND (SELECT plystra.reachable_space('invoice', 'read'))
         OR group_id = ANY ((SELECT CASE WHEN cardinality(g) <= 5000 THEN g END
                             FROM plystra.reachable_group_ids('invoice', 'read') AS g)::text[])
         OR space_id BETWEEN (SELECT CASE WHEN cardinality(plystra.reachable_group_ids('invoice', 'read')) > 5000
                                          THEN plystra.actor_space_id() END)
                         AND (SELECT CASE WHEN cardinality(plystra.reachable_group_ids('invoice', 'read')) > 5000
                                          THEN plystra.actor_space_id() END)
         OR owner_member_id = (SELECT plystra.reachable_owner('invoice', 'read')))
    AND (   (SELECT cardinality(plystra.reachable_group_ids('invoice', 'read')) <= 5000)
         OR space_id = (SELECT plystra.reachable_space('invoice', 'read'))
         OR owner_member_id = (SELECT plystra.reachable_owner('invoice', 'read'))
         OR group_id IN (SELECT unnest(plystra.reachable_group_ids('invoice', 'read')))));

-- INSERT: one decision for the new row (create), exactly as plystra.check would decide it.
DROP POLICY IF EXISTS invoices_insert ON app.invoices;
CREATE POLICY invoices_insert ON app.invoices FOR INSERT
WITH CHECK (plystra.allowed_row('invoice', 'create', space_id, group_id, owner_member_id));

-- UPDATE: the row must be one the actor may approve (the same two conditions as SELECT), before and after the
-- change.
DROP POLICY IF EXISTS invoices_update ON app.invoices;
CREATE POLICY invoices_update ON app.invoices FOR UPDATE
USING (
    space_id = (SELECT plystra.actor_space_id())
    AND (   space_id BETWEEN (SELECT plystra.reachable_space('invoice', 'approve'))
                         AND (SELECT plystra.reachable_space('invoice', 'approve'))
         OR group_id = ANY ((SELECT CASE WHEN cardinality(g) <= 5000 THEN g END
                             FROM plystra.reachable_group_ids('invoice', 'approve') AS g)::text[])
         OR space_id BETWEEN (SELECT CASE WHEN cardinality(plystra.reachable_group_ids('invoice', 'approve')) > 5000
                                          THEN plystra.actor_space_id() END)
                         AND (SELECT CASE WHEN cardinality(plystra.reachable_group_ids('invoice', 'approve')) > 5000
                                          THEN plystra.actor_space_id() END)
         OR owner_member_id = (SELECT plystra.reachable_owner('invoice', 'approve')))
    AND (   (SELECT cardinality(plystra.reachable_group_ids('invoice', 'approve')) <= 5000)
         OR space_id = (SELECT plystra.reachable_space('invoice', 'approve'))
         OR owner_member_id = (SELECT plystra.reachable_owner('invoice', 'approve'))
         OR group_id IN (SELECT unnest(plystra.reachable_group_ids('invoice', 'approve')))))
WITH CHECK (plystra.allowed_row('invoice', 'approve', space_id, group_id, owner_member_id));

-- DELETE: the delete action.
DROP POLICY IF EXISTS invoices_delete ON app.invoices;
CREATE POLICY invoices_delete ON app.invoices FOR DELETE
USING (
    space_id = (SELECT plystra.actor_space_id())
    AND (   space_id BETWEEN (SELECT plystra.reachable_space('invoice', 'delete'))
                         AND (SELECT plystra.reachable_space('invoice', 'delete'))
         OR group_id = ANY ((SELECT CASE WHEN cardinality(g) <= 5000 THEN g END
                             FROM plystra.reachable_group_ids('invoice', 'delete') AS g)::text[])
         OR space_id BETWEEN (SELECT CASE WHEN cardinality(plystra.reachable_group_ids('invoice', 'delete')) > 5000
                                          THEN plystra.actor_space_id() END)
                         AND (SELECT CASE WHEN cardinality(plystra.reachable_group_ids('invoice', 'delete')) > 5000
                                          THEN plystra.actor_space_id() END)
         OR owner_member_id = (SELECT plystra.reachable_owner('invoice', 'delete')))
    AND (   (SELECT cardinality(plystra.reachable_group_ids('invoice', 'delete')) <= 5000)
         OR space_id = (SELECT plystra.reachable_space('invoice', 'delete'))
         OR owner_member_id = (SELECT plystra.reachable_owner('invoice', 'delete'))
         OR group_id IN (SELECT unnest(plystra.reachable_group_ids('invoice', 'delete')))));

-- The application's database role.
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'invoices_app') THEN
        CREATE ROLE invoices_app NOLOGIN;
    END IF;
END $$;
GRANT USAGE ON SCHEMA app TO invoices_app;
-- Decisions, the acting context and the RLS lookups come with the documented application role (see the README).
GRANT plystra_app TO invoices_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON app.invoices TO invoices_app;

-- For the demo: the Finance Approver role may also read and create invoices under its anchor (finance).
SELECT plystra.set_request_context('req_example_invoices_rls', NULL, 'sql/examples/invoices_rls.sql');
INSERT INTO plystra.role_permissions (id, role_id, permission_id) VALUES
    ('rp_finance_approver_invoice_read', 'role_finance_approver', 'perm_invoice_read_group_tree'),
    ('rp_finance_approver_invoice_create', 'role_finance_approver', 'perm_invoice_create_group_tree')
ON CONFLICT (role_id, permission_id) DO NOTHING;

INSERT INTO app.invoices (id, space_id, group_id, owner_member_id, number, amount_cents) VALUES
    ('inv_apac_1', 'space_acme', 'group_finance_apac', 'member_invoice_creator', 'INV-101', 12000),
    ('inv_apac_2', 'space_acme', 'group_finance_apac', 'member_invoice_creator', 'INV-102', 4500),
    ('inv_emea_1', 'space_acme', 'group_finance_emea', 'member_invoice_creator', 'INV-201', 99000),
    ('inv_fin_1', 'space_acme', 'group_finance', 'member_invoice_creator', 'INV-001', 100),
    ('inv_legal_1', 'space_acme', 'group_legal_emea', 'member_invoice_creator', 'INV-301', 7700),
    ('inv_nogroup', 'space_acme', NULL, 'member_invoice_creator', 'INV-401', 1)
ON CONFLICT (id) DO NOTHING;
