-- Plystra 1.6.0 -> 1.7.0 (ALTER EXTENSION plystra UPDATE, or plystractl migrate up).
-- Applies, in order, and records in the ledger:
--   012: the audit log's keys (id, seq, each Space's chain position) in one table, plystra.audit_log_keys, kept by
--        row triggers, instead of statement triggers that looked every key up in every partition;
--   013: plystra.simulate joins plystra_admin's list (a decision asked without acting on it: no audit row).
-- Then creates plystra.simulate, the one new function of the library.
-- tests/catalog_check.sh proves that an updated 1.0.0 equals a fresh 1.7.0.
-- Each block between markers is the migration file, verbatim.
\echo Use "ALTER EXTENSION plystra UPDATE TO '1.7.0'" to load this file. \quit

-- BEGIN migrations/012_audit_keys.sql
-- Plystra Core schema, version 012: the audit log's keys in one table, so that keeping id, seq and each Space's
-- chain position unique across the log costs one index probe per key whatever the number of partitions.
--
-- Until now (009) statement triggers on plystra.audit_logs looked every new key up in every attached partition's
-- index: an append got slower with each month the log kept, and two sessions inserting the same id into two
-- partitions at once could both succeed (each trigger saw only committed rows). Now:
--
-- * plystra.audit_log_keys holds one row per audit row ever written here: id (unique, constraint
--   audit_logs_id_key), seq (unique, audit_logs_seq_key) and the chain position within its Space (space_key ''
--   for the instance-level chain; unique when set, audit_logs_chain_position_key). The constraint names are the
--   ones the old triggers reported, so a duplicate still reads as a duplicate key of the log.
-- * Row triggers on the log (cloned onto every partition, the DEFAULT one included, and enabled ALWAYS) insert the
--   key of each new row, and set the chain position when a row is sealed later (its only allowed UPDATE). Row
--   triggers, not statement ones: a statement trigger on the parent does not fire for an INSERT aimed at a
--   partition directly. The unique indexes serialise concurrent inserters by themselves: the second session to
--   insert a key waits for the first to commit or roll back, then fails or goes on.
-- * Keys are never deleted. Archiving detaches partitions and dropping removes their tables, but their keys stay,
--   so an id, a seq or a chain position is never handed out again after an archive; keys cost about 100 bytes a
--   row against about 1.2 KB for the row and its indexes.
-- * The table is append-only like the log (only the NULL -> position step of sealing is allowed, for every role,
--   the owner included); nobody is granted anything on it: rows reach it only through the SECURITY DEFINER
--   trigger function, whoever inserts into the log.
-- * pg_dump writes only the keys whose row is not in the live log (archived rows'): a restore makes the live
--   rows' keys again through the triggers as it loads the partitions, in whatever order or parallelism it loads
--   tables, and checks their uniqueness as it does. A data-only restore with --disable-triggers skips those
--   triggers: plystra.restore_audit_log_keys() makes the missing keys afterwards.
-- * The partitions keep their own unique indexes (index_audit_partition is unchanged): rows are found by them.

-- DROP TRIGGER locks the log (ACCESS EXCLUSIVE) until the update commits: no row is written between the old
-- triggers and the new ones, nor while the keys of the rows already there are recorded.
DROP TRIGGER trg_audit_logs_unique_insert ON plystra.audit_logs;
DROP TRIGGER trg_audit_logs_unique_update ON plystra.audit_logs;
DROP FUNCTION plystra.tg_audit_logs_unique();

CREATE TABLE plystra.audit_log_keys (
    id             text   NOT NULL CONSTRAINT audit_logs_id_key PRIMARY KEY,
    seq            bigint NOT NULL CONSTRAINT audit_logs_seq_key UNIQUE,
    space_key      text   NOT NULL,
    chain_position bigint,
    CONSTRAINT audit_logs_chain_position_key UNIQUE (space_key, chain_position)
);
COMMENT ON TABLE plystra.audit_log_keys IS
'The keys of every audit row written to this database, archived ones included: id, seq and (space_key, '
'chain_position) are unique across the whole log, whatever the partitions (space_key '''' is the instance-level '
'chain; chain_position NULL until the row is sealed). Kept by triggers on plystra.audit_logs; append-only; never '
'deleted, so no key is used twice, even after an archive.';
REVOKE ALL ON plystra.audit_log_keys FROM PUBLIC;

CREATE FUNCTION plystra.tg_audit_log_keys()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
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
'the whole log.';

CREATE FUNCTION plystra.tg_audit_log_keys_append_only()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.chain_position IS NULL AND NEW.chain_position IS NOT NULL
       AND NEW.id = OLD.id AND NEW.seq = OLD.seq AND NEW.space_key = OLD.space_key THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = '42501',
        CONSTRAINT = 'audit_log_keys_append_only',
        SCHEMA = TG_TABLE_SCHEMA,
        TABLE = TG_TABLE_NAME,
        MESSAGE = 'plystra: plystra.audit_log_keys is append-only',
        DETAIL = pg_catalog.format('%s on plystra.%s is not allowed for any role.', TG_OP, TG_TABLE_NAME);
END;
$$;
COMMENT ON FUNCTION plystra.tg_audit_log_keys_append_only() IS
'BEFORE UPDATE OR DELETE and BEFORE TRUNCATE triggers (enabled ALWAYS) on audit_log_keys: a key stays as written '
'(SQLSTATE 42501), except that sealing sets a NULL chain position once.';
CREATE TRIGGER trg_audit_log_keys_append_only BEFORE UPDATE OR DELETE ON plystra.audit_log_keys
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_audit_log_keys_append_only();
CREATE TRIGGER trg_audit_log_keys_append_only_truncate BEFORE TRUNCATE ON plystra.audit_log_keys
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_audit_log_keys_append_only();
ALTER TABLE plystra.audit_log_keys ENABLE ALWAYS TRIGGER trg_audit_log_keys_append_only;
ALTER TABLE plystra.audit_log_keys ENABLE ALWAYS TRIGGER trg_audit_log_keys_append_only_truncate;

CREATE TRIGGER trg_audit_log_keys_insert AFTER INSERT ON plystra.audit_logs
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_audit_log_keys();
CREATE TRIGGER trg_audit_log_keys_seal AFTER UPDATE OF chain_position ON plystra.audit_logs
    FOR EACH ROW WHEN (OLD.chain_position IS DISTINCT FROM NEW.chain_position)
    EXECUTE FUNCTION plystra.tg_audit_log_keys();
ALTER TABLE plystra.audit_logs ENABLE ALWAYS TRIGGER trg_audit_log_keys_insert;
ALTER TABLE plystra.audit_logs ENABLE ALWAYS TRIGGER trg_audit_log_keys_seal;
DO $$
DECLARE
    p text;
BEGIN
    FOR p IN SELECT partition_name FROM plystra.audit_partitions() LOOP
        EXECUTE pg_catalog.format('ALTER TABLE plystra.%I ENABLE ALWAYS TRIGGER trg_audit_log_keys_insert', p);
        EXECUTE pg_catalog.format('ALTER TABLE plystra.%I ENABLE ALWAYS TRIGGER trg_audit_log_keys_seal', p);
    END LOOP;
END;
$$;

-- The keys of the rows in the log (and in archived partitions not yet dropped) that have none: every row at this
-- migration; after a data-only restore with --disable-triggers, the live rows. A key held by another row is a
-- unique_violation, never skipped.
CREATE FUNCTION plystra.restore_audit_log_keys()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p text;
    n bigint;
    total bigint := 0;
BEGIN
    FOR p IN
        SELECT 'audit_logs' UNION ALL
        SELECT a.partition_name FROM plystra.audit_archive_partitions a
        WHERE a.dropped_at IS NULL AND pg_catalog.to_regclass('plystra.' || pg_catalog.quote_ident(a.partition_name)) IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM plystra.audit_partitions() x WHERE x.partition_name = a.partition_name)
    LOOP
        EXECUTE pg_catalog.format(
            'INSERT INTO plystra.audit_log_keys (id, seq, space_key, chain_position)
             SELECT r.id, r.seq, coalesce(r.space_id, ''''), r.chain_position FROM plystra.%I r
             WHERE NOT EXISTS (SELECT 1 FROM plystra.audit_log_keys k
                               WHERE k.id = r.id AND k.seq = r.seq AND k.space_key = coalesce(r.space_id, '''')
                                 AND k.chain_position IS NOT DISTINCT FROM r.chain_position)
             ORDER BY r.seq', p);
        GET DIAGNOSTICS n = ROW_COUNT;
        total := total + n;
    END LOOP;
    RETURN total;
END;
$$;
COMMENT ON FUNCTION plystra.restore_audit_log_keys() IS
'Records in plystra.audit_log_keys the keys of the audit rows (live, or in an archived partition not yet dropped) '
'that have none, and returns how many: needed only after loading rows with the triggers disabled (pg_restore '
'--data-only --disable-triggers). A key another row holds is a unique_violation (23505). For the extension''s '
'owner.';
SELECT plystra.restore_audit_log_keys();

-- As in 009, except that the rows a new month's partition takes from the DEFAULT partition keep their keys: the
-- key trigger is off on the new partition while they move.
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

-- pg_dump writes the keys of rows that are not in the live log; a restore makes the others as it loads the rows
-- (only when run by CREATE/ALTER EXTENSION; applied by psql, the table belongs to no extension).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_depend
               WHERE classid = 'pg_catalog.pg_class'::regclass AND objid = 'plystra.audit_log_keys'::regclass
                 AND refclassid = 'pg_catalog.pg_extension'::regclass AND deptype = 'e') THEN
        PERFORM pg_catalog.pg_extension_config_dump('plystra.audit_log_keys',
            'WHERE NOT EXISTS (SELECT 1 FROM plystra.audit_logs a WHERE a.id = audit_log_keys.id)');
    END IF;
END;
$$;
-- END migrations/012_audit_keys.sql

-- An older version's install script run with this build's library already records every bundled migration
-- (plystra.bundled_migrations() comes from the library), so the row may exist.
INSERT INTO plystra.schema_migrations (version, name, checksum) VALUES ('012', 'audit_keys', '2e8e5793f6a8a949a5828815495a81ca077ee86e754fb132cd36d30146ac6ed7')
ON CONFLICT (version) DO UPDATE SET name = excluded.name, checksum = excluded.checksum;

-- BEGIN migrations/013_simulate.sql
-- Plystra Core schema, version 013: Simulate.
--
-- plystra.simulate(request) answers what plystra.explain would (the same decision and full trace) without acting
-- on it: no audit row, whatever plystra.audit_mode says. It answers about any binding, with identity data of any
-- actor, so only an administration backend may call it: this migration adds it to plystra_admin's list in
-- plystra.apply_privileges (as 010 left it). No table changes.

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
        'plystra.simulate(jsonb)',
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
'api_key_permission, authenticate, decide_with_credential, lookup_subjects, resolve_actor, replay, simulate, set_credential, audit_auth_event, '
'verify_audit_chain, audit_row_hash, audit_hash_input, audit_partitions, seal_audit; SELECT, INSERT, UPDATE on '
'the Core, credential and login tables, DELETE on login_failures, SELECT on the audit log, chain heads, '
'archive records, ledger, usable_bindings and active_admin_grants). Archiving and partition upkeep are granted to '
'no role: the extension''s owner runs them. Run at the end of the install and of every upgrade; the one list of who '
'may call what.';
-- END migrations/013_simulate.sql

-- An older version's install script run with this build's library already records every bundled migration
-- (plystra.bundled_migrations() comes from the library), so the row may exist.
INSERT INTO plystra.schema_migrations (version, name, checksum) VALUES ('013', 'simulate', '77be061b23a57ca725fcaf88518d2c7beced5aff025dab5c4f40ba90cac7990b')
ON CONFLICT (version) DO UPDATE SET name = excluded.name, checksum = excluded.checksum;

-- A decision asked without acting on it (plystra_pg/src/api.rs): explain's trace, never an audit row. Only
-- plystra_admin may call it (plystra.apply_privileges): it answers about any binding.
CREATE FUNCTION plystra.simulate(request jsonb)
RETURNS jsonb
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'plystra_simulate_jsonb';

COMMENT ON FUNCTION plystra.simulate(jsonb) IS
'simulate(request): what plystra.explain would answer for request (the same decision, deny code and full trace), '
'without acting on it: no audit row is written, whatever plystra.audit_mode says, and the answer carries '
'"simulated": true (its audit.audit_log_id is null). For an administrator asking how a binding would be answered '
'(the REST front''s POST /api/v1/spaces/{space_id}/authz/simulate). A malformed request raises SQLSTATE 22023 '
'naming the field; inline grants and actor metadata are refused as in plystra.explain. For administration '
'backends only.';


-- Last: who may call what (PUBLIC nothing; plystra_app and plystra_admin their documented sets).
SELECT plystra.apply_privileges();
