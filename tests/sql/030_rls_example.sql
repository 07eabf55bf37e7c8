-- The worked example (sql/examples/invoices_rls.sql): an application table protected by policies that ask
-- Plystra, the set-based lookups, and the per-row predicates. Everything rolls back.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
\ir ../../sql/examples/invoices_rls.sql
SELECT plan(39);

CREATE FUNCTION pg_temp.visible() RETURNS text[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM app.invoices
$$;
-- Rows touched by a statement run as the calling role (a data-modifying WITH cannot sit inside is()).
CREATE FUNCTION pg_temp.rows_touched(statement text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE statement;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
CREATE FUNCTION pg_temp.as_actor(u text, um text) RETURNS void LANGUAGE sql AS $$
    SELECT plystra.set_actor(u, 'member_finance_reviewer', um, 'space_acme')
$$;

-- Alice through her binding sees Finance invoices (group_tree expanded), no Legal one, no group-less one.
SELECT pg_temp.as_actor('user_alice', 'um_alice_finance_reviewer');
SET LOCAL ROLE invoices_app;
SELECT is(pg_temp.visible(), ARRAY['inv_apac_1', 'inv_apac_2', 'inv_emea_1', 'inv_fin_1'],
          'Alice sees the Finance invoices and no Legal one');
RESET ROLE;

SELECT pg_temp.as_actor('user_bob', 'um_bob_finance_reviewer');
SET LOCAL ROLE invoices_app;
SELECT is(pg_temp.visible(), ARRAY['inv_apac_1', 'inv_apac_2', 'inv_emea_1', 'inv_fin_1'],
          'Bob, through the same Member, sees the same');
RESET ROLE;

-- Unusable actors reach nothing.
SELECT pg_temp.as_actor('user_alice', 'um_alice_finance_reviewer_revoked');
SET LOCAL ROLE invoices_app;
SELECT is(pg_temp.visible(), '{}'::text[], 'a revoked binding sees nothing');
RESET ROLE;
SELECT pg_temp.as_actor('user_alice', 'um_alice_finance_reviewer_expired');
SET LOCAL ROLE invoices_app;
SELECT is(pg_temp.visible(), '{}'::text[], 'an expired binding sees nothing');
RESET ROLE;
SELECT plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_bob_finance_reviewer', 'space_acme');
SET LOCAL ROLE invoices_app;
SELECT is(pg_temp.visible(), '{}'::text[], 'a binding of another user sees nothing');
RESET ROLE;
SELECT plystra.set_actor(NULL, NULL, NULL, NULL);
SET LOCAL ROLE invoices_app;
SELECT is(pg_temp.visible(), '{}'::text[], 'an unset actor sees nothing');
RESET ROLE;

-- Revoking Alice's binding hides everything from her within the same transaction.
SELECT pg_temp.as_actor('user_alice', 'um_alice_finance_reviewer');
SAVEPOINT s;
UPDATE plystra.user_members SET status = 'revoked' WHERE id = 'um_alice_finance_reviewer';
SET LOCAL ROLE invoices_app;
SELECT is(pg_temp.visible(), '{}'::text[], 'revoking Alice''s binding hides everything in the same transaction');
RESET ROLE;
ROLLBACK TO SAVEPOINT s;
SAVEPOINT s;
UPDATE plystra.users SET status = 'disabled' WHERE id = 'user_alice';
SET LOCAL ROLE invoices_app;
SELECT is(pg_temp.visible(), '{}'::text[], 'a disabled user sees nothing');
RESET ROLE;
ROLLBACK TO SAVEPOINT s;
SAVEPOINT s;
UPDATE plystra.spaces SET status = 'disabled' WHERE id = 'space_acme';
SET LOCAL ROLE invoices_app;
SELECT is(pg_temp.visible(), '{}'::text[], 'an inactive Space sees nothing');
RESET ROLE;
ROLLBACK TO SAVEPOINT s;

-- Inserts: allowed inside her reach, refused outside it, and nothing is written when refused.
SET LOCAL ROLE invoices_app;
SELECT lives_ok($$INSERT INTO app.invoices (id, space_id, group_id, number) VALUES ('inv_new_apac', 'space_acme', 'group_finance_apac', 'INV-900')$$,
                'Alice may create an invoice under finance');
SELECT throws_ok($$INSERT INTO app.invoices (id, space_id, group_id, number) VALUES ('inv_new_legal', 'space_acme', 'group_legal_emea', 'INV-901')$$,
                 '42501', NULL, 'an insert into a group outside her reach is refused');
SELECT throws_ok($$INSERT INTO app.invoices (id, space_id, group_id, number) VALUES ('inv_new_other', 'space_other', 'group_finance_apac', 'INV-902')$$,
                 '42501', NULL, 'an insert into another Space is refused');
SELECT throws_ok($$INSERT INTO app.invoices (id, space_id, group_id, number) VALUES ('inv_new_none', 'space_acme', NULL, 'INV-903')$$,
                 '42501', NULL, 'an insert without a group is refused (group_tree needs a target group)');
-- Updates: approve reaches finance; the row cannot be moved out of reach.
SELECT is(pg_temp.rows_touched('UPDATE app.invoices SET amount_cents = amount_cents + 1'), 5::bigint, 'an update touches only the rows she may approve');
SELECT throws_ok($$UPDATE app.invoices SET group_id = 'group_legal_emea' WHERE id = 'inv_apac_1'$$,
                 '42501', NULL, 'an update cannot move a row out of her reach');
-- Deletes: nobody holds invoice.delete.
SELECT is(pg_temp.rows_touched('DELETE FROM app.invoices'), 0::bigint,
          'without a delete grant nothing is deleted');
RESET ROLE;
SELECT is((SELECT count(*) FROM app.invoices WHERE id LIKE 'inv\_new\_%'), 1::bigint, 'only the allowed insert was written');

-- The set-based functions themselves.
SELECT pg_temp.as_actor('user_alice', 'um_alice_finance_reviewer');
SELECT is(ARRAY(SELECT plystra.reachable_groups('invoice', 'read') ORDER BY 1),
          ARRAY['group_finance', 'group_finance_apac', 'group_finance_emea'], 'reachable_groups expands the group_tree anchor');
SELECT is(ARRAY(SELECT plystra.reachable_groups('invoice', 'void')), '{}'::text[], 'an unregistered action reaches nothing');
SELECT is(plystra.reaches_space('invoice', 'read'), false, 'no space-scope grant');
SELECT is(plystra.reachable_owner('invoice', 'read'), NULL, 'no self-scope grant');
SELECT is(ARRAY(SELECT plystra.lookup_resources('invoice', 'approve')), ARRAY['invoice_001'],
          'lookup_resources lists the mirrored invoices Alice may approve');
SELECT ok(plystra.allowed_resource('invoice', 'invoice_001', 'approve') AND NOT plystra.allowed_resource('invoice', 'invoice_002', 'approve'),
          'allowed_resource agrees with plystra.check on the demo cases');
SELECT ok(plystra.allowed_row_by_path('invoice', 'read', 'space_acme', 'finance.apac', NULL)
          AND NOT plystra.allowed_row_by_path('invoice', 'read', 'space_acme', 'legal.emea', NULL),
          'allowed_row_by_path decides by the group path');

-- They read, never write: they work in a read-only transaction and leave no audit row.
CREATE TEMP TABLE rows_before AS SELECT count(*) AS n FROM plystra.audit_logs;
SAVEPOINT s;
SET LOCAL transaction_read_only = on;
SELECT is(ARRAY(SELECT plystra.reachable_groups('invoice', 'read') ORDER BY 1),
          ARRAY['group_finance', 'group_finance_apac', 'group_finance_emea'], 'the lookups work in a read-only transaction');
SELECT ok(plystra.allowed_row('invoice', 'read', 'space_acme', 'group_finance_apac', NULL)
          AND plystra.allowed_resource('invoice', 'invoice_001', 'approve'), 'so do the row predicates');
ROLLBACK TO SAVEPOINT s;
SELECT is((SELECT count(*) FROM plystra.audit_logs), (SELECT n FROM rows_before), 'and none of them wrote an audit row');

-- Once per statement: a scan of every row calls each lookup once, not once per row.
INSERT INTO app.invoices (id, space_id, group_id, number)
SELECT 'inv_bulk_' || i, 'space_acme', CASE WHEN i % 2 = 0 THEN 'group_finance_apac' ELSE 'group_legal_emea' END, 'B' || i
FROM generate_series(1, 500) AS i;
SET LOCAL track_functions = 'all';
SET LOCAL ROLE invoices_app;
SELECT is((SELECT count(*) FROM app.invoices), 255::bigint, 'a 507-row scan returns the 255 reachable rows');
RESET ROLE;
-- reachable_group_ids sits in a few InitPlans (the group arm, the wide-reach arm, the exactness test), each run
-- once per statement: a fixed number of calls, not one a row.
SELECT cmp_ok(pg_stat_get_xact_function_calls('plystra.reachable_group_ids(text,text)'::regprocedure), '<=', 5::bigint,
              'reachable_group_ids ran a fixed number of times (its InitPlans) for the whole 507-row scan');

-- The plan: on a table of realistic shape (many groups, analyzed), the policy's arms are index conditions
-- combined by a BitmapOr, the lookups are InitPlans, and no row outside the reach is visited.
INSERT INTO app.invoices (id, space_id, group_id, owner_member_id, number)
SELECT 'inv_many_' || i, 'space_acme', 'group_app_' || (i % 5000), 'member_app_' || (i % 3000), 'M' || i
FROM generate_series(1, 50000) AS i;
ANALYZE app.invoices;
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE line text; out text := '';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP out := out || line || E'\n'; END LOOP;
    RETURN out;
END $$;
SELECT pg_temp.as_actor('user_alice', 'um_alice_finance_reviewer');
SET LOCAL ROLE invoices_app;
SELECT matches(pg_temp.plan_of('SELECT count(*) FROM app.invoices'),
               'InitPlan.*BitmapOr.*Index Cond: .*space_id >= .*space_id <= .*Index Cond: .*group_id = ANY .*Index Cond: \(owner_member_id = ',
               'the select policy is a BitmapOr of its three arms, each an index condition');
SELECT doesnt_match(pg_temp.plan_of('SELECT count(*) FROM app.invoices'), 'Seq Scan',
                    'and the scan never visits the whole table');
SELECT is((SELECT count(*) FROM app.invoices), 255::bigint, 'the index-driven plan returns the same 255 rows');
RESET ROLE;

-- A reach wider than 5,000 groups: the policy reads the actor's Space once and tests each row against a hash
-- table of the reached groups (no array searched per row); the rows seen are exactly the reached ones.
SAVEPOINT wide;
INSERT INTO plystra.groups (id, space_id, parent_group_id, name, path)
SELECT 'group_wide_' || k, 'space_acme', 'group_finance', 'w' || k, 'finance.w' || k FROM generate_series(1, 5200) AS k;
INSERT INTO app.invoices (id, space_id, group_id, number)
SELECT 'inv_wide_' || k, 'space_acme', 'group_wide_' || k, 'W' || k FROM generate_series(1, 5200, 7) AS k;
SELECT pg_temp.as_actor('user_alice', 'um_alice_finance_reviewer');
SELECT cmp_ok(cardinality(plystra.reachable_group_ids('invoice', 'read')), '>', 5000,
              'Alice''s group_tree grant now reaches more than 5,000 groups');
SELECT coalesce(array_agg(id ORDER BY id), '{}') AS wide_expected FROM app.invoices
 WHERE space_id = 'space_acme' AND group_id IN (SELECT plystra.reachable_groups('invoice', 'read')) \gset
SET LOCAL ROLE invoices_app;
SELECT is(pg_temp.visible(), :'wide_expected'::text[], 'the policy shows exactly the rows of the reached groups');
SELECT is((SELECT count(*) FROM app.invoices WHERE id IN ('inv_legal_1', 'inv_nogroup') OR id LIKE 'inv\_many\_%'),
          0::bigint, 'and none outside them (another subtree, no group, unknown groups)');
RESET ROLE;
ROLLBACK TO SAVEPOINT wide;

-- The whole-Space arm.
SELECT pg_temp.as_actor('user_alice', 'um_alice_finance_reviewer');
SELECT is(plystra.reachable_space('invoice', 'read'), NULL, 'reachable_space is NULL without a space-scope grant');
SAVEPOINT memo;
INSERT INTO plystra.permissions (id, resource, action, scope) VALUES ('perm_t_invoice_read_space', 'invoice', 'read', 'space');
INSERT INTO plystra.role_permissions (id, role_id, permission_id) VALUES ('rp_t_space', 'role_finance_approver', 'perm_t_invoice_read_space');
SELECT is(ARRAY[plystra.reachable_space('invoice', 'read'), array_length(plystra.reachable_group_ids('invoice', 'read'), 1)::text],
          ARRAY['space_acme', NULL],
          'a space-scope grant: reachable_space is the Space and the group arm is empty');
SET LOCAL ROLE invoices_app;
SELECT is((SELECT count(*) FROM app.invoices), 50507::bigint, 'and the policy shows every row of the Space');
RESET ROLE;
ROLLBACK TO SAVEPOINT memo;
-- After the tests inside a rolled-back savepoint (pgTAP's counter is a table row, so finish() needs a test
-- after the last rollback), and a rule of its own: the memo does not outlive the undone grant.
SELECT is(plystra.reachable_space('invoice', 'read'), NULL, 'once the space-scope grant is rolled back, the Space is not reached');

SELECT * FROM finish();
ROLLBACK;
