-- Replay: plystra.replay(audit_log_id) asks an audited decision again against today's data and answers then and
-- now side by side, with what changed between the decision-time trace and today's. A revoke turns an allow into
-- USER_MEMBER_REVOKED, a new grant turns a deny into an allow, an untouched decision is unchanged; it writes no
-- decision row unless asked; bad ids are 22023 (never XX000), an unknown row is NULL; only plystra_admin may call
-- it. Rolled back at the end (the audit rows the writer commits on its own stay, as every decision's do).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
SELECT plan(29);
SET LOCAL plystra.audit_mode = 'always';

CREATE FUNCTION pg_temp.decide(um text, member text, invoice text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT plystra.check(jsonb_build_object(
        'actor', jsonb_build_object('user_id', 'user_replay', 'member_id', member, 'user_member_id', um,
                                    'space_id', 'space_acme'),
        'resource_type', 'invoice', 'resource_id', invoice, 'action', 'approve'))
$$;

INSERT INTO plystra.users (id, email) VALUES ('user_replay', 'replay@example.com');
INSERT INTO plystra.members (id, space_id, display_name) VALUES ('member_replay_new', 'space_acme', 'Newcomer');
INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type) VALUES
    ('um_replay_reviewer', 'user_replay', 'member_finance_reviewer', 'space_acme', 'login'),
    ('um_replay_new', 'user_replay', 'member_replay_new', 'space_acme', 'delegate');

-- 1. An allow that became a deny after a revoke.
CREATE TEMP TABLE t_allow AS SELECT pg_temp.decide('um_replay_reviewer', 'member_finance_reviewer', 'invoice_001') AS a;
SELECT is((SELECT a ->> 'decision' FROM t_allow), 'allow', 'the binding may approve invoice_001');
UPDATE plystra.user_members SET status = 'revoked', revoked_at = now() WHERE id = 'um_replay_reviewer';
CREATE TEMP TABLE r_allow AS SELECT plystra.replay((SELECT a ->> 'audit_log_id' FROM t_allow)) AS r;
SELECT is((SELECT r #>> '{then,decision}' FROM r_allow), 'allow', 'then: allow (the row''s decision)');
SELECT is((SELECT r #>> '{now,decision}' FROM r_allow), 'deny', 'now: deny');
SELECT is((SELECT r #>> '{now,deny_code}' FROM r_allow), 'USER_MEMBER_REVOKED', 'now: USER_MEMBER_REVOKED');
SELECT is((SELECT (r ->> 'decision_changed')::boolean FROM r_allow), true, 'the decision changed');
SELECT is((SELECT c FROM r_allow, jsonb_array_elements(r -> 'changes') c WHERE c ->> 'kind' = 'binding')
              - 'then' - 'now',
          '{"kind": "binding", "id": "um_replay_reviewer", "change": "changed"}'::jsonb,
          'the binding is named as what changed');
SELECT is((SELECT c #>> '{now,status}' FROM r_allow, jsonb_array_elements(r -> 'changes') c WHERE c ->> 'kind' = 'binding'),
          'revoked', 'and it is revoked now');
SELECT is((SELECT r #>> '{then,trace,trace_id}' FROM r_allow),
          (SELECT trace ->> 'trace_id' FROM plystra.audit_logs WHERE id = (SELECT a ->> 'audit_log_id' FROM t_allow)),
          'then is the row''s own decision-time trace');
SELECT is((SELECT r #> '{request}' FROM r_allow),
          '{"actor": {"user_id": "user_replay", "member_id": "member_finance_reviewer", "user_member_id": "um_replay_reviewer", "space_id": "space_acme"}, "action": "approve", "resource_type": "invoice", "resource_id": "invoice_001"}'::jsonb,
          'the request is the one the row recorded');

-- 2. A deny that became an allow after a grant.
CREATE TEMP TABLE t_deny AS SELECT pg_temp.decide('um_replay_new', 'member_replay_new', 'invoice_001') AS a;
SELECT is((SELECT a ->> 'decision' FROM t_deny), 'deny', 'a Member without roles is denied');
INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id) VALUES
    ('mr_replay_new_approver', 'member_replay_new', 'role_finance_approver', 'space_acme', 'group_finance');
CREATE TEMP TABLE r_deny AS SELECT plystra.replay((SELECT a ->> 'audit_log_id' FROM t_deny)) AS r;
SELECT is((SELECT r #>> '{then,deny_code}' FROM r_deny), (SELECT a ->> 'deny_code' FROM t_deny), 'then: the deny code');
SELECT is((SELECT r #>> '{now,decision}' FROM r_deny), 'allow', 'now: allow');
SELECT is((SELECT c ->> 'change' FROM r_deny, jsonb_array_elements(r -> 'changes') c WHERE c ->> 'kind' = 'grant'),
          'added', 'the grant is named as added');
SELECT is((SELECT c #>> '{now,member_role_id}' FROM r_deny, jsonb_array_elements(r -> 'changes') c WHERE c ->> 'kind' = 'grant'),
          'mr_replay_new_approver', 'with its MemberRole');

-- 3. An unchanged decision.
CREATE TEMP TABLE r_same AS SELECT plystra.replay(plystra.check(
    '{"actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer", "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
      "resource_type": "invoice", "resource_id": "invoice_002", "action": "approve"}') ->> 'audit_log_id') AS r;
SELECT is((SELECT r #>> '{now,deny_code}' FROM r_same), 'SCOPE_OUT_OF_BOUNDS', 'the same deny now');
SELECT is((SELECT (r ->> 'decision_changed')::boolean OR (r ->> 'deny_code_changed')::boolean FROM r_same), false,
          'nothing about the decision changed');
SELECT is((SELECT r -> 'changes' FROM r_same), '[]'::jsonb, 'and no change is listed');

-- 3b. A decision about an inline target (Context Mode) is asked again with the target the trace described.
CREATE TEMP TABLE r_inline AS SELECT plystra.replay(plystra.check(
    '{"actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer", "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
      "resource": {"type": "invoice", "id": "invoice_draft_replay", "group_path": "finance.apac"}, "action": "approve"}') ->> 'audit_log_id') AS r;
SELECT is((SELECT r #>> '{request,resource,group_path}' FROM r_inline), 'finance.apac',
          'an inline target is replayed as the trace described it');
SELECT is((SELECT r #>> '{now,decision}' FROM r_inline), 'allow', 'and decided again the same way');

-- 4. Read-only unless asked.
CREATE TEMP TABLE n0 AS SELECT count(*) AS n FROM plystra.audit_logs WHERE actor_user_id = 'user_replay';
SELECT plystra.replay((SELECT a ->> 'audit_log_id' FROM t_allow));
SELECT is((SELECT count(*) FROM plystra.audit_logs WHERE actor_user_id = 'user_replay'), (SELECT n FROM n0),
          'a replay writes no decision row');
SELECT isnt((SELECT plystra.replay((SELECT a ->> 'audit_log_id' FROM t_allow), audit => true) #>> '{now,audit_log_id}'),
            NULL, 'asked to, it writes one and names it');
SELECT is((SELECT count(*) FROM plystra.audit_logs WHERE actor_user_id = 'user_replay'), (SELECT n + 1 FROM n0),
          'exactly one');

-- 5. Unknown rows and hostile input.
SELECT is(plystra.replay('audit_0000000000000000'), NULL, 'a row that does not exist is NULL');
SELECT throws_ok($$SELECT plystra.replay(NULL)$$, '22023', NULL, 'a NULL id is 22023');
SELECT throws_ok($$SELECT plystra.replay('')$$, '22023', NULL, 'an empty id is 22023');
SELECT throws_ok($$SELECT plystra.replay(repeat('a', 129))$$, '22023', NULL, 'a 129-character id is 22023');
SELECT throws_ok($$SELECT plystra.replay('audit_x''; DROP TABLE plystra.users; --')$$, '22023', NULL,
                 'an id with quotes and spaces is 22023');
SELECT throws_ok(format('SELECT plystra.replay(%L)',
                        (SELECT id FROM plystra.audit_logs WHERE action = 'user.created' AND resource_id = 'user_replay')),
                 '22023', NULL, 'a management row is not a decision: 22023');

-- 6. Privileges: an administration backend's function.
SELECT ok(NOT has_function_privilege('plystra_app', 'plystra.replay(text, boolean)', 'EXECUTE')
          AND has_function_privilege('plystra_admin', 'plystra.replay(text, boolean)', 'EXECUTE'),
          'plystra_admin may replay, plystra_app (and so PUBLIC) may not');

SELECT * FROM finish();
ROLLBACK;
