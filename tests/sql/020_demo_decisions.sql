-- The Finance Reviewer demo decisions (docs/v1-reference.md §1.6) through plystra.check / explain / allowed.
-- Runs against a database with the extension and sql/demo.sql loaded; everything rolls back.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
SELECT plan(34);

CREATE FUNCTION pg_temp.req(u text, um text, res text, act text, rtype text DEFAULT 'invoice',
                            mem text DEFAULT 'member_finance_reviewer', sp text DEFAULT 'space_acme')
RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('actor', jsonb_build_object('user_id', u, 'member_id', mem, 'user_member_id', um,
                                                          'space_id', sp),
                              'resource_type', rtype, 'resource_id', res, 'action', act)
$$;
-- The decision's deny code, or ALLOW.
CREATE FUNCTION pg_temp.code(r jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(plystra.check(r)->>'deny_code', 'ALLOW')
$$;

-- The four required cases.
SELECT is(pg_temp.code(pg_temp.req('user_alice', 'um_alice_finance_reviewer', 'invoice_001', 'approve')), 'ALLOW',
          'case 1: Alice approves the Finance APAC invoice (finance.apac is inside finance)');
SELECT is(pg_temp.code(pg_temp.req('user_alice', 'um_alice_finance_reviewer', 'invoice_002', 'approve')),
          'SCOPE_OUT_OF_BOUNDS', 'case 2: Alice cannot approve the Legal EMEA invoice');
SELECT is(pg_temp.code(pg_temp.req('user_bob', 'um_bob_finance_reviewer', 'invoice_001', 'approve')), 'ALLOW',
          'case 3: Bob approves through the same Member');
SELECT is(pg_temp.code(pg_temp.req('user_alice', 'um_alice_finance_reviewer_revoked', 'invoice_001', 'approve')),
          'USER_MEMBER_REVOKED', 'case 4: a revoked binding denies even though the role matches');

-- The compact answer's shape, and exactly one audit row per check that agrees with it.
CREATE TEMP TABLE answer AS
SELECT plystra.check(pg_temp.req('user_alice', 'um_alice_finance_reviewer', 'invoice_001', 'approve')
                     || '{"request": {"request_id": "req_0123456789abcdef", "ip": "10.0.0.7", "user_agent": "pgtap"}}') AS a;
SELECT ok((SELECT a ?& ARRAY['allow', 'decision', 'deny_code', 'reason', 'trace_id', 'audit_log_id', 'audit'] FROM answer)
          AND (SELECT a->>'trace_id' ~ '^trc_[0-9a-f]{16}$' AND a->>'audit_log_id' ~ '^audit_[0-9a-f]{16}$'
               AND substr(a->>'trace_id', 5) = substr(a->>'audit_log_id', 7) FROM answer),
          'check returns the compact v1.0 answer with trc_/audit_ ids sharing 16 hex digits');
SELECT results_eq(
    $$SELECT space_id, actor_user_id, actor_member_id, actor_user_member_id, action, resource_type, resource_id,
             decision, deny_code, request_id, ip_address, user_agent
      FROM plystra.audit_logs WHERE id = (SELECT a->>'audit_log_id' FROM answer)$$,
    $$VALUES ('space_acme', 'user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'invoice.approve',
              'invoice', 'invoice_001', 'allow', NULL::text, 'req_0123456789abcdef', '10.0.0.7', 'pgtap')$$,
    'the audit row records the decision, the actor and the request context');
SELECT is((SELECT trace->'matched_candidates'->0->'scope_check'->>'covered' FROM plystra.audit_logs
           WHERE id = (SELECT a->>'audit_log_id' FROM answer)), 'true',
          'the audit row keeps the decision-time trace');

CREATE TEMP TABLE before_count AS SELECT count(*) AS n FROM plystra.audit_logs WHERE resource_type = 'invoice';
SELECT pg_temp.code(pg_temp.req(u, um, r, 'approve'))
FROM (VALUES ('user_alice', 'um_alice_finance_reviewer', 'invoice_001'),
             ('user_alice', 'um_alice_finance_reviewer', 'invoice_002'),
             ('user_bob', 'um_bob_finance_reviewer', 'invoice_001'),
             ('user_alice', 'um_alice_finance_reviewer_revoked', 'invoice_001')) AS cases (u, um, r);
SELECT is((SELECT count(*) FROM plystra.audit_logs WHERE resource_type = 'invoice') - (SELECT n FROM before_count), 4::bigint,
          'four checks write exactly four audit rows');

-- explain: the full trace, one matched candidate in each demo case.
CREATE TEMP TABLE trace AS
SELECT plystra.explain(pg_temp.req('user_alice', 'um_alice_finance_reviewer', 'invoice_002', 'approve')) AS t;
SELECT ok((SELECT t ?& ARRAY['trace_version', 'trace_id', 'decision', 'deny_code', 'actor', 'space', 'target',
                             'resource_registry', 'matched_candidates', 'request', 'reason', 'audit'] FROM trace),
          'explain returns every field of the v1.0 trace');
SELECT is((SELECT jsonb_array_length(t->'matched_candidates') FROM trace), 1, 'case 2 has exactly one matched candidate');
SELECT is((SELECT t->'matched_candidates'->0->'scope_check'->>'reason' FROM trace),
          'target group legal.emea is outside anchor group finance.', 'the scope check explains itself with both paths');
SELECT is((SELECT t->'matched_candidates'->0->'scope_check'->>'rule' FROM trace),
          'target_path = anchor_path OR target_path LIKE anchor_path || ''.%''', 'the group_tree rule text is v1.0''s');
SELECT is((SELECT t#>>'{actor,user_member,relation_type}' || '/' || (t#>>'{space,name}') || '/' ||
                  (t#>>'{target,resource,group_path}') || '/' || (t#>>'{resource_registry,action,risk_level}') FROM trace),
          'delegate/Acme/legal.emea/high', 'the trace shows the binding, the Space, the target group and the registry');
SELECT is((SELECT trace FROM plystra.audit_logs WHERE id = (SELECT t->'audit'->>'audit_log_id' FROM trace)),
          (SELECT t FROM trace), 'the audit row keeps exactly the explain document');

-- v1.0's extra engine cases.
SELECT is(pg_temp.code(pg_temp.req('user_alice', 'um_alice_finance_reviewer_expired', 'invoice_001', 'approve')),
          'USER_MEMBER_EXPIRED', 'an expired binding denies');
SELECT is(pg_temp.code(pg_temp.req('user_alice', 'um_alice_finance_reviewer', 'invoice_001', 'reject')),
          'NO_MATCHING_PERMISSION', 'reject: no grant matches');
SELECT is((plystra.explain(pg_temp.req('user_alice', 'um_alice_finance_reviewer', 'invoice_001', 'reject')))->'matched_candidates',
          'null'::jsonb, 'reject: zero candidates');
SELECT is(pg_temp.code(pg_temp.req('user_alice', 'um_alice_finance_reviewer', 'invoice_001', 'approve', 'contract')),
          'INVALID_RESOURCE_TYPE', 'an unregistered resource type denies');
SELECT is(pg_temp.code(pg_temp.req('user_alice', 'um_alice_finance_reviewer', 'invoice_001', 'void')),
          'INVALID_RESOURCE_ACTION', 'an unregistered action denies');

-- Our differences: unknown actors and resources are audited denies, not errors.
SELECT is(pg_temp.code(pg_temp.req('user_mallory', 'um_alice_finance_reviewer', 'invoice_001', 'approve')),
          'ACTOR_NOT_FOUND', 'an unknown user is ACTOR_NOT_FOUND');
SELECT is(pg_temp.code(pg_temp.req('user_alice', 'um_alice_finance_reviewer', 'invoice_001', 'approve',
                                   sp => 'space_nowhere')), 'ACTOR_NOT_FOUND', 'an unknown Space is ACTOR_NOT_FOUND');
SELECT is(pg_temp.code(pg_temp.req('user_alice', 'um_alice_finance_reviewer', 'invoice_404', 'approve')),
          'RESOURCE_NOT_FOUND', 'an unknown resource is RESOURCE_NOT_FOUND');
-- (the check runs in its own statement: a statement does not see rows its own volatile calls insert)
CREATE TEMP TABLE missing AS
SELECT plystra.check(pg_temp.req('user_alice', 'um_alice_finance_reviewer', 'invoice_404', 'approve'))->>'audit_log_id' AS id;
SELECT ok((SELECT count(*) = 1 FROM plystra.audit_logs WHERE id = (SELECT id FROM missing) AND deny_code = 'RESOURCE_NOT_FOUND'),
          'RESOURCE_NOT_FOUND is audited');

-- The typed form.
SELECT ok(plystra.allowed('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme',
                          'invoice', 'invoice_001', 'approve'), 'allowed() is true for case 1');
SELECT ok(NOT plystra.allowed('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme',
                              'invoice', 'invoice_002', 'approve'), 'allowed() is false for case 2');
SELECT is(plystra.allowed(NULL, 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme',
                          'invoice', 'invoice_002', 'approve'), NULL, 'allowed() with a NULL argument is NULL');

-- Malformed requests: SQLSTATE 22023 naming the field, never XX000.
SELECT throws_ok($$SELECT plystra.check('{"actor": {"user_id": "u", "member_id": "m", "user_member_id": "b"},
                                          "resource_type": "invoice", "resource_id": "i", "action": "read"}')$$,
                 '22023', 'invalid request: actor.space_id is required', 'a missing field is 22023 naming it');
SELECT throws_ok($$SELECT plystra.check('{"actor": {"user_id": 1, "member_id": "m", "user_member_id": "b", "space_id": "s"},
                                          "resource_type": "invoice", "resource_id": "i", "action": "read"}')$$,
                 '22023', 'invalid request: actor.user_id must be a string', 'a wrong type is 22023 naming the field');
SELECT throws_ok(format($$SELECT plystra.check(%L::jsonb)$$,
                        pg_temp.req('u', 'b', repeat('x', 300), 'read')), '22023',
                 'invalid request: resource_id is longer than 256 bytes', 'an oversized value is 22023');
SELECT throws_ok($$SELECT plystra.explain(NULL)$$, '22023', 'invalid request: request is required',
                 'a NULL request is 22023');
SELECT throws_ok(format($$SELECT plystra.check(%L::jsonb)$$,
                        pg_temp.req('u', 'b', 'i', 'read') || '{"actor_user_id": "u"}'), '22023', NULL,
                 'v1.0 flat actor fields are refused');

-- The answers are written in jsonb's binary form directly (and the request read from it), not printed and parsed
-- as text: each must be the very value jsonb_in makes of its own text (same size, same text, equal).
CREATE FUNCTION pg_temp.as_read(a jsonb) RETURNS boolean LANGUAGE sql AS $$
    SELECT a = a::text::jsonb AND pg_column_size(a) = pg_column_size(a::text::jsonb) AND a::text = a::text::jsonb::text
$$;
SELECT ok(pg_temp.as_read(plystra.check(pg_temp.req('user_alice', 'um_alice_finance_reviewer', 'invoice_001', 'approve')))
          AND pg_temp.as_read(plystra.check(pg_temp.req('user_alice', 'um_alice_finance_reviewer', 'invoice_002', 'approve'))),
          'check: an allow and a deny are the jsonb their text reads as');
SELECT ok(pg_temp.as_read(plystra.explain(pg_temp.req('user_alice', 'um_alice_finance_reviewer', 'invoice_001', 'approve')
                                          || '{"request": {"request_id": "req_✓ \"q\" \\ \t é 🙂"}}')),
          'explain: a whole trace, with odd characters in the request id, is the jsonb its text reads as');
SELECT ok(pg_temp.as_read(plystra.simulate(pg_temp.req('user_bob', 'um_bob_finance_reviewer', 'invoice_002', 'read'))),
          'simulate: the trace is the jsonb its text reads as');

SELECT * FROM finish();
ROLLBACK;
