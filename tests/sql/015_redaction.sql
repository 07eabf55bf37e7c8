-- Sensitive keys (002, rule 6): plystra.sensitive_key is the single definition, plystra.redact_sensitive removes
-- such keys at any depth; and no stored audit trace carries one.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
SELECT plan(49);

-- sensitive_key
SELECT is(plystra.sensitive_key(k), expected, format('sensitive_key(%L) is %s', k, expected))
  FROM (VALUES ('password', true), ('password_hash', true), ('PASSWORD_HASH', true), ('password_changed_at', true),
               ('client_secret', true), ('Secret', true), ('token', true), ('refresh_token', true),
               ('access_token_hash', true), ('Tokens', true), ('api_key', true), ('X-Api_Key', true),
               ('API_KEY_ID', true), ('authorization', true), ('Authorization', true), ('key_hash', true),
               ('KEY_HASH', true),
               ('key_prefix', false), ('key', false), ('keyhash', false), ('apikey', false), ('api-key', false),
               ('author', false), ('monkey', false), ('passwd', false), ('email', false), ('name', false),
               ('', false)) AS t(k, expected);
SELECT is(plystra.sensitive_key(NULL), false, 'sensitive_key(NULL) is false');
SELECT is((SELECT provolatile::text FROM pg_proc WHERE oid = 'plystra.sensitive_key(text)'::regprocedure), 'i',
          'sensitive_key is IMMUTABLE');
SELECT is((SELECT provolatile::text FROM pg_proc WHERE oid = 'plystra.redact_sensitive(jsonb)'::regprocedure), 'i',
          'redact_sensitive is IMMUTABLE');

-- redact_sensitive
SELECT is(plystra.redact_sensitive('{"id": "u1", "password_hash": "x", "email": "a@b"}'), '{"id": "u1", "email": "a@b"}',
          'top-level sensitive keys go, the rest stays');
SELECT is(plystra.redact_sensitive('{"a": {"b": {"c": {"Secret": 1, "d": 2}}}}'), '{"a": {"b": {"c": {"d": 2}}}}',
          'nested objects are redacted at any depth');
SELECT is(plystra.redact_sensitive('{"list": [{"token": "t", "ok": 1}, {"x": [{"api_key": "k", "y": true}]}, 3, "s", null]}'),
          '{"list": [{"ok": 1}, {"x": [{"y": true}]}, 3, "s", null]}',
          'objects inside arrays (and arrays inside arrays) are redacted; scalars and order are kept');
SELECT is(plystra.redact_sensitive('[{"authorization": "Bearer x"}, {"key_hash": "h", "key_prefix": "p"}]'),
          '[{}, {"key_prefix": "p"}]', 'a top-level array is redacted element by element');
SELECT is(plystra.redact_sensitive('{"token": {"inner": "whole subtree goes"}}'), '{}', 'a sensitive key takes its whole value with it');
SELECT is(plystra.redact_sensitive('{"note": "my password is hunter2"}'), '{"note": "my password is hunter2"}',
          'values are not keys: only keys are matched');
SELECT is(plystra.redact_sensitive('{}'), '{}', 'empty object');
SELECT is(plystra.redact_sensitive('[]'), '[]', 'empty array');
SELECT is(plystra.redact_sensitive('"password"'), '"password"', 'a scalar string is returned as is');
SELECT is(plystra.redact_sensitive('42'), '42', 'a number is returned as is');
SELECT is(plystra.redact_sensitive('null'), 'null', 'a JSON null is returned as is');
SELECT is(plystra.redact_sensitive(NULL), NULL, 'SQL NULL in, SQL NULL out');
SELECT is(plystra.redact_sensitive('{"a": [1, [2, [3, {"b": 4, "secret": 5}]]]}'), '{"a": [1, [2, [3, {"b": 4}]]]}',
          'deeply nested arrays');

-- Property: whatever goes in, no object anywhere in the result has a sensitive key.
SELECT is((SELECT count(*)::int
             FROM (VALUES ('{"password": 1, "a": [{"token": 2, "b": {"API_KEY": 3, "c": [{"Key_Hash": 4}]}}]}'::jsonb),
                          ('[[[{"authorization": 1, "z": {"my_secret_thing": 2}}]]]'::jsonb)) AS d(doc),
                  jsonb_path_query(plystra.redact_sensitive(d.doc), 'strict $.**') AS v
            WHERE jsonb_typeof(v) = 'object'
              AND EXISTS (SELECT 1 FROM jsonb_object_keys(v) AS k WHERE plystra.sensitive_key(k))), 0,
          'no sensitive key survives at any level');

-- And end to end: rows with secrets in every corner produce traces without them.
INSERT INTO plystra.users (id, email, password_hash, metadata)
    VALUES ('t15_u', 't15@example.test', 'argon2id$t15-password-hash', '{"prefs": [{"session_token": "t15-session"}]}');
INSERT INTO plystra.spaces (id, name, metadata) VALUES ('t15_s', 'S', '{"smtp": {"Password": "t15-smtp"}}');
INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, space_id, metadata)
    VALUES ('t15_ak', 'ci', 'ply_ak_t15_ak', 't15-key-hash', 'space', 't15_s', '{"rotated_from_api_key": "old"}');
UPDATE plystra.users SET password_hash = 'argon2id$t15-new-hash', status = 'disabled' WHERE id = 't15_u';
UPDATE plystra.api_keys SET status = 'revoked', revoked_at = now() WHERE id = 't15_ak';
SELECT is((SELECT count(*)::int FROM plystra.audit_logs WHERE resource_id IN ('t15_u', 't15_s', 't15_ak')), 5,
          'the five mutations were audited');
SELECT is((SELECT count(*)::int FROM plystra.audit_logs AS a, jsonb_path_query(a.trace, 'strict $.**') AS v
            WHERE jsonb_typeof(v) = 'object'
              AND EXISTS (SELECT 1 FROM jsonb_object_keys(v) AS k WHERE plystra.sensitive_key(k))), 0,
          'no stored trace has a sensitive key at any depth');
SELECT is((SELECT count(*)::int FROM plystra.audit_logs WHERE trace::text ~ 't15-(password-hash|new-hash|session|smtp|key-hash)'), 0,
          'no secret value appears in any stored trace');
SELECT is((SELECT trace -> 'details' -> 'metadata' FROM plystra.audit_logs WHERE resource_id = 't15_s'),
          '{"smtp": {}}'::jsonb, 'a nested sensitive key in metadata is removed, its parent kept');

SELECT * FROM finish();
ROLLBACK;
