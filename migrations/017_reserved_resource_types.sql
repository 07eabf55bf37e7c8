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
