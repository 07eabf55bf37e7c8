-- Plystra Core schema, version 011: the catalog version, so that a backend may keep the rarely changing rows a
-- decision reads (the Resource Registry's types and actions, Roles, Permissions, RolePermissions) between
-- decisions and know exactly when it may not.
--
-- The rule (plystra_pg/src/catalog.rs uses it): every statement that writes one of those tables also writes
-- plystra.catalog_version, in the same transaction, with a fresh value of a sequence. A sequence value is never
-- handed out twice, even to a transaction that rolls back, so the version a snapshot of committed data sees names
-- exactly one state of the five tables. A backend keeps what it read under the version it read it with, and uses
-- it only in transactions that have written nothing, while their snapshot sees that same version of the same
-- incarnation (DROP/CREATE EXTENSION makes a new one); a transaction that has written reads the tables. The
-- version row replicates like any other row, so a hot standby, where no trigger fires, sees it change with the
-- data. The triggers are ENABLE ALWAYS, so a session with session_replication_role = replica bumps it too; only a
-- superuser who disables triggers can change the tables without it, and must then bump it by hand
-- (UPDATE plystra.catalog_version SET version = nextval('plystra.catalog_version_seq')).
--
-- Writers of those tables take the version row's lock until they commit: administration writes to the registry,
-- Roles and Permissions are serialised. They are rare; decisions never write it.

CREATE SEQUENCE plystra.catalog_version_seq;

-- `incarnation` names this installation of the schema: a DROP/CREATE EXTENSION makes a new one, even within one
-- transaction, where object ids (the schema's among them) can be handed out again.
CREATE TABLE plystra.catalog_version (
    name        text   PRIMARY KEY CHECK (name = 'catalog'),
    version     bigint NOT NULL,
    incarnation text   NOT NULL DEFAULT pg_catalog.gen_random_uuid()::text
);
INSERT INTO plystra.catalog_version (name, version) VALUES ('catalog', nextval('plystra.catalog_version_seq'));

-- SECURITY DEFINER: whoever may write a Role needs no privilege on the version row or its sequence.
CREATE FUNCTION plystra.tg_catalog_changed()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE plystra.catalog_version SET version = nextval('plystra.catalog_version_seq') WHERE name = 'catalog';
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION plystra.tg_catalog_changed() IS
'Trigger: a statement wrote the Resource Registry, Roles, Permissions or RolePermissions; gives the catalog version '
'a fresh value in the same transaction, so that no backend keeps using what it read before.';

CREATE TRIGGER catalog_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON plystra.resource_types
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_catalog_changed();
CREATE TRIGGER catalog_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON plystra.resource_actions
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_catalog_changed();
CREATE TRIGGER catalog_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON plystra.roles
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_catalog_changed();
CREATE TRIGGER catalog_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON plystra.permissions
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_catalog_changed();
CREATE TRIGGER catalog_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON plystra.role_permissions
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_catalog_changed();
ALTER TABLE plystra.resource_types ENABLE ALWAYS TRIGGER catalog_changed;
ALTER TABLE plystra.resource_actions ENABLE ALWAYS TRIGGER catalog_changed;
ALTER TABLE plystra.roles ENABLE ALWAYS TRIGGER catalog_changed;
ALTER TABLE plystra.permissions ENABLE ALWAYS TRIGGER catalog_changed;
ALTER TABLE plystra.role_permissions ENABLE ALWAYS TRIGGER catalog_changed;
