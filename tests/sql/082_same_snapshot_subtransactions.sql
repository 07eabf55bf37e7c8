-- Version rows taken as last read (plystra_pg/src/same_snapshot.rs) and kept actors (actor_kept.rs) are used only
-- by transactions that have written nothing. "Written" is the whole transaction's: inside a savepoint, a plpgsql
-- EXCEPTION block or a driver's automatic savepoints, the subtransaction may have no id of its own while the
-- transaction around it has written; its snapshot then shows those writes, which no snapshot comparison can
-- tell apart (the transaction's own id is never listed as in progress). Each case below was answered ALLOW by a
-- backend that took the subtransaction for a reader. The deciding backend is a second one (dblink), so that the
-- rows and the kept state are exactly a service's; every actor is made for this run.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS dblink;
BEGIN;
SELECT plan(15);

SELECT 't82_' || txid_current() AS run \gset
SELECT set_config('t82.run', :'run', false);
\ir helpers/conninfo.sql
SELECT dblink_connect('t82_w', :'conninfo');
SELECT dblink_connect('t82_y', :'conninfo');
SELECT dblink_connect('t82_d', :'conninfo' || ' options=-cplystra.audit_mode=off');

-- The run's actor in space_acme with the approver Role over Finance (invoice_001 lies in Finance).
SELECT dblink_exec('t82_w', format($$
    INSERT INTO plystra.users (id, email) VALUES ('user_%1$s', '%1$s@example.com');
    INSERT INTO plystra.members (id, space_id, display_name) VALUES ('member_%1$s', 'space_acme', 'T82');
    INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type)
    VALUES ('um_%1$s', 'user_%1$s', 'member_%1$s', 'space_acme', 'login');
    INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id)
    VALUES ('mr_%1$s', 'member_%1$s', 'role_finance_approver', 'space_acme', 'group_finance')$$, :'run'));

CREATE FUNCTION pg_temp.sql(stmt text) RETURNS text LANGUAGE sql AS $$
    SELECT format(stmt, current_setting('t82.run'))
$$;
-- The run's decision as the deciding backend answers it.
CREATE FUNCTION pg_temp.d() RETURNS text LANGUAGE sql AS $$
    SELECT code FROM dblink('t82_d', pg_temp.sql($q$
        SELECT coalesce(plystra.check(jsonb_build_object(
            'actor', jsonb_build_object('user_id', 'user_%1$s', 'member_id', 'member_%1$s',
                                        'user_member_id', 'um_%1$s', 'space_id', 'space_acme'),
            'resource_type', 'invoice', 'resource_id', 'invoice_001', 'action', 'approve'))->>'deny_code', 'ALLOW')$q$))
        AS t(code text)
$$;
CREATE FUNCTION pg_temp.on_d(stmt text) RETURNS text LANGUAGE sql AS $$ SELECT dblink_exec('t82_d', pg_temp.sql(stmt)) $$;
CREATE FUNCTION pg_temp.remembered() RETURNS bigint LANGUAGE sql AS $$
    SELECT (s->>'version_rows_remembered')::bigint FROM dblink('t82_d', 'SELECT plystra.actor_kept_stats()') AS t(s jsonb)
$$;
CREATE FUNCTION pg_temp.completes_elsewhere() RETURNS bigint LANGUAGE sql AS $$
    SELECT x FROM dblink('t82_y', 'SELECT txid_current()') AS t(x bigint)
$$;
\set revoke 'UPDATE plystra.member_roles SET status = ''revoked'' WHERE id = ''mr_%1$s'''
\set restore 'UPDATE plystra.member_roles SET status = ''active'' WHERE id = ''mr_%1$s'''

-- 1. The transaction's own revoke, then a savepoint.
SELECT is(pg_temp.d(), 'ALLOW', 'committed grant: allowed');
SELECT pg_temp.remembered() AS r0 \gset
SELECT pg_temp.d() AS again;
SELECT cmp_ok(pg_temp.remembered(), '>', :r0::bigint, 'a reading decision takes its version rows as last read');
SELECT pg_temp.on_d('BEGIN');
SELECT pg_temp.on_d(:'revoke');
SELECT is(pg_temp.d(), 'NO_MATCHING_PERMISSION', 'the transaction''s own revoke denies');
SELECT pg_temp.remembered() AS before_savepoint \gset
SELECT pg_temp.on_d('SAVEPOINT s');
SELECT is(pg_temp.d(), 'NO_MATCHING_PERMISSION', 'inside a savepoint after it, the own revoke still denies');
SELECT is(pg_temp.remembered(), :before_savepoint::bigint,
    'a savepoint of a transaction that wrote takes no version row as last read');
SELECT pg_temp.on_d('ROLLBACK');

SELECT pg_temp.on_d($f$CREATE FUNCTION pg_temp.in_block(req jsonb) RETURNS text LANGUAGE plpgsql AS $b$
    BEGIN
        BEGIN
            RETURN coalesce(plystra.check(req)->>'deny_code', 'ALLOW');
        EXCEPTION WHEN others THEN
            RETURN 'ERROR';
        END;
    END $b$$f$);

-- 2. The same in a plpgsql block with an EXCEPTION clause (a subtransaction of its own), right after reading
--    decisions that took their version rows as last read under the same visibility.
SELECT is(pg_temp.d(), 'ALLOW', 'after the rollback: allowed');
SELECT pg_temp.d() AS again;
SELECT pg_temp.on_d('BEGIN');
SELECT pg_temp.on_d(:'revoke');
SELECT is(code, 'NO_MATCHING_PERMISSION', 'in an EXCEPTION block after the own revoke, it denies')
FROM dblink('t82_d', pg_temp.sql($q$SELECT pg_temp.in_block(jsonb_build_object(
        'actor', jsonb_build_object('user_id', 'user_%1$s', 'member_id', 'member_%1$s',
                                    'user_member_id', 'um_%1$s', 'space_id', 'space_acme'),
        'resource_type', 'invoice', 'resource_id', 'invoice_001', 'action', 'approve'))$q$)) AS t(code text);
SELECT pg_temp.on_d('ROLLBACK');
SELECT is(pg_temp.d(), 'ALLOW', 'rolled back: allowed again');

-- 3. A grant given in a savepoint and rolled back to it, while another transaction completed in between.
SELECT dblink_exec('t82_w', pg_temp.sql(:'revoke'));
SELECT is(pg_temp.d(), 'NO_MATCHING_PERMISSION', 'committed revoke: denied');
SELECT pg_temp.on_d('BEGIN');
SELECT pg_temp.on_d('SAVEPOINT a');
SELECT pg_temp.on_d(:'restore');
SELECT pg_temp.completes_elsewhere() > 0 AS completed;
SELECT pg_temp.on_d('SAVEPOINT b');
SELECT is(pg_temp.d(), 'ALLOW', 'the savepoint''s own grant allows');
SELECT pg_temp.on_d('ROLLBACK TO SAVEPOINT a');
SELECT is(pg_temp.d(), 'NO_MATCHING_PERMISSION', 'rolled back to before the grant: denied');
SELECT is(pg_temp.d(), 'NO_MATCHING_PERMISSION', 'and again');
SELECT pg_temp.on_d('COMMIT');

-- 4. A transaction that wrote, decided in a savepoint, then revoked and committed, while a transaction elsewhere
--    stays open: its later reading statements must see the revoke it committed.
SELECT dblink_exec('t82_w', pg_temp.sql(:'restore'));
SELECT is(pg_temp.d(), 'ALLOW', 'granted again');
SELECT dblink_exec('t82_w', 'BEGIN');
SELECT x > 0 AS open_elsewhere FROM dblink('t82_w', 'SELECT txid_current()') AS t(x bigint);
SELECT pg_temp.on_d('BEGIN');
SELECT pg_temp.on_d($q$UPDATE plystra.member_roles SET metadata = '{"note": "touched"}' WHERE id = 'mr_%1$s'$q$);
SELECT pg_temp.completes_elsewhere() > 0 AS completed;
SELECT pg_temp.on_d('SAVEPOINT s');
SELECT pg_temp.d() AS in_savepoint;
SELECT pg_temp.on_d('RELEASE s');
SELECT pg_temp.on_d(:'revoke');
SELECT pg_temp.on_d('COMMIT');
SELECT is(pg_temp.d(), 'NO_MATCHING_PERMISSION', 'its own committed revoke denies its next decision');
SELECT is(pg_temp.d(), 'NO_MATCHING_PERMISSION', 'and the one after');
SELECT dblink_exec('t82_w', 'COMMIT');

SELECT dblink_disconnect('t82_w');
SELECT dblink_disconnect('t82_y');
SELECT dblink_disconnect('t82_d');
SELECT * FROM finish();
ROLLBACK;
