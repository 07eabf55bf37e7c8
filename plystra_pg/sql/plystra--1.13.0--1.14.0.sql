-- Plystra 1.13.0 -> 1.14.0 (ALTER EXTENSION plystra UPDATE, or plystractl migrate up).
-- Applies, and records in the ledger:
--   018: resources are also found by a hash index on their id (resources_id_hash), which a decision's probe
--        reads instead of the primary key's btree.
-- tests/catalog_check.sh proves that an updated 1.0.0 equals a fresh 1.14.0.
-- Each block between markers is the migration file, verbatim.
\echo Use "ALTER EXTENSION plystra UPDATE TO '1.14.0'" to load this file. \quit

-- BEGIN migrations/018_resource_id_hash.sql
-- Plystra Core schema, version 018: resources are also found by a hash index on their id.
--
-- Every decision reads its target resource by id, and a batch reads one for each of its items. Through the
-- primary key's btree that is a descent of three or four levels with a text comparison at every step; through a
-- hash index it is one bucket page and a comparison of 32-bit hash codes (measured on a million resources: about
-- 3.8 against 5.9 to 7.3 µs a lookup through the executor). The decision's probe reads this index when it exists
-- and the primary key otherwise (a schema not yet updated), and, as a hash index holds only hash codes, takes a
-- row only when its id equals the one asked for (`plystra_pg/src/probe.rs`). The primary key stays: it is what
-- makes the id unique. The cost is one more index entry for each resource written.

CREATE INDEX resources_id_hash ON plystra.resources USING hash (id);
-- END migrations/018_resource_id_hash.sql

-- An older version's install script run with this build's library already records every bundled migration
-- (plystra.bundled_migrations() comes from the library), so the row may exist.
INSERT INTO plystra.schema_migrations (version, name, checksum) VALUES ('018', 'resource_id_hash', '1cbeb19d1509e5abd5f73dd6823c4c3cc712767efedd13c8a2d917718421dad1')
ON CONFLICT (version) DO UPDATE SET name = excluded.name, checksum = excluded.checksum;

-- Last: who may call what (PUBLIC nothing; plystra_app and plystra_admin their documented sets).
SELECT plystra.apply_privileges();
