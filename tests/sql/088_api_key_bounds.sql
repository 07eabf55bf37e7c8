-- An API key is bounded by its Space's state and by the key that made it (migration 021).
--
-- 1. A Space key and a Group key of a Space that is disabled or deleted are not active keys: the gate refuses
--    them as an unknown key (in a warm backend that kept them too: the Space's write moves the catalog version),
--    plystra.authenticate finds nothing and plystra.api_key_permission holds nothing; restored, they work again.
--    A Space's other writes (its name) move nothing. A library newer than the schema (no
--    catalog_version.keeps_key_space_state) keeps no key.
-- 2. A key made by a key follows its parent when the parent is narrowed by plain SQL: an earlier expiry, permission
--    keys taken off (by the matching rule, held to plystra_core's through api_key_permission), a changed scope;
--    on down to the keys those made. Bookkeeping writes (last_used_at) change nothing.
-- The deciding backend is a second one (dblink, autocommit, as the front's pooled connections are), with a third
-- committing the changes; every row has ids of its own (txid) and is left revoked.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS dblink;
BEGIN;
SELECT plan(61);

SELECT dblink_connect('t88_writer', format('host=%s port=%s dbname=%s user=%s',
    split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_database(), current_user));
SELECT dblink_connect('t88_decider', format('host=%s port=%s dbname=%s user=%s options=-cplystra.audit_mode=off',
    split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_database(), current_user));

SELECT 't88_' || txid_current() AS run \gset
SELECT 'space_' || :'run' AS space, 'group_' || :'run' AS grp, 'user_' || :'run' AS creator \gset

-- The gate's answer for a key presented with its HMAC, asked only about the credential (authz:check): for the run's
-- Space and its group when the key is of that Space (t88.request), else at instance scope.
CREATE FUNCTION pg_temp.gate(key_id text) RETURNS text LANGUAGE sql AS $$
    SELECT outcome FROM dblink('t88_decider', format($q$
        SELECT plystra.decide_with_credential(jsonb_build_object('api_key_id', %L, 'api_key_hashes',
                                                                 jsonb_build_array('hash_' || %L)),
                                              'authz:check', %L, false, true) ->> 'outcome'$q$, key_id, key_id,
        CASE WHEN key_id ~ '^ak_[sgqd]_' THEN current_setting('t88.request') ELSE 'null' END))
        AS t(outcome text)
$$;
CREATE FUNCTION pg_temp.write(stmt text) RETURNS text LANGUAGE sql AS $$ SELECT dblink_exec('t88_writer', stmt) $$;
CREATE FUNCTION pg_temp.version() RETURNS bigint LANGUAGE sql AS $$
    SELECT version FROM dblink('t88_writer', 'SELECT version FROM plystra.catalog_version') AS t(version bigint)
$$;
-- A key row (instance level unless a Space or group is given), its HMAC 'hash_' || id.
CREATE FUNCTION pg_temp.key(id text, level text, space text, grp text, keys jsonb, parent text DEFAULT NULL,
                            expires timestamptz DEFAULT NULL)
RETURNS text LANGUAGE sql AS $$
    SELECT format($k$INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, space_id, group_id,
                                                    permission_keys, created_by_user_id, created_by_api_key_id, expires_at)
                     VALUES (%L, 't88', 'ply_t88', %L, %L, %L, %L, %L, %L, %L, %L);$k$,
                  id, 'hash_' || id, level, space, grp, keys, current_setting('t88.creator'), parent, expires)
$$;
SELECT set_config('t88.creator', :'creator', true),
       set_config('t88.request', jsonb_build_object(
           'actor', jsonb_build_object('user_id', 'u_t88', 'member_id', 'm_t88', 'user_member_id', 'b_t88', 'space_id', :'space'),
           'resource', jsonb_build_object('type', 'invoice', 'id', 'invoice_t88', 'space_id', :'space', 'group_path', 'g'),
           'grants', jsonb_build_array(jsonb_build_object('resource', 'invoice', 'action', 'approve', 'scope', 'space')),
           'action', 'approve')::text, true);

SELECT pg_temp.write(format($$BEGIN;
    INSERT INTO plystra.users (id, email) VALUES (%1$L, %1$L || '@example.com');
    INSERT INTO plystra.admin_grants (id, user_id, level, permission_key) VALUES ('ag_' || %1$L, %1$L, 'instance_admin', '*');
    INSERT INTO plystra.spaces (id, name) VALUES (%2$L, %2$L);
    INSERT INTO plystra.groups (id, space_id, name, path) VALUES (%3$L, %2$L, 'G', 'g');
    %4$s %5$s
    COMMIT$$, :'creator', :'space', :'grp',
    pg_temp.key('ak_s_' || :'run', 'space', :'space', NULL, '["authz:check"]'),
    pg_temp.key('ak_g_' || :'run', 'group', NULL, :'grp', '["authz:check"]')));
SELECT 'ak_s_' || :'run' AS skey, 'ak_g_' || :'run' AS gkey \gset

------------------------------------------------------------------------------------------------------------------
-- 1. A key's Space.
------------------------------------------------------------------------------------------------------------------
SELECT is(pg_temp.gate(:'skey'), 'authorized', 'the Space key holds authz:check (and the deciding backend keeps it)');
-- A Group key may not ask about an actor placed at the whole Space: refused for its scope, yet authenticated.
SELECT is(pg_temp.gate(:'gkey'), 'forbidden', 'the Group key is a live credential (forbidden the Space-wide actor)');
SELECT pg_temp.version() AS v0 \gset
SELECT pg_temp.write(format($$UPDATE plystra.spaces SET name = 'renamed' WHERE id = %L$$, :'space'));
SELECT is(pg_temp.version(), :'v0'::bigint, 'a Space''s name changed: the version does not move');
SELECT pg_temp.write(format($$UPDATE plystra.spaces SET status = 'disabled' WHERE id = %L$$, :'space'));
SELECT cmp_ok(pg_temp.version(), '>', :'v0'::bigint, 'a Space disabled: the version moves');
SELECT is(pg_temp.gate(:'skey'), 'unauthenticated', 'the Space disabled: its Space key is refused at the next request');
SELECT is(pg_temp.gate(:'gkey'), 'unauthenticated', 'and its Group key');
SELECT is(pg_temp.gate('ak_nosuch_' || :'run'), 'unauthenticated', 'as a key that does not exist is');
SELECT is(plystra.authenticate(jsonb_build_object('api_key_id', :'skey', 'api_key_hashes', jsonb_build_array('hash_' || :'skey'))),
          NULL, 'plystra.authenticate finds no live credential');
SELECT is(plystra.api_key_permission(:'skey', 'authz:check', :'space', NULL) ->> 'allowed', 'false',
          'plystra.api_key_permission holds nothing for the Space key');
SELECT is(plystra.api_key_permission(:'gkey', 'authz:check', :'space', :'grp') ->> 'allowed', 'false',
          'nor for the Group key');
SELECT pg_temp.write(format($$UPDATE plystra.spaces SET status = 'active' WHERE id = %L$$, :'space'));
SELECT is(pg_temp.gate(:'skey'), 'authorized', 'the Space restored: its Space key works again');
SELECT is(pg_temp.gate(:'gkey'), 'forbidden', 'and its Group key is live again');
SELECT is(plystra.api_key_permission(:'skey', 'authz:check', :'space', NULL) ->> 'allowed', 'true',
          'plystra.api_key_permission holds again');
SELECT pg_temp.write(format($$UPDATE plystra.spaces SET deleted_at = now() WHERE id = %L$$, :'space'));
SELECT is(pg_temp.gate(:'skey'), 'unauthenticated', 'the Space deleted: its Space key is refused');
SELECT is(pg_temp.gate(:'gkey'), 'unauthenticated', 'and its Group key');
SELECT pg_temp.write(format($$UPDATE plystra.spaces SET deleted_at = NULL WHERE id = %L$$, :'space'));
SELECT is(pg_temp.gate(:'skey'), 'authorized', 'undeleted: it works again');

-- Kept: only a write with the triggers disabled goes unnoticed, and only where the schema says the version moves.
SELECT pg_temp.write(format($$BEGIN;
    ALTER TABLE plystra.spaces DISABLE TRIGGER credential_changed_update;
    UPDATE plystra.spaces SET status = 'disabled' WHERE id = %L;
    ALTER TABLE plystra.spaces ENABLE ALWAYS TRIGGER credential_changed_update;
    COMMIT$$, :'space'));
SELECT is(pg_temp.gate(:'skey'), 'authorized', 'a Space disabled without moving the version: the kept key answers');
SELECT pg_temp.write('ALTER TABLE plystra.catalog_version RENAME COLUMN keeps_key_space_state TO keeps_key_space_state_not_yet');
\ir helpers/or_error.sql
SELECT pg_temp.or_error(format('SELECT pg_temp.gate(%L)', :'skey')) AS without_column \gset
SELECT pg_temp.write('ALTER TABLE plystra.catalog_version RENAME COLUMN keeps_key_space_state_not_yet TO keeps_key_space_state');
SELECT is(:'without_column'::text, 'unauthenticated',
          'without catalog_version.keeps_key_space_state (a 1.16.0 schema) the key is read anew, with its Space');
SELECT pg_temp.write(format($$UPDATE plystra.spaces SET status = 'active' WHERE id = %L$$, :'space'));

-- In the reader's own transaction (nothing kept): the same rule.
SAVEPOINT own;
UPDATE plystra.spaces SET status = 'disabled' WHERE id = :'space';
SELECT is(plystra.decide_with_credential(jsonb_build_object('api_key_id', :'skey', 'api_key_hashes', jsonb_build_array('hash_' || :'skey')),
                                         'authz:check', 'null', false, true) ->> 'outcome',
          'unauthenticated', 'a transaction that disabled the Space reads its own write');
ROLLBACK TO SAVEPOINT own;

------------------------------------------------------------------------------------------------------------------
-- 2. A key made by a key.
------------------------------------------------------------------------------------------------------------------
-- The matching rule, through the Rust rule that api_key_permission applies: the trigger's permission_key_covers
-- must say the same for every pair.
CREATE TEMP TABLE t88_pairs AS
SELECT held, required
FROM unnest(ARRAY['*', 'users:read', 'users:*', 'users:manage', 'users:readx', 'audit:manage', 'users', 'users:manage:x'])
         AS held
CROSS JOIN unnest(ARRAY['users:read', 'users:manage', 'users:*', 'audit:read', 'users:write', 'usersx:read', '*'])
         AS required;
SELECT pg_temp.write(format($$BEGIN; %s COMMIT$$,
    (SELECT string_agg(pg_temp.key('ak_m_' || :'run' || '_' || md5(held), 'instance', NULL, NULL, jsonb_build_array(held)), ' ')
     FROM (SELECT DISTINCT held FROM t88_pairs) h)));
SELECT is((SELECT count(*) FROM t88_pairs
           WHERE plystra.permission_key_covers(held, required)
                 IS DISTINCT FROM (plystra.api_key_permission('ak_m_' || :'run' || '_' || md5(held), required, NULL, NULL)
                                   ->> 'allowed')::boolean),
          0::bigint, 'permission_key_covers agrees with the decision''s matching rule on every pair');
SELECT ok((SELECT count(*) FROM t88_pairs WHERE plystra.permission_key_covers(held, required)) BETWEEN 10 AND 45,
          'and the pairs are mixed (some covered, some not)');

-- A tree: parent P, its child C, C's child G; and Q with child D (for a change of scope).
SELECT pg_temp.write(format($$BEGIN; %s %s %s %s %s COMMIT$$,
    pg_temp.key('ak_p_' || :'run', 'instance', NULL, NULL, '["users:manage", "audit:read", "authz:check"]', NULL, now() + interval '10 days'),
    pg_temp.key('ak_c_' || :'run', 'instance', NULL, NULL, '["users:read", "audit:read", "users:manage", "authz:check"]', 'ak_p_' || :'run', now() + interval '9 days'),
    pg_temp.key('ak_gc_' || :'run', 'instance', NULL, NULL, '["users:read", "authz:check"]', 'ak_c_' || :'run', now() + interval '8 days'),
    pg_temp.key('ak_q_' || :'run', 'space', :'space', NULL, '["authz:check"]'),
    pg_temp.key('ak_d_' || :'run', 'space', :'space', NULL, '["authz:check"]', 'ak_q_' || :'run')));
SELECT 'ak_p_' || :'run' AS p, 'ak_c_' || :'run' AS c, 'ak_gc_' || :'run' AS gc, 'ak_q_' || :'run' AS q,
       'ak_d_' || :'run' AS d \gset
CREATE FUNCTION pg_temp.keys_of(id text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT permission_keys FROM dblink('t88_writer', format('SELECT permission_keys FROM plystra.api_keys WHERE id = %L', id))
        AS t(permission_keys jsonb)
$$;
CREATE FUNCTION pg_temp.state_of(id text) RETURNS text LANGUAGE sql AS $$
    SELECT state FROM dblink('t88_writer', format(
        'SELECT status || coalesce('' '' || revoked_reason, '''') FROM plystra.api_keys WHERE id = %L', id)) AS t(state text)
$$;
CREATE FUNCTION pg_temp.expiry_of(id text) RETURNS timestamptz LANGUAGE sql AS $$
    SELECT e FROM dblink('t88_writer', format('SELECT expires_at FROM plystra.api_keys WHERE id = %L', id)) AS t(e timestamptz)
$$;
SELECT is(pg_temp.gate(:'c'), 'authorized', 'the child holds authz:check');
SELECT is(pg_temp.gate(:'gc'), 'authorized', 'the grandchild holds authz:check');

SELECT pg_temp.write(format($$UPDATE plystra.api_keys SET last_used_at = now() WHERE id = %L$$, :'p'));
SELECT is(pg_temp.keys_of(:'c'), '["users:read", "audit:read", "users:manage", "authz:check"]'::jsonb,
          'a bookkeeping write on the parent leaves the child as it was');

-- Time.
SELECT pg_temp.write(format($$UPDATE plystra.api_keys SET expires_at = now() + interval '1 day' WHERE id = %L$$, :'p'));
SELECT is(pg_temp.expiry_of(:'c'), pg_temp.expiry_of(:'p'), 'the parent''s earlier expiry becomes the child''s');
SELECT is(pg_temp.expiry_of(:'gc'), pg_temp.expiry_of(:'p'), 'and the grandchild''s');
SELECT pg_temp.write(format($$UPDATE plystra.api_keys SET expires_at = now() + interval '30 days' WHERE id = %L$$, :'p'));
SELECT cmp_ok(pg_temp.expiry_of(:'c'), '<', pg_temp.expiry_of(:'p'), 'a later expiry on the parent widens no child');
SELECT pg_temp.write(format($$UPDATE plystra.api_keys SET expires_at = now() - interval '1 second' WHERE id = %L$$, :'p'));
SELECT is(pg_temp.gate(:'c'), 'unauthenticated', 'the parent expired by SQL: the child has expired with it');
SELECT is(pg_temp.gate(:'gc'), 'unauthenticated', 'and the grandchild');
SELECT pg_temp.write(format($$BEGIN;
    ALTER TABLE plystra.api_keys DISABLE TRIGGER trg_api_keys_lineage_revoke;
    UPDATE plystra.api_keys SET expires_at = now() + interval '5 days' WHERE id IN (%L, %L, %L);
    ALTER TABLE plystra.api_keys ENABLE TRIGGER trg_api_keys_lineage_revoke;
    COMMIT$$, :'p', :'c', :'gc'));
SELECT is(pg_temp.gate(:'gc'), 'authorized', '(the three given time again, the trigger off)');

-- Permissions.
SELECT pg_temp.write(format($$UPDATE plystra.api_keys SET permission_keys = '["users:*", "authz:check"]' WHERE id = %L$$, :'p'));
SELECT is(pg_temp.keys_of(:'c'), '["users:read", "users:manage", "authz:check"]'::jsonb,
          'audit:read taken off the parent is taken off the child; what users:* covers stays, in order');
SELECT is(pg_temp.keys_of(:'gc'), '["users:read", "authz:check"]'::jsonb, 'the grandchild had nothing taken off: unchanged');
SELECT pg_temp.write(format($$UPDATE plystra.api_keys SET permission_keys = '["users:*"]' WHERE id = %L$$, :'p'));
SELECT is(pg_temp.keys_of(:'c'), '["users:read", "users:manage"]'::jsonb, 'authz:check taken off the parent: off the child');
SELECT is(pg_temp.keys_of(:'gc'), '["users:read"]'::jsonb, 'and off the grandchild, through the child');
SELECT is(pg_temp.gate(:'gc'), 'forbidden', 'the grandchild no longer holds authz:check (at the next request)');
SELECT pg_temp.write(format($$UPDATE plystra.api_keys SET permission_keys = '["audit:read"]' WHERE id = %L$$, :'p'));
SELECT is(pg_temp.state_of(:'c'), 'revoked the API key that created it no longer holds any of its permissions (' || :'p' || ')',
          'a child left with none of its permissions is revoked');
SELECT is(pg_temp.state_of(:'gc'), 'revoked the API key that created it was revoked (' || :'c' || ')',
          'and its own child with it');
SELECT is(pg_temp.gate(:'gc'), 'unauthenticated', 'the grandchild is refused');

-- Scope.
SELECT is(pg_temp.gate(:'d'), 'authorized', 'D, made by the Space key Q, holds authz:check');
SELECT pg_temp.write(format($$UPDATE plystra.api_keys SET level = 'instance', space_id = NULL WHERE id = %L$$, :'q'));
SELECT is(pg_temp.state_of(:'d'), 'revoked the API key that created it changed its scope (' || :'q' || ')',
          'the parent''s scope changed: the child is revoked');
SELECT is(pg_temp.gate(:'d'), 'unauthenticated', 'and refused');

-- A child is checked against its parent as it is made: never wider, in keys or in scope.
SELECT pg_temp.write(format($$BEGIN; %s %s COMMIT$$,
    pg_temp.key('ak_r_' || :'run', 'instance', NULL, NULL, '["users:read", "authz:check"]'),
    pg_temp.key('ak_sp_' || :'run', 'space', :'space', NULL, '["authz:check"]')));
SELECT 'ak_r_' || :'run' AS r, 'ak_sp_' || :'run' AS sp \gset
-- What the writer says to stmt: 'made', or its error's message.
CREATE FUNCTION pg_temp.refusal(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM dblink_exec('t88_writer', stmt);
    RETURN 'made';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLERRM;
END;
$$;
-- The SQLSTATE of stmt run on connection conn ('00000' when it succeeds).
CREATE FUNCTION pg_temp.sqlstate_of_remote(conn text, stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    state text := '00000';
BEGIN
    PERFORM dblink_exec(conn, stmt);
    RETURN state;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE;
    RETURN state;
END;
$$;
SELECT is(pg_temp.refusal(pg_temp.key('ak_r1_' || :'run', 'instance', NULL, NULL, '["users:manage"]', :'r')),
          'plystra: an API key cannot hold more than the API key that creates it',
          'a child carrying a permission key its parent does not cover is refused');
SELECT is(pg_temp.refusal(pg_temp.key('ak_r2_' || :'run', 'instance', NULL, NULL, '["users:read"]', :'sp')),
          'plystra: an API key cannot hold more than the API key that creates it',
          'a Space key cannot make an instance key');
SELECT is(pg_temp.refusal(pg_temp.key('ak_r3_' || :'run', 'space', 'space_acme', NULL, '["authz:check"]', :'sp')),
          'plystra: an API key cannot hold more than the API key that creates it',
          'nor a key of another Space');
SELECT is(pg_temp.refusal(pg_temp.key('ak_r4_' || :'run', 'group', NULL, :'grp', '["authz:check"]', :'sp')),
          'made', 'a Space key may make a key of a group of its Space');
SELECT is(pg_temp.refusal(pg_temp.key('ak_r5_' || :'run', 'group', NULL, 'group_finance', '["authz:check"]', 'ak_r4_' || :'run')),
          'plystra: an API key cannot hold more than the API key that creates it',
          'a Group key cannot make a key of a group outside its own');

-- The race: a child made while its parent is being narrowed, revoked, or (REPEATABLE READ) after it.
SELECT dblink_connect('t88_other', format('host=%s port=%s dbname=%s user=%s',
    split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_database(), current_user));
SELECT dblink_exec('t88_other', 'BEGIN');
SELECT dblink_exec('t88_other', format($$UPDATE plystra.api_keys SET permission_keys = '["authz:check"]' WHERE id = %L$$, :'r'));
SELECT dblink_send_query('t88_writer', pg_temp.key('ak_r6_' || :'run', 'instance', NULL, NULL, '["users:read"]', :'r'));
SELECT pg_sleep(0.3);
SELECT is(dblink_is_busy('t88_writer'), 1, 'a child of a parent being narrowed waits for the narrowing');
SELECT dblink_exec('t88_other', 'COMMIT');
SELECT * FROM dblink_get_result('t88_writer', false) AS t(r text);
SELECT * FROM dblink_get_result('t88_writer', false) AS t(r text);
SELECT matches(dblink_error_message('t88_writer'), 'cannot hold more than the API key that creates it',
               'and is refused once it committed: users:read was taken off the parent');
SELECT dblink_exec('t88_other', 'BEGIN');
SELECT dblink_exec('t88_other', format($$UPDATE plystra.api_keys SET status = 'revoked', revoked_at = now() WHERE id = %L$$, :'r'));
SELECT dblink_send_query('t88_writer', pg_temp.key('ak_r7_' || :'run', 'instance', NULL, NULL, '["authz:check"]', :'r'));
SELECT pg_sleep(0.3);
SELECT dblink_exec('t88_other', 'COMMIT');
SELECT * FROM dblink_get_result('t88_writer', false) AS t(r text);
SELECT * FROM dblink_get_result('t88_writer', false) AS t(r text);
SELECT matches(dblink_error_message('t88_writer'), 'can only be created by an active API key',
               'a child of a parent being revoked is refused once the revocation committed');
SELECT is((SELECT count(*) FROM dblink('t88_writer', format(
              'SELECT 1 FROM plystra.api_keys WHERE id IN (%L, %L)', 'ak_r6_' || :'run', 'ak_r7_' || :'run')) AS t(x int)),
          0::bigint, 'neither child exists');
-- REPEATABLE READ: a narrowing whose snapshot predates a child made meanwhile cannot miss it; it fails instead.
-- (This held before 021's parent write too: both statements also write the catalog version row.)
SELECT pg_temp.write(pg_temp.key('ak_rr_' || :'run', 'instance', NULL, NULL, '["users:read", "authz:check"]'));
SELECT dblink_exec('t88_other', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT * FROM dblink('t88_other', 'SELECT count(*) FROM plystra.api_keys') AS t(n bigint);
SELECT pg_temp.write(pg_temp.key('ak_rr1_' || :'run', 'instance', NULL, NULL, '["users:read"]', 'ak_rr_' || :'run'));
SELECT is(pg_temp.sqlstate_of_remote('t88_other',
              format($$UPDATE plystra.api_keys SET permission_keys = '["authz:check"]' WHERE id = %L$$, 'ak_rr_' || :'run')),
          '40001', 'a REPEATABLE READ narrowing of a parent that made a child since its snapshot fails (40001)');
SELECT dblink_exec('t88_other', 'ROLLBACK');
SELECT dblink_disconnect('t88_other');

-- A bounded lineage: 16 keys in a chain, the 17th refused; revoking the first revokes all.
SELECT pg_temp.write(format($$BEGIN; %s COMMIT$$, (SELECT string_agg(
    pg_temp.key('ak_l' || i || '_' || :'run', 'instance', NULL, NULL, '["authz:check"]',
                CASE WHEN i > 1 THEN 'ak_l' || (i - 1) || '_' || :'run' END), ' ' ORDER BY i)
    FROM generate_series(1, 16) i)));
SELECT is(pg_temp.gate('ak_l16_' || :'run'), 'authorized', 'the 16th key of a chain works');
SELECT is(pg_temp.refusal(pg_temp.key('ak_l17_' || :'run', 'instance', NULL, NULL, '["authz:check"]', 'ak_l16_' || :'run')),
          'plystra: an API key can be created by a chain of at most 15 API keys', 'a 17th is refused');
SELECT pg_temp.write(format($$UPDATE plystra.api_keys SET status = 'revoked', revoked_at = now() WHERE id = %L$$, 'ak_l1_' || :'run'));
SELECT is(pg_temp.gate('ak_l16_' || :'run'), 'unauthenticated', 'revoking the first key of the chain revokes the 16th');

-- A key's permission keys: at most 256 strings.
SELECT matches(pg_temp.refusal(pg_temp.key('ak_x1_' || :'run', 'instance', NULL, NULL, '["*", 1]')),
               'api_keys_permission_keys_strings', 'a non-string permission key is refused (api_keys_permission_keys_strings)');
SELECT matches(pg_temp.refusal(pg_temp.key('ak_x2_' || :'run', 'instance', NULL, NULL,
                                           (SELECT jsonb_agg('k' || i || ':read') FROM generate_series(1, 257) i))),
               'api_keys_permission_keys_strings', 'so are 257 permission keys');
SELECT is(pg_temp.refusal(pg_temp.key('ak_x3_' || :'run', 'instance', NULL, NULL,
                                      (SELECT jsonb_agg('k' || i || ':read') FROM generate_series(1, 256) i))),
          'made', '256 are accepted');

-- A Space removed outright (a superuser in replica mode, past the soft-delete rule): its keys are not active.
SAVEPOINT gone;
SET LOCAL session_replication_role = replica;
DELETE FROM plystra.spaces WHERE id = :'space';
SELECT is(plystra.authenticate(jsonb_build_object('api_key_id', :'sp', 'api_key_hashes', jsonb_build_array('hash_' || :'sp'))),
          NULL, 'a key of a Space that is not there: plystra.authenticate finds nothing');
SELECT is(plystra.api_key_permission(:'sp', 'authz:check', :'space', NULL) ->> 'allowed', 'false',
          'and plystra.api_key_permission holds nothing');
SELECT is(plystra.decide_with_credential(jsonb_build_object('api_key_id', :'sp', 'api_key_hashes', jsonb_build_array('hash_' || :'sp')),
                                         'authz:check', current_setting('t88.request')::jsonb, false, true) ->> 'outcome',
          'unauthenticated', 'nor does the gate');
ROLLBACK TO SAVEPOINT gone;

-- The trigger's helper is the owner's: PUBLIC may not execute it.
SELECT is((SELECT count(*) FROM pg_proc p,
                  aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
           WHERE p.oid = 'plystra.permission_key_covers(text, text)'::regprocedure
             AND a.grantee = 0 AND a.privilege_type = 'EXECUTE'),
          0::bigint, 'permission_key_covers is not executable by PUBLIC');

-- Leave the run's rows revoked and its Space disabled.
SELECT pg_temp.write(format($$BEGIN;
    UPDATE plystra.api_keys SET status = 'revoked', revoked_at = now() WHERE strpos(id, %1$L) > 0 AND revoked_at IS NULL;
    UPDATE plystra.admin_grants SET status = 'revoked', revoked_at = now() WHERE id = 'ag_' || %2$L;
    UPDATE plystra.spaces SET status = 'disabled' WHERE id = %3$L;
    COMMIT$$, :'run', :'creator', :'space'));
SELECT dblink_disconnect('t88_writer');
SELECT dblink_disconnect('t88_decider');

SELECT * FROM finish();
ROLLBACK;
