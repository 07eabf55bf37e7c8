-- Plystra 1.21.0 -> 1.22.0 (ALTER EXTENSION plystra UPDATE, or plystractl migrate up).
-- Applies, and records in the ledger:
--   026: the audit log's partition bounds are written and read in ISO dates and UTC, whatever the caller's
--        DateStyle and TimeZone (some settings read back a bound hours off what they printed).
-- tests/catalog_check.sh proves that an updated 1.0.0 equals a fresh 1.22.0.
-- Each block between markers is the migration file, verbatim.
\echo Use "ALTER EXTENSION plystra UPDATE TO '1.22.0'" to load this file. \quit

-- BEGIN migrations/026_audit_partition_settings.sql
-- Plystra Core schema, version 026: the audit log's partition bounds are written and read in one fixed notation.
--
-- plystra.create_audit_partition wrote a month's bounds as text (FOR VALUES FROM (%L) TO (%L)) and
-- plystra.audit_partitions() read them back from pg_get_expr's text, both in the caller's DateStyle and TimeZone.
-- Some settings do not read back what they print: with DateStyle 'SQL, DMY' and TimeZone 'Asia/Kolkata' a bound
-- prints as '01/12/2026 05:30:00 IST', and IST reads back as Israel Standard Time, 3.5 hours off. A month was then
-- made with the wrong bounds, and the listing misread every month, so the audit writer (whose settings are the
-- server's) found its months missing at every upkeep. Both functions now run in ISO dates and UTC, whatever the
-- caller's settings; their answers are timestamps, which the caller still sees in its own settings.
-- tests/sql/095_audit_partition_settings.sql.

ALTER FUNCTION plystra.audit_partitions() SET DateStyle = 'ISO, YMD' SET TimeZone = 'UTC';
ALTER FUNCTION plystra.create_audit_partition(timestamptz) SET DateStyle = 'ISO, YMD' SET TimeZone = 'UTC';
-- END migrations/026_audit_partition_settings.sql

-- An older version's install script run with this build's library already records every bundled migration
-- (plystra.bundled_migrations() comes from the library), so the row may exist.
INSERT INTO plystra.schema_migrations (version, name, checksum) VALUES ('026', 'audit_partition_settings', 'bff7282ae70a773f1188cb50cb09b7eaaf77773ee90c92ecdb1724fb344cc8ff')
ON CONFLICT (version) DO UPDATE SET name = excluded.name, checksum = excluded.checksum;
