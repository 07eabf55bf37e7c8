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
