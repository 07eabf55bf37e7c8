-- What each index of the audit log's current partition costs an append: the same 2,000 rows (copies of the
-- latest decision rows, with new ids and chain positions, as the writer would seal them) inserted with every
-- index, then with one index dropped at a time; each trial is undone (a subtransaction rolled back), and repeated
-- :trials times (median). Run with psql against a database whose log already holds decision rows:
--   psql -v trials=3 -f bench/ab/audit_indexes.sql DB
CREATE TEMP TABLE index_cost (index_name text, trial int, ms numeric);
SELECT set_config('ab.trials', :'trials', false) \gset
DO $$
DECLARE
    part text := (SELECT p.partition_name FROM plystra.audit_partitions() p
                  WHERE NOT p.is_default AND p.range_from <= now() AND p.range_to > now());
    idx text;
    t0 timestamptz;
    took numeric;
BEGIN
    FOR trial IN 1 .. current_setting('ab.trials')::int LOOP
        -- In a new random order each trial: aborted inserts leave dead tuples behind, so later trials run on a
        -- larger heap and index.
        FOR idx IN SELECT x.n FROM (SELECT NULL::text AS n UNION ALL
                   SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                   WHERE i.indrelid = ('plystra.' || quote_ident(part))::regclass) x ORDER BY random()
        LOOP
            BEGIN
                IF idx IS NOT NULL THEN
                    EXECUTE format('DROP INDEX plystra.%I', idx);
                END IF;
                t0 := clock_timestamp();
                INSERT INTO plystra.audit_logs (id, space_id, actor_user_id, actor_member_id, actor_user_member_id,
                    action, resource_type, resource_id, decision, deny_code, trace, request_id, ip_address, user_agent,
                    created_at, chain_position, prev_hash, row_hash)
                SELECT 'idxcost_' || a.id, a.space_id, a.actor_user_id, a.actor_member_id, a.actor_user_member_id,
                       a.action, a.resource_type, a.resource_id, a.decision, a.deny_code, a.trace, a.request_id,
                       a.ip_address, a.user_agent, clock_timestamp(), 1000000000000 + a.seq, a.prev_hash, a.row_hash
                FROM (SELECT * FROM plystra.audit_logs WHERE row_hash IS NOT NULL ORDER BY seq DESC LIMIT 2000) a;
                RAISE EXCEPTION USING ERRCODE = 'P0001',
                    MESSAGE = (extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric(12, 1)::text;
            EXCEPTION WHEN raise_exception THEN
                took := SQLERRM::numeric;
            END;
            INSERT INTO index_cost VALUES (coalesce(idx, '(every index)'), trial, took);
        END LOOP;
    END LOOP;
END $$;
WITH m AS (SELECT index_name, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS ms FROM index_cost GROUP BY 1),
     base AS (SELECT ms FROM m WHERE index_name = '(every index)')
SELECT m.index_name, round(m.ms::numeric, 1) AS median_ms_2000_rows,
       round((base.ms - m.ms)::numeric, 1) AS saved_ms_without_it,
       round((100 * (base.ms - m.ms) / base.ms)::numeric, 1) AS saved_pct
FROM m, base ORDER BY saved_ms_without_it DESC NULLS LAST;
