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
