-- The Resource Registry's mappings in the catalog a backend keeps (migration 019, plystra_pg/src/catalog.rs). An
-- inline resource is read through its type's mapping, so a mapping is a fact of the decision: whatever is kept, a
-- decision answers as the table read under its own snapshot would. A mapping change committed by another session
-- counts from the next statement in READ COMMITTED, never inside a REPEATABLE READ snapshot that predates it; a
-- writing transaction sees its own change. The backends put to the test are a second one deciding (dblink,
-- autocommit: a service's connection) while a writer backend changes the mapping under it.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS dblink;
BEGIN;
SELECT plan(18);

SELECT dblink_connect('t85_writer', format('host=%s port=%s dbname=%s user=%s',
    split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_database(), current_user));
SELECT dblink_connect('t85_decider', format('host=%s port=%s dbname=%s user=%s options=-cplystra.audit_mode=off',
    split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_database(), current_user));

-- Alice approving an invoice Core does not hold, placed by its metadata through the invoice type's mapping: by the
-- demo's mapping (group_field = 'group_id') in finance.apac, inside her approver grant's group_tree; by a mapping
-- whose group field is 'other_group', in legal.emea, outside it.
CREATE FUNCTION pg_temp.request() RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object(
        'actor', jsonb_build_object('user_id', 'user_alice', 'member_id', 'member_finance_reviewer',
                                    'user_member_id', 'um_alice_finance_reviewer', 'space_id', 'space_acme'),
        'resource', jsonb_build_object('type', 'invoice', 'id', 'invoice_t85',
                                       'metadata', jsonb_build_object('group_id', 'group_finance_apac',
                                                                      'other_group', 'group_legal_emea')),
        'action', 'approve')
$$;
CREATE FUNCTION pg_temp.decider() RETURNS text LANGUAGE sql AS $$
    SELECT code FROM dblink('t85_decider', format($q$
        SELECT coalesce(plystra.check(%L::jsonb) ->> 'deny_code', 'ALLOW')$q$, pg_temp.request())) AS t(code text)
$$;
CREATE FUNCTION pg_temp.decider_mapped_group_field() RETURNS text LANGUAGE sql AS $$
    SELECT f FROM dblink('t85_decider', format($q$
        SELECT plystra.explain(%L::jsonb) #>> '{resource_registry,mapping,group_field}'$q$, pg_temp.request()))
        AS t(f text)
$$;
CREATE FUNCTION pg_temp.write(statement text) RETURNS text LANGUAGE sql AS $$
    SELECT dblink_exec('t85_writer', statement)
$$;
SELECT is((SELECT tgenabled::text FROM pg_trigger
            WHERE tgrelid = 'plystra.resource_mappings'::regclass AND tgname = 'catalog_changed'), 'A',
          'resource_mappings carries the catalog_changed trigger, enabled always (replica sessions included)');

-- A library newer than its schema (replaced before ALTER EXTENSION UPDATE) finds no keeps_resource_mappings column:
-- it keeps no mapping. Shown by a change committed without moving the version (the trigger disabled, which only a
-- superuser can do), which a kept mapping would not see. First, as this transaction has not yet touched
-- catalog_version: renaming its column waits for every lock on it.
SELECT is(pg_temp.decider(), 'ALLOW', 'before: placed by group_id, Alice may approve (the mapping now kept)');
SELECT pg_temp.write('ALTER TABLE plystra.catalog_version RENAME COLUMN keeps_resource_mappings TO t85_not_yet');
SELECT pg_temp.write($$BEGIN;
    ALTER TABLE plystra.resource_mappings DISABLE TRIGGER catalog_changed;
    UPDATE plystra.resource_mappings SET group_field = 'other_group' WHERE id = 'rm_invoice_resources';
    ALTER TABLE plystra.resource_mappings ENABLE ALWAYS TRIGGER catalog_changed;
    COMMIT$$);
\ir helpers/or_error.sql
SELECT pg_temp.or_error('SELECT pg_temp.decider()') AS without_column \gset
SELECT pg_temp.write('ALTER TABLE plystra.catalog_version RENAME COLUMN t85_not_yet TO keeps_resource_mappings');
SELECT is(:'without_column'::text, 'SCOPE_OUT_OF_BOUNDS',
          'a schema without keeps_resource_mappings: the mapping is read each time, not kept');
SELECT pg_temp.write($$UPDATE plystra.resource_mappings SET group_field = 'group_id' WHERE id = 'rm_invoice_resources'$$);

CREATE FUNCTION pg_temp.version() RETURNS bigint LANGUAGE sql AS $$
    SELECT version FROM plystra.catalog_version WHERE name = 'catalog'
$$;
SELECT ok((SELECT keeps_resource_mappings FROM plystra.catalog_version), 'the schema says mappings may be kept');

-- This transaction's own writes (nothing is kept in a transaction that has written, and the version moves).
SELECT pg_temp.version() AS v0 \gset
SAVEPOINT s;
UPDATE plystra.resource_mappings SET group_field = 'other_group' WHERE id = 'rm_invoice_resources';
SELECT isnt(pg_temp.version(), :v0::bigint, 'a mapping write moves the catalog version in the same transaction');
SELECT is(coalesce(plystra.check(pg_temp.request()) ->> 'deny_code', 'ALLOW'), 'SCOPE_OUT_OF_BOUNDS',
          'a mapping changed earlier in the transaction places the inline resource by its new field');
ROLLBACK TO SAVEPOINT s;
SELECT is(coalesce(plystra.check(pg_temp.request()) ->> 'deny_code', 'ALLOW'), 'ALLOW',
          'after the savepoint is rolled back, the change is forgotten too');
-- The administration role writes mappings but has no privilege on the version row: its write moves it all the same
-- (the trigger's function is SECURITY DEFINER).
SAVEPOINT s;
SELECT pg_temp.version() AS v1 \gset
SET LOCAL ROLE plystra_admin;
UPDATE plystra.resource_mappings SET visibility_field = 'visibility' WHERE id = 'rm_invoice_resources';
RESET ROLE;
SELECT isnt(pg_temp.version(), :v1::bigint, 'plystra_admin''s mapping write moves the version too');
ROLLBACK TO SAVEPOINT s;

-- Another session's committed change, seen from the next statement.
SELECT is(pg_temp.decider(), 'ALLOW', 'the deciding backend: placed by group_id, Alice may approve');
SELECT is(pg_temp.decider_mapped_group_field(), 'group_id', 'and its trace shows the mapping (now kept)');
SELECT pg_temp.write($$UPDATE plystra.resource_mappings SET group_field = 'other_group' WHERE id = 'rm_invoice_resources'$$);
SELECT is(pg_temp.decider(), 'SCOPE_OUT_OF_BOUNDS',
          'a mapping change committed by another session counts from the next statement');
SELECT is(pg_temp.decider_mapped_group_field(), 'other_group', 'and the trace shows the new mapping');

-- A REPEATABLE READ transaction keeps its snapshot, kept mapping or not.
SELECT dblink_exec('t85_decider', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT pg_temp.decider();
SELECT pg_temp.write($$UPDATE plystra.resource_mappings SET group_field = 'group_id' WHERE id = 'rm_invoice_resources'$$);
SELECT pg_temp.decider() AS inside_rr \gset
SELECT dblink_exec('t85_decider', 'COMMIT');
SELECT is(:'inside_rr'::text, 'SCOPE_OUT_OF_BOUNDS',
          'inside a REPEATABLE READ snapshot taken before the change, the change is not seen');
SELECT is(pg_temp.decider(), 'ALLOW', 'after that transaction, the committed change counts');

-- Only a superuser can change the table without moving the version (its trigger disabled): then the kept mapping
-- answers as it was (which proves it is kept), and a schema that says mappings are not kept reads the table.
SELECT pg_temp.write($$BEGIN;
    ALTER TABLE plystra.resource_mappings DISABLE TRIGGER catalog_changed;
    UPDATE plystra.resource_mappings SET group_field = 'other_group' WHERE id = 'rm_invoice_resources';
    ALTER TABLE plystra.resource_mappings ENABLE ALWAYS TRIGGER catalog_changed;
    COMMIT$$);
SELECT is(pg_temp.decider(), 'ALLOW', 'a change committed without moving the version: the kept mapping answers');
SELECT pg_temp.write('UPDATE plystra.catalog_version SET keeps_resource_mappings = false');
SELECT is(pg_temp.decider(), 'SCOPE_OUT_OF_BOUNDS', 'keeps_resource_mappings = false: the mapping is read each time');
SELECT pg_temp.write('UPDATE plystra.catalog_version SET keeps_resource_mappings = true');
SELECT pg_temp.write($$UPDATE plystra.catalog_version SET version = nextval('plystra.catalog_version_seq')$$);
SELECT is(pg_temp.decider(), 'SCOPE_OUT_OF_BOUNDS', 'moving the version by hand makes the backend read anew');

-- Leave the demo's mapping as it was.
SELECT pg_temp.write($$UPDATE plystra.resource_mappings SET group_field = 'group_id' WHERE id = 'rm_invoice_resources'$$);
SELECT is(pg_temp.decider(), 'ALLOW', 'the demo''s mapping back: Alice may approve again');
SELECT dblink_disconnect('t85_writer');
SELECT dblink_disconnect('t85_decider');

SELECT * FROM finish();
ROLLBACK;
