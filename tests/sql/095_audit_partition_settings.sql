-- The audit log's partition bounds are written and read in one notation, whatever the caller's DateStyle and
-- TimeZone (migration 026). Until 026 plystra.create_audit_partition wrote a month's bounds as text in the caller's
-- settings and plystra.audit_partitions() read them back from their text in the caller's settings; with
-- DateStyle 'SQL, DMY' and TimeZone 'Asia/Kolkata' a bound prints as '01/02/2038 05:30:00 IST', and 'IST' reads
-- back as Israel Standard Time (+02): the month was made 3.5 hours off, and every month was listed 3.5 hours late,
-- so the audit writer, running in the server's settings, found its coming months missing at every upkeep.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
SELECT plan(9);

-- A partition's bounds as the catalog holds them, printed in ISO and UTC (independent of the functions tested).
CREATE FUNCTION pg_temp.bounds_of(partition text) RETURNS text LANGUAGE sql
SET DateStyle = 'ISO, YMD' SET TimeZone = 'UTC' AS $$
    SELECT pg_get_expr(c.relpartbound, 0) FROM pg_class c WHERE c.oid = ('plystra.' || quote_ident(partition))::regclass
$$;

SET LOCAL DateStyle = 'SQL, DMY';
SET LOCAL TimeZone = 'Asia/Kolkata';

SELECT isnt('2038-02-01 00:00:00+00'::timestamptz::text::timestamptz, '2038-02-01 00:00:00+00'::timestamptz,
            'in these settings a timestamp''s text does not read back as the same instant (the trap this file is about)');

SELECT is(plystra.create_audit_partition('2038-02-10 12:00:00+00'), 'audit_logs_2038_02',
          'the month''s partition is made in these settings');
SELECT is(pg_temp.bounds_of('audit_logs_2038_02'),
          'FOR VALUES FROM (''2038-02-01 00:00:00+00'') TO (''2038-03-01 00:00:00+00'')',
          'its bounds are the UTC month exactly (before 026: 3.5 hours off)');
SELECT is((SELECT array[p.range_from, p.range_to] FROM plystra.audit_partitions() p
           WHERE p.partition_name = 'audit_logs_2038_02'),
          array['2038-02-01 00:00:00+00'::timestamptz, '2038-03-01 00:00:00+00'::timestamptz],
          'the listing reads its range as the UTC month (before 026: 3.5 hours late)');
SELECT is((SELECT count(*)::int FROM plystra.audit_partitions() p
           WHERE NOT p.is_default
             AND (p.range_from <> pg_catalog.date_trunc('month', p.range_from AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                  OR p.range_to <> (pg_catalog.date_trunc('month', p.range_from AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'
                  OR p.partition_name <> 'audit_logs_' || to_char(p.range_from AT TIME ZONE 'UTC', 'YYYY_MM'))), 0,
          'every month listed is read as the UTC month its name says');
SELECT is(plystra.create_audit_partition('2038-02-28 23:59:59+00'), NULL,
          'the month is not made twice: the maker reads the listing in its own notation');
SELECT is(plystra.create_audit_partition('2038-03-01 00:00:00+00'), 'audit_logs_2038_03',
          'the next month is made beside it (its lower bound is the first one''s upper bound)');
-- The audit writer's question before it takes the log to make months (plystra_pg/src/audit_writer.rs,
-- COMING_MONTHS_MADE_SQL), asked in these settings once the months are made: before 026 the answer was no, at
-- every upkeep, and the writer took the log exclusively every 10 s for nothing.
CREATE TEMP TABLE t095_made AS SELECT count(*) AS n FROM plystra.ensure_audit_partitions(3);
SELECT ok((SELECT bool_and(EXISTS (
               SELECT 1 FROM plystra.audit_partitions() p
               WHERE NOT p.is_default AND p.range_from <= m.start AND p.range_to > m.start))
           FROM (SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => i)) AT TIME ZONE 'UTC' AS start
                 FROM generate_series(0, 3) AS i) m),
          'the coming months are found made (before 026: found missing, every time)');
SELECT is(current_setting('DateStyle') || ' ' || current_setting('TimeZone'), 'SQL, DMY Asia/Kolkata',
          'the caller''s settings are its own again after the calls');

SELECT * FROM finish();
ROLLBACK;
