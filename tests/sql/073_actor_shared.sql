-- The actors the server's backends share (plystra_pg/src/actor_shared.rs): a second tier in shared memory under
-- each backend's kept actors, filed under the database, the Space's actor version (incarnation and version) and
-- the actor's ids. Every decision here is made on a fresh connection (dblink, autocommit: a pooled service's
-- next connection), which has kept nothing itself, so plystra.actor_kept_stats() shows whether the shared tier
-- answered (shared_hits) and each promise below is seen to hold while it is in use.
-- Every actor here is made for this run (ids carry the transaction id: what the writer commits stays).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS dblink;
BEGIN;
SELECT plan(36);

SELECT 't73_' || txid_current() AS run \gset
SELECT set_config('t73.run', :'run', false);
\ir helpers/conninfo.sql
SELECT set_config('t73.conninfo', :'conninfo', false);
SELECT dblink_connect('t73_w', :'conninfo');

SELECT ok((SELECT setting::int FROM pg_settings WHERE name = 'plystra.shared_actor_cache_entries') > 0,
          'the server has a shared tier (the library is preloaded)');

-- The run's actor in space_acme, allowed to approve invoice_001 (in Finance) through one grant, made on `conn`.
CREATE FUNCTION pg_temp.make_actor(conn text) RETURNS text LANGUAGE sql AS $f$
    SELECT dblink_exec(conn, format($$
        INSERT INTO plystra.users (id, email) VALUES ('user_%1$s', '%1$s@example.com');
        INSERT INTO plystra.members (id, space_id, display_name) VALUES ('member_%1$s', 'space_acme', 'T73');
        INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type)
        VALUES ('um_%1$s', 'user_%1$s', 'member_%1$s', 'space_acme', 'login');
        INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id)
        VALUES ('mr_%1$s', 'member_%1$s', 'role_finance_approver', 'space_acme', 'group_finance')$$,
        current_setting('t73.run')))
$f$;
SELECT pg_temp.make_actor('t73_w');

-- A decision of the run's actor (or of the actor whose ids end in `who`) on a fresh connection to `db` (this
-- database by default), with the statements `before` run first on that connection, and that connection's
-- counters afterwards: {code, stats}.
CREATE FUNCTION pg_temp.fresh(who text DEFAULT '', before text DEFAULT '', db text DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    run text := current_setting('t73.run') || who;
    conninfo text := current_setting('t73.conninfo');
    out jsonb;
BEGIN
    IF db IS NOT NULL THEN
        conninfo := replace(conninfo, 'dbname=' || current_database(), 'dbname=' || db);
    END IF;
    PERFORM dblink_connect('t73_fresh', conninfo || ' options=-cplystra.audit_mode=off');
    IF before <> '' THEN
        PERFORM dblink_exec('t73_fresh', before);
    END IF;
    SELECT jsonb_build_object('code', code, 'stats', stats) INTO out FROM dblink('t73_fresh', format($q$
        SELECT coalesce(plystra.check(jsonb_build_object(
            'actor', jsonb_build_object('user_id', 'user_%1$s', 'member_id', 'member_%1$s',
                                        'user_member_id', 'um_%1$s', 'space_id', 'space_acme'),
            'resource_type', 'invoice', 'resource_id', 'invoice_001', 'action', 'approve'))->>'deny_code', 'ALLOW'),
            plystra.actor_kept_stats()$q$, run)) AS t(code text, stats jsonb);
    PERFORM dblink_disconnect('t73_fresh');
    RETURN out;
END $$;
CREATE FUNCTION pg_temp.w(stmt text) RETURNS text LANGUAGE sql AS $$
    SELECT dblink_exec('t73_w', format(stmt, current_setting('t73.run')))
$$;

------------------------------------------------------------------------------------------------------------------
-- Shared at all: a backend that never saw the actor finds what another backend read.
------------------------------------------------------------------------------------------------------------------
SELECT pg_temp.fresh() AS first \gset
SELECT is(:'first'::jsonb->>'code', 'ALLOW', 'the run''s actor may approve invoice_001');
SELECT is(:'first'::jsonb->'stats'->>'shared_fills', '1', 'the first backend read the actor and shared it');
SELECT pg_temp.fresh() AS second \gset
SELECT is(:'second'::jsonb->>'code', 'ALLOW', 'a second backend decides the same');
SELECT is((:'second'::jsonb->'stats')->>'shared_hits', '1', 'from the shared actor, without reading the tables');
SELECT is((:'second'::jsonb->'stats')->>'fills', '0', '(it filled nothing)');

------------------------------------------------------------------------------------------------------------------
-- A committed change: the shared actor of the older version is not used.
------------------------------------------------------------------------------------------------------------------
SELECT pg_temp.w($$UPDATE plystra.member_roles SET status = 'revoked' WHERE id = 'mr_%s'$$);
SELECT pg_temp.fresh() AS after_revoke \gset
SELECT is(:'after_revoke'::jsonb->>'code', 'NO_MATCHING_PERMISSION', 'a committed revoke denies on a fresh backend');
SELECT is((:'after_revoke'::jsonb->'stats')->>'shared_hits', '0', 'which did not use the shared actor of the older version');
SELECT is(pg_temp.fresh()->'stats'->>'shared_hits', '1', 'the newer state was shared in its turn');
SELECT is(pg_temp.fresh()->>'code', 'NO_MATCHING_PERMISSION', 'and denies from the shared tier too');

------------------------------------------------------------------------------------------------------------------
-- REPEATABLE READ: a snapshot taken before a change never takes the newer shared actor, and a newer snapshot
-- never takes what the older one shared.
------------------------------------------------------------------------------------------------------------------
SELECT dblink_connect('t73_rr', :'conninfo' || ' options=-cplystra.audit_mode=off');
CREATE FUNCTION pg_temp.rr() RETURNS text LANGUAGE sql AS $$
    SELECT code FROM dblink('t73_rr', format($q$
        SELECT coalesce(plystra.check(jsonb_build_object(
            'actor', jsonb_build_object('user_id', 'user_%1$s', 'member_id', 'member_%1$s',
                                        'user_member_id', 'um_%1$s', 'space_id', 'space_acme'),
            'resource_type', 'invoice', 'resource_id', 'invoice_001', 'action', 'approve'))->>'deny_code', 'ALLOW')$q$,
        current_setting('t73.run'))) AS t(code text)
$$;
SELECT dblink_exec('t73_rr', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT * FROM dblink('t73_rr', 'SELECT 1') AS t(one int);  -- the snapshot: the grant revoked
SELECT pg_temp.w($$UPDATE plystra.member_roles SET status = 'active' WHERE id = 'mr_%s'$$);
SELECT is(pg_temp.fresh()->>'code', 'ALLOW', 'the grant restored and committed: a fresh backend allows (and shares that)');
SELECT is(pg_temp.rr(), 'NO_MATCHING_PERMISSION',
          'a REPEATABLE READ snapshot taken before the restore still denies: the shared actor is of a newer version');
SELECT is((SELECT s->>'shared_hits' FROM dblink('t73_rr', 'SELECT plystra.actor_kept_stats()') AS t(s jsonb)), '0',
          '(it did not use the shared actor)');
SELECT dblink_exec('t73_rr', 'COMMIT');
SELECT dblink_disconnect('t73_rr');
SELECT pg_temp.fresh() AS after_rr \gset
SELECT is(:'after_rr'::jsonb->>'code', 'ALLOW', 'a fresh backend after it allows');
SELECT is((:'after_rr'::jsonb->'stats')->>'shared_hits', '0',
          '(what the older snapshot shared, in the same slot, is not taken by a newer one)');

------------------------------------------------------------------------------------------------------------------
-- A transaction that has written a kept table reads the tables, whatever is shared.
------------------------------------------------------------------------------------------------------------------
SELECT pg_temp.fresh(before => format($$BEGIN; UPDATE plystra.member_roles SET status = 'revoked' WHERE id = 'mr_%s'$$,
                                      :'run')) AS writing \gset
SELECT is(:'writing'::jsonb->>'code', 'NO_MATCHING_PERMISSION', 'a revoke earlier in the same transaction denies');
SELECT is((:'writing'::jsonb->'stats')->>'shared_hits', '0', 'a transaction that has written a kept table takes nothing shared');
SELECT is(pg_temp.fresh()->>'code', 'ALLOW', 'rolled back (the connection closed), the shared grant counts');

------------------------------------------------------------------------------------------------------------------
-- An actor too large for a slot is kept per backend only, and decides as the tables say.
------------------------------------------------------------------------------------------------------------------
SELECT pg_temp.w($$
    INSERT INTO plystra.users (id, email) VALUES ('user_%1$s_big', '%1$s_big@example.com');
    INSERT INTO plystra.members (id, space_id, display_name) VALUES ('member_%1$s_big', 'space_acme', 'T73 big');
    INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type)
    VALUES ('um_%1$s_big', 'user_%1$s_big', 'member_%1$s_big', 'space_acme', 'login');
    INSERT INTO plystra.groups (id, space_id, parent_group_id, name, display_name, path)
    SELECT 'group_%1$s_' || i, 'space_acme', 'group_legal', 'G' || i, 'G' || i, 'legal.%1$s_' || i
    FROM generate_series(1, 40) i;
    INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id)
    SELECT 'mr_%1$s_big_' || i, 'member_%1$s_big', 'role_finance_approver', 'space_acme', 'group_%1$s_' || i
    FROM generate_series(1, 40) i$$);
SELECT pg_temp.fresh('_big') AS big \gset
SELECT is(:'big'::jsonb->>'code', 'SCOPE_OUT_OF_BOUNDS', 'an actor with 40 grants under Legal may not approve in Finance');
SELECT is((:'big'::jsonb->'stats')->>'shared_fills', '0', 'too large to share: kept per backend only');
SELECT is((:'big'::jsonb->'stats')->>'fills', '1', '(kept per backend)');
SELECT pg_temp.w($$INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id)
                   VALUES ('mr_%1$s_big_fin', 'member_%1$s_big', 'role_finance_approver', 'space_acme', 'group_finance')$$);
SELECT pg_temp.fresh('_big') AS big \gset
SELECT is(:'big'::jsonb->>'code', 'ALLOW', 'a 41st grant over Finance allows');
SELECT is((:'big'::jsonb->'stats')->>'shared_hits', '0', '(read from the tables again: nothing shared)');

------------------------------------------------------------------------------------------------------------------
-- Binding ids may be chosen by whoever creates a binding. Ids chosen to land in the run's actor's bucket under an
-- unkeyed hash (FNV-1a of the database and the id, what 1.9.0 was first written with) do not push it out: the
-- bucket hash is keyed by a random key drawn at server start.
------------------------------------------------------------------------------------------------------------------
CREATE FUNCTION pg_temp.fnv_bucket(db oid, id text, buckets numeric) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
    h numeric := 14695981039346656037;
    lo int;
    -- The database's id as 4 little-endian bytes, then the id's.
    bytes bytea := decode(lpad(to_hex((db::bigint & 255)::int), 2, '0')
                          || lpad(to_hex(((db::bigint >> 8) & 255)::int), 2, '0')
                          || lpad(to_hex(((db::bigint >> 16) & 255)::int), 2, '0')
                          || lpad(to_hex(((db::bigint >> 24) & 255)::int), 2, '0'), 'hex') || convert_to(id, 'UTF8');
BEGIN
    FOR i IN 0 .. length(bytes) - 1 LOOP
        lo := (h % 256)::int;
        h := h - lo + (lo # get_byte(bytes, i));
        h := (h * 1099511628211) % 18446744073709551616;
    END LOOP;
    RETURN h % buckets;
END $$;
SELECT (pg_temp.fresh()->'stats'->>'shared_slots')::numeric / 4 AS buckets \gset
SELECT pg_temp.fnv_bucket((SELECT oid FROM pg_database WHERE datname = current_database()), 'um_' || :'run', :buckets)
    AS target \gset
CREATE TEMP TABLE t73_colliders AS
SELECT 'c' || i AS who FROM generate_series(0, 200000) i
WHERE pg_temp.fnv_bucket((SELECT oid FROM pg_database WHERE datname = current_database()), 'um_' || :'run' || '_c' || i,
                         :buckets) = :target
LIMIT 7;
SELECT is((SELECT count(*) FROM t73_colliders), 7::bigint, 'seven binding ids that share the actor''s unkeyed bucket');
SELECT pg_temp.w(format($$
    INSERT INTO plystra.users (id, email)
    SELECT 'user_%1$s_' || who, '%1$s_' || who || '@example.com' FROM unnest(%2$L::text[]) who;
    INSERT INTO plystra.members (id, space_id, display_name)
    SELECT 'member_%1$s_' || who, 'space_acme', who FROM unnest(%2$L::text[]) who;
    INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type)
    SELECT 'um_%1$s_' || who, 'user_%1$s_' || who, 'member_%1$s_' || who, 'space_acme', 'login'
    FROM unnest(%2$L::text[]) who$$,
    '%1$s', (SELECT array_agg(who) FROM t73_colliders)));
SELECT is(pg_temp.fresh()->>'code', 'ALLOW', 'the run''s actor decides (and is shared again under this version)');
-- All seven decide in one backend: the first fill the bucket, the next replace its slots in turn.
SELECT dblink_connect('t73_c', :'conninfo' || ' options=-cplystra.audit_mode=off');
SELECT count(*) FROM t73_colliders, LATERAL dblink('t73_c', format($q$
    SELECT plystra.check(jsonb_build_object(
        'actor', jsonb_build_object('user_id', 'user_%1$s', 'member_id', 'member_%1$s', 'user_member_id', 'um_%1$s',
                                    'space_id', 'space_acme'),
        'resource_type', 'invoice', 'resource_id', 'invoice_001', 'action', 'approve'))->>'decision'$q$,
    :'run' || '_' || who)) AS t(decision text);
SELECT is((SELECT (s->>'shared_fills')::int FROM dblink('t73_c', 'SELECT plystra.actor_kept_stats()') AS t(s jsonb)), 7,
          'the seven were shared');
SELECT dblink_disconnect('t73_c');
SELECT is(pg_temp.fresh()->'stats'->>'shared_hits', '1', 'the run''s actor is still shared: the seven did not aim at its bucket');

------------------------------------------------------------------------------------------------------------------
-- Two databases of one server with the same incarnation and the same version numbers (CREATE DATABASE ...
-- TEMPLATE copies both, and each copy's sequence then hands out the same numbers): an actor shared in one is
-- never used in the other.
------------------------------------------------------------------------------------------------------------------
SELECT dblink_exec('t73_w', 'DROP DATABASE IF EXISTS plystra_t73_a WITH (FORCE)');
SELECT dblink_exec('t73_w', 'DROP DATABASE IF EXISTS plystra_t73_b WITH (FORCE)');
SELECT dblink_exec('t73_w', 'CREATE DATABASE plystra_t73_a');
SELECT dblink_connect('t73_a', replace(:'conninfo', 'dbname=' || current_database(), 'dbname=plystra_t73_a'));
\set demo `cat sql/demo.sql`
SELECT dblink_exec('t73_a', 'CREATE EXTENSION plystra');
SELECT dblink_exec('t73_a', :'demo');
SELECT pg_temp.make_actor('t73_a');
SELECT dblink_disconnect('t73_a');
SELECT dblink_exec('t73_w', 'CREATE DATABASE plystra_t73_b TEMPLATE plystra_t73_a');
SELECT dblink_connect('t73_a', replace(:'conninfo', 'dbname=' || current_database(), 'dbname=plystra_t73_a'));
SELECT dblink_connect('t73_b', replace(:'conninfo', 'dbname=' || current_database(), 'dbname=plystra_t73_b'));
-- In a, the grant is revoked; in b, the Member is renamed: each moves space_acme to the same next number.
SELECT dblink_exec('t73_a', format($$UPDATE plystra.member_roles SET status = 'revoked' WHERE id = 'mr_%s'$$, :'run'));
SELECT dblink_exec('t73_b', format($$UPDATE plystra.members SET display_name = 'T73 b' WHERE id = 'member_%s'$$, :'run'));
CREATE FUNCTION pg_temp.version_of(conn text) RETURNS text LANGUAGE sql AS $$
    SELECT v FROM dblink(conn, $q$SELECT incarnation || ' ' || version FROM plystra.actor_versions
                                  WHERE space_id = 'space_acme'$q$) AS t(v text)
$$;
SELECT is(pg_temp.version_of('t73_a'), pg_temp.version_of('t73_b'),
          'the two databases'' space_acme rows have the same incarnation and version');
SELECT dblink_disconnect('t73_a');
SELECT dblink_disconnect('t73_b');
SELECT is(pg_temp.fresh(db => 'plystra_t73_b')->>'code', 'ALLOW', 'in b the actor may approve (and is shared)');
SELECT pg_temp.fresh(db => 'plystra_t73_a') AS in_a \gset
SELECT is(:'in_a'::jsonb->>'code', 'NO_MATCHING_PERMISSION', 'in a, where the grant is revoked, the actor may not');
SELECT is((:'in_a'::jsonb->'stats')->>'shared_hits', '0', 'a never takes what b shared');

-- A restore in place (the extension dropped and created again, the data loaded again): the Spaces' version rows
-- get new incarnations, so what was shared before is never taken, even under the same version number.
SELECT dblink_connect('t73_b', replace(:'conninfo', 'dbname=' || current_database(), 'dbname=plystra_t73_b'));
SELECT split_part(pg_temp.version_of('t73_b'), ' ', 2) AS b_version \gset
SELECT dblink_exec('t73_b', 'DROP EXTENSION plystra CASCADE');
SELECT dblink_exec('t73_b', 'CREATE EXTENSION plystra');
SELECT dblink_exec('t73_b', :'demo');
SELECT pg_temp.make_actor('t73_b');
SELECT dblink_exec('t73_b', format($$BEGIN;
    ALTER TABLE plystra.member_roles DISABLE TRIGGER actor_changed_update;
    UPDATE plystra.member_roles SET status = 'revoked' WHERE id = 'mr_%s';
    ALTER TABLE plystra.member_roles ENABLE ALWAYS TRIGGER actor_changed_update;
    UPDATE plystra.actor_versions SET version = %s WHERE space_id = 'space_acme';
    COMMIT$$, :'run', :b_version));
SELECT is(split_part(pg_temp.version_of('t73_b'), ' ', 2), :'b_version', 'the reinstalled b shows the same version number');
SELECT dblink_disconnect('t73_b');
SELECT pg_temp.fresh(db => 'plystra_t73_b') AS reinstalled \gset
SELECT is(:'reinstalled'::jsonb->>'code', 'NO_MATCHING_PERMISSION', 'in the reinstalled b the revoked grant denies');
SELECT is((:'reinstalled'::jsonb->'stats')->>'shared_hits', '0', 'nothing shared before the reinstall is taken');
SELECT dblink_exec('t73_w', 'DROP DATABASE plystra_t73_a WITH (FORCE)');
SELECT dblink_exec('t73_w', 'DROP DATABASE plystra_t73_b WITH (FORCE)');

------------------------------------------------------------------------------------------------------------------
-- Decision ids (each backend draws a key from the strong random source once, then hashes a counter): distinct
-- within a backend and across backends, and of the documented form.
------------------------------------------------------------------------------------------------------------------
CREATE TEMP TABLE t73_ids AS
SELECT id FROM generate_series(1, 2) b, LATERAL (
    SELECT id FROM dblink(:'conninfo' || ' options=-cplystra.audit_mode=off application_name=t73_' || b, $q$
        SELECT plystra.check('{"actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer",
            "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"}, "resource_type": "invoice",
            "resource_id": "invoice_001", "action": "approve"}')->>'trace_id' FROM generate_series(1, 500)$q$)
        AS t(id text)) ids;
SELECT is((SELECT count(DISTINCT id) FROM t73_ids), 1000::bigint, '1,000 decisions in two backends: 1,000 distinct ids');
SELECT is((SELECT count(*) FROM t73_ids WHERE id !~ '^trc_[0-9a-f]{16}$'), 0::bigint, 'each trc_ and 16 hex digits');

SELECT dblink_disconnect('t73_w');

SELECT * FROM finish();
ROLLBACK;
