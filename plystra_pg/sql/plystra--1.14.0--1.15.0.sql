-- Plystra 1.14.0 -> 1.15.0 (ALTER EXTENSION plystra UPDATE, or plystractl migrate up).
-- Applies, and records in the ledger:
--   019: writes to the Resource Registry's mappings move the catalog version, so that a backend may keep a
--        mapping between decisions (catalog_version.keeps_resource_mappings).
-- tests/catalog_check.sh proves that an updated 1.0.0 equals a fresh 1.15.0.
-- Each block between markers is the migration file, verbatim.
\echo Use "ALTER EXTENSION plystra UPDATE TO '1.15.0'" to load this file. \quit

-- BEGIN migrations/019_mapping_version.sql
-- Plystra Core schema, version 019: the Resource Registry's mappings join the catalog a backend keeps.
--
-- A decision that builds a trace (explain, and every audited decision) shows its resource type's mapping, and an
-- inline resource is read through it; until now each such decision read the mapping by index (about a tenth of
-- an explain's backend time on the benchmark's mix). Writes to plystra.resource_mappings now move the catalog
-- version as writes to the types, actions, Roles and Permissions do (011), so a backend may keep a mapping under
-- the version it read it with (plystra_pg/src/catalog.rs), with the same rule: only a transaction that has written
-- nothing uses what is kept, and only while its snapshot sees that version of that incarnation.
--
-- plystra.catalog_version.keeps_resource_mappings says that the version moves with those writes: a library newer
-- than the schema (replaced before ALTER EXTENSION UPDATE) finds no such column and keeps no mapping, so a mapping
-- is kept only where this trigger exists. A superuser may set it to false to keep none.

CREATE TRIGGER catalog_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON plystra.resource_mappings
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_catalog_changed();
ALTER TABLE plystra.resource_mappings ENABLE ALWAYS TRIGGER catalog_changed;

ALTER TABLE plystra.catalog_version ADD COLUMN keeps_resource_mappings boolean NOT NULL DEFAULT true;
UPDATE plystra.catalog_version SET version = nextval('plystra.catalog_version_seq') WHERE name = 'catalog';
-- END migrations/019_mapping_version.sql

-- An older version's install script run with this build's library already records every bundled migration
-- (plystra.bundled_migrations() comes from the library), so the row may exist.
INSERT INTO plystra.schema_migrations (version, name, checksum) VALUES ('019', 'mapping_version', '465c2e6244ff03df6ffde1381dd891ae01736894f9501b14e9a11c62ad343bca')
ON CONFLICT (version) DO UPDATE SET name = excluded.name, checksum = excluded.checksum;

-- Last: who may call what (PUBLIC nothing; plystra_app and plystra_admin their documented sets).
SELECT plystra.apply_privileges();
