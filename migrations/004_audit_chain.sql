-- Plystra Core schema, version 004: a hash chain per Space over the audit log, so that an edit or deletion made
-- behind the append-only triggers' back (a superuser can disable them) is found by verification.
--
-- Each sealed row carries its position in its Space's chain (instance-level rows, space_id NULL, form their own
-- chain), the previous row's hash and its own hash over its content, position and previous hash. Rows are
-- sealed in the order they are sealed, never re-sealed: decision rows written by the audit writer (a background
-- worker) are sealed as they are inserted; rows inserted by transactions (management mutations, decisions
-- audited without the writer) are sealed shortly after they commit by plystra.seal_audit(), which the writer
-- runs every second. Sealing never serializes decisions: they only enqueue.

ALTER TABLE plystra.audit_logs
    ADD COLUMN chain_position bigint,
    ADD COLUMN prev_hash text,
    ADD COLUMN row_hash text;

-- Finds what is left to seal without scanning the log.
CREATE INDEX audit_logs_unsealed_idx ON plystra.audit_logs (seq) WHERE row_hash IS NULL;
CREATE UNIQUE INDEX audit_logs_chain_position_key ON plystra.audit_logs ((coalesce(space_id, '')), chain_position)
    WHERE chain_position IS NOT NULL;

-- The last sealed link of each chain ('' is the instance-level chain).
CREATE TABLE plystra.audit_chain_heads (
    space_key      text PRIMARY KEY,
    chain_position bigint NOT NULL,
    row_hash       text NOT NULL
);

CREATE FUNCTION plystra.audit_row_hash(a plystra.audit_logs, chain_position bigint, prev_hash text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    -- jsonb's text form is canonical (key order, spacing), so the same content always hashes the same.
    SELECT pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.jsonb_build_array(
        'plystra-audit-chain-v1', a.id, a.space_id, a.actor_user_id, a.actor_member_id, a.actor_user_member_id,
        a.action, a.resource_type, a.resource_id, a.decision, a.deny_code, a.trace, a.request_id, a.ip_address,
        a.user_agent, (extract(epoch FROM a.created_at) * 1000000)::bigint, chain_position, prev_hash)::text,
        'UTF8')), 'hex')
$$;
COMMENT ON FUNCTION plystra.audit_row_hash(plystra.audit_logs, bigint, text) IS
'The SHA-256 (hex) of an audit row''s content (every column but seq and the chain columns), its chain position and '
'the previous row''s hash. The one definition used to seal and to verify.';

-- Sealing (setting the chain columns of a row that has none, to exactly the right values) is the one UPDATE the
-- append-only rule lets through.
CREATE OR REPLACE FUNCTION plystra.tg_audit_logs_append_only()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.row_hash IS NULL AND NEW.row_hash IS NOT NULL
       AND (pg_catalog.to_jsonb(NEW) - ARRAY['chain_position', 'prev_hash', 'row_hash'])
           = (pg_catalog.to_jsonb(OLD) - ARRAY['chain_position', 'prev_hash', 'row_hash'])
       AND NEW.row_hash = plystra.audit_row_hash(NEW, NEW.chain_position, NEW.prev_hash) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = '42501',
        CONSTRAINT = 'audit_logs_append_only',
        SCHEMA = TG_TABLE_SCHEMA,
        TABLE = TG_TABLE_NAME,
        MESSAGE = 'plystra: plystra.audit_logs is append-only',
        DETAIL = pg_catalog.format('%s on plystra.audit_logs is not allowed for any role.', TG_OP);
END;
$$;
COMMENT ON FUNCTION plystra.tg_audit_logs_append_only() IS
'BEFORE UPDATE OR DELETE row trigger and BEFORE TRUNCATE statement trigger on audit_logs, enabled ALWAYS so that '
'neither a table owner nor session_replication_role = replica gets past it (SQLSTATE 42501, constraint '
'audit_logs_append_only). The one UPDATE allowed is sealing: giving an unsealed row its chain columns, with the '
'hash they imply, and changing nothing else. A superuser can still DISABLE the trigger explicitly; the hash chain '
'finds what was changed.';

-- The next link of a chain, under a lock on its head.
CREATE FUNCTION plystra.audit_chain_next(space_id text, OUT chain_position bigint, OUT prev_hash text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO plystra.audit_chain_heads AS h (space_key, chain_position, row_hash)
    VALUES (coalesce(space_id, ''), 0, '')
    ON CONFLICT (space_key) DO NOTHING;
    SELECT h.chain_position + 1, h.row_hash INTO chain_position, prev_hash
    FROM plystra.audit_chain_heads h WHERE h.space_key = coalesce(space_id, '') FOR UPDATE;
END;
$$;
COMMENT ON FUNCTION plystra.audit_chain_next(text) IS
'The position and previous hash of the next link of a Space''s chain (NULL: the instance-level chain), locking the '
'chain''s head until the transaction ends.';

CREATE FUNCTION plystra.append_audit(rows jsonb)
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
    sealing boolean := pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('plystra.audit_chain'));
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
COMMENT ON FUNCTION plystra.append_audit(jsonb) IS
'Inserts audit rows given as a JSON array of audit_logs objects, sealing each into its Space''s chain as it goes: '
'each chain''s head is read once, the rows are hashed in order and inserted with one statement. When another '
'session holds the chains, the rows go in unsealed for plystra.seal_audit() to seal. Used by the audit writer (a '
'background worker) for decision rows.';

CREATE FUNCTION plystra.seal_audit(max_rows integer DEFAULT 10000)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r plystra.audit_logs;
    link record;
    h text;
    n integer := 0;
BEGIN
    -- Another sealer is at work: it will seal these rows too.
    IF NOT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('plystra.audit_chain')) THEN
        RETURN 0;
    END IF;
    FOR r IN SELECT * FROM plystra.audit_logs WHERE row_hash IS NULL ORDER BY seq LIMIT max_rows LOOP
        SELECT * INTO link FROM plystra.audit_chain_next(r.space_id);
        h := plystra.audit_row_hash(r, link.chain_position, link.prev_hash);
        UPDATE plystra.audit_logs SET chain_position = link.chain_position, prev_hash = link.prev_hash, row_hash = h
        WHERE id = r.id;
        UPDATE plystra.audit_chain_heads SET chain_position = link.chain_position, row_hash = h
        WHERE space_key = coalesce(r.space_id, '');
        n := n + 1;
    END LOOP;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION plystra.seal_audit(integer) IS
'Seals committed audit rows that are not yet in their chain (management mutations, decisions audited without the '
'audit writer), oldest first, at most max_rows; returns how many. The audit writer calls it every second; without '
'the writer, call it yourself (plystractl audit seal). Rows are sealed in the order they are sealed: a row that '
'commits late joins its chain late.';

CREATE FUNCTION plystra.verify_audit_chain(space_id text DEFAULT NULL)
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
        WHERE a.row_hash IS NOT NULL AND (verify_audit_chain.space_id IS NULL OR a.space_id = verify_audit_chain.space_id)
        WINDOW w AS (PARTITION BY coalesce(a.space_id, '') ORDER BY a.chain_position)
    ),
    problems AS (
        SELECT space_key, chain_position, id,
               CASE
                   WHEN chain_position <> coalesce(previous_position, 0) + 1
                       THEN format('link %s is missing (a sealed row was deleted)', coalesce(previous_position, 0) + 1)
                   WHEN prev_hash <> coalesce(previous_hash, '') THEN 'prev_hash does not match the previous row''s hash'
                   WHEN row_hash <> recomputed THEN 'the row''s content does not match its hash (it was changed)'
               END AS problem
        FROM links
    ),
    heads AS (
        SELECT h.space_key, h.chain_position, h.row_hash FROM plystra.audit_chain_heads h
        WHERE verify_audit_chain.space_id IS NULL OR h.space_key = verify_audit_chain.space_id
    ),
    last_links AS (
        SELECT DISTINCT ON (space_key) space_key, chain_position, row_hash FROM links ORDER BY space_key, chain_position DESC
    )
    SELECT k.space_key,
           (SELECT count(*) FROM links l WHERE l.space_key = k.space_key),
           (SELECT count(*) FROM plystra.audit_logs a WHERE a.row_hash IS NULL AND coalesce(a.space_id, '') = k.space_key),
           coalesce(p.chain_position, CASE WHEN t.chain_position IS DISTINCT FROM hd.chain_position
                                              OR t.row_hash IS DISTINCT FROM hd.row_hash THEN hd.chain_position END),
           p.id,
           coalesce(p.problem, CASE WHEN t.chain_position IS DISTINCT FROM hd.chain_position
                                       OR t.row_hash IS DISTINCT FROM hd.row_hash
                                    THEN 'the chain ends before its recorded head (sealed rows were deleted)' END)
    FROM (SELECT space_key FROM heads UNION SELECT space_key FROM links) k
    LEFT JOIN LATERAL (SELECT * FROM problems p WHERE p.space_key = k.space_key AND p.problem IS NOT NULL
                       ORDER BY p.chain_position LIMIT 1) p ON true
    LEFT JOIN heads hd ON hd.space_key = k.space_key
    LEFT JOIN last_links t ON t.space_key = k.space_key
    ORDER BY k.space_key
$$;
COMMENT ON FUNCTION plystra.verify_audit_chain(text) IS
'Verifies every Space''s audit chain (or one Space''s): one row per chain with its sealed and unsealed row counts '
'and, when the chain is broken, the first broken position, the audit row there and what is wrong (a changed row, '
'a deleted row, a chain cut short of its head). broken_at_position NULL means the chain is intact.';
