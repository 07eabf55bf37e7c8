-- The groups the server's backends share (plystra_pg/src/group_shared.rs): a decision's target group, kept in
-- shared memory under the database, the request's Space's actor version (incarnation and version) and the group's
-- id, filed only for a live group of the request's own Space by a transaction that has written no kept table. Every
-- decision here is made on a fresh connection (dblink, autocommit), so plystra.actor_kept_stats() shows whether
-- the shared group answered (group_hits) or was read and filed (group_fills), and each promise below is seen to
-- hold while it is in use. Every row here is made for this run (ids carry the transaction id).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS dblink;
BEGIN;
SELECT plan(42);

SELECT 't83_' || txid_current() AS run \gset
SELECT set_config('t83.run', :'run', false);
\ir helpers/conninfo.sql
SELECT set_config('t83.conninfo', :'conninfo', false);
SELECT dblink_connect('t83_w', :'conninfo');

SELECT ok((SELECT setting::int FROM pg_settings WHERE name = 'plystra.shared_group_cache_entries') > 0,
          'the server shares groups (the library is preloaded)');

-- The run's group under Finance, its invoice, and an actor allowed to approve under Finance (group_tree).
CREATE FUNCTION pg_temp.w(stmt text) RETURNS text LANGUAGE sql AS $$
    SELECT dblink_exec('t83_w', format(stmt, current_setting('t83.run')))
$$;
CREATE FUNCTION pg_temp.make(conn text) RETURNS text LANGUAGE sql AS $f$
    SELECT dblink_exec(conn, format($$
    INSERT INTO plystra.groups (id, space_id, parent_group_id, name, display_name, path)
    VALUES ('group_%1$s', 'space_acme', 'group_finance', 'T83', 'T83', 'finance.%1$s');
    INSERT INTO plystra.resources (id, resource_type, space_id, group_id, owner_member_id, display_name, visibility)
    VALUES ('invoice_%1$s', 'invoice', 'space_acme', 'group_%1$s', 'member_invoice_creator', 'T83', 'private');
    INSERT INTO plystra.users (id, email) VALUES ('user_%1$s', '%1$s@example.com');
    INSERT INTO plystra.members (id, space_id, display_name) VALUES ('member_%1$s', 'space_acme', 'T83');
    INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type)
    VALUES ('um_%1$s', 'user_%1$s', 'member_%1$s', 'space_acme', 'login');
    INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id)
    VALUES ('mr_%1$s', 'member_%1$s', 'role_finance_approver', 'space_acme', 'group_finance')$$,
    current_setting('t83.run')))
$f$;
SELECT pg_temp.make('t83_w');

-- The run's actor approving the invoice whose id ends in `invoice` on a fresh connection, with the statements
-- `before` run first on that connection (in its transaction, when they open one), and that connection's counters
-- afterwards: {code, stats}.
CREATE FUNCTION pg_temp.fresh(before text DEFAULT '', invoice text DEFAULT '', db text DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    conninfo text := current_setting('t83.conninfo');
    out jsonb;
BEGIN
    IF db IS NOT NULL THEN
        conninfo := replace(conninfo, 'dbname=' || current_database(), 'dbname=' || db);
    END IF;
    PERFORM dblink_connect('t83_fresh', conninfo || ' options=-cplystra.audit_mode=off');
    IF before <> '' THEN
        PERFORM dblink_exec('t83_fresh', before);
    END IF;
    SELECT jsonb_build_object('code', code, 'stats', stats) INTO out FROM dblink('t83_fresh', format($q$
        SELECT coalesce(plystra.check(jsonb_build_object(
            'actor', jsonb_build_object('user_id', 'user_%1$s', 'member_id', 'member_%1$s',
                                        'user_member_id', 'um_%1$s', 'space_id', 'space_acme'),
            'resource_type', 'invoice', 'resource_id', 'invoice_%1$s%2$s', 'action', 'approve'))->>'deny_code',
            'ALLOW'), plystra.actor_kept_stats()$q$, current_setting('t83.run'), invoice)) AS t(code text, stats jsonb);
    PERFORM dblink_disconnect('t83_fresh');
    RETURN out;
END $$;
CREATE FUNCTION pg_temp.groups(r jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s hit(s), %s fill(s)', r->'stats'->>'group_hits', r->'stats'->>'group_fills')
$$;

------------------------------------------------------------------------------------------------------------------
-- Shared at all: a backend that never read the group takes what another backend read.
------------------------------------------------------------------------------------------------------------------
SELECT pg_temp.fresh() AS r \gset
SELECT is(:'r'::jsonb->>'code', 'ALLOW', 'the run''s actor may approve the run''s invoice');
SELECT is(pg_temp.groups(:'r'), '0 hit(s), 1 fill(s)', 'the first backend read the invoice''s group and shared it');
SELECT pg_temp.fresh() AS r \gset
SELECT is(:'r'::jsonb->>'code', 'ALLOW', 'a second backend decides the same');
SELECT is(pg_temp.groups(:'r'), '1 hit(s), 0 fill(s)', 'from the shared group, without reading it');

------------------------------------------------------------------------------------------------------------------
-- A committed change to the group: the shared group of the older version is not used, and a group that is not
-- live is never shared.
------------------------------------------------------------------------------------------------------------------
SELECT pg_temp.w($$UPDATE plystra.groups SET status = 'archived' WHERE id = 'group_%s'$$);
SELECT pg_temp.fresh() AS r \gset
SELECT is(:'r'::jsonb->>'code', 'TARGET_GROUP_MISSING', 'the group archived and committed: a fresh backend denies');
SELECT is(pg_temp.groups(:'r'), '0 hit(s), 0 fill(s)', 'it did not take the live group of the older version, nor share the archived one');
SELECT pg_temp.fresh() AS r \gset
SELECT is(:'r'::jsonb->>'code', 'TARGET_GROUP_MISSING', 'and the next backend denies too');
SELECT is(pg_temp.groups(:'r'), '0 hit(s), 0 fill(s)', '(reading the archived group again)');
SELECT pg_temp.w($$UPDATE plystra.groups SET status = 'active' WHERE id = 'group_%s'$$);
SELECT is(pg_temp.fresh()->>'code', 'ALLOW', 'restored: a fresh backend allows');
SELECT pg_temp.fresh() AS r \gset
SELECT is(pg_temp.groups(:'r'), '1 hit(s), 0 fill(s)', 'and the restored group is shared under the newer version');
SELECT pg_temp.w($$UPDATE plystra.groups SET deleted_at = now() WHERE id = 'group_%s'$$);
SELECT is(pg_temp.fresh()->>'code', 'TARGET_GROUP_MISSING', 'the group soft-deleted and committed: a fresh backend denies');
SELECT pg_temp.w($$UPDATE plystra.groups SET deleted_at = NULL WHERE id = 'group_%s'$$);
SELECT is(pg_temp.fresh()->>'code', 'ALLOW', 'undeleted: allows');

------------------------------------------------------------------------------------------------------------------
-- REPEATABLE READ: a snapshot that saw the group archived never takes the live group a newer snapshot shared, and
-- a newer snapshot never takes what the older one read.
------------------------------------------------------------------------------------------------------------------
SELECT pg_temp.w($$UPDATE plystra.groups SET status = 'archived' WHERE id = 'group_%s'$$);
SELECT dblink_connect('t83_rr', :'conninfo' || ' options=-cplystra.audit_mode=off');
CREATE FUNCTION pg_temp.rr() RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('code', code, 'stats', stats) FROM dblink('t83_rr', format($q$
        SELECT coalesce(plystra.check(jsonb_build_object(
            'actor', jsonb_build_object('user_id', 'user_%1$s', 'member_id', 'member_%1$s',
                                        'user_member_id', 'um_%1$s', 'space_id', 'space_acme'),
            'resource_type', 'invoice', 'resource_id', 'invoice_%1$s', 'action', 'approve'))->>'deny_code', 'ALLOW'),
            plystra.actor_kept_stats()$q$,
        current_setting('t83.run'))) AS t(code text, stats jsonb)
$$;
SELECT dblink_exec('t83_rr', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT is(pg_temp.rr()->>'code', 'TARGET_GROUP_MISSING', 'a REPEATABLE READ snapshot taken while the group is archived denies');
SELECT pg_temp.w($$UPDATE plystra.groups SET status = 'active' WHERE id = 'group_%s'$$);
SELECT is(pg_temp.fresh()->>'code', 'ALLOW', 'the group restored and committed: a fresh backend allows');
SELECT pg_temp.fresh() AS r \gset
SELECT is(pg_temp.groups(:'r'), '1 hit(s), 0 fill(s)', '(the live group is shared under the newer version)');
SELECT pg_temp.rr() AS r \gset
SELECT is(:'r'::jsonb->>'code', 'TARGET_GROUP_MISSING', 'the older snapshot still denies: the shared group is of a newer version');
SELECT is(pg_temp.groups(:'r'), '0 hit(s), 0 fill(s)', '(it took nothing shared and shared nothing)');
SELECT dblink_exec('t83_rr', 'COMMIT');
SELECT dblink_disconnect('t83_rr');

------------------------------------------------------------------------------------------------------------------
-- A transaction that has written a kept table reads the group from the table, whatever is shared: its own change, in a
-- savepoint or not, counts at once.
------------------------------------------------------------------------------------------------------------------
SELECT pg_temp.fresh(format($$BEGIN; UPDATE plystra.groups SET status = 'archived' WHERE id = 'group_%s'$$, :'run')) AS r \gset
SELECT is(:'r'::jsonb->>'code', 'TARGET_GROUP_MISSING', 'the group archived earlier in the same transaction: denied');
SELECT is(pg_temp.groups(:'r'), '0 hit(s), 0 fill(s)', 'a transaction that has written a kept table takes nothing shared');
SELECT pg_temp.fresh(format($$BEGIN; UPDATE plystra.groups SET status = 'archived' WHERE id = 'group_%s'; SAVEPOINT s$$,
                            :'run')) AS r \gset
SELECT is(:'r'::jsonb->>'code', 'TARGET_GROUP_MISSING', 'the same inside a savepoint opened after the change');
SELECT is(pg_temp.groups(:'r'), '0 hit(s), 0 fill(s)', '(nothing shared taken there either)');
SELECT pg_temp.fresh(format($$BEGIN; UPDATE plystra.members SET display_name = 'T83 renamed' WHERE id = 'member_%s'$$,
                            :'run')) AS r \gset
SELECT is(:'r'::jsonb->>'code', 'ALLOW', 'a transaction that wrote anything else decides as the tables say');
SELECT is(pg_temp.groups(:'r'), '0 hit(s), 0 fill(s)', 'and reads the group itself');
SELECT pg_temp.fresh() AS r \gset
SELECT is(pg_temp.groups(:'r'), '1 hit(s), 0 fill(s)', 'rolled back (the connections closed): the shared group is used again');

------------------------------------------------------------------------------------------------------------------
-- A group that lies in another Space than the request's (its Space rewritten by a superuser with the
-- immutability trigger off) is read every time, never shared: the request's Space's version does not cover it.
------------------------------------------------------------------------------------------------------------------
SELECT pg_temp.w($$INSERT INTO plystra.spaces (id, name, slug, type, status)
                   VALUES ('space_%1$s', 'T83', 'slug-%1$s', 'custom', 'active')$$);
SELECT pg_temp.w($$BEGIN; SET LOCAL session_replication_role = replica;
                   UPDATE plystra.groups SET space_id = 'space_%1$s' WHERE id = 'group_%1$s'; COMMIT$$);
SELECT pg_temp.fresh() AS r \gset
SELECT is(:'r'::jsonb->>'code', 'CROSS_SPACE_VIOLATION', 'the invoice''s group moved to another Space: denied');
SELECT is(pg_temp.groups(:'r'), '0 hit(s), 0 fill(s)', 'the group of the older version is not taken, and the moved one not shared');
SELECT pg_temp.fresh() AS r \gset
SELECT is(:'r'::jsonb->>'code', 'CROSS_SPACE_VIOLATION', 'the next backend denies too');
SELECT is(pg_temp.groups(:'r'), '0 hit(s), 0 fill(s)', '(reading it again)');
SELECT pg_temp.w($$BEGIN; SET LOCAL session_replication_role = replica;
                   UPDATE plystra.groups SET space_id = 'space_acme' WHERE id = 'group_%1$s'; COMMIT$$);
SELECT is(pg_temp.fresh()->>'code', 'ALLOW', 'moved back: allows');
SELECT pg_temp.fresh() AS r \gset
SELECT is(pg_temp.groups(:'r'), '1 hit(s), 0 fill(s)', 'and is shared again');

------------------------------------------------------------------------------------------------------------------
-- A group too large for a slot (a 600-byte path) is read every time, and decides as the tables say.
------------------------------------------------------------------------------------------------------------------
SELECT pg_temp.w($$
    INSERT INTO plystra.groups (id, space_id, parent_group_id, name, display_name, path)
    VALUES ('group_%1$s_long', 'space_acme', 'group_finance', 'Long', 'Long', 'finance.%1$s_' || repeat('x', 600));
    INSERT INTO plystra.resources (id, resource_type, space_id, group_id, owner_member_id, display_name, visibility)
    VALUES ('invoice_%1$s_long', 'invoice', 'space_acme', 'group_%1$s_long', 'member_invoice_creator', 'T83', 'private')$$);
SELECT pg_temp.fresh(invoice => '_long') AS r \gset
SELECT is(:'r'::jsonb->>'code', 'ALLOW', 'an invoice in a group with a 600-byte path under Finance: allowed');
SELECT is(pg_temp.groups(:'r'), '0 hit(s), 0 fill(s)', 'its group does not fit a slot: not shared');
SELECT pg_temp.w($$UPDATE plystra.groups SET status = 'archived' WHERE id = 'group_%s_long'$$);
SELECT is(pg_temp.fresh(invoice => '_long')->>'code', 'TARGET_GROUP_MISSING', 'archived: denied');

------------------------------------------------------------------------------------------------------------------
-- A batch reads each group once and shares it: a second batch on a fresh backend reads none.
------------------------------------------------------------------------------------------------------------------
CREATE FUNCTION pg_temp.batch() RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('codes', codes, 'stats', stats) FROM dblink(
        current_setting('t83.conninfo') || ' options=-cplystra.audit_mode=off', format($q$
        SELECT (SELECT string_agg(coalesce(r->>'deny_code', 'ALLOW'), ',' ORDER BY n)
                FROM jsonb_array_elements(plystra.check_batch(jsonb_build_object(
                    'actor', jsonb_build_object('user_id', 'user_%1$s', 'member_id', 'member_%1$s',
                                                'user_member_id', 'um_%1$s', 'space_id', 'space_acme'),
                    'items', jsonb_build_array(
                        jsonb_build_object('resource_type', 'invoice', 'resource_id', 'invoice_%1$s', 'action', 'approve'),
                        jsonb_build_object('resource_type', 'invoice', 'resource_id', 'invoice_001', 'action', 'approve'),
                        jsonb_build_object('resource_type', 'invoice', 'resource_id', 'invoice_002', 'action', 'approve'))
                    ))->'results') WITH ORDINALITY AS t(r, n)),
               plystra.actor_kept_stats()$q$, current_setting('t83.run'))) AS t(codes text, stats jsonb)
$$;
SELECT pg_temp.batch() AS r \gset
SELECT is(:'r'::jsonb->>'codes', 'ALLOW,ALLOW,SCOPE_OUT_OF_BOUNDS', 'a batch: the run''s invoice and APAC allowed, Legal out of scope');
SELECT pg_temp.batch() AS r \gset
SELECT is(:'r'::jsonb->>'codes', 'ALLOW,ALLOW,SCOPE_OUT_OF_BOUNDS', 'a second batch on a fresh backend decides the same');
SELECT is(pg_temp.groups(:'r'), '3 hit(s), 0 fill(s)', 'from the three shared groups');

------------------------------------------------------------------------------------------------------------------
-- A database dropped and created again under the same OID (CREATE DATABASE ... OID = n, open to any role with
-- CREATEDB) from the same template hands out the same incarnation and versions for other changes: nothing shared
-- in its former life is taken, neither the group nor the actor.
------------------------------------------------------------------------------------------------------------------
SELECT dblink_exec('t83_w', 'DROP DATABASE IF EXISTS plystra_t83_x WITH (FORCE)');
SELECT dblink_exec('t83_w', 'DROP DATABASE IF EXISTS plystra_t83_t WITH (FORCE)');
SELECT dblink_exec('t83_w', 'CREATE DATABASE plystra_t83_t');
SELECT dblink_connect('t83_t', replace(:'conninfo', 'dbname=' || current_database(), 'dbname=plystra_t83_t'));
\set demo `cat sql/demo.sql`
SELECT dblink_exec('t83_t', 'CREATE EXTENSION plystra');
SELECT dblink_exec('t83_t', :'demo');
SELECT pg_temp.make('t83_t');
SELECT dblink_disconnect('t83_t');
SELECT (SELECT max(oid)::bigint FROM pg_database) + 1000 AS reused_oid \gset
CREATE FUNCTION pg_temp.x(stmt text) RETURNS text LANGUAGE sql AS $$
    SELECT v FROM dblink(replace(current_setting('t83.conninfo'), 'dbname=' || current_database(), 'dbname=plystra_t83_x'),
        format(stmt, current_setting('t83.run')) || $q$; SELECT incarnation || ' ' || version FROM plystra.actor_versions
        WHERE space_id = 'space_acme'$q$) AS t(v text)
$$;
SELECT dblink_exec('t83_w', format('CREATE DATABASE plystra_t83_x OID = %s TEMPLATE plystra_t83_t', :reused_oid));
SELECT pg_temp.x($$UPDATE plystra.groups SET display_name = 'first life' WHERE id = 'group_%s'$$) AS first_version \gset
SELECT is(pg_temp.fresh(db => 'plystra_t83_x')->>'code', 'ALLOW', 'in its first life the database allows (and shares)');
SELECT pg_temp.fresh(db => 'plystra_t83_x') AS r \gset
SELECT is(pg_temp.groups(:'r') || ', actor ' || (:'r'::jsonb->'stats'->>'shared_hits'), '1 hit(s), 0 fill(s), actor 1',
          '(from the shared group and actor)');
SELECT dblink_exec('t83_w', 'DROP DATABASE plystra_t83_x WITH (FORCE)');
SELECT dblink_exec('t83_w', format('CREATE DATABASE plystra_t83_x OID = %s TEMPLATE plystra_t83_t', :reused_oid));
SELECT is(pg_temp.x($$UPDATE plystra.groups SET status = 'archived' WHERE id = 'group_%s'$$), :'first_version',
          'created again under the same OID, the group archived: the same incarnation and version as in the first life');
SELECT pg_temp.fresh(db => 'plystra_t83_x') AS r \gset
SELECT is(:'r'::jsonb->>'code', 'TARGET_GROUP_MISSING', 'the second life denies');
SELECT is(pg_temp.groups(:'r') || ', actor ' || (:'r'::jsonb->'stats'->>'shared_hits'), '0 hit(s), 0 fill(s), actor 0',
          'nothing shared in the first life was taken');
SELECT dblink_exec('t83_w', 'DROP DATABASE plystra_t83_x WITH (FORCE)');
SELECT dblink_exec('t83_w', 'DROP DATABASE plystra_t83_t WITH (FORCE)');

-- What this run committed leaves the demo's reach as it was (other files count Finance's groups and invoices).
SELECT pg_temp.w($$UPDATE plystra.resources SET deleted_at = now() WHERE id LIKE 'invoice\_%1$s%%';
                   UPDATE plystra.groups SET deleted_at = now() WHERE id LIKE 'group\_%1$s%%'$$);
SELECT dblink_disconnect('t83_w');

SELECT * FROM finish();
ROLLBACK;
