-- What the REST front's gate reads of an API key (the key, its creator's User row and admin grants), and of a
-- session's User (active, and its admin grants), kept by a backend between requests under the catalog version
-- (plystra_pg/src/catalog.rs, migration 015). Whatever is kept,
-- the gate answers as the tables read under its own snapshot would: a revocation, a creator deactivated, a grant
-- revoked or a permission taken off the key counts from the next statement after its commit; an expiry counts from
-- the moment it passes, with nothing written; a wrong HMAC is refused; a REPEATABLE READ snapshot that predates a
-- revocation keeps the key; a transaction that has written sees its own writes; the front's once-a-minute
-- last_used_at write and a login move nothing.
-- The deciding backend is a second one (dblink, autocommit: the path the front's pooled connections take), with a
-- third committing the changes. Every row of the run has ids of its own (txid) and is left revoked.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS dblink;
BEGIN;
SELECT plan(45);

SELECT dblink_connect('t74_writer', format('host=%s port=%s dbname=%s user=%s',
    split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_database(), current_user));
SELECT dblink_connect('t74_decider', format('host=%s port=%s dbname=%s user=%s options=-cplystra.audit_mode=off',
    split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_database(), current_user));

SELECT 'user_t74_' || txid_current() AS creator, 'ag_t74_' || txid_current() AS grant_id,
       'ak_t74_' || txid_current() AS key_id, 'hash_t74_' || txid_current() AS key_hash \gset
SELECT set_config('t74.key_id', :'key_id', true), set_config('t74.key_hash', :'key_hash', true);

-- The gate's answer for the run's key presented with `hash`, asked only about the credential (authz:check).
CREATE FUNCTION pg_temp.gate_on(conn text, key_id text, hash text) RETURNS text LANGUAGE sql AS $$
    SELECT outcome FROM dblink(conn, format($q$
        SELECT plystra.decide_with_credential(jsonb_build_object('api_key_id', %L, 'api_key_hashes',
                                                                 jsonb_build_array('wrong', %L)),
                                              'authz:check', 'null', false, true) ->> 'outcome'$q$, key_id, hash))
        AS t(outcome text)
$$;
CREATE FUNCTION pg_temp.decider() RETURNS text LANGUAGE sql AS $$
    SELECT pg_temp.gate_on('t74_decider', current_setting('t74.key_id'), current_setting('t74.key_hash'))
$$;
CREATE FUNCTION pg_temp.here(key_id text, hash text) RETURNS text LANGUAGE sql AS $$
    SELECT plystra.decide_with_credential(jsonb_build_object('api_key_id', key_id, 'api_key_hashes',
                                                             jsonb_build_array(hash)),
                                          'authz:check', 'null', false, true) ->> 'outcome'
$$;
CREATE FUNCTION pg_temp.write(stmt text) RETURNS text LANGUAGE sql AS $$ SELECT dblink_exec('t74_writer', stmt) $$;
CREATE FUNCTION pg_temp.version() RETURNS bigint LANGUAGE sql AS $$
    SELECT version FROM dblink('t74_writer', 'SELECT version FROM plystra.catalog_version') AS t(version bigint)
$$;

SELECT pg_temp.write(format($$BEGIN;
    INSERT INTO plystra.users (id, email) VALUES (%1$L, %1$L || '@example.com');
    INSERT INTO plystra.admin_grants (id, user_id, level, permission_key) VALUES (%2$L, %1$L, 'instance_admin', 'authz:check');
    INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, permission_keys, created_by_user_id)
    VALUES (%3$L, 't74', 'ply_t74', %4$L, 'instance', '["authz:check"]', %1$L);
    COMMIT$$, :'creator', :'grant_id', :'key_id', :'key_hash'));

SELECT is(pg_temp.decider(), 'authorized', 'the deciding backend: the run''s key holds authz:check (and is now kept)');
SELECT is(pg_temp.gate_on('t74_decider', :'key_id', 'hash_t74_guess'), 'unauthenticated',
          'a kept key presented with another HMAC is unauthenticated');

------------------------------------------------------------------------------------------------------------------
-- It is kept: only a superuser changing the key with the triggers disabled goes unnoticed, until the version moves.
------------------------------------------------------------------------------------------------------------------
SELECT pg_temp.write(format($$BEGIN;
    ALTER TABLE plystra.api_keys DISABLE TRIGGER credential_changed_update;
    UPDATE plystra.api_keys SET permission_keys = '["users:read"]' WHERE id = %L;
    ALTER TABLE plystra.api_keys ENABLE ALWAYS TRIGGER credential_changed_update;
    COMMIT$$, :'key_id'));
SELECT is(pg_temp.decider(), 'authorized', 'a permission taken off without moving the version: the kept key answers');
SELECT pg_temp.write('UPDATE plystra.catalog_version SET keeps_api_keys = false');
SELECT is(pg_temp.decider(), 'forbidden', 'catalog_version.keeps_api_keys false: the backend reads the key anew');
SELECT pg_temp.write('UPDATE plystra.catalog_version SET keeps_api_keys = true');
SELECT is(pg_temp.decider(), 'authorized', 'true again (the version unmoved): the kept key answers again');
-- A schema older than the library (replaced before ALTER EXTENSION UPDATE) has no such column: nothing is kept.
SELECT pg_temp.write('ALTER TABLE plystra.catalog_version RENAME COLUMN keeps_api_keys TO keeps_api_keys_not_yet');
\ir helpers/or_error.sql
SELECT pg_temp.or_error('SELECT pg_temp.decider()') AS without_column \gset
SELECT pg_temp.write('ALTER TABLE plystra.catalog_version RENAME COLUMN keeps_api_keys_not_yet TO keeps_api_keys');
SELECT is(:'without_column'::text, 'forbidden', 'without catalog_version.keeps_api_keys (a 1.9.0 schema) the key is read anew');
SELECT dblink_exec('t74_decider', 'SET plystra.catalog_cache_entries = 0');
SELECT is(pg_temp.decider(), 'forbidden', 'keeping nothing (catalog_cache_entries = 0) reads the key anew');
SELECT dblink_exec('t74_decider', 'RESET plystra.catalog_cache_entries');
SELECT pg_temp.write($$UPDATE plystra.catalog_version SET version = nextval('plystra.catalog_version_seq')$$);
SELECT is(pg_temp.decider(), 'forbidden', 'moving the version by hand makes the backend read the key anew');

------------------------------------------------------------------------------------------------------------------
-- Every write the reading depends on moves the version; bookkeeping does not.
------------------------------------------------------------------------------------------------------------------
SELECT pg_temp.write(format($$UPDATE plystra.api_keys SET permission_keys = '["authz:check"]' WHERE id = %L$$, :'key_id'));
SELECT is(pg_temp.decider(), 'authorized', 'the permission given back to the key (a committed UPDATE) counts at once');

SELECT pg_temp.version() AS v0 \gset
SELECT pg_temp.write(format($$UPDATE plystra.api_keys SET last_used_at = now() WHERE id = %L$$, :'key_id'));
SELECT pg_temp.write(format($$UPDATE plystra.users SET last_login_at = now() WHERE id = %L$$, :'creator'));
SELECT is(pg_temp.version(), :v0::bigint, 'recording a key''s last use or a User''s login leaves the version as it is');
SELECT is(pg_temp.decider(), 'authorized', 'and the kept key still answers');
SELECT pg_temp.write(format($$UPDATE plystra.api_keys SET last_used_at = now(), name = 't74 renamed' WHERE id = %L$$, :'key_id'));
SELECT cmp_ok(pg_temp.version(), '>', :v0::bigint, 'a real change beside last_used_at moves the version');
SELECT pg_temp.version() AS v1 \gset
SELECT pg_temp.write(format($$UPDATE plystra.users SET email = %L WHERE id = %L$$, :'creator' || '.2@example.com', :'creator'));
SELECT is(pg_temp.version(), :v1::bigint, 'a User''s e-mail (which a key''s reading does not hold) leaves it as it is');

-- The key itself.
SELECT pg_temp.write(format($$UPDATE plystra.api_keys SET status = 'disabled' WHERE id = %L$$, :'key_id'));
SELECT is(pg_temp.decider(), 'unauthenticated', 'a key disabled by another session is refused at the next request');
SELECT pg_temp.write(format($$UPDATE plystra.api_keys SET status = 'active' WHERE id = %L$$, :'key_id'));
SELECT is(pg_temp.decider(), 'authorized', 'and accepted again once active');

-- Its creator.
SELECT pg_temp.write(format($$UPDATE plystra.users SET status = 'disabled' WHERE id = %L$$, :'creator'));
SELECT is(pg_temp.decider(), 'forbidden', 'a creator deactivated: the key holds nothing from the next request');
SELECT pg_temp.write(format($$UPDATE plystra.users SET status = 'active' WHERE id = %L$$, :'creator'));
SELECT is(pg_temp.decider(), 'authorized', 'the creator active again: the key holds its permission again');
SELECT pg_temp.write(format($$UPDATE plystra.users SET deleted_at = now() WHERE id = %L$$, :'creator'));
SELECT is(pg_temp.decider(), 'forbidden', 'a creator soft-deleted: the key holds nothing');
SELECT pg_temp.write(format($$UPDATE plystra.users SET deleted_at = NULL WHERE id = %L$$, :'creator'));

-- The creator's admin grants.
SELECT pg_temp.write(format($$UPDATE plystra.admin_grants SET status = 'revoked', revoked_at = now() WHERE id = %L$$, :'grant_id'));
SELECT is(pg_temp.decider(), 'forbidden', 'the creator''s grant revoked: the key is refused at the next request');
SELECT pg_temp.write(format($$INSERT INTO plystra.admin_grants (id, user_id, level, permission_key)
    VALUES (%L, %L, 'instance_admin', 'authz:check')$$, :'grant_id' || '_2', :'creator'));
SELECT is(pg_temp.decider(), 'authorized', 'a new grant to the creator counts at the next request');

------------------------------------------------------------------------------------------------------------------
-- Expiry is judged at every use: it needs no write.
------------------------------------------------------------------------------------------------------------------
SELECT pg_temp.write(format($$UPDATE plystra.admin_grants SET expires_at = clock_timestamp() + interval '1 second'
    WHERE id = %L$$, :'grant_id' || '_2'));
SELECT is(pg_temp.decider(), 'authorized', 'a grant that expires in a second holds now');
SELECT pg_temp.version() AS v2 \gset
SELECT pg_sleep(1.2);
SELECT is(pg_temp.decider(), 'forbidden', 'and no longer once it has expired, with nothing written');
SELECT pg_temp.write(format($$UPDATE plystra.admin_grants SET expires_at = NULL WHERE id = %L$$, :'grant_id' || '_2'));
SELECT pg_temp.write(format($$UPDATE plystra.api_keys SET expires_at = clock_timestamp() + interval '1 second' WHERE id = %L$$, :'key_id'));
SELECT is(pg_temp.decider(), 'authorized', 'a key that expires in a second is accepted now');
SELECT pg_temp.version() AS v3 \gset
SELECT pg_sleep(1.2);
SELECT is(pg_temp.decider(), 'unauthenticated', 'and refused once it has expired');
SELECT is(pg_temp.version(), :v3::bigint, 'with nothing written in between');
SELECT pg_temp.write(format($$UPDATE plystra.api_keys SET expires_at = NULL WHERE id = %L$$, :'key_id'));

------------------------------------------------------------------------------------------------------------------
-- A REPEATABLE READ transaction keeps its snapshot, kept key or not.
------------------------------------------------------------------------------------------------------------------
SELECT dblink_exec('t74_decider', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT pg_temp.decider();
SELECT pg_temp.write(format($$UPDATE plystra.api_keys SET status = 'revoked', revoked_at = now() WHERE id = %L$$, :'key_id'));
SELECT pg_temp.decider() AS inside_rr \gset
SELECT dblink_exec('t74_decider', 'COMMIT');
SELECT is(:'inside_rr'::text, 'authorized', 'inside a REPEATABLE READ snapshot taken before the revocation, the key holds');
SELECT is(pg_temp.decider(), 'unauthenticated', 'after that transaction, the committed revocation refuses it');

------------------------------------------------------------------------------------------------------------------
-- This transaction's own writes: a backend that kept the key, then revokes it itself.
------------------------------------------------------------------------------------------------------------------
SELECT pg_temp.write(format($$INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, permission_keys,
    created_by_user_id) VALUES (%L, 't74', 'ply_t74', %L, 'instance', '["authz:check"]', %L)$$,
    :'key_id' || '_own', :'key_hash' || '_own', :'creator'));
-- Autocommit statements of this backend (dblink to itself would be another backend), then its own transaction.
SELECT is(pg_temp.gate_on('t74_writer', :'key_id' || '_own', :'key_hash' || '_own'), 'authorized',
          'the writing backend keeps the second key of the run');
SELECT pg_temp.write('BEGIN');
SELECT pg_temp.write(format($$UPDATE plystra.api_keys SET status = 'revoked', revoked_at = now() WHERE id = %L$$, :'key_id' || '_own'));
SELECT is(pg_temp.gate_on('t74_writer', :'key_id' || '_own', :'key_hash' || '_own'), 'unauthenticated',
          'a revocation earlier in the same transaction refuses the key it kept');
SELECT pg_temp.write('ROLLBACK');
SELECT is(pg_temp.gate_on('t74_writer', :'key_id' || '_own', :'key_hash' || '_own'), 'authorized',
          'rolled back, the key is accepted again');
-- A gate call in the RETURNING of the statement that revokes the key (its trigger fires only at its end).
SELECT pg_temp.here(:'key_id' || '_own', :'key_hash' || '_own');
SAVEPOINT s;
WITH u AS (UPDATE plystra.api_keys SET status = 'revoked', revoked_at = now() WHERE id = :'key_id' || '_own'
           RETURNING pg_temp.here(:'key_id' || '_own', :'key_hash' || '_own') AS outcome)
SELECT is((SELECT outcome FROM u), 'unauthenticated', 'a gate call in the RETURNING of the revoking statement sees it');
ROLLBACK TO SAVEPOINT s;

------------------------------------------------------------------------------------------------------------------
-- A session: its own row is read every time; its User's standing (active, and the admin grants) is kept.
------------------------------------------------------------------------------------------------------------------
SELECT pg_temp.write(format($$INSERT INTO plystra.sessions (id, user_id, access_token_hash, refresh_token_hash,
    expires_at, refresh_expires_at) VALUES (%1$L, %2$L, %1$L || '_access', %1$L || '_refresh', now() + interval '1 hour',
    now() + interval '1 day')$$, 'ses_t74_' || txid_current(), :'creator'));
CREATE FUNCTION pg_temp.session_gate() RETURNS text LANGUAGE sql AS $$
    SELECT outcome FROM dblink('t74_decider', format($q$
        SELECT plystra.decide_with_credential(jsonb_build_object('session_token_hashes', jsonb_build_array(%L)),
                                              'authz:check', 'null', false, true) ->> 'outcome'$q$,
        'ses_t74_' || txid_current() || '_access')) AS t(outcome text)
$$;
SELECT is(pg_temp.session_gate(), 'authorized', 'the deciding backend: the run''s User''s session holds authz:check');
SELECT pg_temp.write(format($$BEGIN;
    ALTER TABLE plystra.admin_grants DISABLE TRIGGER credential_changed;
    UPDATE plystra.admin_grants SET status = 'revoked', revoked_at = now() WHERE id = %L;
    ALTER TABLE plystra.admin_grants ENABLE ALWAYS TRIGGER credential_changed;
    COMMIT$$, :'grant_id' || '_2'));
SELECT is(pg_temp.session_gate(), 'authorized', 'a grant revoked without moving the version: the kept User answers');
SELECT pg_temp.write($$UPDATE plystra.catalog_version SET version = nextval('plystra.catalog_version_seq')$$);
SELECT is(pg_temp.session_gate(), 'forbidden', 'the version moved: the backend reads the User anew');
SELECT pg_temp.write(format($$INSERT INTO plystra.admin_grants (id, user_id, level, permission_key)
    VALUES (%L, %L, 'instance_admin', 'authz:check')$$, :'grant_id' || '_3', :'creator'));
SELECT is(pg_temp.session_gate(), 'authorized', 'a new grant counts at the next request');
SELECT pg_temp.write(format($$UPDATE plystra.users SET status = 'disabled' WHERE id = %L$$, :'creator'));
SELECT is(pg_temp.session_gate(), 'unauthenticated', 'the User disabled: its session is refused at the next request');
SELECT pg_temp.write(format($$UPDATE plystra.users SET status = 'active' WHERE id = %L$$, :'creator'));
SELECT is(pg_temp.session_gate(), 'authorized', 'active again: the session is accepted');
SELECT pg_temp.write(format($$UPDATE plystra.sessions SET revoked_at = now() WHERE id = %L$$, 'ses_t74_' || txid_current()));
SELECT is(pg_temp.session_gate(), 'unauthenticated', 'the session revoked (a write that moves no version) is refused at once');

------------------------------------------------------------------------------------------------------------------
-- Why groups need no trigger, and who may write what.
------------------------------------------------------------------------------------------------------------------
SAVEPOINT s;
INSERT INTO plystra.groups (id, space_id, name, path) VALUES ('group_t74', 'space_acme', 'T74', 't74');
INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, group_id, permission_keys)
VALUES ('ak_t74_group', 't74', 'ply_t74', 'hash_t74_group', 'group', 'group_t74', '[]');
SELECT throws_ok($$DELETE FROM plystra.groups WHERE id = 'group_t74'$$, '23001', NULL,
                 'a group is never deleted (soft delete only), so a kept anchor cannot vanish');
SELECT throws_ok($$UPDATE plystra.groups SET path = 't74b' WHERE id = 'group_t74'$$, NULL, NULL,
                 'nor does its path change');
ROLLBACK TO SAVEPOINT s;

CREATE ROLE t74_admin NOLOGIN;
GRANT plystra_admin TO t74_admin;
SAVEPOINT s;
SET LOCAL ROLE t74_admin;
SELECT lives_ok(format($$UPDATE plystra.admin_grants SET status = 'revoked', revoked_at = now() WHERE id = %L$$,
                       :'grant_id' || '_3'),
                'plystra_admin revokes an admin grant (and so moves the version) without privileges on it');
RESET ROLE;
ROLLBACK TO SAVEPOINT s;
-- Neither the administration role nor an application role can switch keeping off or on, or move the version.
CREATE ROLE t74_app NOLOGIN;
GRANT plystra_app TO t74_app;
\ir helpers/sqlstate_as.sql
SELECT is(pg_temp.sqlstate_as('t74_admin', 'UPDATE plystra.catalog_version SET keeps_api_keys = false'), '42501',
          'plystra_admin cannot switch keeping credentials off');
SELECT is(pg_temp.sqlstate_as('t74_app', 'UPDATE plystra.catalog_version SET keeps_api_keys = true'), '42501',
          'an application role cannot switch it');

-- Leave the run's rows revoked.
SELECT pg_temp.write(format($$BEGIN;
    UPDATE plystra.api_keys SET status = 'revoked', revoked_at = now() WHERE id IN (%1$L, %1$L || '_own');
    UPDATE plystra.admin_grants SET status = 'revoked', revoked_at = now() WHERE id IN (%2$L, %2$L || '_2', %2$L || '_3')
       AND revoked_at IS NULL;
    COMMIT$$, :'key_id', :'grant_id'));

------------------------------------------------------------------------------------------------------------------
-- A new incarnation of the schema (DROP/CREATE EXTENSION, committed) whose version takes the very number a
-- deciding backend kept the key under, and a key of the same id and HMAC whose creator holds nothing: the kept
-- reading is not used. In a scratch database of this run.
------------------------------------------------------------------------------------------------------------------
SELECT pg_temp.write('DROP DATABASE IF EXISTS plystra_t74_incarnation WITH (FORCE)');
SELECT pg_temp.write('CREATE DATABASE plystra_t74_incarnation');
SELECT dblink_connect('t74_scratch', format('host=%s port=%s dbname=plystra_t74_incarnation user=%s',
    split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_user));
SELECT dblink_connect('t74_scratch_decider', format('host=%s port=%s dbname=plystra_t74_incarnation user=%s options=-cplystra.audit_mode=off',
    split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_user));
CREATE FUNCTION pg_temp.scratch_key(granted boolean) RETURNS text LANGUAGE sql AS $$
    SELECT dblink_exec('t74_scratch', format($q$BEGIN;
        INSERT INTO plystra.users (id, email) VALUES ('user_t74_scratch', 't74-scratch@example.com');
        INSERT INTO plystra.admin_grants (id, user_id, level, permission_key)
        SELECT 'ag_t74_scratch', 'user_t74_scratch', 'instance_admin', 'authz:check' WHERE %L;
        INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, permission_keys, created_by_user_id)
        VALUES ('ak_t74_scratch', 't74', 'ply_t74', 'hash_t74_scratch', 'instance', '["authz:check"]', 'user_t74_scratch');
        COMMIT$q$, granted))
$$;
SELECT dblink_exec('t74_scratch', 'CREATE EXTENSION plystra');
SELECT pg_temp.scratch_key(true);
SELECT is(pg_temp.gate_on('t74_scratch_decider', 'ak_t74_scratch', 'hash_t74_scratch'), 'authorized',
          'a deciding backend keeps the first incarnation''s key');
SELECT version AS first_version FROM dblink('t74_scratch', 'SELECT version FROM plystra.catalog_version') AS t(version bigint) \gset
SELECT dblink_exec('t74_scratch', 'DROP EXTENSION plystra CASCADE');
SELECT dblink_exec('t74_scratch', 'CREATE EXTENSION plystra');
SELECT pg_temp.scratch_key(false);
SELECT dblink_exec('t74_scratch', format('UPDATE plystra.catalog_version SET version = %s', :first_version));
SELECT is(pg_temp.gate_on('t74_scratch_decider', 'ak_t74_scratch', 'hash_t74_scratch'), 'forbidden',
          'after DROP/CREATE EXTENSION the same backend reads the new key, even under the same version number');
SELECT dblink_disconnect('t74_scratch_decider');
SELECT dblink_disconnect('t74_scratch');
SELECT pg_temp.write('DROP DATABASE plystra_t74_incarnation WITH (FORCE)');
SELECT dblink_disconnect('t74_writer');
SELECT dblink_disconnect('t74_decider');

SELECT * FROM finish();
ROLLBACK;
