-- plystra.decide_with_credential: the REST front's decision in one statement. The credential comes as HMACs
-- (here made up and stored as they are: the function compares, it never hashes). In order: an unknown, revoked
-- or expired credential is unauthenticated; a credential without the permission on every scope the request
-- touches is refused; a session's actor must be one of its usable bindings; then the decision is check's.
-- Only plystra_admin may call it; bad arguments are 22023, never an internal error. Rolled back at the end.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
SELECT plan(57);
SET LOCAL plystra.audit_mode = 'off';

INSERT INTO plystra.users (id, email) VALUES ('user_gate_space', 'gate-space@example.com');
INSERT INTO plystra.admin_grants (id, user_id, level, permission_key, space_id)
VALUES ('ag_gate_alice', 'user_alice', 'instance_admin', 'authz:check', NULL),
       ('ag_gate_space', 'user_gate_space', 'space_admin', 'authz:check', 'space_acme');
INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, permission_keys, created_by_user_id)
VALUES ('ak_gate_instance', 'gate', 'ply_ak_gate_i', 'hash_instance', 'instance', '["authz:check"]', 'user_alice'),
       ('ak_gate_other', 'gate', 'ply_ak_gate_o', 'hash_other', 'instance', '["users:read"]', 'user_alice'),
       ('ak_gate_revoked', 'gate', 'ply_ak_gate_r', 'hash_revoked', 'instance', '["authz:check"]', 'user_alice');
UPDATE plystra.api_keys SET status = 'revoked', revoked_at = now() WHERE id = 'ak_gate_revoked';
INSERT INTO plystra.sessions (id, user_id, access_token_hash, refresh_token_hash, expires_at, refresh_expires_at,
                              active_space_id, active_member_id, active_user_member_id)
VALUES ('ses_gate_alice', 'user_alice', 'hash_session', 'hash_refresh', now() + interval '1 hour',
        now() + interval '1 day', 'space_acme', 'member_finance_reviewer', 'um_alice_finance_reviewer'),
       ('ses_gate_expired', 'user_alice', 'hash_expired', 'hash_refresh_2', now() - interval '1 second',
        now() + interval '1 day', 'space_acme', 'member_finance_reviewer', 'um_alice_finance_reviewer');

CREATE FUNCTION pg_temp.demo(res text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object(
        'actor', jsonb_build_object('user_id', 'user_alice', 'member_id', 'member_finance_reviewer',
                                    'user_member_id', 'um_alice_finance_reviewer', 'space_id', 'space_acme'),
        'resource_type', 'invoice', 'resource_id', res, 'action', 'approve')
$$;
CREATE FUNCTION pg_temp.key(id text, hash text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('api_key_id', id, 'api_key_hashes', jsonb_build_array('wrong', hash))
$$;
CREATE FUNCTION pg_temp.ask(credential jsonb, request jsonb, authorize_only boolean DEFAULT false) RETURNS jsonb
LANGUAGE sql AS $$ SELECT plystra.decide_with_credential(credential, 'authz:check', request, false, authorize_only) $$;

-- Authentication.
SELECT is(pg_temp.ask(pg_temp.key('ak_gate_instance', 'nope'), pg_temp.demo('invoice_001')) ->> 'outcome',
          'unauthenticated', 'a key whose HMAC does not match is unauthenticated');
SELECT is(pg_temp.ask(pg_temp.key('ak_gate_revoked', 'hash_revoked'), pg_temp.demo('invoice_001')) ->> 'outcome',
          'unauthenticated', 'a revoked key is unauthenticated');
SELECT is(pg_temp.ask(pg_temp.key('ak_gate_other', 'hash_instance'), pg_temp.demo('invoice_001')) ->> 'outcome',
          'unauthenticated', 'an HMAC is good only with its own key id');
SELECT is(pg_temp.ask('{"session_token_hashes": ["hash_expired"]}', pg_temp.demo('invoice_001')) ->> 'outcome',
          'unauthenticated', 'an expired session is unauthenticated');

-- The decision.
SELECT is(pg_temp.ask(pg_temp.key('ak_gate_instance', 'hash_instance'), pg_temp.demo('invoice_001'))
          #>> '{decision,decision}', 'allow', 'an instance key with authz:check gets check''s allow');
SELECT is(pg_temp.ask(pg_temp.key('ak_gate_instance', 'hash_instance'), pg_temp.demo('invoice_002'))
          #>> '{decision,deny_code}', 'SCOPE_OUT_OF_BOUNDS', 'and check''s deny, with its code');
SELECT is(pg_temp.ask(pg_temp.key('ak_gate_instance', 'hash_instance'), pg_temp.demo('invoice_001'))
          -> 'credential', '{"kind": "api_key", "api_key_id": "ak_gate_instance", "level": "instance",
                             "token_hash": "hash_instance"}'::jsonb,
          'the answer names the credential, with its stored HMAC for the front''s own comparison');
SELECT is(plystra.decide_with_credential(pg_temp.key('ak_gate_instance', 'hash_instance'), 'authz:check',
                                         pg_temp.demo('invoice_001'), true, false) #>> '{decision,trace_version}',
          '1.0', 'explain gives the trace');
SELECT is(pg_temp.ask(pg_temp.key('ak_gate_instance', 'hash_instance'), pg_temp.demo('invoice_001'), true),
          '{"outcome": "authorized", "credential": {"kind": "api_key", "api_key_id": "ak_gate_instance", "level": "instance",
                                                   "token_hash": "hash_instance"}}',
          'authorize_only stops before the decision');

-- The admin permission, on every scope the request touches.
SELECT is(pg_temp.ask(pg_temp.key('ak_gate_other', 'hash_other'), pg_temp.demo('invoice_001')) ->> 'code',
          'ADMIN_PERMISSION_REQUIRED', 'a key without authz:check is refused');
SELECT is(pg_temp.ask(pg_temp.key('ak_gate_other', 'hash_other'), pg_temp.demo('invoice_001')) #>> '{decision}',
          NULL, 'and nothing is decided');
SELECT is(pg_temp.ask('{"session_token_hashes": ["hash_session"]}',
                      jsonb_set(pg_temp.demo('invoice_001'), '{resource_id}', '"no_such_invoice"')) ->> 'outcome',
          'decided', 'an instance admin may ask about a resource that does not exist');
UPDATE plystra.admin_grants SET status = 'revoked', revoked_at = now() WHERE id IN ('ag_gate_alice', 'ag_harness_alice_super_admin');
SELECT is(pg_temp.ask('{"session_token_hashes": ["hash_session"]}', pg_temp.demo('invoice_001')) ->> 'code',
          'ADMIN_PERMISSION_REQUIRED', 'a session whose admin grant was revoked is refused at once');
SELECT is(pg_temp.ask(pg_temp.key('ak_gate_instance', 'hash_instance'), pg_temp.demo('invoice_001')) ->> 'code',
          'ADMIN_PERMISSION_REQUIRED', 'and so is the key its user created');
UPDATE plystra.admin_grants SET status = 'active', revoked_at = NULL WHERE id = 'ag_gate_alice';

INSERT INTO plystra.sessions (id, user_id, access_token_hash, refresh_token_hash, expires_at, refresh_expires_at)
VALUES ('ses_gate_space', 'user_gate_space', 'hash_space', 'hash_refresh_3', now() + interval '1 hour',
        now() + interval '1 day');
SELECT is(pg_temp.ask('{"session_token_hashes": ["hash_space"]}', pg_temp.demo('invoice_001')) ->> 'code',
          'ACTIVE_MEMBER_REQUIRED', 'a Space admin passes the permission in its Space, but must act as its own binding');
SELECT is(pg_temp.ask('{"session_token_hashes": ["hash_space"]}',
                      jsonb_set(pg_temp.demo('invoice_001'), '{resource_id}', '"no_such_invoice"')) ->> 'code',
          'ADMIN_PERMISSION_REQUIRED', 'an id that names nothing needs the instance: a Space admin is refused');
SELECT is(pg_temp.ask('{"session_token_hashes": ["hash_space"]}',
                      jsonb_set(pg_temp.demo('invoice_001'), '{actor,space_id}', '"space_other"')) ->> 'code',
          'ADMIN_PERMISSION_REQUIRED', 'an actor Space outside the credential''s scope is refused');
-- A session describes nothing inline, and is told so before anything the description names is placed: a group of
-- another Space and a group of nowhere are answered alike (before, the first was refused for its scope).
INSERT INTO plystra.spaces (id, name) VALUES ('space_t63', 'Other tenant');
INSERT INTO plystra.groups (id, space_id, name, display_name, path) VALUES ('group_t63', 'space_t63', 'g', 'G', 'g');
CREATE FUNCTION pg_temp.inline_in(grp text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT (pg_temp.demo('invoice_001') - 'resource_type' - 'resource_id')
           || jsonb_build_object('resource', jsonb_build_object('type', 'invoice', 'id', 'inv_t63', 'group_id', grp))
$$;
SELECT is(pg_temp.ask('{"session_token_hashes": ["hash_space"]}', pg_temp.inline_in('group_t63')) ->> 'code',
          'INLINE_CONTEXT_REQUIRES_API_KEY', 'a session''s inline resource in another Space''s group: refused as inline');
SELECT is(pg_temp.ask('{"session_token_hashes": ["hash_space"]}', pg_temp.inline_in('group_t63_nowhere')) ->> 'code',
          'INLINE_CONTEXT_REQUIRES_API_KEY', 'and in a group of nowhere: the same answer');

-- A session's actor.
SELECT is(pg_temp.ask('{"session_token_hashes": ["hash_session"]}', pg_temp.demo('invoice_001') - 'actor')
          #>> '{decision,audit,actor_user_member_id}', 'um_alice_finance_reviewer',
          'a session without an actor acts through its active binding');
SELECT is(pg_temp.ask('{"session_token_hashes": ["hash_session"]}',
                      jsonb_set(pg_temp.demo('invoice_001'), '{actor,user_member_id}', '"um_bob_finance_reviewer"'))
          ->> 'code', 'ACTIVE_MEMBER_REQUIRED', 'a session may not act through another user''s binding');
SELECT is(pg_temp.ask('{"session_token_hashes": ["hash_session"]}',
                      jsonb_set(pg_temp.demo('invoice_001'), '{actor,user_member_id}',
                                '"um_alice_finance_reviewer_revoked"')) ->> 'code',
          'ACTIVE_MEMBER_REQUIRED', 'nor through a revoked binding of its own');

INSERT INTO plystra.sessions (id, user_id, access_token_hash, refresh_token_hash, expires_at, refresh_expires_at)
VALUES ('ses_gate_unbound', 'user_alice', 'hash_unbound', 'hash_refresh_4', now() + interval '1 hour',
        now() + interval '1 day');
SELECT is(pg_temp.ask('{"session_token_hashes": ["hash_unbound"]}', pg_temp.demo('invoice_001') - 'actor')
          ->> 'message', 'Session has no active Member binding.',
          'a session with no active binding and no actor named is refused once its permission holds');

-- A Group-level key holds the permission on its group tree: the resource's Group, read with the placement.
INSERT INTO plystra.admin_grants (id, user_id, level, permission_key, space_id, group_id)
VALUES ('ag_gate_group', 'user_alice', 'group_admin', 'authz:check', NULL, 'group_finance');
INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, group_id, permission_keys, created_by_user_id)
VALUES ('ak_gate_finance', 'gate', 'ply_ak_gate_f', 'hash_finance', 'group', 'group_finance', '["authz:check"]', 'user_alice'),
       ('ak_gate_legal', 'gate', 'ply_ak_gate_l', 'hash_legal', 'group', 'group_legal', '["authz:check"]', 'user_alice');
SELECT is(pg_temp.ask(pg_temp.key('ak_gate_finance', 'hash_finance'), pg_temp.demo('invoice_001')) ->> 'outcome',
          'decided', 'a Group key decides about a resource in its group tree');
SELECT is(pg_temp.ask(pg_temp.key('ak_gate_legal', 'hash_legal'), pg_temp.demo('invoice_001')) ->> 'code',
          'ADMIN_PERMISSION_REQUIRED', 'a Group key of another tree is refused');
SELECT is(pg_temp.ask(pg_temp.key('ak_gate_finance', 'hash_finance'), pg_temp.demo('invoice_002')) ->> 'code',
          'ADMIN_PERMISSION_REQUIRED', 'and so is a Group key asked about a resource outside its tree');
UPDATE plystra.groups SET deleted_at = now() WHERE id = 'group_finance_apac';
SELECT is(pg_temp.ask(pg_temp.key('ak_gate_finance', 'hash_finance'), pg_temp.demo('invoice_001')) ->> 'code',
          'ADMIN_PERMISSION_REQUIRED', 'a resource whose Group is deleted lies in no group tree: the Group key is refused');
UPDATE plystra.groups SET deleted_at = NULL WHERE id = 'group_finance_apac';

-- The gate places a usual request from the context its decision loads, before deciding: a refusal still writes
-- no audit row, and a decision writes exactly one. Each request names a request id of its own, new on every run:
-- rows the audit writer commits outlive this file's rollback.
SET LOCAL plystra.audit_mode = 'always';
CREATE TEMP TABLE gate_ids AS
SELECT 'gate_refused_' || md5(random()::text) AS refused, 'gate_decided_' || md5(random()::text) AS decided;
CREATE FUNCTION pg_temp.tagged(res text, request_id text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT pg_temp.demo(res) || jsonb_build_object('request', jsonb_build_object('request_id', request_id))
$$;
SELECT is(pg_temp.ask(pg_temp.key('ak_gate_legal', 'hash_legal'),
                      pg_temp.tagged('invoice_001', (SELECT refused FROM gate_ids))) ->> 'code',
          'ADMIN_PERMISSION_REQUIRED', 'audited: a Group key of another tree is refused');
SELECT is((SELECT count(*) FROM plystra.audit_logs WHERE request_id = (SELECT refused FROM gate_ids)), 0::bigint,
          'and the refused request left no audit row');
SELECT is(pg_temp.ask(pg_temp.key('ak_gate_finance', 'hash_finance'),
                      pg_temp.tagged('invoice_001', (SELECT decided FROM gate_ids))) #>> '{decision,decision}',
          'allow', 'audited: the Group key of its tree is answered');
SELECT is((SELECT count(*) FROM plystra.audit_logs WHERE request_id = (SELECT decided FROM gate_ids)), 1::bigint,
          'with exactly one audit row');
SET LOCAL plystra.audit_mode = 'off';

-- A key is bounded by its creator's grants, read with the key: a key no user created (inserted by the owner in
-- SQL) holds its own keys; a key whose creator holds no grant holds nothing.
INSERT INTO plystra.users (id, email) VALUES ('user_gate_nogrants', 'gate-nogrants@example.com');
INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, permission_keys, created_by_user_id)
VALUES ('ak_gate_owner', 'gate', 'ply_ak_gate_w', 'hash_owner', 'instance', '["authz:check"]', NULL),
       ('ak_gate_nogrants', 'gate', 'ply_ak_gate_n', 'hash_nogrants', 'instance', '["authz:check"]', 'user_gate_nogrants');
SELECT is(pg_temp.ask(pg_temp.key('ak_gate_owner', 'hash_owner'), pg_temp.demo('invoice_001')) ->> 'outcome',
          'decided', 'a key no user created holds its own permission keys');
SELECT is(pg_temp.ask(pg_temp.key('ak_gate_nogrants', 'hash_nogrants'), pg_temp.demo('invoice_001')) ->> 'code',
          'ADMIN_PERMISSION_REQUIRED', 'a key whose creator holds no admin grant holds nothing');

-- Bad arguments: 22023, never XX000.
SELECT throws_ok($$SELECT plystra.decide_with_credential('[]', 'authz:check', '{}', false, false)$$, '22023', NULL,
                 'a credential that is not an object is 22023');
SELECT throws_ok($$SELECT plystra.decide_with_credential('{"api_key_id": "x", "api_key_hashes": [1]}', 'authz:check', '{}', false, false)$$,
                 '22023', NULL, 'hashes that are not strings are 22023');
SELECT throws_ok($$SELECT plystra.decide_with_credential('{"session_token_hashes": ["a","b","c","d","e"]}', 'authz:check', '{}', false, false)$$,
                 '22023', NULL, 'more than four hashes are 22023');
SELECT throws_ok($$SELECT plystra.decide_with_credential('{"session_token_hashes": ["hash_session"]}', 'Not A Key', '{}', false, false)$$,
                 '22023', NULL, 'a malformed permission key is 22023');
SELECT throws_ok($$SELECT plystra.decide_with_credential('{"session_token_hashes": ["hash_session"]}', 'authz:check', '[1]', false, false)$$,
                 '22023', NULL, 'a request that is not an object is 22023 when a decision is asked for');
SELECT throws_ok(format($$SELECT plystra.decide_with_credential('{"session_token_hashes": ["hash_session"]}', 'authz:check', %L, false, false)$$,
                        repeat('[', 5000) || repeat(']', 5000)),
                 '22023', NULL, 'a request too deep to read is 22023');

-- plystra.authenticate: the same rule, for the front's other routes.
SELECT is(plystra.authenticate('{"session_token_hashes": ["nope", "hash_session"]}') - 'expires_at' - 'refresh_expires_at',
          '{"kind": "session", "session_id": "ses_gate_alice", "user_id": "user_alice", "email": "alice@example.com",
            "user_status": "active", "active_space_id": "space_acme", "active_member_id": "member_finance_reviewer",
            "active_user_member_id": "um_alice_finance_reviewer", "token_hash": "hash_session"}'::jsonb,
          'authenticate: a live session''s document');
SELECT is(plystra.authenticate('{"session_token_hashes": ["hash_expired"]}'), NULL, 'authenticate: an expired session is NULL');
SELECT is(plystra.authenticate(pg_temp.key('ak_gate_instance', 'hash_instance')) ->> 'created_by_user_id', 'user_alice',
          'authenticate: an active key''s document names its creator');
SELECT is(plystra.authenticate(pg_temp.key('ak_gate_revoked', 'hash_revoked')), NULL, 'authenticate: a revoked key is NULL');
SELECT throws_ok($$SELECT plystra.authenticate('{"api_key_hashes": ["x"]}')$$, '22023', NULL,
                 'authenticate: a key without its id is 22023');
SELECT ok(NOT has_function_privilege('plystra_app', 'plystra.authenticate(jsonb)', 'EXECUTE'),
          'authenticate: plystra_app may not call it');

-- A revoked row is never active (migration 007): the state check once allowed and login refused cannot exist.
SELECT throws_ok($$UPDATE plystra.user_members SET revoked_at = now() WHERE id = 'um_bob_finance_reviewer'$$, '23514', NULL,
                 'a binding cannot be revoked and still active');
SELECT throws_ok($$UPDATE plystra.admin_grants SET revoked_at = now() WHERE id = 'ag_gate_space'$$, '23514', NULL,
                 'nor an admin grant');
SELECT throws_ok($$UPDATE plystra.api_keys SET revoked_at = now() WHERE id = 'ak_gate_other'$$, '23514', NULL,
                 'nor an API key');

-- Who may call it.
SELECT ok(NOT has_function_privilege('plystra_app', 'plystra.decide_with_credential(jsonb, text, jsonb, boolean, boolean)', 'EXECUTE')
          AND has_function_privilege('plystra_admin', 'plystra.decide_with_credential(jsonb, text, jsonb, boolean, boolean)', 'EXECUTE'),
          'plystra_admin may call it; plystra_app (and so PUBLIC) may not');

-- The gate reads its jsonb arguments and writes its answer in jsonb's binary form: the answer is the jsonb its
-- text reads as.
SELECT ok((SELECT a = a::text::jsonb AND pg_column_size(a) = pg_column_size(a::text::jsonb)
                  AND a::text = a::text::jsonb::text
           FROM (SELECT plystra.decide_with_credential(pg_temp.key('ak_gate_instance', 'hash_instance'), 'authz:check',
                                                       pg_temp.demo('invoice_001'), true, false) AS a) AS t),
          'the gate''s answer (an explained decision) is the jsonb its text reads as');

-- Every grant of the credential's user counts, whichever the database returns first (the gate reads them one a
-- row, in no order): a user whose allowing grant has the first id, one whose has the last, as a session and as
-- the creator who bounds a key; a creator whose grants hold nothing of the permission bounds the key to nothing.
INSERT INTO plystra.users (id, email)
VALUES ('user_gate_first', 'gate-first@example.com'), ('user_gate_last', 'gate-last@example.com'),
       ('user_gate_none', 'gate-none@example.com');
INSERT INTO plystra.admin_grants (id, user_id, level, permission_key, space_id)
VALUES ('ag_gate_first_1', 'user_gate_first', 'instance_admin', 'authz:check', NULL),
       ('ag_gate_first_2', 'user_gate_first', 'instance_admin', 'users:read', NULL),
       ('ag_gate_first_3', 'user_gate_first', 'space_admin', 'roles:read', 'space_acme'),
       ('ag_gate_last_1', 'user_gate_last', 'space_admin', 'roles:read', 'space_acme'),
       ('ag_gate_last_2', 'user_gate_last', 'instance_admin', 'users:read', NULL),
       ('ag_gate_last_3', 'user_gate_last', 'instance_admin', 'authz:check', NULL),
       ('ag_gate_none_1', 'user_gate_none', 'instance_admin', 'users:read', NULL),
       ('ag_gate_none_2', 'user_gate_none', 'space_admin', 'roles:read', 'space_acme');
INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, permission_keys, created_by_user_id)
VALUES ('ak_gate_first', 'gate', 'ply_ak_gate_f', 'hash_key_first', 'instance', '["authz:check"]', 'user_gate_first'),
       ('ak_gate_last', 'gate', 'ply_ak_gate_l', 'hash_key_last', 'instance', '["authz:check"]', 'user_gate_last'),
       ('ak_gate_none', 'gate', 'ply_ak_gate_n', 'hash_key_none', 'instance', '["authz:check"]', 'user_gate_none');
INSERT INTO plystra.sessions (id, user_id, access_token_hash, refresh_token_hash, expires_at, refresh_expires_at)
VALUES ('ses_gate_first', 'user_gate_first', 'hash_ses_first', 'hash_refresh_first', now() + interval '1 hour',
        now() + interval '1 day'),
       ('ses_gate_last', 'user_gate_last', 'hash_ses_last', 'hash_refresh_last', now() + interval '1 hour',
        now() + interval '1 day'),
       ('ses_gate_none', 'user_gate_none', 'hash_ses_none', 'hash_refresh_none', now() + interval '1 hour',
        now() + interval '1 day');
SELECT is(pg_temp.ask(pg_temp.key('ak_gate_first', 'hash_key_first'), pg_temp.demo('invoice_001'))
          #>> '{decision,decision}', 'allow', 'a key whose creator''s allowing grant comes first is bounded by it');
SELECT is(pg_temp.ask(pg_temp.key('ak_gate_last', 'hash_key_last'), pg_temp.demo('invoice_001'))
          #>> '{decision,decision}', 'allow', 'and one whose creator''s allowing grant comes last');
SELECT is(pg_temp.ask(pg_temp.key('ak_gate_none', 'hash_key_none'), pg_temp.demo('invoice_001')) ->> 'code',
          'ADMIN_PERMISSION_REQUIRED', 'a key whose creator''s grants hold nothing of the permission holds nothing');
SELECT is(pg_temp.ask('{"session_token_hashes": ["hash_ses_first"]}', pg_temp.demo('invoice_001'), true) ->> 'outcome',
          'authorized', 'a session whose allowing grant comes first holds the permission');
SELECT is(pg_temp.ask('{"session_token_hashes": ["hash_ses_last"]}', pg_temp.demo('invoice_001'), true) ->> 'outcome',
          'authorized', 'and one whose allowing grant comes last');
SELECT is(pg_temp.ask('{"session_token_hashes": ["hash_ses_none"]}', pg_temp.demo('invoice_001'), true) ->> 'code',
          'ADMIN_PERMISSION_REQUIRED', 'a session whose grants hold nothing of the permission is refused');
UPDATE plystra.users SET status = 'disabled' WHERE id = 'user_gate_last';
SELECT is(pg_temp.ask(pg_temp.key('ak_gate_last', 'hash_key_last'), pg_temp.demo('invoice_001')) ->> 'code',
          'ADMIN_PERMISSION_REQUIRED', 'a disabled creator''s grants bound the key to nothing');

SELECT * FROM finish();
ROLLBACK;
