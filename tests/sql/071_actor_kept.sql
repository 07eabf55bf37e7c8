-- The actors a backend keeps between decisions (plystra_pg/src/actor_kept.rs, migration 014): the User, Member,
-- binding and Space rows and the Member's grants with their anchors, kept under the Space's actor version. Only
-- transactions that have written nothing use them; whatever is kept, a decision answers as the tables read under
-- its own snapshot would. The deciding backend is a second one (dblink, autocommit: a service's connection),
-- deciding while a writer backend changes the tables under it; plystra.actor_kept_stats() shows that the kept
-- actor was in fact used (hits), so that no promise below holds only because nothing is kept.
-- Every actor here is made for this run (ids carry the transaction id: what the writer commits stays).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS dblink;
BEGIN;
SELECT plan(59);

SELECT 't71_' || txid_current() AS run \gset
\ir helpers/conninfo.sql
SELECT dblink_connect('t71_w', :'conninfo');
SELECT dblink_connect('t71_w2', :'conninfo');
SELECT dblink_connect('t71_d', :'conninfo' || ' options=-cplystra.audit_mode=off');

-- The run's actor in space_acme: User, Member, binding, and the approver Role over Finance (invoice_001 lies in
-- Finance); a Role that may reject, not granted yet; and another Space with its own Member.
SELECT dblink_exec('t71_w', format($$
    INSERT INTO plystra.users (id, email) VALUES ('user_%1$s', '%1$s@example.com');
    INSERT INTO plystra.members (id, space_id, display_name) VALUES ('member_%1$s', 'space_acme', 'T71');
    INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type)
    VALUES ('um_%1$s', 'user_%1$s', 'member_%1$s', 'space_acme', 'login');
    INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id)
    VALUES ('mr_%1$s', 'member_%1$s', 'role_finance_approver', 'space_acme', 'group_finance');
    INSERT INTO plystra.roles (id, space_id, key, name) VALUES ('role_%1$s', 'space_acme', '%1$s', 'T71 reject');
    INSERT INTO plystra.role_permissions (id, role_id, permission_id)
    VALUES ('rp_%1$s', 'role_%1$s', 'perm_invoice_reject_group_tree');
    INSERT INTO plystra.spaces (id, name) VALUES ('space_%1$s', 'T71 other');
    INSERT INTO plystra.members (id, space_id, display_name) VALUES ('member_%1$s_other', 'space_%1$s', 'T71 other')$$,
    :'run'));

-- The decision of the run's actor, on a given connection, and the deciding backend's counters.
CREATE FUNCTION pg_temp.on(conn text, act text DEFAULT 'approve') RETURNS text LANGUAGE sql AS $$
    SELECT code FROM dblink(conn, format($q$
        SELECT coalesce(plystra.check(jsonb_build_object(
            'actor', jsonb_build_object('user_id', 'user_%1$s', 'member_id', 'member_%1$s',
                                        'user_member_id', 'um_%1$s', 'space_id', 'space_acme'),
            'resource_type', 'invoice', 'resource_id', 'invoice_001', 'action', %2$L))->>'deny_code', 'ALLOW')$q$,
        current_setting('t71.run'), act)) AS t(code text)
$$;
SELECT set_config('t71.run', :'run', false);
CREATE FUNCTION pg_temp.d(act text DEFAULT 'approve') RETURNS text LANGUAGE sql AS $$ SELECT pg_temp.on('t71_d', act) $$;
CREATE FUNCTION pg_temp.hits() RETURNS bigint LANGUAGE sql AS $$
    SELECT (s->>'hits')::bigint FROM dblink('t71_d', 'SELECT plystra.actor_kept_stats()') AS t(s jsonb)
$$;
CREATE FUNCTION pg_temp.fills() RETURNS bigint LANGUAGE sql AS $$
    SELECT (s->>'fills')::bigint FROM dblink('t71_d', 'SELECT plystra.actor_kept_stats()') AS t(s jsonb)
$$;
CREATE FUNCTION pg_temp.w(stmt text) RETURNS text LANGUAGE sql AS $$
    SELECT dblink_exec('t71_w', format(stmt, current_setting('t71.run')))
$$;
CREATE FUNCTION pg_temp.on_d(stmt text) RETURNS text LANGUAGE sql AS $$
    SELECT dblink_exec('t71_d', format(stmt, current_setting('t71.run')))
$$;

------------------------------------------------------------------------------------------------------------------
-- Kept at all: a second decision uses what the first read.
------------------------------------------------------------------------------------------------------------------
SELECT is(pg_temp.d(), 'ALLOW', 'the run''s actor may approve invoice_001 (its actor is now kept)');
SELECT pg_temp.hits() AS h0 \gset
SELECT is(pg_temp.d(), 'ALLOW', 'and again');
SELECT is(pg_temp.hits(), :h0::bigint + 1, 'the second decision used the kept actor');

-- While nothing completes in between, consecutive snapshots show the same committed rows and the deciding backend
-- takes its version rows as last read (plystra_pg/src/same_snapshot.rs); the moment another session commits, the
-- next decision reads them again and sees the change.
CREATE FUNCTION pg_temp.remembered() RETURNS bigint LANGUAGE sql AS $$
    SELECT (s->>'version_rows_remembered')::bigint FROM dblink('t71_d', 'SELECT plystra.actor_kept_stats()') AS t(s jsonb)
$$;
SELECT pg_temp.remembered() AS r0 \gset
SELECT pg_temp.d() FROM generate_series(1, 5);
SELECT cmp_ok(pg_temp.remembered(), '>', :r0::bigint,
              'decisions under unchanged snapshots took their version rows as last read');
SELECT pg_temp.w($$UPDATE plystra.member_roles SET status = 'revoked' WHERE id = 'mr_%s'$$);
SELECT is(pg_temp.d(), 'NO_MATCHING_PERMISSION', 'right after, a revoke committed by another session denies');
SELECT pg_temp.w($$UPDATE plystra.member_roles SET status = 'active' WHERE id = 'mr_%s'$$);
SELECT is(pg_temp.d(), 'ALLOW', 'and its undoing counts at the next decision');

------------------------------------------------------------------------------------------------------------------
-- The deciding backend's own transaction.
------------------------------------------------------------------------------------------------------------------
SELECT pg_temp.on_d('BEGIN');
SELECT pg_temp.on_d($$UPDATE plystra.member_roles SET status = 'revoked' WHERE id = 'mr_%s'$$);
SELECT is(pg_temp.d(), 'NO_MATCHING_PERMISSION', 'a revoke earlier in the same transaction already denies');
SELECT pg_temp.on_d('ROLLBACK');
SELECT is(pg_temp.d(), 'ALLOW', 'rolled back, the grant counts again');

SELECT is(pg_temp.d('reject'), 'NO_MATCHING_PERMISSION', 'the run''s actor may not reject (kept without that grant)');
SELECT pg_temp.on_d('BEGIN');
SELECT pg_temp.on_d($$INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id)
                     VALUES ('mr_%1$s_reject', 'member_%1$s', 'role_%1$s', 'space_acme', 'group_finance')$$);
SELECT is(pg_temp.d('reject'), 'ALLOW', 'a grant added earlier in the same transaction counts');
SELECT pg_temp.on_d('ROLLBACK');
SELECT is(pg_temp.d('reject'), 'NO_MATCHING_PERMISSION', 'rolled back, it counts no more');

SELECT pg_temp.on_d('BEGIN');
SELECT pg_temp.on_d('SAVEPOINT s');
SELECT pg_temp.on_d($$UPDATE plystra.members SET status = 'disabled' WHERE id = 'member_%s'$$);
SELECT is(pg_temp.d(), 'ACTOR_MEMBER_INACTIVE', 'in a savepoint, a Member disabled denies');
SELECT pg_temp.on_d('ROLLBACK TO SAVEPOINT s');
SELECT is(pg_temp.d(), 'ALLOW', 'the savepoint rolled back, the Member is active again');
SELECT pg_temp.on_d('COMMIT');

-- Inside the very statement that revokes (its version trigger fires only at the statement's end): the decision
-- sees the revoke as any SQL in that statement would.
SELECT pg_temp.d();
SELECT pg_temp.on_d('BEGIN');
SELECT code AS in_statement FROM dblink('t71_d', format($q$
    WITH u AS (UPDATE plystra.member_roles SET status = 'revoked' WHERE id = 'mr_%1$s'
               RETURNING coalesce(plystra.check(jsonb_build_object(
                   'actor', jsonb_build_object('user_id', 'user_%1$s', 'member_id', 'member_%1$s',
                                               'user_member_id', 'um_%1$s', 'space_id', 'space_acme'),
                   'resource_type', 'invoice', 'resource_id', 'invoice_001', 'action', 'approve'))->>'deny_code', 'ALLOW') AS c)
    SELECT c FROM u$q$, :'run')) AS t(code text) \gset
SELECT pg_temp.on_d('ROLLBACK');
SELECT is(:'in_statement'::text, 'NO_MATCHING_PERMISSION',
          'a decision in the RETURNING of the statement that revokes the grant sees the revoke');

------------------------------------------------------------------------------------------------------------------
-- Changes by another session.
------------------------------------------------------------------------------------------------------------------
SELECT pg_temp.d();
SELECT dblink_exec('t71_w', 'BEGIN');
SELECT pg_temp.w($$UPDATE plystra.member_roles SET status = 'revoked' WHERE id = 'mr_%s'$$);
SELECT is(pg_temp.d(), 'ALLOW', 'a revoke not yet committed by another session does not count');
SELECT dblink_exec('t71_w', 'COMMIT');
SELECT is(pg_temp.d(), 'NO_MATCHING_PERMISSION', 'committed, it denies from the next statement');
SELECT dblink_exec('t71_w', 'BEGIN');
SELECT pg_temp.w($$UPDATE plystra.member_roles SET status = 'active' WHERE id = 'mr_%s'$$);
SELECT is(pg_temp.d(), 'NO_MATCHING_PERMISSION', 'a grant not yet committed does not count');
SELECT dblink_exec('t71_w', 'COMMIT');
SELECT is(pg_temp.d(), 'ALLOW', 'committed, it counts from the next statement');

-- REPEATABLE READ keeps its snapshot; and the same backend alternating an older snapshot (imported from another
-- session) and the newest state answers each as its snapshot shows.
SELECT pg_temp.on_d('BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT pg_temp.d();
SELECT pg_temp.w($$UPDATE plystra.member_roles SET status = 'revoked' WHERE id = 'mr_%s'$$);
SELECT is(pg_temp.d(), 'ALLOW', 'inside a REPEATABLE READ snapshot taken before the revoke, the grant counts');
SELECT pg_temp.on_d('COMMIT');
SELECT is(pg_temp.d(), 'NO_MATCHING_PERMISSION', 'after that transaction, the committed revoke denies');
SELECT dblink_exec('t71_w2', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT snap AS old_snapshot FROM dblink('t71_w2', 'SELECT pg_export_snapshot()') AS t(snap text) \gset
SELECT pg_temp.w($$UPDATE plystra.member_roles SET status = 'active' WHERE id = 'mr_%s'$$);
SELECT is(pg_temp.d(), 'ALLOW', 'the grant restored: the deciding backend keeps the newest state');
SELECT pg_temp.on_d('BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT dblink_exec('t71_d', format('SET TRANSACTION SNAPSHOT %L', :'old_snapshot'));
SELECT is(pg_temp.d(), 'NO_MATCHING_PERMISSION', 'the same backend under the older snapshot: the revoke it shows denies');
SELECT pg_temp.on_d('COMMIT');
SELECT dblink_exec('t71_w2', 'COMMIT');
SELECT is(pg_temp.d(), 'ALLOW', 'and back on the newest snapshot, the grant counts');

-- Each actor row, changed and committed by another session.
SELECT pg_temp.w($$UPDATE plystra.users SET status = 'disabled' WHERE id = 'user_%s'$$);
SELECT is(pg_temp.d(), 'ACTOR_USER_INACTIVE', 'a User disabled by another session denies');
SELECT pg_temp.w($$UPDATE plystra.users SET status = 'active' WHERE id = 'user_%s'$$);
SELECT pg_temp.w($$UPDATE plystra.members SET status = 'disabled' WHERE id = 'member_%s'$$);
SELECT is(pg_temp.d(), 'ACTOR_MEMBER_INACTIVE', 'a Member disabled by another session denies');
SELECT pg_temp.w($$UPDATE plystra.members SET status = 'active' WHERE id = 'member_%s'$$);
SELECT is(pg_temp.d(), 'ALLOW', 'active again, allowed again');
SELECT pg_temp.w($$UPDATE plystra.groups SET status = 'disabled' WHERE id = 'group_finance'$$);
SELECT is(pg_temp.d(), 'SCOPE_ANCHOR_MISSING', 'the grant''s anchor group disabled: the grant confers nothing');
SELECT pg_temp.w($$UPDATE plystra.groups SET status = 'active' WHERE id = 'group_finance'$$);
SELECT is(pg_temp.d(), 'ALLOW', 'the anchor active again');
SELECT pg_temp.w($$UPDATE plystra.member_roles SET scope_anchor_group_id = 'group_legal' WHERE id = 'mr_%s'$$);
SELECT is(pg_temp.d(), 'SCOPE_OUT_OF_BOUNDS', 'the grant moved to another anchor (Legal) no longer reaches invoice_001');
SELECT pg_temp.w($$UPDATE plystra.member_roles SET scope_anchor_group_id = 'group_finance' WHERE id = 'mr_%s'$$);
SELECT pg_temp.w($$UPDATE plystra.spaces SET status = 'disabled' WHERE id = 'space_acme'$$);
SELECT is(pg_temp.d(), 'SPACE_INACTIVE', 'the Space disabled by another session denies');
SELECT pg_temp.w($$UPDATE plystra.spaces SET status = 'active' WHERE id = 'space_acme'$$);

-- Expiry is judged at decision time, on the kept row: a binding that expires while kept denies without any write.
SELECT pg_temp.w($$UPDATE plystra.user_members SET expires_at = clock_timestamp() + interval '2 seconds' WHERE id = 'um_%s'$$);
SELECT is(pg_temp.d(), 'ALLOW', 'a binding expiring in 2 seconds still allows (and is kept)');
SELECT pg_temp.hits() AS h1 \gset
SELECT pg_sleep(2.5);
SELECT is(pg_temp.d(), 'USER_MEMBER_EXPIRED', 'once its time has passed, the kept binding is expired');
SELECT is(pg_temp.hits(), :h1::bigint + 1, 'that decision used the kept actor: expiry is not a kept verdict');
SELECT pg_temp.w($$UPDATE plystra.user_members SET expires_at = NULL WHERE id = 'um_%s'$$);

-- Another Space's writes leave this Space's kept actors alone.
SELECT is(pg_temp.d(), 'ALLOW', 'the binding without expiry allows again');
SELECT pg_temp.hits() AS h2 \gset
SELECT pg_temp.w($$UPDATE plystra.members SET status = 'disabled' WHERE id = 'member_%s_other'$$);
SELECT pg_temp.w($$UPDATE plystra.spaces SET name = 'T71 other, renamed' WHERE id = 'space_%s'$$);
SELECT is(pg_temp.d(), 'ALLOW', 'after writes in another Space');
SELECT is(pg_temp.hits(), :h2::bigint + 1, 'the decision still used the kept actor (another Space''s writes do not invalidate it)');

-- A User change moves every Space where the User has a binding: a binding in the other Space, then the User
-- disabled, moves both.
SELECT pg_temp.w($$INSERT INTO plystra.members (id, space_id, display_name) VALUES ('member_%1$s_2', 'space_%1$s', 'T71 2');
                   INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type)
                   VALUES ('um_%1$s_2', 'user_%1$s', 'member_%1$s_2', 'space_%1$s', 'login')$$);
SELECT version AS other_v0 FROM plystra.actor_versions WHERE space_id = 'space_' || :'run' \gset
SELECT version AS acme_v0 FROM plystra.actor_versions WHERE space_id = 'space_acme' \gset
SELECT pg_temp.w($$UPDATE plystra.users SET email = 'moved_%1$s@example.com' WHERE id = 'user_%1$s'$$);
SELECT ok((SELECT version FROM plystra.actor_versions WHERE space_id = 'space_' || :'run') > :other_v0
          AND (SELECT version FROM plystra.actor_versions WHERE space_id = 'space_acme') > :acme_v0,
          'a User''s change moves the version of both Spaces where it has a binding');

-- A User changed in REPEATABLE READ while another session binds it in a Space that User's snapshot cannot see:
-- the later of the two fails (40001) rather than leave that Space's version unmoved.
SELECT dblink_exec('t71_w2', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT * FROM dblink('t71_w2', 'SELECT 1') AS t(one int);
SELECT pg_temp.w($$INSERT INTO plystra.spaces (id, name) VALUES ('space_%1$s_3', 'T71 3');
                   INSERT INTO plystra.members (id, space_id, display_name) VALUES ('member_%1$s_3', 'space_%1$s_3', 'T71 3');
                   INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type)
                   VALUES ('um_%1$s_3', 'user_%1$s', 'member_%1$s_3', 'space_%1$s_3', 'login')$$);
SELECT is((SELECT state FROM dblink('t71_w2', format($$
    DO $b$ BEGIN
        UPDATE plystra.users SET status = 'disabled' WHERE id = 'user_%s';
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = '00000';
    EXCEPTION WHEN OTHERS THEN RAISE NOTICE '%%', SQLSTATE; PERFORM set_config('t71.state', SQLSTATE, false);
    END $b$; SELECT current_setting('t71.state')$$, :'run')) AS t(state text)), '40001',
    'a User changed under a REPEATABLE READ snapshot older than a new binding of it fails with 40001');
SELECT dblink_exec('t71_w2', 'ROLLBACK');

-- An actor that is not wholly found, or not wholly in the request's Space, is never kept: its answer can depend on
-- rows no version of this Space covers. Here a User that does not exist yet, named with the run's binding (which
-- joins another User): created, it has no binding, so its creation moves no Space's version.
CREATE FUNCTION pg_temp.d_stranger() RETURNS text LANGUAGE sql AS $$
    SELECT code FROM dblink('t71_d', format($q$
        SELECT coalesce(plystra.check(jsonb_build_object(
            'actor', jsonb_build_object('user_id', 'user_%1$s_stranger', 'member_id', 'member_%1$s',
                                        'user_member_id', 'um_%1$s', 'space_id', 'space_acme'),
            'resource_type', 'invoice', 'resource_id', 'invoice_001', 'action', 'approve'))->>'deny_code', 'ALLOW')$q$,
        current_setting('t71.run'))) AS t(code text)
$$;
SELECT is(pg_temp.d_stranger(), 'ACTOR_NOT_FOUND', 'a User that does not exist is not found');
SELECT pg_temp.w($$INSERT INTO plystra.users (id, email) VALUES ('user_%1$s_stranger', '%1$s_stranger@example.com')$$);
SELECT isnt(pg_temp.d_stranger(), 'ACTOR_NOT_FOUND', 'created by another session, it is found at the next statement');

-- What a User's login writes (last_login_at) is nothing a decision reads: it moves no Space's version (so a login
-- neither drops a Space's kept actors nor waits for its writers); an email, which a trace shows, does.
SELECT version AS acme_v1 FROM plystra.actor_versions WHERE space_id = 'space_acme' \gset
SELECT pg_temp.w($$UPDATE plystra.users SET last_login_at = now() WHERE id = 'user_%s'$$);
SELECT is((SELECT version FROM plystra.actor_versions WHERE space_id = 'space_acme'), :acme_v1::bigint,
          'a login (last_login_at) leaves the version alone');
SELECT pg_temp.w($$UPDATE plystra.users SET email = 'changed_%1$s@example.com' WHERE id = 'user_%1$s'$$);
SELECT cmp_ok((SELECT version FROM plystra.actor_versions WHERE space_id = 'space_acme'), '>', :acme_v1::bigint,
              'an email change moves it');

-- The kept path and the tables give the same full trace (trace ids aside) for every actor of the demo, found or
-- not, in the Space or not, across resources and actions: filled, then used, then read with nothing kept.
CREATE FUNCTION pg_temp.traces() RETURNS jsonb LANGUAGE sql AS $$
    SELECT t FROM dblink('t71_d', format($q$
        SELECT jsonb_agg(plystra.explain(jsonb_build_object(
                   'actor', jsonb_build_object('user_id', a.u, 'member_id', a.m, 'user_member_id', a.b, 'space_id', a.s),
                   'resource_type', 'invoice', 'resource_id', r, 'action', act)) - 'trace_id' ORDER BY a.n, r, act)
        FROM (VALUES (1, 'user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme'),
                     (2, 'user_bob', 'member_finance_reviewer', 'um_bob_finance_reviewer', 'space_acme'),
                     (3, 'user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer_revoked', 'space_acme'),
                     (4, 'user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer_expired', 'space_acme'),
                     (5, 'user_alice', 'member_invoice_creator', 'um_alice_finance_reviewer', 'space_acme'),
                     (6, 'user_bob', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme'),
                     (7, 'user_%1$s', 'member_%1$s_2', 'um_%1$s_2', 'space_%1$s'),
                     (8, 'user_%1$s', 'member_%1$s', 'um_%1$s', 'space_%1$s'),
                     (9, 'nobody', 'no_member', 'no_binding', 'no_space')) AS a(n, u, m, b, s),
             unnest(ARRAY['invoice_001', 'invoice_002', 'missing']) AS r,
             unnest(ARRAY['read', 'approve', 'reject', 'delete']) AS act$q$, current_setting('t71.run')))
        AS t(t jsonb)
$$;
SELECT pg_temp.traces() AS filled \gset
SELECT pg_temp.hits() AS h3 \gset
SELECT pg_temp.traces() AS used \gset
SELECT cmp_ok(pg_temp.hits(), '>=', :h3::bigint + 36, 'the second pass used kept actors (at least 3 actors x 12 requests)');
SELECT pg_temp.on_d('SET plystra.actor_cache_entries = 0');
SELECT pg_temp.traces() AS read \gset
SELECT pg_temp.on_d('RESET plystra.actor_cache_entries');
SELECT ok(:'filled'::jsonb = :'read'::jsonb AND :'used'::jsonb = :'read'::jsonb AND jsonb_array_length(:'read'::jsonb) = 108,
          'every trace is the same kept, filled or read from the tables (108 requests)');

------------------------------------------------------------------------------------------------------------------
-- Who may do what; a superuser bypassing the triggers; the memory bound.
------------------------------------------------------------------------------------------------------------------
CREATE ROLE t71_admin NOLOGIN;
GRANT plystra_admin TO t71_admin;
CREATE ROLE t71_app NOLOGIN;
GRANT plystra_app TO t71_app;
\ir helpers/sqlstate_as.sql
SAVEPOINT s;
SELECT is(pg_temp.sqlstate_as('t71_admin', format($$UPDATE plystra.members SET display_name = 'T71 admin' WHERE id = 'member_%s'$$, :'run')),
          '00000', 'plystra_admin writes a Member (and so moves the version) without privileges on it');
ROLLBACK TO SAVEPOINT s;
SELECT is(pg_temp.sqlstate_as('t71_app', 'SELECT version FROM plystra.actor_versions'), '42501',
          'an application role cannot read the actor versions');
SELECT is(pg_temp.sqlstate_as('t71_app', 'SELECT plystra.actor_kept_stats()'), '42501',
          'an application role cannot call actor_kept_stats');
SELECT is(pg_temp.sqlstate_as('t71_app', 'SET plystra.actor_cache_entries = 5'), '42501',
          'an application role cannot change the memory bound');

-- Only a superuser can change the tables without moving the version: the kept actor then answers as it was
-- (which proves it is kept); keeping nothing, or moving the version by hand, reads anew.
SELECT pg_temp.d();
SELECT pg_temp.w($$BEGIN;
    ALTER TABLE plystra.member_roles DISABLE TRIGGER actor_changed_update;
    UPDATE plystra.member_roles SET status = 'revoked' WHERE id = 'mr_%s';
    ALTER TABLE plystra.member_roles ENABLE ALWAYS TRIGGER actor_changed_update;
    COMMIT$$);
SELECT is(pg_temp.d(), 'ALLOW', 'a revoke committed without moving the version: the kept actor answers');
SELECT pg_temp.on_d('SET plystra.actor_cache_entries = 0');
SELECT is(pg_temp.d(), 'NO_MATCHING_PERMISSION', 'keeping nothing (actor_cache_entries = 0) reads the tables');
SELECT is((SELECT s->>'entries' FROM dblink('t71_d', 'SELECT plystra.actor_kept_stats()') AS t(s jsonb)), '0',
          'and frees what was kept');
SELECT pg_temp.on_d('RESET plystra.actor_cache_entries');
SELECT pg_temp.w($$UPDATE plystra.actor_versions SET version = nextval('plystra.actor_version_seq') WHERE space_id = 'space_acme'$$);
SELECT is(pg_temp.d(), 'NO_MATCHING_PERMISSION', 'moving the version by hand makes the backend read anew');

------------------------------------------------------------------------------------------------------------------
-- ALTER EXTENSION UPDATE and DROP/CREATE EXTENSION under a live deciding backend, in a scratch database of this
-- run, with the demo.
------------------------------------------------------------------------------------------------------------------
SELECT dblink_exec('t71_w', 'DROP DATABASE IF EXISTS plystra_t71_ext WITH (FORCE)');
SELECT dblink_exec('t71_w', 'CREATE DATABASE plystra_t71_ext');
SELECT dblink_connect('t71_sw', replace(:'conninfo', 'dbname=' || current_database(), 'dbname=plystra_t71_ext'));
SELECT dblink_connect('t71_sd', replace(:'conninfo', 'dbname=' || current_database(), 'dbname=plystra_t71_ext')
                                || ' options=-cplystra.audit_mode=off');
CREATE FUNCTION pg_temp.sd() RETURNS text LANGUAGE sql AS $$
    SELECT code FROM dblink('t71_sd', $q$
        SELECT coalesce(plystra.check('{"actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer",
            "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
            "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"}')->>'deny_code', 'ALLOW')$q$)
        AS t(code text)
$$;
CREATE FUNCTION pg_temp.sd_stats() RETURNS jsonb LANGUAGE sql AS $$
    SELECT s FROM dblink('t71_sd', 'SELECT plystra.actor_kept_stats()') AS t(s jsonb)
$$;
\set demo `cat sql/demo.sql`
SELECT dblink_exec('t71_sw', $$CREATE EXTENSION plystra VERSION '1.0.0'$$);
SELECT dblink_exec('t71_sw', :'demo');
SELECT dblink_exec('t71_sw', $$ALTER EXTENSION plystra UPDATE TO '1.7.0'$$);
SELECT is(pg_temp.sd(), 'ALLOW', 'under a 1.7.0 schema (no actor versions) this library decides, keeping nothing');
SELECT pg_temp.sd();
SELECT dblink_exec('t71_sw', 'ALTER EXTENSION plystra UPDATE');
SELECT is(pg_temp.sd_stats()->>'entries', '0', 'nothing was kept before the update');
SELECT is(pg_temp.sd(), 'ALLOW', 'after ALTER EXTENSION UPDATE, in the same backend');
SELECT pg_temp.sd();
SELECT is(pg_temp.sd_stats() - ARRAY['reads', 'shared_hits', 'shared_fills', 'shared_slots', 'version_rows_remembered', 'shared_group_slots'],
          '{"entries": 1, "hits": 1, "fills": 1, "group_hits": 1, "group_fills": 1}'::jsonb,
          'the update gave the existing Space its version: the actor and the target''s group are kept and used');
SELECT dblink_exec('t71_sw', $$UPDATE plystra.member_roles SET status = 'revoked' WHERE id = 'mr_finance_reviewer_approver_finance'$$);
SELECT is(pg_temp.sd(), 'NO_MATCHING_PERMISSION', 'a revoke committed after the update denies in the same backend');
SELECT dblink_exec('t71_sw', $$UPDATE plystra.member_roles SET status = 'active' WHERE id = 'mr_finance_reviewer_approver_finance'$$);
SELECT is(pg_temp.sd(), 'ALLOW', 'the grant restored (and the actor kept under this incarnation''s version)');
SELECT version AS first_version FROM dblink('t71_sw', $$SELECT version FROM plystra.actor_versions WHERE space_id = 'space_acme'$$)
    AS t(version bigint) \gset
SELECT dblink_exec('t71_sw', 'DROP EXTENSION plystra CASCADE');
SELECT dblink_exec('t71_sw', 'CREATE EXTENSION plystra');
SELECT dblink_exec('t71_sw', :'demo');
SELECT dblink_exec('t71_sw', format($$BEGIN;
    ALTER TABLE plystra.member_roles DISABLE TRIGGER actor_changed_update;
    UPDATE plystra.member_roles SET status = 'revoked' WHERE id = 'mr_finance_reviewer_approver_finance';
    ALTER TABLE plystra.member_roles ENABLE ALWAYS TRIGGER actor_changed_update;
    UPDATE plystra.actor_versions SET version = %s WHERE space_id = 'space_acme';
    COMMIT$$, :first_version));
SELECT is(pg_temp.sd(), 'NO_MATCHING_PERMISSION',
          'after DROP/CREATE EXTENSION the same backend reads the new tables, even under the same version number');
SELECT dblink_disconnect('t71_sd');
SELECT dblink_disconnect('t71_sw');
SELECT dblink_exec('t71_w', 'DROP DATABASE plystra_t71_ext WITH (FORCE)');

SELECT dblink_disconnect('t71_w');
SELECT dblink_disconnect('t71_w2');
SELECT dblink_disconnect('t71_d');

SELECT * FROM finish();
ROLLBACK;
