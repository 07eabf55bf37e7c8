-- Plystra 1.9.0 -> 1.10.0 (ALTER EXTENSION plystra UPDATE, or plystractl migrate up).
-- Applies, and records in the ledger:
--   015: the catalog version also moves with every change to what the REST front's gate reads of an API key (the
--        key, its creator's User row and admin grants), so that a backend keeps that reading between requests.
-- tests/catalog_check.sh proves that an updated 1.0.0 equals a fresh 1.10.0.
-- Each block between markers is the migration file, verbatim.
\echo Use "ALTER EXTENSION plystra UPDATE TO '1.10.0'" to load this file. \quit

-- BEGIN migrations/015_credential_version.sql
-- Plystra Core schema, version 015: the catalog version also covers what the REST front's gate reads of an API
-- key, so that a backend may keep it between requests and know exactly when it may not.
--
-- The gate (plystra.decide_with_credential) reads, for every request made with an API key, the key's row, a Group
-- key's anchor group, the key's creator (users) and that User's admin grants: three to five index probes before
-- the decision. A backend now keeps that reading under the catalog version (plystra_pg/src/catalog.rs), by the
-- rule of migration 011: every statement that changes something the reading depends on gives
-- plystra.catalog_version a fresh value of its sequence in the same transaction. Here that is:
--
-- * admin_grants: every INSERT, UPDATE, DELETE and TRUNCATE;
-- * api_keys: every INSERT, DELETE and TRUNCATE, and every UPDATE that changes a key in anything but its
--   bookkeeping columns last_used_at and updated_at (the front records a key's last use at most once a minute;
--   that moves nothing);
-- * users: an UPDATE that changes a User's id, status or deleted_at (a login's last_login_at, a new password or
--   e-mail move nothing), and a DELETE or TRUNCATE (which 002 refuses unless a superuser disables its triggers);
-- * groups: nothing. A group's id, Space and path never change and a group is never deleted (002: soft delete
--   only; a group that an API key or an admin grant names is also held by their foreign keys), and the gate reads
--   a key's or grant's anchor group whatever its status.
--
-- The reading kept is the key apart from its expiry: a key's and a grant's expires_at, and the presented HMAC,
-- are judged at every use. A revoked or missing key is never kept. So a revocation, a creator deactivated or a
-- grant revoked denies from the next statement that starts after its commit, in this backend and every other, on
-- the primary and on a hot standby (the version row replicates with the data); a REPEATABLE READ transaction keeps
-- its snapshot; a transaction that has written anything reads the tables.
--
-- plystra.catalog_version.keeps_api_keys says that the version moves with those writes: a library newer than the
-- schema (replaced before ALTER EXTENSION UPDATE) finds no such column and keeps no API key, so a key is kept only
-- where these triggers exist. A superuser may set it to false to keep none (it moves no version: nothing kept is
-- wrong while the triggers run).
--
-- What it costs writers: these statements take the version row's lock until their transaction ends, as Role and
-- registry writes do (011), so they are serialised with each other and with those. They are administration
-- writes (keys, admin grants, a User's status), rare beside decisions; a decision never writes the row.

ALTER TABLE plystra.catalog_version ADD COLUMN keeps_api_keys boolean NOT NULL DEFAULT true;

CREATE FUNCTION plystra.tg_credential_changed()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Transition tables: changed_old and changed_new (UPDATE only).
    IF TG_OP = 'UPDATE' THEN
        IF TG_TABLE_NAME = 'api_keys' THEN
            -- A row missing on one side (an id changed with the immutability trigger off) counts as a change.
            IF NOT EXISTS (
                SELECT FROM changed_new n FULL JOIN changed_old o ON o.id = n.id
                WHERE n.id IS NULL OR o.id IS NULL
                   OR to_jsonb(n) - 'last_used_at' - 'updated_at' IS DISTINCT FROM to_jsonb(o) - 'last_used_at' - 'updated_at')
            THEN
                RETURN NULL;
            END IF;
        ELSIF TG_TABLE_NAME = 'users' THEN
            IF NOT EXISTS (
                SELECT FROM changed_new n FULL JOIN changed_old o ON o.id = n.id
                WHERE n.id IS NULL OR o.id IS NULL OR (n.status, n.deleted_at) IS DISTINCT FROM (o.status, o.deleted_at))
            THEN
                RETURN NULL;
            END IF;
        END IF;
    END IF;
    UPDATE plystra.catalog_version SET version = nextval('plystra.catalog_version_seq') WHERE name = 'catalog';
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION plystra.tg_credential_changed() IS
'Trigger: a statement wrote an AdminGrant, an API key (other than its last_used_at and updated_at), or a User''s '
'id, status or deleted_at; gives the catalog version a fresh value in the same transaction, so that no backend '
'keeps using the API key credential it read before.';

CREATE TRIGGER credential_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON plystra.admin_grants
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_credential_changed();
CREATE TRIGGER credential_changed AFTER INSERT OR DELETE OR TRUNCATE ON plystra.api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_credential_changed();
CREATE TRIGGER credential_changed_update AFTER UPDATE ON plystra.api_keys
    REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_credential_changed();
CREATE TRIGGER credential_changed AFTER DELETE OR TRUNCATE ON plystra.users
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_credential_changed();
CREATE TRIGGER credential_changed_update AFTER UPDATE ON plystra.users
    REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_credential_changed();
ALTER TABLE plystra.admin_grants ENABLE ALWAYS TRIGGER credential_changed;
ALTER TABLE plystra.api_keys ENABLE ALWAYS TRIGGER credential_changed;
ALTER TABLE plystra.api_keys ENABLE ALWAYS TRIGGER credential_changed_update;
ALTER TABLE plystra.users ENABLE ALWAYS TRIGGER credential_changed;
ALTER TABLE plystra.users ENABLE ALWAYS TRIGGER credential_changed_update;
-- END migrations/015_credential_version.sql

-- An older version's install script run with this build's library already records every bundled migration
-- (plystra.bundled_migrations() comes from the library), so the row may exist.
INSERT INTO plystra.schema_migrations (version, name, checksum) VALUES ('015', 'credential_version', 'aaa289887d165037f78cbfd6184ffd75ce2965ce56cf1ff92aab518ab5cf2ecb')
ON CONFLICT (version) DO UPDATE SET name = excluded.name, checksum = excluded.checksum;

-- Last: who may call what (PUBLIC nothing; plystra_app and plystra_admin their documented sets).
SELECT plystra.apply_privileges();
