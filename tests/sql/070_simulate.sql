-- Simulate: plystra.simulate(request) answers what plystra.explain answers (the same decision, deny code and full
-- trace) without acting on it: no decision row is written even with plystra.audit_mode = 'always', and the answer
-- says "simulated": true. Malformed input is 22023; inline grants are refused as in explain; only plystra_admin
-- may call it, and it runs as its definer with a pinned search_path. Rolled back at the end (the audit rows the
-- writer commits on its own for the explain controls stay, as every decision's do).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
SELECT plan(23);
SET LOCAL plystra.audit_mode = 'always';

INSERT INTO plystra.users (id, email) VALUES ('user_simulate', 'simulate@example.com');
INSERT INTO plystra.members (id, space_id, display_name) VALUES ('member_simulate_new', 'space_acme', 'Newcomer');
INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type) VALUES
    ('um_simulate_reviewer', 'user_simulate', 'member_finance_reviewer', 'space_acme', 'login'),
    ('um_simulate_new', 'user_simulate', 'member_simulate_new', 'space_acme', 'delegate');

CREATE FUNCTION pg_temp.req(um text, member text, invoice text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object(
        'actor', jsonb_build_object('user_id', 'user_simulate', 'member_id', member, 'user_member_id', um,
                                    'space_id', 'space_acme'),
        'resource_type', 'invoice', 'resource_id', invoice, 'action', 'approve')
$$;
-- What of a trace must be the same between explain and simulate: all but the ids of this one decision.
CREATE FUNCTION pg_temp.shape(t jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT t - 'trace_id' - 'audit' - 'simulated'
$$;
CREATE FUNCTION pg_temp.rows() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM plystra.audit_logs WHERE actor_user_id = 'user_simulate'
$$;

-- 1. An allow: the same answer as explain, which writes its row; simulate writes none.
CREATE TEMP TABLE n0 AS SELECT pg_temp.rows() AS n;
CREATE TEMP TABLE e_allow AS SELECT plystra.explain(pg_temp.req('um_simulate_reviewer', 'member_finance_reviewer', 'invoice_001')) AS t;
SELECT is(pg_temp.rows(), (SELECT n + 1 FROM n0), 'control: explain writes its decision row under audit_mode always');
CREATE TEMP TABLE n1 AS SELECT pg_temp.rows() AS n;
CREATE TEMP TABLE s_allow AS SELECT plystra.simulate(pg_temp.req('um_simulate_reviewer', 'member_finance_reviewer', 'invoice_001')) AS t;
SELECT is((SELECT t ->> 'decision' FROM s_allow), 'allow', 'simulate: the binding may approve invoice_001');
SELECT is((SELECT pg_temp.shape(t) FROM s_allow), (SELECT pg_temp.shape(t) FROM e_allow),
          'the same trace as explain (actor, space, target, registry, candidates, reason, request)');
SELECT is((SELECT (t ->> 'simulated')::boolean FROM s_allow), true, 'the answer says it is simulated');
SELECT ok((SELECT NOT e.t ? 'simulated' FROM e_allow e), 'explain''s answer does not');
SELECT is((SELECT t #>> '{audit,audit_log_id}' FROM s_allow), NULL, 'it names no audit row');
SELECT matches((SELECT t ->> 'trace_id' FROM s_allow), '^trc_[0-9a-f]{16}$', 'it has its own trace id');
SELECT is(pg_temp.rows(), (SELECT n FROM n1), 'simulate writes no decision row under audit_mode always');

-- 2. A deny: the same deny code and trace as explain, and no row.
CREATE TEMP TABLE e_deny AS SELECT plystra.explain(pg_temp.req('um_simulate_new', 'member_simulate_new', 'invoice_001')) AS t;
CREATE TEMP TABLE n2 AS SELECT pg_temp.rows() AS n;
CREATE TEMP TABLE s_deny AS SELECT plystra.simulate(pg_temp.req('um_simulate_new', 'member_simulate_new', 'invoice_001')) AS t;
SELECT is((SELECT t ->> 'decision' FROM s_deny), 'deny', 'a Member without roles is denied');
SELECT isnt((SELECT t ->> 'deny_code' FROM s_deny), NULL, 'with a deny code');
SELECT is((SELECT t ->> 'deny_code' FROM s_deny), (SELECT t ->> 'deny_code' FROM e_deny), 'the deny code explain gives');
SELECT is((SELECT pg_temp.shape(t) FROM s_deny), (SELECT pg_temp.shape(t) FROM e_deny), 'and the same trace');
SELECT is(pg_temp.rows(), (SELECT n FROM n2), 'a simulated deny writes no row either');
SET LOCAL plystra.audit_mode = 'deny_only';
CREATE TEMP TABLE s_deny_only AS SELECT plystra.simulate(pg_temp.req('um_simulate_new', 'member_simulate_new', 'invoice_002')) AS t;
SELECT is(pg_temp.rows(), (SELECT n FROM n2), 'nor under audit_mode deny_only');
SET LOCAL plystra.audit_mode = 'always';

-- 3. Bad input.
SELECT throws_ok($$SELECT plystra.simulate(NULL)$$, '22023', NULL, 'a NULL request is 22023');
SELECT throws_ok($$SELECT plystra.simulate('[]')$$, '22023', NULL, 'a request that is not an object is 22023');
SELECT throws_ok($$SELECT plystra.simulate('{"actor": {"user_id": "user_simulate"}, "resource_type": "invoice", "resource_id": "invoice_001"}')$$,
                 '22023', NULL, 'a request without an action is 22023');
SELECT throws_ok($$SELECT plystra.simulate('{"actor": {"user_id": "user_simulate", "member_id": "member_simulate_new", "user_member_id": "um_simulate_new", "space_id": "space_acme"},
                   "grants": [{"resource": "invoice", "action": "approve", "scope": "space"}], "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"}')$$,
                 '22023', NULL, 'inline grants (an answer supplied by the caller) are refused, as in explain');
SELECT is(pg_temp.rows(), (SELECT n FROM n2), 'refused requests write nothing');

-- 4. Who may call it, and how it runs.
SELECT ok(NOT has_function_privilege('plystra_app', 'plystra.simulate(jsonb)', 'EXECUTE')
          AND has_function_privilege('plystra_admin', 'plystra.simulate(jsonb)', 'EXECUTE'),
          'plystra_admin may simulate, plystra_app may not');
SET LOCAL ROLE plystra_app;
SELECT throws_ok($$SELECT plystra.simulate('{"actor": {"user_id": "user_simulate", "member_id": "member_finance_reviewer", "user_member_id": "um_simulate_reviewer", "space_id": "space_acme"},
                   "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"}')$$,
                 '42501', NULL, 'plystra_app calling it is refused (42501)');
RESET ROLE;
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                      WHERE p.oid = 'plystra.simulate(jsonb)'::regprocedure AND a.grantee = 0),
          'PUBLIC may not');
SELECT is((SELECT prosecdef AND proconfig = ARRAY['search_path=pg_catalog, pg_temp'] FROM pg_proc
           WHERE oid = 'plystra.simulate(jsonb)'::regprocedure), true,
          'SECURITY DEFINER with a pinned search_path');

SELECT * FROM finish();
ROLLBACK;
