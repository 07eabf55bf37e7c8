-- Deleting or retiring a group ends the access it anchors, and a deleted or retired group places nothing; an
-- archived resource is not evaluated. The same in check, allowed, the set-based lookups and the row predicates.
--   soft-deleted or inactive anchor group -> SCOPE_ANCHOR_MISSING
--   soft-deleted or inactive target group -> TARGET_GROUP_MISSING
--   archived resource                     -> RESOURCE_NOT_FOUND
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
SELECT plan(25);

CREATE FUNCTION pg_temp.code(res text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(plystra.check(jsonb_build_object(
        'actor', jsonb_build_object('user_id', 'user_alice', 'member_id', 'member_finance_reviewer',
                                    'user_member_id', 'um_alice_finance_reviewer', 'space_id', 'space_acme'),
        'resource_type', 'invoice', 'resource_id', res, 'action', 'approve')) ->> 'deny_code', 'allow')
$$;
CREATE FUNCTION pg_temp.allowed(res text) RETURNS boolean LANGUAGE sql AS $$
    SELECT plystra.allowed('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme',
                           'invoice', res, 'approve')
$$;
CREATE FUNCTION pg_temp.reach() RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(array_to_string(ARRAY(SELECT unnest(plystra.reachable_group_ids('invoice', 'approve')) ORDER BY 1), ','), '')
$$;
CREATE FUNCTION pg_temp.listed() RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(id, ',' ORDER BY id), '') FROM plystra.lookup_resources('invoice', 'approve') AS id
    WHERE id = 'invoice_001'
$$;
CREATE FUNCTION pg_temp.row_allowed(grp text) RETURNS boolean LANGUAGE sql AS $$
    SELECT plystra.allowed_row('invoice', 'approve', 'space_acme', grp, NULL)
$$;

SELECT plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme');

-- The demo: Alice approves invoices under finance (a group_tree grant anchored at group_finance).
SELECT is(pg_temp.code('invoice_001'), 'allow', 'baseline: invoice_001 (finance.apac) is allowed');
SELECT ok(pg_temp.reach() LIKE '%group_finance_apac%', 'baseline: finance.apac is reached');
SELECT is(pg_temp.listed(), 'invoice_001', 'baseline: lookup_resources lists invoice_001');
SELECT ok(pg_temp.row_allowed('group_finance_apac'), 'baseline: a row in finance.apac is allowed');

-- The target group soft-deleted.
SAVEPOINT s;
UPDATE plystra.groups SET deleted_at = now() WHERE id = 'group_finance_apac';
SELECT is(pg_temp.code('invoice_001'), 'TARGET_GROUP_MISSING', 'deleted target group: check says TARGET_GROUP_MISSING');
SELECT is(pg_temp.allowed('invoice_001'), false, 'deleted target group: allowed is false');
SELECT ok(pg_temp.reach() NOT LIKE '%group_finance_apac%', 'deleted target group: not reached');
SELECT is(pg_temp.listed(), '', 'deleted target group: lookup_resources does not list its resources');
SELECT is(pg_temp.row_allowed('group_finance_apac'), false, 'deleted target group: a row there is not allowed');
ROLLBACK TO SAVEPOINT s;

-- The target group disabled.
UPDATE plystra.groups SET status = 'disabled' WHERE id = 'group_finance_apac';
SELECT is(pg_temp.code('invoice_001'), 'TARGET_GROUP_MISSING', 'disabled target group: TARGET_GROUP_MISSING');
SELECT ok(pg_temp.reach() NOT LIKE '%group_finance_apac%', 'disabled target group: not reached');
SELECT is(pg_temp.row_allowed('group_finance_apac'), false, 'disabled target group: a row there is not allowed');
ROLLBACK TO SAVEPOINT s;

-- The anchor soft-deleted: the grant anchored there stops working.
UPDATE plystra.groups SET deleted_at = now() WHERE id = 'group_finance';
SELECT is(pg_temp.code('invoice_001'), 'SCOPE_ANCHOR_MISSING', 'deleted anchor: SCOPE_ANCHOR_MISSING');
SELECT is(pg_temp.allowed('invoice_001'), false, 'deleted anchor: allowed is false');
SELECT is(pg_temp.reach(), '', 'deleted anchor: reaches no group');
SELECT is(pg_temp.listed(), '', 'deleted anchor: lookup_resources lists nothing');
SELECT is(pg_temp.row_allowed('group_finance_apac'), false, 'deleted anchor: no row is allowed');
ROLLBACK TO SAVEPOINT s;

-- The anchor archived.
UPDATE plystra.groups SET status = 'archived' WHERE id = 'group_finance';
SELECT is(pg_temp.code('invoice_001'), 'SCOPE_ANCHOR_MISSING', 'archived anchor: SCOPE_ANCHOR_MISSING');
SELECT is(pg_temp.reach(), '', 'archived anchor: reaches no group');
SELECT is(pg_temp.row_allowed('group_finance_apac'), false, 'archived anchor: no row is allowed');
ROLLBACK TO SAVEPOINT s;

-- The resource archived.
UPDATE plystra.resources SET status = 'archived' WHERE id = 'invoice_001';
SELECT is(pg_temp.code('invoice_001'), 'RESOURCE_NOT_FOUND', 'archived resource: RESOURCE_NOT_FOUND');
SELECT is(pg_temp.allowed('invoice_001'), false, 'archived resource: allowed is false');
SELECT is(pg_temp.listed(), '', 'archived resource: lookup_resources does not list it');
ROLLBACK TO SAVEPOINT s;

-- And everything is back.
SELECT is(pg_temp.code('invoice_001'), 'allow', 'restored: allowed again');
SELECT is(pg_temp.listed(), 'invoice_001', 'restored: listed again');

SELECT * FROM finish();
ROLLBACK;
