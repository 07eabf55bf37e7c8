-- Plystra 1.19.0 -> 1.20.0 (ALTER EXTENSION plystra UPDATE, or plystractl migrate up).
-- Applies, and records in the ledger:
--   024: the audit log's lock is taken before its partitions' (making a month's partition and archiving deadlocked
--        with a TRUNCATE of the log, or with each other).
-- tests/catalog_check.sh proves that an updated 1.0.0 equals a fresh 1.20.0.
-- Each block between markers is the migration file, verbatim.
\echo Use "ALTER EXTENSION plystra UPDATE TO '1.20.0'" to load this file. \quit

-- BEGIN migrations/024_audit_partition_locks.sql
-- Plystra Core schema, version 024: the audit log's lock is taken before its partitions'.
--
-- TRUNCATE, LOCK TABLE and the planner lock a partitioned table before its partitions. Making a month's partition
-- (plystra.create_audit_partition, which the audit writer calls every hour) read the DEFAULT partition, holding a
-- lock on it, and only then took the log exclusively to attach the new partition; archiving
-- (plystra.archive_audit_partitions, and plystractl audit archive before it) held the archived partitions and read
-- every other before DETACH took the log. Either deadlocked with a session that held the log and waited for a
-- partition: a TRUNCATE of the log (refused by its trigger, but only once it holds every partition) answered 40P01
-- instead of its refusal, seen when a test suite ran during the writer's upkeep; and making a partition during an
-- archive deadlocked with it. Both now lock the log first: the partition's maker exclusively, once the catalog says
-- the month has none; the archive in SHARE UPDATE EXCLUSIVE mode, which audited decisions do not wait for.
-- tests/sql/094_audit_partition_locks.sql.

CREATE OR REPLACE FUNCTION plystra.create_audit_partition(month_start timestamptz)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lo timestamptz := pg_catalog.date_trunc('month', month_start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    hi timestamptz := (pg_catalog.date_trunc('month', month_start AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
    name text := 'audit_logs_' || pg_catalog.to_char(month_start AT TIME ZONE 'UTC', 'YYYY_MM');
    moving boolean;
BEGIN
    IF month_start IS NULL THEN
        RAISE EXCEPTION 'plystra: month_start must not be NULL' USING ERRCODE = '22023';
    END IF;
    -- The catalog alone says whether the month has its partition (this takes no lock): the hourly call that finds
    -- every month made touches no table.
    IF EXISTS (SELECT 1 FROM plystra.audit_partitions() p
               WHERE NOT p.is_default AND p.range_from < hi AND p.range_to > lo)
       OR pg_catalog.to_regclass('plystra.' || pg_catalog.quote_ident(name)) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    -- The log before any of its partitions, as TRUNCATE, LOCK TABLE and the planner lock them: making the partition
    -- needs the log exclusively anyway, and reading the DEFAULT partition first (as until migration 024) held a lock
    -- on it while this waited for the log, so a TRUNCATE of the log (which holds the log and waits for each
    -- partition) deadlocked with it.
    LOCK TABLE ONLY plystra.audit_logs IN ACCESS EXCLUSIVE MODE;
    -- Made by another caller while this one waited.
    IF EXISTS (SELECT 1 FROM plystra.audit_partitions() p
               WHERE NOT p.is_default AND p.range_from < hi AND p.range_to > lo)
       OR pg_catalog.to_regclass('plystra.' || pg_catalog.quote_ident(name)) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    moving := EXISTS (SELECT 1 FROM plystra.audit_logs_default d WHERE d.created_at >= lo AND d.created_at < hi);
    IF moving THEN
        -- Rows of this month went to the DEFAULT partition (written before the month had a partition). They move,
        -- unchanged (seq and chain columns included), into the new partition, in this one transaction: the
        -- DEFAULT partition is detached (which lifts its cloned append-only trigger), the rows are copied through
        -- the parent and deleted from it, and it is attached again.
        LOCK TABLE plystra.audit_logs IN ACCESS EXCLUSIVE MODE;
        ALTER TABLE plystra.audit_logs DETACH PARTITION plystra.audit_logs_default;
    END IF;
    EXECUTE pg_catalog.format('CREATE TABLE plystra.%I PARTITION OF plystra.audit_logs FOR VALUES FROM (%L) TO (%L)',
                              name, lo, hi);
    PERFORM plystra.index_audit_partition(name);
    IF moving THEN
        -- Their keys are already recorded (plystra.audit_log_keys) and stay as they are. Nobody else sees the
        -- trigger off: the log is locked exclusively until this transaction ends.
        EXECUTE pg_catalog.format('ALTER TABLE plystra.%I DISABLE TRIGGER trg_audit_log_keys_insert', name);
        INSERT INTO plystra.audit_logs OVERRIDING SYSTEM VALUE
        SELECT * FROM plystra.audit_logs_default d WHERE d.created_at >= lo AND d.created_at < hi ORDER BY d.seq;
        EXECUTE pg_catalog.format('ALTER TABLE plystra.%I ENABLE ALWAYS TRIGGER trg_audit_log_keys_insert', name);
        DELETE FROM plystra.audit_logs_default d WHERE d.created_at >= lo AND d.created_at < hi;
        ALTER TABLE plystra.audit_logs ATTACH PARTITION plystra.audit_logs_default DEFAULT;
    END IF;
    -- Row triggers are cloned from the parent (enabled ALWAYS, like the parent's); a TRUNCATE trigger is not, and
    -- TRUNCATE of a partition skips the parent's.
    EXECUTE pg_catalog.format('CREATE TRIGGER trg_audit_logs_append_only_truncate BEFORE TRUNCATE ON plystra.%I '
                              'FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_audit_logs_append_only()', name);
    EXECUTE pg_catalog.format('ALTER TABLE plystra.%I ENABLE ALWAYS TRIGGER trg_audit_logs_append_only_truncate', name);
    -- Made during CREATE/ALTER EXTENSION (this migration moving old rows), the partition would be a member of the
    -- extension and left out of pg_dump; it is the operator's data, like the months made later.
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_depend
               WHERE classid = 'pg_catalog.pg_class'::regclass AND objid = ('plystra.' || pg_catalog.quote_ident(name))::regclass
                 AND refclassid = 'pg_catalog.pg_extension'::regclass AND deptype = 'e') THEN
        EXECUTE pg_catalog.format('ALTER EXTENSION plystra DROP TABLE plystra.%I', name);
    END IF;
    RETURN name;
END;
$$;

CREATE OR REPLACE FUNCTION plystra.archive_audit_partitions(partitions text[], row_count bigint, file_name text, file_sha256 text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p text;
    archive bigint;
    total bigint := 0;
    n bigint;
    m bigint;
    bad record;
BEGIN
    IF partitions IS NULL OR pg_catalog.cardinality(partitions) = 0 OR row_count IS NULL OR file_name IS NULL
       OR file_name = '' OR file_sha256 IS NULL OR file_sha256 !~ '^[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'plystra: archive_audit_partitions needs partitions, their row count, a file name and the '
                        'file''s SHA-256 (hex)' USING ERRCODE = '22023';
    END IF;
    -- Sealing waits until this transaction ends, and no row enters these partitions: the chains do not move
    -- while they are verified and cut. plystractl takes the same locks before it reads the rows.
    PERFORM 1 FROM plystra.audit_sealer FOR UPDATE;
    -- The log before any of its partitions (the order TRUNCATE and create_audit_partition take them): this lock lets
    -- decisions go on writing, and keeps out what would take the log exclusively while the partitions below are
    -- held, until DETACH raises it. Taken after the partitions (until migration 024), a partition's creation or a
    -- TRUNCATE waiting for a partition held here while holding the log deadlocked with it.
    LOCK TABLE ONLY plystra.audit_logs IN SHARE UPDATE EXCLUSIVE MODE;
    FOREACH p IN ARRAY partitions LOOP
        IF NOT EXISTS (SELECT 1 FROM plystra.audit_partitions() a WHERE a.partition_name = p AND NOT a.is_default) THEN
            RAISE EXCEPTION 'plystra: % is not a monthly partition of plystra.audit_logs', p USING ERRCODE = '22023';
        END IF;
        EXECUTE pg_catalog.format('LOCK TABLE plystra.%I IN SHARE MODE', p);
        EXECUTE pg_catalog.format('SELECT count(*) FILTER (WHERE row_hash IS NULL), count(*) FROM plystra.%I', p)
            INTO n, m;
        IF n > 0 THEN
            RAISE EXCEPTION 'plystra: partition % holds % unsealed audit rows; seal them first (plystractl audit seal)', p, n
                USING ERRCODE = '55000';
        END IF;
        total := total + m;
    END LOOP;
    IF total <> row_count THEN
        RAISE EXCEPTION 'plystra: the partitions hold % rows, the archive %; nothing archived', total, row_count
            USING ERRCODE = '55000';
    END IF;
    SELECT * INTO bad FROM plystra.verify_audit_chain() v WHERE v.broken_at_position IS NOT NULL OR v.problem IS NOT NULL LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'plystra: the audit chain does not verify; nothing archived'
            USING ERRCODE = '55000',
                  DETAIL = pg_catalog.format('chain %L: %s at position %s (audit row %s)', bad.space_key, bad.problem,
                                             bad.broken_at_position, bad.broken_audit_id);
    END IF;
    INSERT INTO plystra.audit_archives (file_name, file_sha256, row_count)
    VALUES (archive_audit_partitions.file_name, archive_audit_partitions.file_sha256, total) RETURNING id INTO archive;
    -- The last link of each archived run: its successor is in none of these partitions.
    EXECUTE pg_catalog.format(
        'INSERT INTO plystra.audit_archived_links (space_key, chain_position, row_hash, archive_id)
         WITH archived AS (%s)
         SELECT coalesce(a.space_id, ''''), a.chain_position, a.row_hash, $1 FROM archived a
         WHERE NOT EXISTS (SELECT 1 FROM archived b WHERE coalesce(b.space_id, '''') = coalesce(a.space_id, '''')
                             AND b.chain_position = a.chain_position + 1)',
        (SELECT pg_catalog.string_agg(pg_catalog.format('SELECT space_id, chain_position, row_hash FROM plystra.%I', x), ' UNION ALL ')
         FROM pg_catalog.unnest(partitions) x))
    USING archive;
    FOREACH p IN ARRAY partitions LOOP
        EXECUTE pg_catalog.format('SELECT count(*) FROM plystra.%I', p) INTO n;
        INSERT INTO plystra.audit_archive_partitions (partition_name, archive_id, range_from, range_to, row_count)
        SELECT a.partition_name, archive, a.range_from, a.range_to, n FROM plystra.audit_partitions() a
        WHERE a.partition_name = p;
    END LOOP;
    PERFORM plystra.audit_retention_event('archived', pg_catalog.array_to_string(partitions, ','),
        pg_catalog.jsonb_build_object('archive_id', archive, 'partitions', partitions, 'rows', total,
                                      'file_name', file_name, 'file_sha256', file_sha256));
    FOREACH p IN ARRAY partitions LOOP
        EXECUTE pg_catalog.format('ALTER TABLE plystra.audit_logs DETACH PARTITION plystra.%I', p);
        -- Detaching removes the row trigger cloned from the parent: the table stays append-only until dropped.
        EXECUTE pg_catalog.format('CREATE TRIGGER trg_audit_logs_append_only BEFORE UPDATE OR DELETE ON plystra.%I '
                                  'FOR EACH ROW EXECUTE FUNCTION plystra.tg_audit_logs_append_only()', p);
        EXECUTE pg_catalog.format('ALTER TABLE plystra.%I ENABLE ALWAYS TRIGGER trg_audit_logs_append_only', p);
    END LOOP;
    RETURN archive;
END;
$$;
-- END migrations/024_audit_partition_locks.sql

-- An older version's install script run with this build's library already records every bundled migration
-- (plystra.bundled_migrations() comes from the library), so the row may exist.
INSERT INTO plystra.schema_migrations (version, name, checksum) VALUES ('024', 'audit_partition_locks', '6e806350250f7ced79469e1075e9330fe66f7570510818c6cb251eb13d671e47')
ON CONFLICT (version) DO UPDATE SET name = excluded.name, checksum = excluded.checksum;
