-- The audit writer hashes each row in Rust (plystra_core::audit_chain): that hash must be exactly what the SQL
-- definition, plystra.audit_row_hash, computes for the stored row, or the chain would not verify. Hundreds of
-- varied decisions (odd Unicode and control characters in every text the caller controls, metadata with numbers
-- jsonb prints differently than JSON text, nested objects whose keys jsonb reorders, large traces, NULLs,
-- many deny codes, several Spaces' chains) go through the writer; every row must be sealed by it with the SQL hash.
-- Needs the cluster started with shared_preload_libraries = 'plystra' and plystra.audit_writer_database set to
-- this database (as 040_audit_writer.sql).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
SELECT plan(8);
-- Audit rows outlive this test's ROLLBACK, so this run's request ids are unique.
CREATE TEMP TABLE run AS SELECT 'req72_' || substr(md5(random()::text || clock_timestamp()::text), 1, 10) || '_' AS p;

\ir helpers/await_audit_writer.sql

-- Decisions' data, made in this transaction (the decisions read it; the writer's rows outlive the rollback).
INSERT INTO plystra.spaces (id, name) VALUES ('space_t72', 'Other Ü');
INSERT INTO plystra.groups (id, space_id, name, path) VALUES ('group_t72', 'space_t72', 'Other', 'finance');
INSERT INTO plystra.resources (id, resource_type, space_id, group_id, metadata) VALUES
    ('invoice_t72_numbers', 'invoice', 'space_acme', 'group_finance_apac',
     '{"amount": 1.50, "big": 123456789012345678901234567890.000, "exp": 1e3, "small": 1.5e-7, "neg": -0.0, "zero": 0,
       "int": -42, "f": 0.1, "nested": {"bbb": [1, {"a": null, "": true}], "aa": false, "b": "é\u0001"}, "é": "key"}'),
    ('invoice_t72_unicode', 'invoice', 'space_acme', 'group_finance_apac',
     jsonb_build_object('text', E'quote " backslash \\ tab \t nl \n cr \r bell \u0007 del \u007f ' || chr(8) || chr(12)
                                || ' é ü ß 中文 😀 ' || chr(8232) || ' ‮rtl‬ a' || chr(769) || ' ' || chr(65279),
                        'keys', jsonb_build_object('z', 1, 'yy', 2, 'xxx', 3, 'ä', 4, 'a', 5, 'B', 6))),
    ('invoice_t72_large', 'invoice', 'space_acme', 'group_finance_apac',
     (SELECT jsonb_object_agg('k' || n, repeat('v', n % 50) || '€' || n) FROM generate_series(1, 300) AS n)),
    ('invoice_t72_other', 'invoice', 'space_t72', 'group_t72', '{}');

CREATE TEMP TABLE asked (n int, req jsonb, code text);
CREATE FUNCTION pg_temp.req(n int, u text, um text, res text, act text, rtype text, sp text) RETURNS jsonb
LANGUAGE sql AS $$
    SELECT jsonb_build_object(
        'actor', jsonb_build_object('user_id', u, 'member_id', 'member_finance_reviewer', 'user_member_id', um,
                                    'space_id', sp),
        'resource_type', rtype, 'resource_id', res, 'action', act,
        'request', jsonb_strip_nulls(jsonb_build_object(
            'request_id', (SELECT p FROM run) || n || CASE n % 3 WHEN 0 THEN '' WHEN 1 THEN '_ü"\' ELSE E'_\t😀' END,
            'ip', CASE WHEN n % 4 = 0 THEN NULL WHEN n % 4 = 1 THEN '127.0.0.1' ELSE '::1' END,
            'user_agent', CASE WHEN n % 5 = 0 THEN NULL
                               ELSE E'agent/1.0 (\u00e9; "x"\\) ' || chr(1 + n % 31) || repeat('ü', n % 7) END)))
$$;
CREATE FUNCTION pg_temp.ask(n int, u text, um text, res text, act text, rtype text DEFAULT 'invoice',
                            sp text DEFAULT 'space_acme') RETURNS void LANGUAGE sql AS $$
    INSERT INTO asked SELECT n, r, coalesce(plystra.check(r)->>'deny_code', 'ALLOW')
    FROM pg_temp.req(n, u, um, res, act, rtype, sp) AS r
$$;

-- 240 decisions over the demo data and the rows above.
SELECT count(pg_temp.ask(n, (ARRAY['user_alice', 'user_bob', 'user_nobody_é'])[1 + n % 3],
                         (ARRAY['um_alice_finance_reviewer', 'um_bob_finance_reviewer', 'um_alice_finance_reviewer_revoked',
                                'um_alice_finance_reviewer', 'um_nobody'])[1 + n % 5],
                         (ARRAY['invoice_001', 'invoice_002', 'invoice_t72_numbers', 'invoice_t72_unicode',
                                'invoice_t72_large', 'invoice_t72_other', 'invoice_missing_ü😀', 'invoice_001'])[1 + n % 8],
                         (ARRAY['approve', 'read', 'approve', 'frobnicate'])[1 + n % 4],
                         (ARRAY['invoice', 'invoice', 'invoice', 'invoice', 'invoice', 'invoice', 'no_such_type'])[1 + n % 7]))
FROM generate_series(1, 240) AS n;
-- Inactive actor parts and Spaces, each in its own savepoint.
SAVEPOINT s;
UPDATE plystra.users SET status = 'disabled' WHERE id = 'user_alice';
SELECT pg_temp.ask(n, 'user_alice', 'um_alice_finance_reviewer', 'invoice_001', 'approve') FROM generate_series(241, 245) AS n;
ROLLBACK TO SAVEPOINT s;
UPDATE plystra.members SET status = 'disabled' WHERE id = 'member_finance_reviewer';
SELECT pg_temp.ask(n, 'user_alice', 'um_alice_finance_reviewer', 'invoice_t72_numbers', 'approve') FROM generate_series(246, 250) AS n;
ROLLBACK TO SAVEPOINT s;
UPDATE plystra.spaces SET status = 'disabled' WHERE id = 'space_acme';
SELECT pg_temp.ask(n, 'user_bob', 'um_bob_finance_reviewer', 'invoice_t72_unicode', 'approve') FROM generate_series(251, 255) AS n;
ROLLBACK TO SAVEPOINT s;
UPDATE plystra.user_members SET expires_at = now() - interval '1 day' WHERE id = 'um_bob_finance_reviewer';
SELECT pg_temp.ask(n, 'user_bob', 'um_bob_finance_reviewer', 'invoice_t72_large', 'approve') FROM generate_series(256, 260) AS n;
ROLLBACK TO SAVEPOINT s;
-- A decision in the other Space (its own chain, a Space name with a non-ASCII letter).
SELECT pg_temp.ask(n, 'user_alice', 'um_alice_finance_reviewer', 'invoice_t72_other', 'approve', 'invoice', 'space_t72')
FROM generate_series(261, 265) AS n;
-- Out of the grant's scope: Alice approving the Legal EMEA invoice.
SELECT pg_temp.ask(n, 'user_alice', 'um_alice_finance_reviewer', 'invoice_002', 'approve') FROM generate_series(266, 270) AS n;

CREATE TEMP TABLE written AS
SELECT a.*, plystra.audit_row_hash(a, a.chain_position, a.prev_hash) AS sql_hash
FROM plystra.audit_logs a WHERE starts_with(a.request_id, (SELECT p FROM run));

-- The 20 decisions made in rolled-back savepoints are not in `asked` (rolled back with them); their rows stay.
SELECT is((SELECT count(*) FROM written), (SELECT count(*) + 20 FROM asked),
          'exactly one row for each of the 270 decisions, those of rolled-back savepoints included');
SELECT is((SELECT array_agg(DISTINCT coalesce(deny_code, 'ALLOW') ORDER BY coalesce(deny_code, 'ALLOW')) FROM written),
          ARRAY['ACTOR_MEMBER_INACTIVE', 'ACTOR_NOT_FOUND', 'ACTOR_USER_INACTIVE', 'ALLOW', 'CROSS_SPACE_VIOLATION',
                'INVALID_RESOURCE_ACTION', 'INVALID_RESOURCE_TYPE', 'NO_MATCHING_PERMISSION', 'RESOURCE_NOT_FOUND', 'SCOPE_OUT_OF_BOUNDS',
                'SPACE_INACTIVE', 'USER_MEMBER_EXPIRED', 'USER_MEMBER_REVOKED'],
          'the decisions cover these deny codes and allows');
SELECT is((SELECT count(*) FROM written WHERE row_hash IS NULL), 0::bigint,
          'the writer sealed every row as it inserted it');
SELECT is((SELECT array_agg(request_id ORDER BY seq) FROM written WHERE row_hash IS DISTINCT FROM sql_hash), NULL,
          'every row''s hash, computed by the writer in Rust, equals plystra.audit_row_hash of the stored row');
SELECT cmp_ok((SELECT max(octet_length(trace::text)) FROM written), '>', 3000,
              'large traces are among them (metadata as large as a trace keeps)');
SELECT is((SELECT count(*) FROM written w JOIN asked q ON q.req #>> '{request,request_id}' = w.request_id
           WHERE w.user_agent IS NOT DISTINCT FROM q.req #>> '{request,user_agent}'
             AND w.ip_address IS NOT DISTINCT FROM q.req #>> '{request,ip}'
             AND coalesce(w.deny_code, 'ALLOW') = q.code), (SELECT count(*) FROM asked),
          'each row holds its decision''s request id, user agent, address (or NULL) and deny code');
SELECT is((SELECT array_agg(space_key || ': ' || problem) FROM plystra.verify_audit_chain() WHERE problem IS NOT NULL),
          NULL, 'every chain verifies');

SELECT * FROM finish();
ROLLBACK;
