-- The four required Finance Reviewer decisions (v1.0's cmd/explain-demo), each with its full trace.
-- Fails (psql exits non-zero) when any decision differs from the expected one.
\set ON_ERROR_STOP 1
\pset tuples_only on
\pset format unaligned
CREATE TEMP TABLE demo_case (n int, name text, user_id text, binding text, resource text, expected text);
INSERT INTO demo_case VALUES
    (1, 'Alice approves Finance APAC invoice', 'user_alice', 'um_alice_finance_reviewer', 'invoice_001', 'allow'),
    (2, 'Alice tries to approve Legal EMEA invoice', 'user_alice', 'um_alice_finance_reviewer', 'invoice_002', 'deny SCOPE_OUT_OF_BOUNDS'),
    (3, 'Bob approves Finance APAC invoice through the same Member', 'user_bob', 'um_bob_finance_reviewer', 'invoice_001', 'allow'),
    (4, 'Alice tries to approve with a revoked UserMember binding', 'user_alice', 'um_alice_finance_reviewer_revoked', 'invoice_001', 'deny USER_MEMBER_REVOKED');
CREATE TEMP TABLE demo_result AS
SELECT n, name, expected, plystra.explain(jsonb_build_object(
           'actor', jsonb_build_object('user_id', user_id, 'member_id', 'member_finance_reviewer',
                                       'user_member_id', binding, 'space_id', 'space_acme'),
           'resource_type', 'invoice', 'resource_id', resource, 'action', 'approve',
           'request', jsonb_build_object('request_id', 'req_demo_case_' || n, 'user_agent', 'scripts/demo'))) AS trace
FROM demo_case ORDER BY n;
SELECT format(E'\n=== Case %s: %s\ndecision: %s%s (expected %s)\nreason: %s\n%s', n, name, trace->>'decision',
              coalesce(' ' || (trace->>'deny_code'), ''), expected, trace->>'reason', jsonb_pretty(trace))
FROM demo_result ORDER BY n;
-- Any mismatch stops here with an error.
DO $$
DECLARE bad text;
BEGIN
    SELECT string_agg(format('case %s: got %s, expected %s', n, trace->>'decision' || coalesce(' ' || (trace->>'deny_code'), ''),
                             expected), '; ')
    INTO bad
    FROM demo_result WHERE trace->>'decision' || coalesce(' ' || (trace->>'deny_code'), '') <> expected;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'demo decision mismatch: %', bad;
    END IF;
END $$;
SELECT E'\nAll four demo decisions are as expected.';
