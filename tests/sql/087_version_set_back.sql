-- A backend keeps the catalog and the actors under a version row's (incarnation, version), and a sequence value
-- is never handed out twice, unless the owner sets the sequence back (setval, ALTER SEQUENCE ... RESTART). Then a
-- change can get the very number a warm backend kept the older state under, and that backend answers from it
-- (found by an attack on the caches, 2026-12-02; the owner alone can do it, as the owner alone can disable the
-- triggers). Moving the version by hand is then not enough either: the next numbers may have been issued before.
-- The remedy the README gives: a new incarnation for the row, under which no backend has kept anything. Shown
-- here: after the sequence was set back and a change took an old number, the new incarnation makes the warm
-- backend (a second one, dblink, as a service's) read the change.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS dblink;
BEGIN;
SELECT plan(9);

\ir helpers/conninfo.sql
SELECT dblink_connect('t87_w', :'conninfo');
SELECT dblink_connect('t87_d', :'conninfo' || ' options=-cplystra.audit_mode=off');

CREATE FUNCTION pg_temp.decider() RETURNS text LANGUAGE sql AS $$
    SELECT code FROM dblink('t87_d', $q$
        SELECT coalesce(plystra.check('{"actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer",
            "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"}, "resource_type": "invoice",
            "resource_id": "invoice_001", "action": "approve"}') ->> 'deny_code', 'ALLOW')$q$) AS t(code text)
$$;
CREATE FUNCTION pg_temp.write(statement text) RETURNS text LANGUAGE sql AS $$
    SELECT dblink_exec('t87_w', statement)
$$;
CREATE FUNCTION pg_temp.catalog_version() RETURNS bigint LANGUAGE sql AS $$
    SELECT v FROM dblink('t87_w', $q$SELECT version FROM plystra.catalog_version WHERE name = 'catalog'$q$) AS t(v bigint)
$$;
CREATE FUNCTION pg_temp.actor_version() RETURNS bigint LANGUAGE sql AS $$
    SELECT v FROM dblink('t87_w', $q$SELECT version FROM plystra.actor_versions WHERE space_id = 'space_acme'$q$)
        AS t(v bigint)
$$;

------------------------------------------------------------------------------------------------------------------
-- The catalog: the approver Role's approve Permission taken off after the sequence was set back.
------------------------------------------------------------------------------------------------------------------
SELECT is(pg_temp.decider(), 'ALLOW', 'warm: the deciding backend keeps the catalog, Alice may approve');
SELECT pg_temp.catalog_version() AS v \gset
SELECT setval('plystra.catalog_version_seq', :v - 1);  -- a sequence's value is not transactional
SELECT pg_temp.write($$UPDATE plystra.role_permissions SET deleted_at = now()
    WHERE role_id = 'role_finance_approver' AND permission_id = 'perm_invoice_approve_group_tree'$$);
SELECT is(pg_temp.catalog_version(), :v::bigint, 'the sequence set back: the change took the number the backend kept');
SELECT pg_temp.write($$UPDATE plystra.catalog_version SET incarnation = pg_catalog.gen_random_uuid()::text$$);
SELECT is(pg_temp.decider(), 'NO_MATCHING_PERMISSION', 'a new incarnation: the warm backend reads the change');
SELECT pg_temp.write($$UPDATE plystra.role_permissions SET deleted_at = NULL
    WHERE role_id = 'role_finance_approver' AND permission_id = 'perm_invoice_approve_group_tree'$$);
SELECT is(pg_temp.decider(), 'ALLOW', 'the Permission given back: allowed again');

------------------------------------------------------------------------------------------------------------------
-- The actors: Alice's approver grant revoked after the actor version sequence was set back.
------------------------------------------------------------------------------------------------------------------
SELECT is(pg_temp.decider(), 'ALLOW', 'warm: the deciding backend keeps the actor');
SELECT pg_temp.actor_version() AS a \gset
SELECT setval('plystra.actor_version_seq', :a - 1);
SELECT pg_temp.write($$UPDATE plystra.member_roles SET status = 'revoked'
    WHERE id = 'mr_finance_reviewer_approver_finance'$$);
SELECT is(pg_temp.actor_version(), :a::bigint, 'the sequence set back: the change took the number the backend kept');
SELECT pg_temp.write($$UPDATE plystra.actor_versions SET incarnation = pg_catalog.gen_random_uuid()::text
    WHERE space_id = 'space_acme'$$);
SELECT is(pg_temp.decider(), 'NO_MATCHING_PERMISSION', 'a new incarnation: the warm backend reads the revoke');
SELECT pg_temp.write($$UPDATE plystra.member_roles SET status = 'active' WHERE id = 'mr_finance_reviewer_approver_finance'$$);
SELECT is(pg_temp.decider(), 'ALLOW', 'the grant restored: allowed again');

-- The sequences past every number they handed out, so that no later test meets a number twice.
SELECT setval('plystra.catalog_version_seq', nextval('plystra.catalog_version_seq') + 1000);
SELECT setval('plystra.actor_version_seq', nextval('plystra.actor_version_seq') + 1000);
SELECT ok(pg_temp.catalog_version() < (SELECT last_value FROM plystra.catalog_version_seq), 'the sequences moved on');

SELECT dblink_disconnect('t87_w');
SELECT dblink_disconnect('t87_d');
SELECT * FROM finish();
ROLLBACK;
