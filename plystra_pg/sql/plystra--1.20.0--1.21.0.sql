-- Plystra 1.20.0 -> 1.21.0 (ALTER EXTENSION plystra UPDATE, or plystractl migrate up).
-- Applies, and records in the ledger:
--   025: the audit log's partitions are listed without locking them (a partition held exclusively made the
--        listing, and with it the audit writer's upkeep and the partition maker's first look, wait).
-- tests/catalog_check.sh proves that an updated 1.0.0 equals a fresh 1.21.0.
-- Each block between markers is the migration file, verbatim.
\echo Use "ALTER EXTENSION plystra UPDATE TO '1.21.0'" to load this file. \quit

-- BEGIN migrations/025_audit_partition_catalog.sql
-- Plystra Core schema, version 025: the audit log's partitions are listed without locking them.
--
-- plystra.audit_partitions() printed each partition's bounds with pg_get_expr(relpartbound, <the partition>), which
-- opens the partition and so waits for its lock. A partition held exclusively (VACUUM FULL, CLUSTER, a LOCK TABLE
-- of the log, the DEFAULT partition while a month's partition is made) made every listing wait: the maker of a
-- month (plystra.create_audit_partition's first look at the catalog, meant to take no lock), the archive, and the
-- audit writer's hourly upkeep, which then gave up on every month. A partition's bound holds constants only, so it
-- prints the same with no relation to name columns from (0), and nothing is opened.
-- tests/sql/094_audit_partition_locks.sql.

CREATE OR REPLACE FUNCTION plystra.audit_partitions()
RETURNS TABLE (partition_name text, range_from timestamptz, range_to timestamptz, is_default boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- The bounds as pg_get_expr prints them, read back in the same session (same TimeZone and DateStyle).
    SELECT c.relname::text,
           (pg_catalog.regexp_match(b.bound, 'FROM \(''([^'']*)''\)'))[1]::timestamptz,
           (pg_catalog.regexp_match(b.bound, 'TO \(''([^'']*)''\)'))[1]::timestamptz,
           b.bound = 'DEFAULT'
    FROM pg_catalog.pg_inherits i
    JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
    CROSS JOIN LATERAL (SELECT pg_catalog.pg_get_expr(c.relpartbound, 0) AS bound) b
    WHERE i.inhparent = 'plystra.audit_logs'::regclass
    ORDER BY 2 NULLS LAST, 1
$$;
COMMENT ON FUNCTION plystra.audit_partitions() IS
'The audit log''s attached partitions: name, range (NULL for the DEFAULT partition) and whether it is the DEFAULT. '
'Read from the catalog alone: it takes no lock on the log or its partitions.';
-- END migrations/025_audit_partition_catalog.sql

-- An older version's install script run with this build's library already records every bundled migration
-- (plystra.bundled_migrations() comes from the library), so the row may exist.
INSERT INTO plystra.schema_migrations (version, name, checksum) VALUES ('025', 'audit_partition_catalog', '80c66e670470f92c8450e338352f9cb3ea3c44191a87e4912ebd7bc500114d06')
ON CONFLICT (version) DO UPDATE SET name = excluded.name, checksum = excluded.checksum;
