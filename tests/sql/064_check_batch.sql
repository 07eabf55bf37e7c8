-- plystra.check_batch: many decisions of one actor in one call. For the demo data every result equals the
-- answer plystra.check gives for the same item (but for the ids); each item is audited as its own decision per
-- plystra.audit_mode, with the row a separate check writes; hostile input is 22023 naming the field, never XX000;
-- plystra_app may call it, as check. Rolled back at the end (rows the audit writer wrote stay, as for check).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
SELECT plan(38);

CREATE FUNCTION pg_temp.actor(user_id text, binding text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('user_id', user_id, 'member_id', 'member_finance_reviewer', 'user_member_id', binding,
                              'space_id', 'space_acme')
$$;
-- An answer without what differs between two decisions of the same question: the ids.
CREATE FUNCTION pg_temp.strip(answer jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT answer - 'trace_id' - 'audit_log_id' #- '{audit,audit_log_id}'
$$;

-- The items: every demo resource (and one that does not exist, one of an unknown type) with every action (and one
-- the registry does not know); every other item in the nested {"resource": {type, id}} form.
CREATE TEMP TABLE item (ord int, resource_type text, resource_id text, action text, doc jsonb);
INSERT INTO item
SELECT row_number() OVER (ORDER BY r.t, r.id, a.action)::int, r.t, r.id, a.action, NULL
FROM (VALUES ('invoice', 'invoice_001'), ('invoice', 'invoice_002'), ('invoice', 'invoice_missing'),
             ('contract', 'invoice_001')) AS r (t, id),
     (VALUES ('read'), ('create'), ('approve'), ('reject'), ('delete'), ('fly')) AS a (action);
UPDATE item SET doc = CASE WHEN ord % 2 = 0
    THEN jsonb_build_object('resource', jsonb_build_object('type', resource_type, 'id', resource_id), 'action', action)
    ELSE jsonb_build_object('resource_type', resource_type, 'resource_id', resource_id, 'action', action) END;
CREATE FUNCTION pg_temp.batch(actor jsonb, request_id text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('actor', actor, 'items', (SELECT jsonb_agg(doc ORDER BY ord) FROM item),
                              'request', jsonb_build_object('request_id', request_id, 'ip', '10.0.0.7',
                                                            'user_agent', 'pgtap 064'))
$$;
CREATE FUNCTION pg_temp.single(actor jsonb, i item, request_id text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('actor', actor, 'resource_type', i.resource_type, 'resource_id', i.resource_id,
                              'action', i.action, 'request', jsonb_build_object('request_id', request_id,
                              'ip', '10.0.0.7', 'user_agent', 'pgtap 064'))
$$;

CREATE TEMP TABLE who (name text, actor jsonb);
INSERT INTO who VALUES
    ('alice', pg_temp.actor('user_alice', 'um_alice_finance_reviewer')),
    ('bob', pg_temp.actor('user_bob', 'um_bob_finance_reviewer')),
    ('a revoked binding', pg_temp.actor('user_alice', 'um_alice_finance_reviewer_revoked')),
    ('an expired binding', pg_temp.actor('user_alice', 'um_alice_finance_reviewer_expired')),
    ('a binding of another user', pg_temp.actor('user_bob', 'um_alice_finance_reviewer')),
    ('nobody', pg_temp.actor('user_nobody', 'um_nobody'));

------------------------------------------------------------------------------------------------------------------
-- Same answers as check (audit off, so that only the answers are compared here).
------------------------------------------------------------------------------------------------------------------
SET LOCAL plystra.audit_mode = 'off';
SELECT is((SELECT jsonb_agg(pg_temp.strip(r) ORDER BY n)
           FROM jsonb_array_elements(plystra.check_batch(pg_temp.batch(w.actor, 'req_064'))->'results')
                WITH ORDINALITY AS x (r, n)),
          (SELECT jsonb_agg(pg_temp.strip(plystra.check(pg_temp.single(w.actor, i, 'req_064'))) ORDER BY i.ord)
           FROM item i),
          'every batch result equals check''s answer for ' || w.name)
FROM who w ORDER BY w.name;
SELECT is((SELECT count(DISTINCT r->>'decision' || coalesce(r->>'deny_code', ''))
           FROM jsonb_array_elements(plystra.check_batch(pg_temp.batch(pg_temp.actor('user_alice',
                'um_alice_finance_reviewer'), NULL))->'results') r), 6::bigint,
          'the batch covers allows and five deny codes');
SELECT is(jsonb_array_length(plystra.check_batch(pg_temp.batch(pg_temp.actor('user_alice', 'um_alice_finance_reviewer'),
          NULL))->'results'), (SELECT count(*)::int FROM item), 'one result per item');
SELECT is(plystra.check_batch(jsonb_build_object('actor', pg_temp.actor('user_alice', 'um_alice_finance_reviewer'),
              'items', (SELECT jsonb_agg(jsonb_build_object('resource_type', 'invoice', 'resource_id', 'invoice_00' || (2 - n % 2),
                                                           'action', 'approve')) FROM generate_series(1, 1000) n)))
          #>> '{results,999,deny_code}', 'SCOPE_OUT_OF_BOUNDS', '1000 items (the limit) are answered, in order');
-- The same items in reverse order: the loader keeps one context and swaps the registry entries and candidates
-- of each (type, action) in and out as the items change, and reads each group once; the answers must not depend
-- on the order in which items share them.
SELECT is((SELECT jsonb_agg(pg_temp.strip(r) ORDER BY n)
           FROM jsonb_array_elements(plystra.check_batch(jsonb_build_object('actor', w.actor,
                    'items', (SELECT jsonb_agg(doc ORDER BY ord DESC) FROM item)))->'results') WITH ORDINALITY AS x (r, n)),
          (SELECT jsonb_agg(pg_temp.strip(plystra.check(pg_temp.single(w.actor, i, NULL))) ORDER BY i.ord DESC)
           FROM item i),
          'the items in reverse order: every result equals check''s answer')
FROM who w WHERE w.name = 'alice';
-- Ids that are not plain ASCII words reach the answer as the request gave them.
CREATE TEMP TABLE odd_item (ord int, resource_type text, resource_id text, action text, doc jsonb);
INSERT INTO odd_item (ord, resource_type, resource_id, action)
VALUES (1, 'invoice', 'invoice_001', 'approve'), (2, 'invoice', 'inv"oice\ é ✓ 😀', 'read'),
       (3, 'invoice', repeat('x', 256), 'read'), (4, 'invoice', E'tab\there', 'approve'),
       (5, 'invoice', 'invoice_002', 'read'), (6, 'invoice', 'invoice_001', 'read');
SELECT is((SELECT jsonb_agg(pg_temp.strip(r) ORDER BY n)
           FROM jsonb_array_elements(plystra.check_batch(jsonb_build_object(
                    'actor', pg_temp.actor('user_alice', 'um_alice_finance_reviewer'),
                    'items', (SELECT jsonb_agg(jsonb_build_object('resource_type', resource_type, 'resource_id',
                                                                  resource_id, 'action', action) ORDER BY ord)
                              FROM odd_item),
                    'request', jsonb_build_object('request_id', 'req_064_✓')))->'results') WITH ORDINALITY AS x (r, n)),
          (SELECT jsonb_agg(pg_temp.strip(plystra.check(jsonb_build_object(
                    'actor', pg_temp.actor('user_alice', 'um_alice_finance_reviewer'), 'resource_type', o.resource_type,
                    'resource_id', o.resource_id, 'action', o.action,
                    'request', jsonb_build_object('request_id', 'req_064_✓')))) ORDER BY o.ord)
           FROM odd_item o),
          'ids with quotes, backslashes, tabs, accents, emoji and 256 bytes: every result equals check''s answer');
-- The answer is written in jsonb's binary form directly, not parsed from text: it must be the very value jsonb_in
-- makes of its own text (same size, same text, equal), for a small batch and for 1000 results (jsonb stores
-- every 32nd entry of a container as an offset).
SELECT ok((SELECT a = a::text::jsonb AND pg_column_size(a) = pg_column_size(a::text::jsonb)
                  AND a::text = a::text::jsonb::text
           FROM (SELECT plystra.check_batch(pg_temp.batch(pg_temp.actor('user_alice', 'um_alice_finance_reviewer'),
                                                          'req_064')) AS a) AS b),
          'the answer is the jsonb its text reads as');
SELECT ok((SELECT a = a::text::jsonb AND pg_column_size(a) = pg_column_size(a::text::jsonb)
                  AND a::text = a::text::jsonb::text AND jsonb_array_length(a->'results') = 1000
                  AND (a->'results'->999) = (a::text::jsonb->'results'->999)
           FROM (SELECT plystra.check_batch(jsonb_build_object(
                        'actor', pg_temp.actor('user_alice', 'um_alice_finance_reviewer'),
                        'items', (SELECT jsonb_agg(jsonb_build_object('resource_type', 'invoice',
                                                   'resource_id', 'invoice_00' || (1 + n % 3), 'action', 'read'))
                                  FROM generate_series(1, 1000) n))) AS a) AS b),
          'so is an answer of 1000 results');
SELECT is((SELECT count(*) FROM plystra.audit_logs WHERE request_id = 'req_064'), 0::bigint,
          'audit_mode off: no audit row');
SELECT is((SELECT count(*) FROM jsonb_array_elements(plystra.check_batch(pg_temp.batch(
               pg_temp.actor('user_alice', 'um_alice_finance_reviewer'), NULL))->'results') r
           WHERE r->'audit_log_id' <> 'null' OR r#>'{audit,audit_log_id}' <> 'null'), 0::bigint,
          'audit_mode off: no result names an audit row');

------------------------------------------------------------------------------------------------------------------
-- Audit: each item its own decision, with the row a separate check writes.
------------------------------------------------------------------------------------------------------------------
-- The rows of a decision without what differs between two decisions of the same question (ids, times, chain).
CREATE FUNCTION pg_temp.row_of(audit_id text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT to_jsonb(a) - 'id' - 'seq' - 'created_at' - 'chain_position' - 'prev_hash' - 'row_hash' - 'request_id'
           || jsonb_build_object('trace', a.trace - 'trace_id' #- '{audit,audit_log_id}' #- '{audit,request_id}'
                                           #- '{request,request_id}')
    FROM plystra.audit_logs a WHERE a.id = audit_id
$$;
CREATE TEMP TABLE answered (mode text, how text, ord int, answer jsonb);

SET LOCAL plystra.audit_mode = 'always';
INSERT INTO answered
SELECT 'always', 'batch', n::int, r
FROM jsonb_array_elements(plystra.check_batch(pg_temp.batch(pg_temp.actor('user_alice', 'um_alice_finance_reviewer'),
                                                            'req_064_always'))->'results') WITH ORDINALITY AS x (r, n);
INSERT INTO answered
SELECT 'always', 'single', i.ord,
       plystra.check(pg_temp.single(pg_temp.actor('user_alice', 'um_alice_finance_reviewer'), i, 'req_064_single'))
FROM item i;
SELECT is((SELECT count(*) FROM answered a JOIN plystra.audit_logs l ON l.id = a.answer->>'audit_log_id'
           WHERE a.mode = 'always' AND a.how = 'batch'), (SELECT count(*) FROM item),
          'audit_mode always: one audit row per item');
SELECT is((SELECT count(DISTINCT answer->>'trace_id') FROM answered WHERE mode = 'always' AND how = 'batch'),
          (SELECT count(*) FROM item), 'each item has its own trace id');
SELECT ok((SELECT bool_and(answer->>'audit_log_id' = 'audit_' || substr(answer->>'trace_id', 5)
                           AND answer #>> '{audit,audit_log_id}' = answer->>'audit_log_id')
           FROM answered WHERE mode = 'always' AND how = 'batch'),
          'each result names its audit row, which shares its trace id''s random part, as check''s');
SELECT is((SELECT count(*) FROM answered a JOIN plystra.audit_logs l ON l.id = a.answer->>'audit_log_id'
           WHERE a.mode = 'always' AND a.how = 'batch' AND l.request_id = 'req_064_always'
             AND l.trace->>'trace_id' = a.answer->>'trace_id' AND l.decision = a.answer->>'decision'
             AND l.deny_code IS NOT DISTINCT FROM a.answer->>'deny_code'),
          (SELECT count(*) FROM item), 'each row carries the batch''s request id and its item''s trace and decision');
SELECT is((SELECT jsonb_agg(pg_temp.row_of(answer->>'audit_log_id') ORDER BY ord)
           FROM answered WHERE mode = 'always' AND how = 'batch'),
          (SELECT jsonb_agg(pg_temp.row_of(answer->>'audit_log_id') ORDER BY ord)
           FROM answered WHERE mode = 'always' AND how = 'single'),
          'the batch''s rows equal the rows separate checks write (but for ids, times and the request id)');
SELECT is((SELECT count(*) FROM plystra.audit_logs WHERE trace #>> '{audit,audit_log_id}' = id
             AND id IN (SELECT answer->>'audit_log_id' FROM answered WHERE how = 'batch')),
          (SELECT count(*) FROM item), 'each row''s trace names the row itself');

SET LOCAL plystra.audit_mode = 'deny_only';
INSERT INTO answered
SELECT 'deny_only', 'batch', n::int, r
FROM jsonb_array_elements(plystra.check_batch(pg_temp.batch(pg_temp.actor('user_alice', 'um_alice_finance_reviewer'),
                                                            'req_064_deny_only'))->'results') WITH ORDINALITY AS x (r, n);
SELECT ok((SELECT bool_and((answer->>'audit_log_id' IS NULL) = (answer->>'allow')::boolean) FROM answered
           WHERE mode = 'deny_only'), 'audit_mode deny_only: exactly the denies name an audit row');
SELECT ok((SELECT count(*) FILTER (WHERE (answer->>'allow')::boolean) > 0 FROM answered WHERE mode = 'deny_only'),
          'and the batch has allows');
SELECT is((SELECT count(*) FROM answered a JOIN plystra.audit_logs l ON l.id = a.answer->>'audit_log_id'
           WHERE a.mode = 'deny_only' AND l.decision = 'deny'),
          (SELECT count(*) FROM answered WHERE mode = 'deny_only' AND NOT (answer->>'allow')::boolean),
          'audit_mode deny_only: one row per deny');
SELECT is((SELECT count(*) FROM answered a JOIN plystra.audit_logs l ON l.id = a.answer->>'audit_log_id'
           WHERE a.mode = 'deny_only' AND l.decision = 'allow'), 0::bigint, 'and none for an allow');

SET LOCAL plystra.audit_mode = 'off';

------------------------------------------------------------------------------------------------------------------
-- Hostile input: 22023 naming the field, never XX000.
------------------------------------------------------------------------------------------------------------------
-- refusal(doc): 'SQLSTATE DETAIL' of plystra.check_batch(doc), or 'answered'.
CREATE FUNCTION pg_temp.refusal(doc jsonb) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    state text;
    detail text;
BEGIN
    PERFORM plystra.check_batch(doc);
    RETURN 'answered';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, detail = PG_EXCEPTION_DETAIL;
    RETURN state || ' ' || detail;
END
$f$;
CREATE FUNCTION pg_temp.good() RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('actor', pg_temp.actor('user_alice', 'um_alice_finance_reviewer'),
        'items', '[{"resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"},
                   {"resource": {"type": "invoice", "id": "invoice_002"}, "action": "read"}]'::jsonb)
$$;
SELECT is(pg_temp.refusal(pg_temp.good()), 'answered', 'the base batch is answered');
CREATE TEMP TABLE refused (doc jsonb, field text, what text);
INSERT INTO refused VALUES
    ('[1, 2]', 'request', 'not an object'),
    ('"items"', 'request', 'a string'),
    ('null', 'request', 'JSON null'),
    (pg_temp.good() - 'actor', 'actor', 'no actor'),
    (jsonb_set(pg_temp.good(), '{actor}', '"alice"'), 'actor', 'actor not an object'),
    (jsonb_set(pg_temp.good(), '{actor,user_id}', '7'), 'actor.user_id', 'actor id of the wrong type'),
    (pg_temp.good() - 'items', 'items', 'no items'),
    (jsonb_set(pg_temp.good(), '{items}', '{"resource_type": "invoice"}'), 'items', 'items an object'),
    (jsonb_set(pg_temp.good(), '{items}', '"invoice_001"'), 'items', 'items a string'),
    (jsonb_set(pg_temp.good(), '{items}', 'null'), 'items', 'items null'),
    (jsonb_set(pg_temp.good(), '{items}', '[]'), 'items', 'items empty'),
    (jsonb_set(pg_temp.good(), '{items}', (SELECT jsonb_agg(pg_temp.good()->'items'->0) FROM generate_series(1, 1001))),
     'items', '1001 items (over the limit)'),
    (jsonb_set(pg_temp.good(), '{items,1}', '"invoice_002"'), 'items[1]', 'an item not an object'),
    (jsonb_set(pg_temp.good(), '{items,1}', '[]'), 'items[1]', 'an item an array'),
    (jsonb_set(pg_temp.good(), '{items,0,explain}', 'true'), 'items[0].explain', 'an unknown item field'),
    (jsonb_set(pg_temp.good(), '{items,0,actor}', '{}'), 'items[0].actor', 'an actor per item'),
    (jsonb_set(pg_temp.good(), '{items,1,resource,owner}', '"x"'), 'items[1].resource.owner',
     'an unknown resource field'),
    (jsonb_set(pg_temp.good(), '{items,0,action}', '42'), 'items[0].action', 'an action of the wrong type'),
    (jsonb_set(pg_temp.good(), '{items,0,action}', '""'), 'items[0].action', 'an empty action'),
    (pg_temp.good() #- '{items,0,action}', 'items[0].action', 'no action'),
    (jsonb_set(pg_temp.good(), '{items,0,resource_id}', to_jsonb(repeat('x', 257))), 'items[0].resource_id',
     'an id over 256 bytes'),
    (jsonb_set(pg_temp.good(), '{items,1,resource}', '"invoice_002"'), 'items[1].resource', 'resource a string'),
    (jsonb_set(pg_temp.good(), '{items,1,resource,id}', '5'), 'items[1].resource.id', 'resource id a number'),
    (jsonb_set(pg_temp.good(), '{items,1,resource}', '{"type": "invoice"}'), 'items[1].resource_id',
     'a resource without id'),
    (jsonb_set(pg_temp.good(), '{items,0,resource}', '{"type": "contract"}'), 'items[0].resource.type',
     'two resource types that disagree'),
    (pg_temp.good() || '{"resource_type": "invoice"}', 'resource_type', 'a single check''s field at the top'),
    (pg_temp.good() || '{"explain": true}', 'explain', 'explain'),
    (pg_temp.good() || '{"request": {"ip": 1}}', 'request.ip', 'a request context of the wrong type'),
    (pg_temp.good() || '{"request": "req_1"}', 'request', 'a request context not an object'),
    (jsonb_set(pg_temp.good(), '{items,0,resource_id}', (repeat('[', 500) || repeat(']', 500))::jsonb), 'request',
     'a 500-deep array'),
    (jsonb_set(pg_temp.good(), '{items}', (repeat('[', 300) || repeat(']', 300))::jsonb), 'request',
     '300-deep items');
SELECT is_empty($$SELECT what, pg_temp.refusal(doc), field FROM refused
                  WHERE pg_temp.refusal(doc) IS DISTINCT FROM '22023 ' || field$$,
                'every malformed batch is 22023 naming its field (' || (SELECT count(*) FROM refused) || ' cases)');
SELECT is(pg_temp.refusal(jsonb_set(pg_temp.good(), '{items,1,action}', 'true')), '22023 items[1].action',
          'the message names the item by its index');
SELECT throws_ok($$SELECT plystra.check_batch(jsonb_set(pg_temp.good(), '{items,1,action}', 'true'))$$, '22023',
                 'invalid request: items[1].action must be a string', 'the message says what is wrong');
SELECT throws_ok($$SELECT plystra.check_batch(NULL)$$, '22023', 'invalid request: request is required',
                 'NULL is 22023');
SELECT throws_ok($$SELECT plystra.check_batch('{"actor": ')$$, '22P02', NULL, 'text that is not JSON is 22P02');
SELECT throws_ok(format('SELECT plystra.check_batch(%L::jsonb)', repeat('[', 100000) || repeat(']', 100000)),
                 '54001', NULL, '100000-deep JSON exceeds PostgreSQL''s stack depth limit (54001), not a crash');
SELECT is(jsonb_array_length(plystra.check_batch(pg_temp.good())->'results'), 2,
          'the session keeps working after the refusals');

------------------------------------------------------------------------------------------------------------------
-- Privileges: as check.
------------------------------------------------------------------------------------------------------------------
\ir helpers/sqlstate_as.sql
CREATE ROLE t64_usage_only NOLOGIN;
GRANT USAGE ON SCHEMA plystra TO t64_usage_only;
CREATE ROLE t64_app NOLOGIN;
GRANT plystra_app TO t64_app;
SELECT is(pg_temp.sqlstate_as('t64_app', format('SELECT plystra.check_batch(%L::jsonb)', pg_temp.good())), '00000',
          'plystra_app may call check_batch');
SELECT is(pg_temp.sqlstate_as('t64_usage_only', format('SELECT plystra.check_batch(%L::jsonb)', pg_temp.good())), '42501',
          'a role without plystra_app may not');
SELECT ok(NOT has_function_privilege('public', 'plystra.check_batch(jsonb)', 'EXECUTE'), 'nor may PUBLIC');
SELECT is((SELECT array[p.prosecdef::text, (SELECT lanname::text FROM pg_language WHERE oid = p.prolang), p.provolatile::text, p.proconfig::text]
           FROM pg_proc p WHERE p.oid = 'plystra.check_batch(jsonb)'::regprocedure),
          array['true', 'c', 'v', '{"search_path=pg_catalog, pg_temp"}'],
          'a C function, SECURITY DEFINER, volatile, with its search_path pinned, as check');
SELECT ok(obj_description('plystra.check_batch(jsonb)'::regprocedure, 'pg_proc') LIKE 'Many decisions for one actor%',
          'it is documented (COMMENT ON FUNCTION)');

SELECT * FROM finish();
ROLLBACK;
