-- A decision reads its resource through the hash index on the id (migration 018, plystra_pg/src/probe.rs). A hash
-- index holds only 32-bit hash codes, and a pair of ids with the same code is easy to make (a few hundred thousand
-- tries), so a probe must take a row only when its id is the one asked for: otherwise asking about an id that does
-- not exist, or about one's own resource, could be answered from another resource's row. Everything here is rolled
-- back.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
SELECT plan(19);

SELECT is((SELECT a.amname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
           WHERE c.relname = 'resources_id_hash' AND c.relnamespace = 'plystra'::regnamespace
             AND i.indrelid = 'plystra.resources'::regclass),
          'hash', 'plystra.resources has a hash index on its id');

-- Two ids with the same hash code under the index's operator class (hashtext; the database's collation is
-- deterministic). About ten such pairs are expected among 300,000 ids; the ids are fixed, so the pair is too.
CREATE TEMP TABLE pair AS
SELECT min(id) AS a, max(id) AS b FROM (
    SELECT 'invoice_h' || g AS id, hashtext('invoice_h' || g) AS h FROM generate_series(1, 300000) g
) ids GROUP BY h HAVING count(*) > 1 ORDER BY 1 LIMIT 1;
SELECT ok((SELECT a <> b AND hashtext(a) = hashtext(b) FROM pair), 'two different ids with the same hash code');
SELECT (SELECT a FROM pair) AS a, (SELECT b FROM pair) AS b \gset

-- Alice approves invoices anywhere under Finance (group_tree). Only `a` is a resource at first, in Finance APAC.
INSERT INTO plystra.resources (id, resource_type, space_id, group_id, owner_member_id, display_name, visibility)
VALUES (:'a', 'invoice', 'space_acme', 'group_finance_apac', 'member_invoice_creator', 'T84 a', 'private');

CREATE FUNCTION pg_temp.req(resource text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('actor', jsonb_build_object('user_id', 'user_alice', 'member_id', 'member_finance_reviewer',
        'user_member_id', 'um_alice_finance_reviewer', 'space_id', 'space_acme'),
        'resource_type', 'invoice', 'resource_id', resource, 'action', 'approve')
$$;
CREATE FUNCTION pg_temp.code(answer jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN (answer->>'allow')::boolean THEN 'ALLOW' ELSE answer->>'deny_code' END
$$;
CREATE FUNCTION pg_temp.allowed(resource text) RETURNS boolean LANGUAGE sql AS $$
    SELECT plystra.allowed('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme',
                           'invoice', resource, 'approve')
$$;
CREATE FUNCTION pg_temp.hash_scans() RETURNS bigint LANGUAGE sql AS $$
    SELECT pg_stat_get_xact_numscans('plystra.resources_id_hash'::regclass)
$$;
SET LOCAL plystra.audit_mode = 'off';

SELECT pg_temp.hash_scans() AS scans_before \gset
SELECT is(pg_temp.code(plystra.check(pg_temp.req(:'a'))), 'ALLOW', 'the resource is found by its id');
SELECT ok(pg_temp.hash_scans() > :scans_before, 'and it was read through the hash index');
SELECT is(pg_temp.code(plystra.check(pg_temp.req(:'b'))), 'RESOURCE_NOT_FOUND',
          'an id that is no resource is not found, although a resource has its hash code');
SELECT is(pg_temp.allowed(:'b'), false, 'the typed form does not take the other row either');
SELECT is(pg_temp.code(plystra.explain(pg_temp.req(:'b'))), 'RESOURCE_NOT_FOUND', 'nor does explain');
SELECT is((SELECT jsonb_agg(pg_temp.code(r) ORDER BY n) FROM jsonb_array_elements(plystra.check_batch(
               jsonb_build_object('actor', pg_temp.req('x')->'actor', 'items', jsonb_build_array(
                   jsonb_build_object('resource_type', 'invoice', 'resource_id', :'b', 'action', 'approve'),
                   jsonb_build_object('resource_type', 'invoice', 'resource_id', :'a', 'action', 'approve'))))->'results')
               WITH ORDINALITY AS x(r, n)),
          '["RESOURCE_NOT_FOUND", "ALLOW"]'::jsonb, 'nor does a batch, item by item');

-- Both ids are resources, `b` outside Alice's reach: each id finds its own row, whichever of the two the bucket
-- lists first (one of the two probes meets the other row first and must go on past it).
INSERT INTO plystra.resources (id, resource_type, space_id, group_id, owner_member_id, display_name, visibility)
VALUES (:'b', 'invoice', 'space_acme', 'group_legal_emea', 'member_invoice_creator', 'T84 b', 'private');
SELECT is(pg_temp.code(plystra.check(pg_temp.req(:'a'))), 'ALLOW', 'with both rows, the first id finds its own row');
SELECT is(pg_temp.code(plystra.check(pg_temp.req(:'b'))), 'SCOPE_OUT_OF_BOUNDS',
          'and the second its own (in Legal EMEA, outside Alice''s reach)');
SELECT is(pg_temp.allowed(:'a'), true, 'the typed form: the first id allowed');
SELECT is(pg_temp.allowed(:'b'), false, 'the typed form: the second denied');

-- The second row deleted: its id is no longer found, and the first is unchanged.
UPDATE plystra.resources SET deleted_at = now() WHERE id = :'b';
SELECT is(pg_temp.code(plystra.check(pg_temp.req(:'b'))), 'RESOURCE_NOT_FOUND', 'a deleted row is not found');
SELECT is(pg_temp.code(plystra.check(pg_temp.req(:'a'))), 'ALLOW', 'and the row sharing its hash code still is');

-- A schema without the index (not yet updated, or the index dropped): the primary key serves, same answers.
SAVEPOINT without_hash;
DROP INDEX plystra.resources_id_hash;
SELECT is(pg_temp.code(plystra.check(pg_temp.req(:'a'))), 'ALLOW', 'without the hash index the primary key finds the row');
SELECT is(pg_temp.code(plystra.check(pg_temp.req(:'b'))), 'RESOURCE_NOT_FOUND', 'and a deleted one stays not found');
ROLLBACK TO SAVEPOINT without_hash;
SELECT is(pg_temp.code(plystra.check(pg_temp.req(:'a'))), 'ALLOW', 'the index back, it serves again');

-- An index of that name over an expression (a schema changed by hand) has no column to recheck a row by: refused
-- with a clear error, never read.
SAVEPOINT expression_index;
DROP INDEX plystra.resources_id_hash;
CREATE INDEX resources_id_hash ON plystra.resources USING hash (lower(id));
SELECT throws_like(format('SELECT plystra.check(%L)', pg_temp.req(:'a')),
                   '%resources_id_hash is not an index on resources whose first 1 key columns are columns of the table%',
                   'an expression index in its place is refused by name');
ROLLBACK TO SAVEPOINT expression_index;
SELECT is(pg_temp.code(plystra.check(pg_temp.req(:'b'))), 'RESOURCE_NOT_FOUND', 'and the schema''s own index serves again');

SELECT * FROM finish();
ROLLBACK;
