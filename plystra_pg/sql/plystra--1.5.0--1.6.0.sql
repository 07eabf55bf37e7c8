-- Plystra 1.5.0 -> 1.6.0 (ALTER EXTENSION plystra UPDATE, or plystractl migrate up).
-- Applies, in order, and records in the ledger:
--   009: plystra.audit_logs partitioned by month (every row moved unchanged into its month's partition; uniqueness
--        of id, seq and chain positions across partitions; the archive records and the functions that make
--        partitions, archive, drop and verify across an archive);
--   010: plystra.replay joins plystra_admin's list (an audited decision asked again against today's data);
--   011: the catalog version that lets a backend keep the Resource Registry, Roles and Permissions between decisions.
-- Then creates plystra.replay, the one new function of the library.
-- tests/catalog_check.sh proves that an updated 1.0.0 equals a fresh 1.6.0.
-- Each block between markers is the migration file, verbatim.
\echo Use "ALTER EXTENSION plystra UPDATE TO '1.6.0'" to load this file. \quit

-- BEGIN migrations/009_audit_partitions.sql
-- Plystra Core schema, version 009: the audit log partitioned by month, so that old months can be archived to a
-- file and detached without breaking any Space's hash chain.
--
-- plystra.audit_logs becomes a table partitioned by RANGE (created_at): one partition per calendar month (UTC),
-- named audit_logs_YYYY_MM, plus the DEFAULT partition audit_logs_default, which takes any row no monthly
-- partition covers so that an insert never fails for want of a partition. Monthly partitions are made ahead by
-- plystra.ensure_audit_partitions() (the current month and the next ones), which the audit writer calls when it
-- starts and every hour, and an operator can call through `plystractl audit partitions`. This migration moves
-- every existing row, with its seq, chain position and hashes unchanged, into a monthly partition of its own
-- month; a fresh install has no monthly partition until the first call.
--
-- Monthly partitions are not members of the extension: pg_dump writes them (definition and rows) like any table,
-- and a restore's CREATE EXTENSION, which creates only the DEFAULT partition, never collides with them.
--
-- Indexes are each partition's own (plystra.index_audit_partition), none on the parent: a partitioned unique
-- index must hold the partition key, and the parent belongs to the extension, so a restore's CREATE EXTENSION
-- would give it indexes before pg_restore creates the partitions' (which it would then refuse as duplicates).
-- Each partition keeps id, seq and a Space's chain position unique by unique indexes; across partitions the
-- statement triggers trg_audit_logs_unique_* do (a key present with another created_at is a unique_violation).
--
-- Archiving (plystractl audit archive) writes whole monthly partitions to a file after verifying every chain,
-- records in plystra.audit_archived_links the last link of each archived run of a chain (the hash the live chain
-- continues from), records the archive and its partitions, writes an audit row, and detaches the partitions. A
-- detached partition is dropped only by plystra.drop_archived_audit_partition (plystractl audit drop), which
-- writes its own audit row. plystra.verify_audit_chain links the live chain to the archived links.

-- The row hash takes the table's row type: the old table's function is dropped with it and made again below.
DROP FUNCTION plystra.audit_row_hash(plystra.audit_logs, bigint, text);
ALTER TABLE plystra.audit_logs RENAME TO audit_logs_008;

CREATE TABLE plystra.audit_logs (
    id                   text NOT NULL,
    seq                  bigint GENERATED ALWAYS AS IDENTITY,
    space_id             text,
    actor_user_id        text,
    actor_member_id      text,
    actor_user_member_id text,
    action               text NOT NULL,
    resource_type        text,
    resource_id          text,
    decision             text NOT NULL,
    deny_code            text,
    -- lz4: traces are written on every decision; lz4 compresses them several times faster than pglz.
    trace                jsonb COMPRESSION lz4 NOT NULL,
    request_id           text,
    ip_address           text,
    user_agent           text,
    created_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    chain_position       bigint,
    prev_hash            text,
    row_hash             text
) PARTITION BY RANGE (created_at);

CREATE TABLE plystra.audit_logs_default PARTITION OF plystra.audit_logs DEFAULT;

-- The indexes of one partition: what the log's readers and writers look rows up by, and the keys unique within it.
CREATE FUNCTION plystra.index_audit_partition(partition_name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t constant text := pg_catalog.format('plystra.%I', partition_name);
BEGIN
    EXECUTE pg_catalog.format('CREATE UNIQUE INDEX %I ON %s (id)', partition_name || '_id_key', t);
    EXECUTE pg_catalog.format('CREATE UNIQUE INDEX %I ON %s (seq)', partition_name || '_seq_key', t);
    EXECUTE pg_catalog.format('CREATE UNIQUE INDEX %I ON %s ((coalesce(space_id, %L)), chain_position) '
                              'WHERE chain_position IS NOT NULL', partition_name || '_chain_position_key', t, '');
    -- Finds what is left to seal without scanning the log.
    EXECUTE pg_catalog.format('CREATE INDEX %I ON %s (seq) WHERE row_hash IS NULL', partition_name || '_unsealed_idx', t);
    EXECUTE pg_catalog.format('CREATE INDEX %I ON %s (space_id, created_at DESC)', partition_name || '_space_created_idx', t);
    EXECUTE pg_catalog.format('CREATE INDEX %I ON %s (created_at DESC)', partition_name || '_created_idx', t);
    EXECUTE pg_catalog.format('CREATE INDEX %I ON %s (actor_user_id)', partition_name || '_actor_user_idx', t);
    EXECUTE pg_catalog.format('CREATE INDEX %I ON %s (actor_member_id)', partition_name || '_actor_member_idx', t);
    EXECUTE pg_catalog.format('CREATE INDEX %I ON %s (actor_user_member_id)', partition_name || '_actor_user_member_idx', t);
    EXECUTE pg_catalog.format('CREATE INDEX %I ON %s (resource_type, resource_id)', partition_name || '_resource_idx', t);
    EXECUTE pg_catalog.format('CREATE INDEX %I ON %s (request_id)', partition_name || '_request_id_idx', t);
    EXECUTE pg_catalog.format('CREATE INDEX %I ON %s (decision, created_at DESC)', partition_name || '_decision_idx', t);
    -- Only denies carry a code; a partial index keeps allows (the common case) out of it.
    EXECUTE pg_catalog.format('CREATE INDEX %I ON %s (deny_code) WHERE deny_code IS NOT NULL', partition_name || '_deny_code_idx', t);
END;
$$;
COMMENT ON FUNCTION plystra.index_audit_partition(text) IS
'Creates the indexes of one partition of the audit log (the log''s indexes before 1.6.0, and unique id, seq and '
'chain position per Space within the partition). Called by plystra.create_audit_partition. For the extension''s owner.';
SELECT plystra.index_audit_partition('audit_logs_default');

COMMENT ON TABLE plystra.audit_logs_default IS
'The audit log''s DEFAULT partition: rows no monthly partition covers. It is never archived; when a month''s '
'partition is made (plystra.ensure_audit_partitions), that month''s rows move out of it unchanged.';

-- One monthly partition: the month starting at month_start (UTC). NULL when a partition already covers it or a
-- table of that name exists (an archived month).
CREATE FUNCTION plystra.create_audit_partition(month_start timestamptz)
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
        INSERT INTO plystra.audit_logs OVERRIDING SYSTEM VALUE
        SELECT * FROM plystra.audit_logs_default d WHERE d.created_at >= lo AND d.created_at < hi ORDER BY d.seq;
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
COMMENT ON FUNCTION plystra.create_audit_partition(timestamptz) IS
'Creates the audit log''s partition for the calendar month (UTC) holding month_start, named audit_logs_YYYY_MM, '
'with the append-only TRUNCATE trigger; rows of that month in the DEFAULT partition move into it unchanged. Returns '
'its name, or NULL when a partition covers the month already or a table of that name exists (an archived month). '
'For the extension''s owner.';

CREATE FUNCTION plystra.audit_partitions()
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
    CROSS JOIN LATERAL (SELECT pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS bound) b
    WHERE i.inhparent = 'plystra.audit_logs'::regclass
    ORDER BY 2 NULLS LAST, 1
$$;
COMMENT ON FUNCTION plystra.audit_partitions() IS
'The audit log''s attached partitions: name, range (NULL for the DEFAULT partition) and whether it is the DEFAULT.';

CREATE FUNCTION plystra.ensure_audit_partitions(months_ahead integer DEFAULT 3)
RETURNS SETOF text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    this_month timestamp := pg_catalog.date_trunc('month', pg_catalog.now() AT TIME ZONE 'UTC');
    made text;
BEGIN
    IF months_ahead IS NULL OR months_ahead < 0 OR months_ahead > 120 THEN
        RAISE EXCEPTION 'plystra: months_ahead must be between 0 and 120' USING ERRCODE = '22023';
    END IF;
    FOR i IN 0 .. months_ahead LOOP
        -- One month failing (a lock timeout, say) must not stop the others nor the caller (the audit writer):
        -- its rows go to the DEFAULT partition meanwhile.
        BEGIN
            made := plystra.create_audit_partition((this_month + pg_catalog.make_interval(months => i)) AT TIME ZONE 'UTC');
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'plystra: could not create the audit partition for % months ahead: %', i, SQLERRM;
            made := NULL;
        END;
        IF made IS NOT NULL THEN
            RETURN NEXT made;
        END IF;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION plystra.ensure_audit_partitions(integer) IS
'Creates the audit log''s monthly partitions (UTC) for this month and the next months_ahead months (0..120, '
'default 3) that have none; returns the names made. A month that cannot be made is a WARNING, never an error: its '
'rows go to the DEFAULT partition. The audit writer calls it when it starts and every hour; plystractl audit '
'partitions calls it. For the extension''s owner.';

-- The old rows, each in its month's partition, unchanged (seq included).
DO $$
DECLARE
    m timestamp;
BEGIN
    FOR m IN SELECT DISTINCT pg_catalog.date_trunc('month', created_at AT TIME ZONE 'UTC') FROM plystra.audit_logs_008 ORDER BY 1 LOOP
        PERFORM plystra.create_audit_partition(m AT TIME ZONE 'UTC');
    END LOOP;
END;
$$;
INSERT INTO plystra.audit_logs OVERRIDING SYSTEM VALUE SELECT * FROM plystra.audit_logs_008 ORDER BY seq;
SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence('plystra.audit_logs', 'seq'),
                         coalesce((SELECT max(seq) FROM plystra.audit_logs_008), 1),
                         (SELECT count(*) > 0 FROM plystra.audit_logs_008));

-- The old table leaves the extension's dump list with it (ALTER EXTENSION DROP removes it from extconfig).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_depend
               WHERE classid = 'pg_catalog.pg_class'::regclass AND objid = 'plystra.audit_logs_008'::regclass
                 AND refclassid = 'pg_catalog.pg_extension'::regclass AND deptype = 'e') THEN
        ALTER EXTENSION plystra DROP TABLE plystra.audit_logs_008;
        ALTER EXTENSION plystra DROP SEQUENCE plystra.audit_logs_seq_seq;
    END IF;
END;
$$;
DROP TABLE plystra.audit_logs_008;
ALTER SEQUENCE plystra.audit_logs_seq_seq1 RENAME TO audit_logs_seq_seq;

ALTER TABLE plystra.audit_logs ADD CONSTRAINT audit_logs_decision_known CHECK (decision IN ('allow', 'deny'));

-- As before, the one UPDATE allowed being sealing; the sealing test is reached only for a partition attached to
-- the log (a detached one's row type no longer converts to the log's, and nothing may change in it).
CREATE OR REPLACE FUNCTION plystra.tg_audit_logs_append_only()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND pg_catalog.pg_partition_root(TG_RELID) = 'plystra.audit_logs'::regclass THEN
        IF OLD.row_hash IS NULL AND NEW.row_hash IS NOT NULL
           AND (pg_catalog.to_jsonb(NEW) - ARRAY['chain_position', 'prev_hash', 'row_hash'])
               = (pg_catalog.to_jsonb(OLD) - ARRAY['chain_position', 'prev_hash', 'row_hash'])
           AND NEW.row_hash = plystra.audit_row_hash(NEW, NEW.chain_position, NEW.prev_hash) THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = '42501',
        CONSTRAINT = 'audit_logs_append_only',
        SCHEMA = TG_TABLE_SCHEMA,
        TABLE = TG_TABLE_NAME,
        MESSAGE = 'plystra: plystra.audit_logs is append-only',
        DETAIL = pg_catalog.format('%s on plystra.%s is not allowed for any role.', TG_OP, TG_TABLE_NAME);
END;
$$;

-- Append-only, as before: ALWAYS, so that session_replication_role = replica does not skip the triggers. The row
-- trigger is cloned onto every partition; the TRUNCATE trigger is made on each partition too.
CREATE TRIGGER trg_audit_logs_append_only BEFORE UPDATE OR DELETE ON plystra.audit_logs
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_audit_logs_append_only();
CREATE TRIGGER trg_audit_logs_append_only_truncate BEFORE TRUNCATE ON plystra.audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_audit_logs_append_only();
CREATE TRIGGER trg_audit_logs_append_only_truncate BEFORE TRUNCATE ON plystra.audit_logs_default
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_audit_logs_append_only();
ALTER TABLE plystra.audit_logs ENABLE ALWAYS TRIGGER trg_audit_logs_append_only;
ALTER TABLE plystra.audit_logs ENABLE ALWAYS TRIGGER trg_audit_logs_append_only_truncate;
ALTER TABLE plystra.audit_logs_default ENABLE ALWAYS TRIGGER trg_audit_logs_append_only_truncate;
DO $$
DECLARE
    p text;
BEGIN
    FOR p IN SELECT partition_name FROM plystra.audit_partitions() WHERE NOT is_default LOOP
        EXECUTE pg_catalog.format('ALTER TABLE plystra.%I ENABLE ALWAYS TRIGGER trg_audit_logs_append_only', p);
    END LOOP;
END;
$$;

-- Uniqueness across partitions: a key (id, seq, or a Space's chain position) that another row holds with another
-- created_at (the same created_at is the same partition, whose unique index answers first). Sealers hold the sealer's lock,
-- so two sealings never race on a chain position; ids and seq come from random bits and a sequence.
CREATE FUNCTION plystra.tg_audit_logs_unique()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    key text;
    what text;
BEGIN
    SELECT n.id INTO key FROM audit_new n
    WHERE EXISTS (SELECT 1 FROM plystra.audit_logs a WHERE a.id = n.id AND a.created_at <> n.created_at) LIMIT 1;
    IF FOUND THEN
        what := 'audit_logs_id_key';
    ELSE
        SELECT n.seq::text INTO key FROM audit_new n
        WHERE EXISTS (SELECT 1 FROM plystra.audit_logs a WHERE a.seq = n.seq AND a.created_at <> n.created_at) LIMIT 1;
        IF FOUND THEN
            what := 'audit_logs_seq_key';
        ELSE
            SELECT coalesce(n.space_id, '') || '/' || n.chain_position INTO key FROM audit_new n
            WHERE n.chain_position IS NOT NULL
              AND EXISTS (SELECT 1 FROM plystra.audit_logs a
                          WHERE coalesce(a.space_id, '') = coalesce(n.space_id, '') AND a.chain_position IS NOT NULL
                            AND a.chain_position = n.chain_position AND a.created_at <> n.created_at) LIMIT 1;
            IF FOUND THEN
                what := 'audit_logs_chain_position_key';
            END IF;
        END IF;
    END IF;
    IF what IS NOT NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = '23505',
            CONSTRAINT = what,
            SCHEMA = TG_TABLE_SCHEMA,
            TABLE = TG_TABLE_NAME,
            MESSAGE = pg_catalog.format('plystra: duplicate key %s on plystra.audit_logs (%s)', key, what);
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION plystra.tg_audit_logs_unique() IS
'AFTER INSERT and AFTER UPDATE statement triggers on audit_logs (enabled ALWAYS): id, seq and a Space''s chain '
'position are unique across the whole partitioned log (SQLSTATE 23505 naming audit_logs_id_key, audit_logs_seq_key '
'or audit_logs_chain_position_key); within a partition its own unique indexes answer first.';
CREATE TRIGGER trg_audit_logs_unique_insert AFTER INSERT ON plystra.audit_logs
    REFERENCING NEW TABLE AS audit_new FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_audit_logs_unique();
CREATE TRIGGER trg_audit_logs_unique_update AFTER UPDATE ON plystra.audit_logs
    REFERENCING NEW TABLE AS audit_new FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_audit_logs_unique();
ALTER TABLE plystra.audit_logs ENABLE ALWAYS TRIGGER trg_audit_logs_unique_insert;
ALTER TABLE plystra.audit_logs ENABLE ALWAYS TRIGGER trg_audit_logs_unique_update;

CREATE FUNCTION plystra.audit_hash_input(a plystra.audit_logs, chain_position bigint, prev_hash text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.jsonb_build_array(
        'plystra-audit-chain-v1', a.id, a.space_id, a.actor_user_id, a.actor_member_id, a.actor_user_member_id,
        a.action, a.resource_type, a.resource_id, a.decision, a.deny_code, a.trace, a.request_id, a.ip_address,
        a.user_agent, (extract(epoch FROM a.created_at) * 1000000)::bigint, chain_position, prev_hash)::text
$$;
CREATE FUNCTION plystra.audit_row_hash(a plystra.audit_logs, chain_position bigint, prev_hash text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    -- jsonb's text form is canonical (key order, spacing), so the same content always hashes the same.
    SELECT pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(plystra.audit_hash_input(a, chain_position, prev_hash),
        'UTF8')), 'hex')
$$;

COMMENT ON FUNCTION plystra.audit_hash_input(plystra.audit_logs, bigint, text) IS
'The exact text an audit row''s hash is taken over: the JSON array [''plystra-audit-chain-v1'', id, space_id, '
'actor_user_id, actor_member_id, actor_user_member_id, action, resource_type, resource_id, decision, deny_code, '
'trace, request_id, ip_address, user_agent, created_at in microseconds since 1970, chain_position, prev_hash] in '
'jsonb''s canonical text form. Archives carry it so that they verify without a database.';
COMMENT ON FUNCTION plystra.audit_row_hash(plystra.audit_logs, bigint, text) IS
'The SHA-256 (hex) of an audit row''s content (every column but seq and the chain columns), its chain position and '
'the previous row''s hash: of plystra.audit_hash_input. The one definition used to seal and to verify.';

-- Redefined (same text) so that sessions holding a compiled copy that names the old table's row type recompile.
CREATE OR REPLACE FUNCTION plystra.append_audit(rows jsonb)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    batch plystra.audit_logs[];
    r plystra.audit_logs;
    n integer;
    heads jsonb := '{}';   -- space_key -> [position, hash], read once per chain per batch
    key text;
    pos bigint;
    prev text;
    -- One sealer at a time keeps each chain a line. If another holds the chains now, these rows go in unsealed
    -- and plystra.seal_audit() seals them within a second: decisions never wait on sealing.
    sealing boolean := plystra.audit_sealer_lock();
BEGIN
    -- Parsed once; each element is then updated in place (plpgsql keeps the array expanded).
    batch := ARRAY(SELECT p FROM pg_catalog.jsonb_populate_recordset(NULL::plystra.audit_logs, rows) AS p);
    n := coalesce(pg_catalog.array_length(batch, 1), 0);
    FOR i IN 1 .. n LOOP
        r := batch[i];
        r.created_at := coalesce(r.created_at, pg_catalog.clock_timestamp());
        IF sealing THEN
            key := coalesce(r.space_id, '');
            IF NOT heads ? key THEN
                SELECT h.chain_position, h.row_hash INTO pos, prev FROM plystra.audit_chain_heads h WHERE h.space_key = key;
                heads := heads || pg_catalog.jsonb_build_object(key, pg_catalog.jsonb_build_array(coalesce(pos, 0), coalesce(prev, '')));
            END IF;
            r.chain_position := (heads -> key ->> 0)::bigint + 1;
            r.prev_hash := heads -> key ->> 1;
            r.row_hash := plystra.audit_row_hash(r, r.chain_position, r.prev_hash);
            heads := pg_catalog.jsonb_set(heads, ARRAY[key], pg_catalog.jsonb_build_array(r.chain_position, r.row_hash));
        END IF;
        batch[i] := r;
    END LOOP;
    INSERT INTO plystra.audit_logs (id, space_id, actor_user_id, actor_member_id, actor_user_member_id, action,
                                    resource_type, resource_id, decision, deny_code, trace, request_id, ip_address,
                                    user_agent, created_at, chain_position, prev_hash, row_hash)
    SELECT b.id, b.space_id, b.actor_user_id, b.actor_member_id, b.actor_user_member_id, b.action, b.resource_type,
           b.resource_id, b.decision, b.deny_code, b.trace, b.request_id, b.ip_address, b.user_agent, b.created_at,
           b.chain_position, b.prev_hash, b.row_hash
    FROM pg_catalog.unnest(batch) AS b;
    INSERT INTO plystra.audit_chain_heads AS h (space_key, chain_position, row_hash)
    SELECT e.key, (e.value ->> 0)::bigint, e.value ->> 1 FROM pg_catalog.jsonb_each(heads) AS e
    ON CONFLICT (space_key) DO UPDATE SET chain_position = excluded.chain_position, row_hash = excluded.row_hash;
    RETURN n;
END;
$$;

-- As before, with the row's created_at in the UPDATE so that it touches one partition.
CREATE OR REPLACE FUNCTION plystra.seal_audit(max_rows integer DEFAULT 10000)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r plystra.audit_logs;
    link record;
    h text;
    n integer := 0;
BEGIN
    -- Another sealer is at work: it will seal these rows too.
    IF NOT plystra.audit_sealer_lock() THEN
        RETURN 0;
    END IF;
    FOR r IN SELECT * FROM plystra.audit_logs WHERE row_hash IS NULL ORDER BY seq LIMIT max_rows LOOP
        SELECT * INTO link FROM plystra.audit_chain_next(r.space_id);
        h := plystra.audit_row_hash(r, link.chain_position, link.prev_hash);
        UPDATE plystra.audit_logs SET chain_position = link.chain_position, prev_hash = link.prev_hash, row_hash = h
        WHERE id = r.id AND created_at = r.created_at;
        UPDATE plystra.audit_chain_heads SET chain_position = link.chain_position, row_hash = h
        WHERE space_key = coalesce(r.space_id, '');
        n := n + 1;
    END LOOP;
    RETURN n;
END;
$$;

-- What archiving leaves in the database.
CREATE TABLE plystra.audit_archives (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    archived_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    archived_by text NOT NULL DEFAULT session_user,
    file_name   text NOT NULL,
    file_sha256 text NOT NULL CONSTRAINT audit_archives_file_sha256_format CHECK (file_sha256 ~ '^[0-9a-f]{64}$'),
    row_count   bigint NOT NULL
);
COMMENT ON TABLE plystra.audit_archives IS
'One row per audit archive (plystractl audit archive): the file it was written to and the file''s SHA-256.';

CREATE TABLE plystra.audit_archive_partitions (
    partition_name text PRIMARY KEY,
    archive_id     bigint NOT NULL REFERENCES plystra.audit_archives (id),
    range_from     timestamptz NOT NULL,
    range_to       timestamptz NOT NULL,
    row_count      bigint NOT NULL,
    dropped_at     timestamptz
);
COMMENT ON TABLE plystra.audit_archive_partitions IS
'The partitions each archive detached, and when each detached table was dropped (NULL: it is still there).';

-- The last link of each run of a chain an archive took away: the hash the next live (or later archived) link
-- continues from. Usually one per Space; a row sealed late near a month boundary makes another.
CREATE TABLE plystra.audit_archived_links (
    space_key      text NOT NULL,
    chain_position bigint NOT NULL,
    row_hash       text NOT NULL,
    archive_id     bigint NOT NULL REFERENCES plystra.audit_archives (id),
    PRIMARY KEY (space_key, chain_position)
);
COMMENT ON TABLE plystra.audit_archived_links IS
'For each archived run of a chain (space_key '''' is the instance-level chain), its last link''s position and hash: '
'plystra.verify_audit_chain checks that the live link after it continues from that hash.';

CREATE FUNCTION plystra.tg_audit_archive_append_only()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- The one change allowed: recording that an archived partition's table was dropped.
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'audit_archive_partitions' AND OLD.dropped_at IS NULL
       AND NEW.dropped_at IS NOT NULL
       AND (pg_catalog.to_jsonb(NEW) - 'dropped_at') = (pg_catalog.to_jsonb(OLD) - 'dropped_at') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = '42501',
        CONSTRAINT = 'audit_archives_append_only',
        SCHEMA = TG_TABLE_SCHEMA,
        TABLE = TG_TABLE_NAME,
        MESSAGE = pg_catalog.format('plystra: plystra.%s is append-only', TG_TABLE_NAME),
        DETAIL = pg_catalog.format('%s on plystra.%s is not allowed for any role.', TG_OP, TG_TABLE_NAME);
END;
$$;
COMMENT ON FUNCTION plystra.tg_audit_archive_append_only() IS
'BEFORE UPDATE OR DELETE and BEFORE TRUNCATE triggers (enabled ALWAYS) on audit_archives, audit_archive_partitions '
'and audit_archived_links: what archiving recorded stays (SQLSTATE 42501), except setting dropped_at once.';
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['audit_archives', 'audit_archive_partitions', 'audit_archived_links'] LOOP
        EXECUTE pg_catalog.format('CREATE TRIGGER trg_%s_append_only BEFORE UPDATE OR DELETE ON plystra.%I '
                                  'FOR EACH ROW EXECUTE FUNCTION plystra.tg_audit_archive_append_only()', t, t);
        EXECUTE pg_catalog.format('CREATE TRIGGER trg_%s_append_only_truncate BEFORE TRUNCATE ON plystra.%I '
                                  'FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_audit_archive_append_only()', t, t);
        EXECUTE pg_catalog.format('ALTER TABLE plystra.%I ENABLE ALWAYS TRIGGER trg_%s_append_only', t, t);
        EXECUTE pg_catalog.format('ALTER TABLE plystra.%I ENABLE ALWAYS TRIGGER trg_%s_append_only_truncate', t, t);
    END LOOP;
END;
$$;

-- Tables owned by an extension are left out of pg_dump unless registered (only when run by CREATE/ALTER
-- EXTENSION; applied by psql, these tables belong to no extension).
DO $$
DECLARE
    t text;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_depend
               WHERE classid = 'pg_catalog.pg_class'::regclass AND objid = 'plystra.audit_logs_default'::regclass
                 AND refclassid = 'pg_catalog.pg_extension'::regclass AND deptype = 'e') THEN
        FOREACH t IN ARRAY ARRAY['plystra.audit_logs', 'plystra.audit_logs_default', 'plystra.audit_logs_seq_seq',
                                 'plystra.audit_archives', 'plystra.audit_archives_id_seq',
                                 'plystra.audit_archive_partitions', 'plystra.audit_archived_links'] LOOP
            PERFORM pg_catalog.pg_extension_config_dump(t, '');
        END LOOP;
    END IF;
END;
$$;

-- One audit row for a retention action (space_id NULL: the instance-level chain), actor and request from the
-- transaction's acting context like a management mutation's.
CREATE FUNCTION plystra.audit_retention_event(verb text, target text, details jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    uuid_hex text := pg_catalog.replace(pg_catalog.gen_random_uuid()::text, '-', '');
    rand_hex text := pg_catalog.substr(uuid_hex, 1, 12) || pg_catalog.substr(uuid_hex, 14, 3) || pg_catalog.substr(uuid_hex, 18, 1);
    actor_user text := nullif(pg_catalog.current_setting('plystra.actor_user_id', true), '');
    actor_member text := nullif(pg_catalog.current_setting('plystra.actor_member_id', true), '');
    actor_user_member text := nullif(pg_catalog.current_setting('plystra.actor_user_member_id', true), '');
    req_id text := nullif(pg_catalog.current_setting('plystra.request_id', true), '');
    req_ip text := nullif(pg_catalog.current_setting('plystra.request_ip', true), '');
    req_agent text := nullif(pg_catalog.current_setting('plystra.request_user_agent', true), '');
    created timestamptz := pg_catalog.clock_timestamp();
BEGIN
    INSERT INTO plystra.audit_logs (id, space_id, actor_user_id, actor_member_id, actor_user_member_id, action,
                                    resource_type, resource_id, decision, deny_code, trace, request_id,
                                    ip_address, user_agent, created_at)
    VALUES ('audit_' || rand_hex, NULL, actor_user, actor_member, actor_user_member, 'audit_partition.' || verb,
            'audit_partition', target, 'allow', NULL,
            pg_catalog.jsonb_build_object(
                'trace_version', '1.0', 'trace_id', 'trc_' || rand_hex, 'decision', 'allow',
                'reason', 'Audit retention action by the extension''s owner', 'operation', verb,
                'request', pg_catalog.jsonb_build_object('request_id', req_id, 'ip', req_ip, 'user_agent', req_agent),
                'actor', pg_catalog.jsonb_build_object('user_id', actor_user, 'member_id', actor_member,
                                                       'user_member_id', actor_user_member),
                'target', pg_catalog.jsonb_build_object('resource_type', 'audit_partition', 'resource_id', target),
                'details', details, 'db_user', session_user, 'created_at', created),
            req_id, req_ip, req_agent, created);
    RETURN 'audit_' || rand_hex;
END;
$$;
COMMENT ON FUNCTION plystra.audit_retention_event(text, text, jsonb) IS
'Writes the audit row of a retention action (action audit_partition.<verb>, instance-level chain). Called by '
'plystra.archive_audit_partitions and plystra.drop_archived_audit_partition.';

CREATE FUNCTION plystra.archive_audit_partitions(partitions text[], row_count bigint, file_name text, file_sha256 text)
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
COMMENT ON FUNCTION plystra.archive_audit_partitions(text[], bigint, text, text) IS
'archive_audit_partitions(partitions, row_count, file_name, file_sha256): after plystractl has written the '
'partitions'' row_count rows to an archive file, records the archive, the last link of each archived run of each chain (plystra.audit_archived_links) '
'and an audit row (audit_partition.archived), then detaches the partitions; returns the archive id. Refuses '
'(55000, nothing changed) when any chain does not verify, a partition holds unsealed rows or another row count; 22023 for a name '
'that is not a monthly partition. Holds the sealer''s lock until commit. For the extension''s owner only.';

CREATE FUNCTION plystra.drop_archived_audit_partition(partition_name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part plystra.audit_archive_partitions;
BEGIN
    SELECT * INTO part FROM plystra.audit_archive_partitions p WHERE p.partition_name = drop_archived_audit_partition.partition_name;
    IF NOT FOUND OR part.dropped_at IS NOT NULL THEN
        RAISE EXCEPTION 'plystra: % is not an archived, not yet dropped audit partition', partition_name
            USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM plystra.audit_partitions() a WHERE a.partition_name = part.partition_name) THEN
        RAISE EXCEPTION 'plystra: % is attached to plystra.audit_logs', partition_name USING ERRCODE = '55000';
    END IF;
    IF pg_catalog.to_regclass('plystra.' || pg_catalog.quote_ident(part.partition_name)) IS NOT NULL THEN
        EXECUTE pg_catalog.format('DROP TABLE plystra.%I', part.partition_name);
    END IF;
    UPDATE plystra.audit_archive_partitions p SET dropped_at = pg_catalog.clock_timestamp()
    WHERE p.partition_name = part.partition_name;
    PERFORM plystra.audit_retention_event('dropped', part.partition_name,
        pg_catalog.jsonb_build_object('archive_id', part.archive_id, 'rows', part.row_count,
                                      'range_from', part.range_from, 'range_to', part.range_to));
END;
$$;
COMMENT ON FUNCTION plystra.drop_archived_audit_partition(text) IS
'Drops the table of a partition an archive detached (plystractl audit drop), records when, and writes an audit row '
'(audit_partition.dropped). 22023 for a partition no archive took or one already dropped. For the extension''s owner only.';

-- '' names the instance-level chain (rows without a Space); rows left unsealed longer than
-- plystra.audit_unsealed_alarm (default 10 s) are a problem, not an intact chain. A live link whose predecessor is
-- not live continues from an archived link (plystra.audit_archived_links).
CREATE OR REPLACE FUNCTION plystra.verify_audit_chain(space_id text DEFAULT NULL)
RETURNS TABLE (space_key text, sealed_rows bigint, unsealed_rows bigint, broken_at_position bigint,
               broken_audit_id text, problem text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH links AS (
        SELECT coalesce(a.space_id, '') AS space_key, a.id, a.chain_position, a.prev_hash, a.row_hash,
               plystra.audit_row_hash(a, a.chain_position, a.prev_hash) AS recomputed,
               lag(a.row_hash) OVER w AS previous_hash,
               lag(a.chain_position) OVER w AS previous_position
        FROM plystra.audit_logs a
        WHERE a.row_hash IS NOT NULL
          AND (verify_audit_chain.space_id IS NULL OR coalesce(a.space_id, '') = verify_audit_chain.space_id)
        WINDOW w AS (PARTITION BY coalesce(a.space_id, '') ORDER BY a.chain_position)
    ),
    archived AS (
        SELECT l.space_key, l.chain_position, l.row_hash FROM plystra.audit_archived_links l
        WHERE verify_audit_chain.space_id IS NULL OR l.space_key = verify_audit_chain.space_id
    ),
    unsealed AS (
        SELECT coalesce(a.space_id, '') AS space_key, count(*) AS rows,
               count(*) FILTER (WHERE a.created_at < pg_catalog.statement_timestamp() - plystra.audit_unsealed_alarm())
                   AS stale
        FROM plystra.audit_logs a
        WHERE a.row_hash IS NULL
          AND (verify_audit_chain.space_id IS NULL OR coalesce(a.space_id, '') = verify_audit_chain.space_id)
        GROUP BY 1
    ),
    problems AS (
        SELECT l.space_key, l.chain_position, l.id,
               CASE
                   WHEN l.chain_position <> coalesce(l.previous_position, 0) + 1 AND ar.row_hash IS NULL
                       THEN format('link %s is missing (a sealed row was deleted)', coalesce(l.previous_position, 0) + 1)
                   WHEN l.chain_position <> coalesce(l.previous_position, 0) + 1 AND l.prev_hash <> ar.row_hash
                       THEN 'prev_hash does not match the archived link''s hash'
                   WHEN l.chain_position = coalesce(l.previous_position, 0) + 1
                        AND l.prev_hash <> coalesce(l.previous_hash, '')
                       THEN 'prev_hash does not match the previous row''s hash'
                   WHEN l.row_hash <> l.recomputed THEN 'the row''s content does not match its hash (it was changed)'
               END AS problem
        FROM links l
        LEFT JOIN archived ar ON ar.space_key = l.space_key AND ar.chain_position = l.chain_position - 1
    ),
    heads AS (
        SELECT h.space_key, h.chain_position, h.row_hash FROM plystra.audit_chain_heads h
        WHERE verify_audit_chain.space_id IS NULL OR h.space_key = verify_audit_chain.space_id
    ),
    last_links AS (
        SELECT DISTINCT ON (space_key) space_key, chain_position, row_hash
        FROM (SELECT space_key, chain_position, row_hash FROM links
              UNION ALL SELECT space_key, chain_position, row_hash FROM archived) x
        ORDER BY space_key, chain_position DESC
    )
    SELECT k.space_key,
           (SELECT count(*) FROM links l WHERE l.space_key = k.space_key),
           coalesce(u.rows, 0),
           coalesce(p.chain_position, CASE WHEN t.chain_position IS DISTINCT FROM hd.chain_position
                                              OR t.row_hash IS DISTINCT FROM hd.row_hash THEN hd.chain_position END),
           p.id,
           coalesce(p.problem, CASE WHEN t.chain_position IS DISTINCT FROM hd.chain_position
                                       OR t.row_hash IS DISTINCT FROM hd.row_hash
                                    THEN 'the chain ends before its recorded head (sealed rows were deleted)' END,
                    CASE WHEN u.stale > 0
                         THEN format('%s rows left unsealed for longer than %s (sealing is held back or stopped)',
                                     u.stale, plystra.audit_unsealed_alarm()) END)
    FROM (SELECT space_key FROM heads UNION SELECT space_key FROM links UNION SELECT space_key FROM unsealed) k
    LEFT JOIN LATERAL (SELECT * FROM problems p WHERE p.space_key = k.space_key AND p.problem IS NOT NULL
                       ORDER BY p.chain_position LIMIT 1) p ON true
    LEFT JOIN heads hd ON hd.space_key = k.space_key
    LEFT JOIN last_links t ON t.space_key = k.space_key
    LEFT JOIN unsealed u ON u.space_key = k.space_key
    ORDER BY k.space_key
$$;
COMMENT ON FUNCTION plystra.verify_audit_chain(text) IS
'Verifies every Space''s audit chain (or one: a Space id, or '''' for the instance-level chain): one row per chain '
'with its live sealed and unsealed row counts and, when something is wrong, what: a changed row, a deleted row, a '
'chain cut short of its head (with the first broken position and its audit row), or rows left unsealed for longer '
'than plystra.audit_unsealed_alarm (sealing held back). After an archive, the first live link of each run continues '
'from the archived link recorded in plystra.audit_archived_links. problem NULL means the chain is intact and sealed '
'in time.';

CREATE OR REPLACE FUNCTION plystra.apply_privileges()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- What an application role may call: decisions (compact answers only), its acting context, the set-based
    -- lookups and row predicates for row-level security, and the pure helpers. Nothing here returns another
    -- tenant's identity data; a role that may call set_actor is trusted to say who is acting.
    app_functions constant text[] := ARRAY[
        'plystra."check"(jsonb)',
        'plystra.check_batch(jsonb)',
        'plystra.allowed(text, text, text, text, text, text, text)',
        'plystra.set_actor(text, text, text, text)',
        'plystra.set_request_context(text, text, text)',
        'plystra.current_actor()',
        'plystra.actor_space_id()',
        'plystra.reaches_space(text, text)',
        'plystra.reachable_space(text, text)',
        'plystra.reachable_owner(text, text)',
        'plystra.reachable_groups(text, text)',
        'plystra.reachable_group_ids(text, text)',
        'plystra.lookup_resources(text, text)',
        'plystra.allowed_resource(text, text, text)',
        'plystra.allowed_row(text, text, text, text, text)',
        'plystra.allowed_row_by_path(text, text, text, text, text)',
        'plystra.sensitive_key(text)',
        'plystra.redact_sensitive(jsonb)',
        'plystra.audit_writer_active()',
        'plystra.bundled_migrations()'];
    -- What only an administration backend may call, on top of the above: full traces (identity data of any
    -- actor), credentials' standing, the authenticated credential of a transaction, authentication events and
    -- the audit chain's tools. Archiving, dropping archived partitions and making partitions are the
    -- extension owner's alone: no role is granted them.
    admin_functions constant text[] := ARRAY[
        'plystra.explain(jsonb)',
        'plystra.decide_request(text, boolean)',
        'plystra.admin_permission(text, text, text, text)',
        'plystra.api_key_permission(text, text, text, text)',
        'plystra.authenticate(jsonb)',
        'plystra.decide_with_credential(jsonb, text, jsonb, boolean, boolean)',
        'plystra.lookup_subjects(text, text, text, text, integer)',
        'plystra.resolve_actor(text, text)',
        'plystra.set_credential(text, text, text, text, boolean)',
        'plystra.current_credential()',
        'plystra.audit_auth_event(text, text, text, text, jsonb)',
        'plystra.verify_audit_chain(text)',
        'plystra.audit_row_hash(plystra.audit_logs, bigint, text)',
        'plystra.audit_hash_input(plystra.audit_logs, bigint, text)',
        'plystra.audit_partitions()',
        'plystra.seal_audit(integer)'];
    -- The administration backend (the REST front, connecting as a role that is a member of plystra_admin)
    -- reads and writes the Core, credential and login tables; it never deletes a Core row (soft delete), and
    -- it reads the audit log but writes it only through the functions above and the triggers.
    admin_tables constant text[] := ARRAY[
        'users', 'spaces', 'groups', 'members', 'user_members', 'roles', 'permissions', 'member_roles',
        'role_permissions', 'resources', 'resource_types', 'resource_actions', 'resource_mappings',
        'admin_grants', 'api_keys', 'sessions', 'login_failures'];
    admin_read_only constant text[] := ARRAY['audit_logs', 'audit_chain_heads', 'schema_migrations', 'usable_bindings',
                                              'active_admin_grants', 'audit_archives', 'audit_archive_partitions',
                                              'audit_archived_links'];
    f text;
BEGIN
    EXECUTE 'REVOKE ALL ON ALL FUNCTIONS IN SCHEMA plystra FROM PUBLIC';
    FOREACH f IN ARRAY admin_tables LOOP
        EXECUTE pg_catalog.format('GRANT SELECT, INSERT, UPDATE ON plystra.%I TO plystra_admin', f);
    END LOOP;
    EXECUTE 'GRANT DELETE ON plystra.login_failures TO plystra_admin';
    FOREACH f IN ARRAY admin_read_only LOOP
        -- A table this build does not have yet (an upgrade in progress) is skipped, not an error.
        IF pg_catalog.to_regclass('plystra.' || pg_catalog.quote_ident(f)) IS NOT NULL THEN
            EXECUTE pg_catalog.format('GRANT SELECT ON plystra.%I TO plystra_admin', f);
        END IF;
    END LOOP;
    EXECUTE 'GRANT USAGE ON SCHEMA plystra TO plystra_app, plystra_admin';
    FOREACH f IN ARRAY app_functions LOOP
        -- A function this build does not have yet (an upgrade in progress) is skipped, not an error.
        IF pg_catalog.to_regprocedure(f) IS NOT NULL THEN
            EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO plystra_app', f);
        END IF;
    END LOOP;
    FOREACH f IN ARRAY admin_functions LOOP
        IF pg_catalog.to_regprocedure(f) IS NOT NULL THEN
            EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO plystra_admin', f);
        END IF;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION plystra.apply_privileges() IS
'Revokes EXECUTE on every function of schema plystra from PUBLIC and grants the documented sets: plystra_app '
'(check, check_batch, allowed, set_actor, set_request_context, current_actor and the row-level-security lookups and row '
'predicates; no table) and plystra_admin (member of plystra_app; also explain, admin_permission, '
'api_key_permission, authenticate, decide_with_credential, lookup_subjects, resolve_actor, set_credential, audit_auth_event, '
'verify_audit_chain, audit_row_hash, audit_hash_input, audit_partitions, seal_audit; SELECT, INSERT, UPDATE on '
'the Core, credential and login tables, DELETE on login_failures, SELECT on the audit log, chain heads, '
'archive records, ledger, usable_bindings and active_admin_grants). Archiving and partition upkeep are granted to '
'no role: the extension''s owner runs them. Run at the end of the install and of every upgrade; the one list of who '
'may call what.';
-- END migrations/009_audit_partitions.sql

-- An older version's install script run with this build's library already records every bundled migration
-- (plystra.bundled_migrations() comes from the library), so the row may exist.
INSERT INTO plystra.schema_migrations (version, name, checksum) VALUES ('009', 'audit_partitions', 'ebb58663e82e0b1fbb3ff4770fccc4b1d54f8aa8d29b642ab10c787f70ffc8fa')
ON CONFLICT (version) DO UPDATE SET name = excluded.name, checksum = excluded.checksum;

-- BEGIN migrations/010_replay.sql
-- Plystra Core schema, version 010: Replay.
--
-- plystra.replay(audit_log_id, audit) asks an audited decision again against today's data and answers then and
-- now side by side, with what changed between the decision-time trace and today's. It returns full traces
-- (identity data of any actor), as plystra.explain does, so only an administration backend may call it: this
-- migration adds it to plystra_admin's list in plystra.apply_privileges (as 009 left it). No table changes.

CREATE OR REPLACE FUNCTION plystra.apply_privileges()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- What an application role may call: decisions (compact answers only), its acting context, the set-based
    -- lookups and row predicates for row-level security, and the pure helpers. Nothing here returns another
    -- tenant's identity data; a role that may call set_actor is trusted to say who is acting.
    app_functions constant text[] := ARRAY[
        'plystra."check"(jsonb)',
        'plystra.check_batch(jsonb)',
        'plystra.allowed(text, text, text, text, text, text, text)',
        'plystra.set_actor(text, text, text, text)',
        'plystra.set_request_context(text, text, text)',
        'plystra.current_actor()',
        'plystra.actor_space_id()',
        'plystra.reaches_space(text, text)',
        'plystra.reachable_space(text, text)',
        'plystra.reachable_owner(text, text)',
        'plystra.reachable_groups(text, text)',
        'plystra.reachable_group_ids(text, text)',
        'plystra.lookup_resources(text, text)',
        'plystra.allowed_resource(text, text, text)',
        'plystra.allowed_row(text, text, text, text, text)',
        'plystra.allowed_row_by_path(text, text, text, text, text)',
        'plystra.sensitive_key(text)',
        'plystra.redact_sensitive(jsonb)',
        'plystra.audit_writer_active()',
        'plystra.bundled_migrations()'];
    -- What only an administration backend may call, on top of the above: full traces (identity data of any
    -- actor), credentials' standing, the authenticated credential of a transaction, authentication events and
    -- the audit chain's tools. Archiving, dropping archived partitions and making partitions are the
    -- extension owner's alone: no role is granted them.
    admin_functions constant text[] := ARRAY[
        'plystra.explain(jsonb)',
        'plystra.decide_request(text, boolean)',
        'plystra.admin_permission(text, text, text, text)',
        'plystra.api_key_permission(text, text, text, text)',
        'plystra.authenticate(jsonb)',
        'plystra.decide_with_credential(jsonb, text, jsonb, boolean, boolean)',
        'plystra.lookup_subjects(text, text, text, text, integer)',
        'plystra.resolve_actor(text, text)',
        'plystra.replay(text, boolean)',
        'plystra.set_credential(text, text, text, text, boolean)',
        'plystra.current_credential()',
        'plystra.audit_auth_event(text, text, text, text, jsonb)',
        'plystra.verify_audit_chain(text)',
        'plystra.audit_row_hash(plystra.audit_logs, bigint, text)',
        'plystra.audit_hash_input(plystra.audit_logs, bigint, text)',
        'plystra.audit_partitions()',
        'plystra.seal_audit(integer)'];
    -- The administration backend (the REST front, connecting as a role that is a member of plystra_admin)
    -- reads and writes the Core, credential and login tables; it never deletes a Core row (soft delete), and
    -- it reads the audit log but writes it only through the functions above and the triggers.
    admin_tables constant text[] := ARRAY[
        'users', 'spaces', 'groups', 'members', 'user_members', 'roles', 'permissions', 'member_roles',
        'role_permissions', 'resources', 'resource_types', 'resource_actions', 'resource_mappings',
        'admin_grants', 'api_keys', 'sessions', 'login_failures'];
    admin_read_only constant text[] := ARRAY['audit_logs', 'audit_chain_heads', 'schema_migrations', 'usable_bindings',
                                              'active_admin_grants', 'audit_archives', 'audit_archive_partitions',
                                              'audit_archived_links'];
    f text;
BEGIN
    EXECUTE 'REVOKE ALL ON ALL FUNCTIONS IN SCHEMA plystra FROM PUBLIC';
    FOREACH f IN ARRAY admin_tables LOOP
        EXECUTE pg_catalog.format('GRANT SELECT, INSERT, UPDATE ON plystra.%I TO plystra_admin', f);
    END LOOP;
    EXECUTE 'GRANT DELETE ON plystra.login_failures TO plystra_admin';
    FOREACH f IN ARRAY admin_read_only LOOP
        -- A table this build does not have yet (an upgrade in progress) is skipped, not an error.
        IF pg_catalog.to_regclass('plystra.' || pg_catalog.quote_ident(f)) IS NOT NULL THEN
            EXECUTE pg_catalog.format('GRANT SELECT ON plystra.%I TO plystra_admin', f);
        END IF;
    END LOOP;
    EXECUTE 'GRANT USAGE ON SCHEMA plystra TO plystra_app, plystra_admin';
    FOREACH f IN ARRAY app_functions LOOP
        -- A function this build does not have yet (an upgrade in progress) is skipped, not an error.
        IF pg_catalog.to_regprocedure(f) IS NOT NULL THEN
            EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO plystra_app', f);
        END IF;
    END LOOP;
    FOREACH f IN ARRAY admin_functions LOOP
        IF pg_catalog.to_regprocedure(f) IS NOT NULL THEN
            EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO plystra_admin', f);
        END IF;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION plystra.apply_privileges() IS
'Revokes EXECUTE on every function of schema plystra from PUBLIC and grants the documented sets: plystra_app '
'(check, check_batch, allowed, set_actor, set_request_context, current_actor and the row-level-security lookups and row '
'predicates; no table) and plystra_admin (member of plystra_app; also explain, admin_permission, '
'api_key_permission, authenticate, decide_with_credential, lookup_subjects, resolve_actor, replay, set_credential, audit_auth_event, '
'verify_audit_chain, audit_row_hash, audit_hash_input, audit_partitions, seal_audit; SELECT, INSERT, UPDATE on '
'the Core, credential and login tables, DELETE on login_failures, SELECT on the audit log, chain heads, '
'archive records, ledger, usable_bindings and active_admin_grants). Archiving and partition upkeep are granted to '
'no role: the extension''s owner runs them. Run at the end of the install and of every upgrade; the one list of who '
'may call what.';
-- END migrations/010_replay.sql

-- An older version's install script run with this build's library already records every bundled migration
-- (plystra.bundled_migrations() comes from the library), so the row may exist.
INSERT INTO plystra.schema_migrations (version, name, checksum) VALUES ('010', 'replay', '4897e30b65fd43c699e625f5379be1c2ed6973ba172df5b3301b6d35a08897a4')
ON CONFLICT (version) DO UPDATE SET name = excluded.name, checksum = excluded.checksum;

-- BEGIN migrations/011_catalog_version.sql
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
-- END migrations/011_catalog_version.sql

-- An older version's install script run with this build's library already records every bundled migration
-- (plystra.bundled_migrations() comes from the library), so the row may exist.
INSERT INTO plystra.schema_migrations (version, name, checksum) VALUES ('011', 'catalog_version', 'edf1bc7d032cab8cfad8547cb34e090d782d44cb37e7e2d45d0fadeb60479fa1')
ON CONFLICT (version) DO UPDATE SET name = excluded.name, checksum = excluded.checksum;

-- An audited decision asked again against today's data (plystra_pg/src/replay.rs); only plystra_admin may call it.
CREATE FUNCTION plystra.replay(audit_log_id text, audit boolean DEFAULT false)
RETURNS jsonb
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'replay_wrapper';

COMMENT ON FUNCTION plystra.replay(text, boolean) IS
'replay(audit_log_id, audit => false): the audited decision audit_log_id asked again against today''s data. The '
'request is the one the row''s decision-time trace records (the binding that acted, the target, the action); it is '
'decided by the engine of plystra.explain. Returns {audit_log_id, decided_at, replayed_at, request, then: '
'{decision, deny_code, reason, trace}, now: {decision, deny_code, reason, trace, audit_log_id}, decision_changed, '
'deny_code_changed, changes: [{kind, id, change, then, now}]}: each user, binding, member, space, resource, group, '
'resource_type, action, mapping or grant that differs between the two traces. Writes no audit row unless audit is '
'true (then per plystra.audit_mode, as a decision). NULL when no row has that id; a NULL or malformed id, or a '
'row that is not a replayable decision (a management or login row, inline actor or grants), raises 22023. For '
'administration backends only.';


-- Last: who may call what (PUBLIC nothing; plystra_app and plystra_admin their documented sets).
SELECT plystra.apply_privileges();
