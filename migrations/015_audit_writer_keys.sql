-- Plystra Core schema, version 015: the audit writer records the keys of the rows it appends itself.
--
-- The audit writer (the library's background worker) inserts each batch of decision rows with one statement. Until
-- now the row trigger trg_audit_log_keys_insert (012) then inserted each row's key into plystra.audit_log_keys
-- with a one-row INSERT of its own: about a sixth of the writer's time at 16 clients, and the writer is the one
-- process every audited decision waits for. Now:
--
-- * plystra.audit_writer_appending() is a function of the library (created with the library's functions, after
--   the migrations; the trigger function resolves it when it runs) that is true only inside the audit writer's
--   process, and there only while its own append statement runs (a flag in that process's memory: no setting, no
--   table and no other process can make it true). Only the owner may call it;
-- * that statement inserts the keys of exactly the rows it inserted (a data-modifying CTE over their RETURNING
--   list) in one set-based INSERT, under the same unique constraints: a duplicate id, seq or chain position still
--   fails the writer's transaction with the same constraint names (SQLSTATE 23505);
-- * the trigger function (security definer, so it may ask whatever role inserts) leaves those rows alone.
--
-- Everything else is as 012 left it: the triggers (cloned onto every partition, enabled ALWAYS) fire for every
-- insert, and every other insert (any session and role, a restore, a replication apply, the writer's own sealing
-- and partition upkeep) gets its key from the trigger. The writer writes the keys itself only once this function
-- exists: a library newer than the schema (replaced before ALTER EXTENSION UPDATE) leaves them to the trigger.

CREATE OR REPLACE FUNCTION plystra.tg_audit_log_keys()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- The audit writer's append statement inserts its rows' keys itself, in one INSERT for the batch.
        IF plystra.audit_writer_appending() THEN
            RETURN NULL;
        END IF;
        INSERT INTO plystra.audit_log_keys (id, seq, space_key, chain_position)
        VALUES (NEW.id, NEW.seq, coalesce(NEW.space_id, ''), NEW.chain_position);
    ELSE
        -- Sealing (the one UPDATE the log allows) gives the row its chain position.
        UPDATE plystra.audit_log_keys k SET chain_position = NEW.chain_position WHERE k.id = NEW.id AND k.seq = NEW.seq;
        IF NOT FOUND THEN
            -- A row loaded with the triggers disabled: it gets its key now rather than blocking the chain.
            INSERT INTO plystra.audit_log_keys (id, seq, space_key, chain_position)
            VALUES (NEW.id, NEW.seq, coalesce(NEW.space_id, ''), NEW.chain_position);
        END IF;
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION plystra.tg_audit_log_keys() IS
'AFTER INSERT and AFTER UPDATE OF chain_position row triggers on audit_logs (cloned onto every partition, enabled '
'ALWAYS): records each row''s id, seq and chain position in plystra.audit_log_keys, whose unique constraints '
'(audit_logs_id_key, audit_logs_seq_key, audit_logs_chain_position_key; SQLSTATE 23505) keep them unique across '
'the whole log. Rows the audit writer''s append statement inserts get their keys from that statement '
'(plystra.audit_writer_appending()).';
