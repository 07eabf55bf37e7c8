-- Decisions read by index probes, and each backend keeps the object ids of the tables and indexes it probes. A
-- kept id must never outlive its relation: after DROP EXTENSION and CREATE EXTENSION in the same live backend
-- (every table and index has a new id), the next decision reads the new tables, with no "could not open
-- relation" error and the same answers as before. Everything is rolled back at the end.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
SELECT plan(8);
SET LOCAL plystra.audit_mode = 'off';

CREATE FUNCTION pg_temp.code(res text, act text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(plystra.check(jsonb_build_object(
        'actor', jsonb_build_object('user_id', 'user_alice', 'member_id', 'member_finance_reviewer',
                                    'user_member_id', 'um_alice_finance_reviewer', 'space_id', 'space_acme'),
        'resource_type', 'invoice', 'resource_id', res, 'action', act)) ->> 'deny_code', 'allow')
$$;

SELECT is(pg_temp.code('invoice_001', 'approve'), 'allow', 'before: Alice may approve invoice_001');
SELECT is(pg_temp.code('invoice_002', 'approve'), 'SCOPE_OUT_OF_BOUNDS', 'before: invoice_002 is out of scope');
SELECT ok(plystra.allowed('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme',
                          'invoice', 'invoice_001', 'approve'), 'before: the typed form allows');
SELECT version AS old_version FROM plystra.catalog_version \gset
CREATE TEMP TABLE old_ids AS
    SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'plystra';

DROP EXTENSION plystra CASCADE;
CREATE EXTENSION plystra;
SET LOCAL plystra.audit_mode = 'off';
-- The demo without its own BEGIN/COMMIT, which would end this transaction (pg_prove runs from the repository root).
\set demo `sed -e '/^BEGIN;$/d' -e '/^COMMIT;$/d' sql/demo.sql`
:demo

-- The new schema's catalog version may take the old one's number (here it is made to), and the approver Role
-- loses its permission without moving it: the decision still reads the new tables (a writing transaction never
-- uses a kept catalog; a reading one after a committed reinstall is tested in 068).
SAVEPOINT same_number;
UPDATE plystra.catalog_version SET version = :old_version;
ALTER TABLE plystra.role_permissions DISABLE TRIGGER catalog_changed;
UPDATE plystra.role_permissions SET deleted_at = now()
 WHERE role_id = 'role_finance_approver' AND permission_id = 'perm_invoice_approve_group_tree';
SELECT is(pg_temp.code('invoice_001', 'approve'), 'NO_MATCHING_PERMISSION',
          'after: a catalog kept under the old schema is never used, even under the same version number');
ROLLBACK TO SAVEPOINT same_number;


SELECT is((SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'plystra' AND c.relname IN ('users', 'groups_pkey', 'member_roles')
             AND c.oid IN (SELECT oid FROM old_ids)), 0::bigint,
          'the reinstalled tables and indexes have new object ids');
SELECT is(pg_temp.code('invoice_001', 'approve'), 'allow', 'after: the same backend still allows invoice_001');
SELECT is(pg_temp.code('invoice_002', 'approve'), 'SCOPE_OUT_OF_BOUNDS', 'after: and still denies invoice_002');
SELECT ok(plystra.allowed('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme',
                          'invoice', 'invoice_001', 'approve'), 'after: the typed form allows');

SELECT * FROM finish();
ROLLBACK;
