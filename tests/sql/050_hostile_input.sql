-- Hostile input to plystra.check and plystra.explain, table-driven: every malformed request is refused with a
-- documented SQLSTATE (22023 naming the field; PostgreSQL's own JSON errors for text that is not JSON), never
-- XX000; injection strings, LIKE wildcards and dots in ids are ordinary data that decide as denies; nothing but
-- decision audit rows is written, and the session keeps working.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;

CREATE FUNCTION pg_temp.base() RETURNS jsonb LANGUAGE sql AS $$
    SELECT '{"actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer",
             "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
             "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"}'::jsonb
$$;

-- Documents that must be refused with 22023 and the field named in the message.
CREATE TEMP TABLE refused (doc jsonb, field text, what text);
-- Every required field: missing, null, and each wrong type; empty; oversized.
INSERT INTO refused
SELECT CASE WHEN v IS NULL THEN pg_temp.base() #- path ELSE jsonb_set(pg_temp.base(), path, v) END,
       field, field || ' ' || coalesce(label, 'missing')
FROM (VALUES (ARRAY['actor', 'user_id'], 'actor.user_id'), (ARRAY['actor', 'member_id'], 'actor.member_id'),
             (ARRAY['actor', 'user_member_id'], 'actor.user_member_id'), (ARRAY['actor', 'space_id'], 'actor.space_id'),
             (ARRAY['resource_type'], 'resource_type'), (ARRAY['resource_id'], 'resource_id'), (ARRAY['action'], 'action'))
     AS f (path, field),
     (VALUES (NULL::jsonb, NULL), ('null', 'null'), ('42', 'number'), ('1.5e300', 'huge number'), ('true', 'boolean'),
             ('[]', 'empty array'), ('["x"]', 'array'), ('{}', 'object'), ('""', 'empty string'),
             (to_jsonb(repeat('x', 257)), '257 bytes'), (to_jsonb(repeat('é', 200)), '400 bytes of UTF-8'),
             ((SELECT jsonb_agg(i) FROM generate_series(1, 100000) i), 'array of 100000'),
             (to_jsonb(repeat('a', 1000000)), '1 MB string')) AS v (v, label);
-- Unknown or misspelled fields, v1.0's removed flat fields, Unicode look-alikes.
INSERT INTO refused
SELECT pg_temp.base() || jsonb_build_object(k, 'x'), k, 'unknown top-level field ' || k
FROM unnest(ARRAY['actor_user_id', 'actor_member_id', 'actor_user_member_id', 'space_id', 'grants', 'Actor',
                  'action ', 'resourceType', 'аction', 'actiοn', '', ' ', 'explain_', 'request_id', 'ip', 'user_agent',
                  'resource_id; DROP TABLE plystra.audit_logs; --', E'action\u200b', 'ACTION', 'tenant']) AS k;
INSERT INTO refused
SELECT jsonb_set(pg_temp.base(), ARRAY['actor', k], '"x"'), 'actor.' || k, 'unknown actor field ' || k
FROM unnest(ARRAY['userId', 'user_id ', 'ｕser_id', 'role']) AS k;
-- Inline actor metadata (Context Mode) supplies the answer's own facts: from SQL it is refused, naming the actor.
INSERT INTO refused
SELECT jsonb_set(pg_temp.base(), ARRAY['actor', k], '"x"'), 'actor', 'inline actor metadata ' || k || ' in SQL'
FROM unnest(ARRAY['user_email', 'user_status', 'member_status', 'binding_status', 'relation_type', 'space_name']) AS k;
-- Nested objects and the request context.
INSERT INTO refused VALUES
    (jsonb_set(pg_temp.base(), '{actor}', '"user_alice"'), 'actor', 'actor as a string'),
    (jsonb_set(pg_temp.base(), '{actor}', '[1, 2]'), 'actor', 'actor as an array'),
    (jsonb_set(pg_temp.base(), '{actor}', 'null'), 'actor', 'actor null'),
    (pg_temp.base() - 'actor', 'actor', 'actor missing'),
    (pg_temp.base() || '{"resource": "invoice_001"}', 'resource', 'resource as a string'),
    (pg_temp.base() || '{"resource": {"type": "invoice", "id": "invoice_001", "group_path": 7}}', 'resource.group_path', 'inline group_path as a number'),
    (pg_temp.base() || '{"resource": {"type": "invoice", "id": "invoice_001", "metadata": "x"}}', 'resource.metadata', 'inline metadata as a string'),
    (pg_temp.base() || '{"resource": {"type": "invoice", "id": "invoice_001", "owner": "x"}}', 'resource.owner', 'unknown resource field'),
    (pg_temp.base() || '{"resource": {"type": "contract"}}', 'resource.type', 'resource.type disagreeing with resource_type'),
    (pg_temp.base() || '{"resource": {"id": "invoice_002"}}', 'resource.id', 'resource.id disagreeing with resource_id'),
    (jsonb_set(pg_temp.base(), '{actor,binding_id}', '"um_other"'), 'actor.binding_id', 'binding_id disagreeing'),
    (pg_temp.base() || '{"request": "req_1"}', 'request', 'request as a string'),
    (pg_temp.base() || '{"request": {"request_id": 1}}', 'request.request_id', 'request_id as a number'),
    (pg_temp.base() || jsonb_build_object('request', jsonb_build_object('request_id', repeat('r', 300))), 'request.request_id', 'request_id too long'),
    (pg_temp.base() || '{"request": {"ip": ["10.0.0.1"]}}', 'request.ip', 'ip as an array'),
    (pg_temp.base() || jsonb_build_object('request', jsonb_build_object('ip', repeat('1', 100))), 'request.ip', 'ip too long'),
    (pg_temp.base() || jsonb_build_object('request', jsonb_build_object('user_agent', repeat('u', 2000))), 'request.user_agent', 'user agent too long'),
    (pg_temp.base() || '{"request": {"trace": true}}', 'request.trace', 'unknown request field'),
    (pg_temp.base() || '{"explain": "yes"}', 'explain', 'explain as a string'),
    (pg_temp.base() || '{"explain": 1}', 'explain', 'explain as a number'),
    ('[]', 'request', 'an array'), ('"check"', 'request', 'a string'), ('42', 'request', 'a number'),
    ('null', 'request', 'JSON null'), ('true', 'request', 'a boolean'), ('{}', 'actor', 'an empty object'),
    -- Deep nesting where a string belongs.
    (jsonb_set(pg_temp.base(), '{resource_id}', (repeat('[', 500) || repeat(']', 500))::jsonb), 'request', '500-deep array'),
    (jsonb_set(pg_temp.base(), '{action}', (repeat('{"a":', 300) || '1' || repeat('}', 300))::jsonb), 'request', '300-deep object');

SELECT plan((SELECT count(*)::int FROM refused) + 12 + 8 * 7 + 8 * 2 + 12);

SELECT throws_like(format('SELECT plystra.check(%L::jsonb)', doc), 'invalid request: ' || replace(replace(field, '_', '\_'), '%', '\%') || ' %',
                   'check refuses ' || what)
FROM refused;

-- Text that is not JSON never reaches Plystra: PostgreSQL's own parser refuses it (documented SQLSTATEs).
SELECT throws_ok($$SELECT plystra.check('{"actor": {"user_id": "u"')$$, '22P02', NULL, 'truncated JSON is 22P02');
SELECT throws_ok($$SELECT plystra.check('{actor: 1}')$$, '22P02', NULL, 'malformed JSON is 22P02');
SELECT throws_ok($$SELECT plystra.check('')$$, '22P02', NULL, 'an empty string is 22P02');
SELECT throws_ok($$SELECT plystra.check('{"actor": "\u0000"}')$$, '22P05', NULL, 'a NUL character is 22P05');
SELECT throws_ok($$SELECT plystra.check(convert_from('\xc328'::bytea, 'UTF8')::jsonb)$$, '22021', NULL, 'invalid UTF-8 is 22021');
SELECT throws_ok($$SELECT plystra.check(NULL)$$, '22023', 'invalid request: request is required', 'NULL is 22023');
SELECT throws_ok(format('SELECT plystra.explain(%L::jsonb)', pg_temp.base() - 'action'), '22023',
                 'invalid request: action is required', 'explain refuses like check');
SELECT throws_ok(format('SELECT plystra.check(%L::jsonb)', repeat('[', 100000) || repeat(']', 100000)), '54001', NULL,
                 '100000-deep JSON exceeds PostgreSQL''s stack depth limit (54001), not a crash');
-- An audited decision's row could not index an id that long (a btree entry holds about 2.7 kB; repetitive text
-- compresses below that, random text does not: tests/sql/080_attack_privileges.sql), so it is refused, naming it.
SELECT throws_ok($$SELECT plystra.allowed('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer',
                 'space_acme', 'invoice', repeat('x', 10000), 'approve')$$, '22023',
                 'invalid request: resource_id is longer than 256 bytes',
                 'allowed() with an oversized id is refused when audited, naming the field');
-- Refused requests wrote nothing.
SELECT is((SELECT count(*) FROM plystra.audit_logs WHERE created_at >= transaction_timestamp()
           AND actor_user_id IS NOT NULL AND resource_type = 'invoice' AND deny_code IS DISTINCT FROM 'RESOURCE_NOT_FOUND'),
          0::bigint, 'no refused request left an audit row');
SELECT is(plystra.check(pg_temp.base())->>'decision', 'allow', 'after all that, the same session still decides');
SELECT is((SELECT count(*) FROM plystra.audit_logs WHERE decision NOT IN ('allow', 'deny')), 0::bigint, 'the audit log holds only decisions');

-- Injection strings, LIKE wildcards, dots and odd Unicode in every identifier: ordinary data, denied, harmless.
CREATE TEMP TABLE before_counts AS
SELECT (SELECT count(*) FROM plystra.users) AS users, (SELECT count(*) FROM plystra.member_roles) AS grants,
       (SELECT count(*) FROM plystra.groups) AS groups;
CREATE TEMP TABLE nasty (s text);
INSERT INTO nasty VALUES ($$'; DROP TABLE plystra.audit_logs; --$$), ($$" OR "1"="1$$), ('%'), ('_'), ('finance.%'),
    ('user_%'), ('..'), ($$\x00$$);
SELECT is(d.code, 'deny', format('%s = %s decides as a deny', f.path[array_length(f.path, 1)], n.s))
FROM nasty n,
     (VALUES (ARRAY['actor', 'user_id']), (ARRAY['actor', 'member_id']), (ARRAY['actor', 'user_member_id']),
             (ARRAY['actor', 'space_id']), (ARRAY['resource_type']), (ARRAY['resource_id']), (ARRAY['action'])) AS f (path),
     LATERAL (SELECT plystra.check(jsonb_set(pg_temp.base(), f.path, to_jsonb(n.s)))->>'decision' AS code) AS d (code)
ORDER BY n.s, f.path;
-- The same strings as the set-based lookups' resource type and action, and as every part of the actor: they reach
-- nothing (no wildcard matches), and nothing fails.
SELECT plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme');
SELECT is(ARRAY[plystra.reachable_space(n.s, 'read'), plystra.reachable_space('invoice', n.s),
                plystra.reachable_owner(n.s, 'read'), plystra.actor_space_id()]
          || plystra.reachable_group_ids(n.s, 'read') || plystra.reachable_group_ids('invoice', n.s)
          || ARRAY(SELECT plystra.reachable_groups(n.s, n.s)) || ARRAY(SELECT plystra.lookup_resources(n.s, 'read')),
          ARRAY[NULL, NULL, NULL, 'space_acme']::text[],
          format('%s as resource type or action reaches nothing', n.s))
FROM nasty n ORDER BY n.s;
-- Everything the current actor reaches, as one array (NULLs for the single values); set_actor runs first.
CREATE FUNCTION pg_temp.reach_of(u text, m text, um text, sp text) RETURNS text[] LANGUAGE plpgsql AS $$
BEGIN
    PERFORM plystra.set_actor(u, m, um, sp);
    RETURN ARRAY[plystra.actor_space_id(), plystra.reachable_space('invoice', 'delete'),
                 plystra.reachable_owner('invoice', 'read')]
           || plystra.reachable_group_ids('invoice', 'read') || ARRAY(SELECT plystra.lookup_resources('invoice', 'approve'));
END $$;
SELECT is(ARRAY[pg_temp.reach_of(n.s, 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme'),
                pg_temp.reach_of('user_alice', n.s, 'um_alice_finance_reviewer', 'space_acme'),
                pg_temp.reach_of('user_alice', 'member_finance_reviewer', n.s, 'space_acme'),
                pg_temp.reach_of('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', n.s)],
          array_fill(NULL::text, ARRAY[4, 3]), format('an actor with %s in each part in turn reaches nothing', n.s))
FROM nasty n ORDER BY n.s;
SELECT is((SELECT users FROM before_counts), (SELECT count(*) FROM plystra.users), 'no user appeared or vanished');
SELECT is((SELECT grants FROM before_counts), (SELECT count(*) FROM plystra.member_roles), 'no grant appeared or vanished');
SELECT has_table('plystra', 'audit_logs', 'the audit log is still there');
-- The specific deny codes for wildcards: they match nothing, literally.
SELECT is(plystra.check(jsonb_set(pg_temp.base(), '{actor,user_id}', '"user_%"'))->>'deny_code', 'ACTOR_NOT_FOUND',
          'user_% is not a pattern');
SELECT is(plystra.check(jsonb_set(pg_temp.base(), '{resource_id}', '"invoice_00_"'))->>'deny_code', 'RESOURCE_NOT_FOUND',
          'invoice_00_ is not a pattern');
SELECT is(plystra.check(jsonb_set(pg_temp.base(), '{resource_type}', '"inv%"'))->>'deny_code', 'INVALID_RESOURCE_TYPE',
          'inv% is not a pattern');
SELECT is(plystra.check(jsonb_set(pg_temp.base(), '{action}', '"approv_"'))->>'deny_code', 'INVALID_RESOURCE_ACTION',
          'approv_ is not a pattern');
SELECT is(plystra.check(jsonb_set(pg_temp.base(), '{actor,space_id}', '"space\\_acme"'))->>'deny_code', 'ACTOR_NOT_FOUND',
          'an escaped wildcard is literal too');
-- Group paths: `%` is refused by the path rule; `_` is a character.
SELECT throws_ok($$INSERT INTO plystra.groups (id, space_id, name, path) VALUES ('g_pct', 'space_acme', 'P', 'fin%')$$,
                 '23514', NULL, 'a % in a group path is refused');
SELECT throws_ok($$INSERT INTO plystra.groups (id, space_id, name, path) VALUES ('g_dot', 'space_acme', 'D', 'finance..x')$$,
                 '23514', NULL, 'an empty label is refused');
SELECT lives_ok($$INSERT INTO plystra.groups (id, space_id, name, path) VALUES ('g_und', 'space_acme', 'U', 'fin_')$$,
                'a _ in a group path is a character');
SELECT is((SELECT count(*) FROM plystra.groups WHERE path LIKE 'fin\_'), 1::bigint, '... stored as written');

SELECT * FROM finish();
ROLLBACK;
