-- Plystra 1.11.0 -> 1.12.0 (ALTER EXTENSION plystra UPDATE, or plystractl migrate up).
-- Applies, and records in the ledger:
--   017: the resource types auth and audit_partition, which begin Plystra's own audit actions, are reserved: the
--        Resource Registry refuses them as keys (the decision parser refuses them, and a management entity's name
--        with a management verb, in requests).
-- tests/catalog_check.sh proves that an updated 1.0.0 equals a fresh 1.12.0.
-- Each block between markers is the migration file, verbatim.
\echo Use "ALTER EXTENSION plystra UPDATE TO '1.12.0'" to load this file. \quit

-- BEGIN migrations/017_reserved_resource_types.sql
-- Plystra Core schema, version 017: the resource types that begin Plystra's own audit actions are reserved.
--
-- A decision's audit row has action <resource_type>.<action>, both chosen by the caller. A role allowed to ask
-- for decisions (plystra_app) could so file rows whose action reads as an authentication event
-- (resource_type "auth", action "login_failed": auth.login_failed), as the log's upkeep (audit_partition.*) or as
-- a management mutation ("user_member" / "revoked"), which only Plystra itself writes. The decision parser now
-- refuses such a target (SQLSTATE 22023; plystra_core::request: the types auth and audit_partition with any
-- action, a management entity's name with one of the management trigger's verbs), and the Resource Registry
-- refuses the two reserved types as keys here. A type named like an entity ("user", "group") stays registrable:
-- only the trigger's verbs (created, updated, deleted, restored, disabled, revoked, archived) are refused on it.

DO $$
DECLARE
    taken text;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.quote_literal(key), ', ' ORDER BY key) INTO taken
    FROM plystra.resource_types WHERE key IN ('auth', 'audit_partition');
    IF taken IS NOT NULL THEN
        RAISE EXCEPTION 'plystra: resource type keys % are now reserved (they begin Plystra''s own audit actions)', taken
            USING ERRCODE = '23514',
                  HINT = 'Register the type under another key, move its resources and mappings to it, then update again.';
    END IF;
END;
$$;

ALTER TABLE plystra.resource_types ADD CONSTRAINT resource_types_key_reserved CHECK (key NOT IN ('auth', 'audit_partition'));
-- END migrations/017_reserved_resource_types.sql

-- An older version's install script run with this build's library already records every bundled migration
-- (plystra.bundled_migrations() comes from the library), so the row may exist.
INSERT INTO plystra.schema_migrations (version, name, checksum) VALUES ('017', 'reserved_resource_types', '5d6b324cfada8691f1551ea2471e2dd2300782b4e8bfa2d8a02d3bdbd8ab7521')
ON CONFLICT (version) DO UPDATE SET name = excluded.name, checksum = excluded.checksum;

-- Last: who may call what (PUBLIC nothing; plystra_app and plystra_admin their documented sets).
SELECT plystra.apply_privileges();
