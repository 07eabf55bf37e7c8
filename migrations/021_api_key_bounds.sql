-- Plystra Core schema, version 021: an API key is bounded by its Space's state and by the key that made it.
--
-- 1. A Space-level or Group-level API key is a credential of its Space (a Group key's Space is its anchor group's).
--    Until now such a key kept authenticating after its Space was disabled or soft-deleted: its Core decisions
--    denied with SPACE_INACTIVE, but inline (Context Mode) decisions still answered and its admin permissions
--    still held. Now a key whose Space is not active, or is deleted, is not an active key: refused as a revoked
--    or unknown key is (plystra_pg/src/credential.rs `active_api_key!` and the gate's reading by probes), and
--    `plystra.api_key_permission` holds nothing for it. Restoring the Space brings its keys back, as re-enabling a
--    User brings back what that User created.
--
--    The gate keeps a key's reading under the catalog version (migration 015), so a Space's state joins what
--    moves the version: an UPDATE of a Space's id, status or deleted_at, and a DELETE or TRUNCATE (which 002
--    refuses unless a superuser disables its triggers). plystra.catalog_version.keeps_key_space_state says that
--    the version moves with those writes: a library newer than the schema (replaced before ALTER EXTENSION
--    UPDATE) finds no such column and keeps no API key, so a key's reading is kept only where this trigger exists.
--
-- 2. A key made by a key (created_by_api_key_id) could not outlive its parent or be wider than it when made, and
--    revoking, disabling or deleting the parent already revoked it. A parent narrowed afterwards by plain SQL (the
--    REST API has no route that narrows a key) did not narrow the keys it made. Now, in the same statement:
--    * an earlier expiry on the parent becomes the child's when the child would outlive it;
--    * permission keys taken off the parent are taken off the child (those the parent's remaining keys still
--      cover stay, by the matching rule of plystra_core::admin::permission_matches); a child left with none is
--      revoked;
--    * a change of the parent's level, Space or Group revokes the child (a key's scope is fixed at creation; a
--      changed one is treated as a new key's, which has made nothing).
--    Each change to a child narrows its own children in turn. And a child is checked against its parent as it is
--    inserted, with the parent's row written so that a concurrent change of the parent is either waited for or
--    fails one side (40001): its permission keys covered by the parent's, its scope inside the parent's
--    (api_keys_child_exceeds_parent), its expiry no later (as before), and at most 15 keys above it
--    (api_keys_lineage_depth; a change cascades one trigger level a key, and a chain of hundreds exhausted the stack).
-- 3. A key's permission keys are at most 256 strings (api_keys_permission_keys_strings).

ALTER TABLE plystra.catalog_version ADD COLUMN keeps_key_space_state boolean NOT NULL DEFAULT true;

-- A key's permission keys are strings, at most 256 of them. Until now a list written by SQL could hold other JSON
-- values, which the gate read as holding nothing and the admin routes as text (["*", 1] held * there), and any
-- length, which the narrowing below compares pairwise. A key that breaks this could only have been written by SQL;
-- it is revoked with its list emptied, the gate's reading of it.
UPDATE plystra.api_keys
SET permission_keys = '[]', status = 'revoked', revoked_at = coalesce(revoked_at, pg_catalog.now()),
    revoked_reason = coalesce(revoked_reason, 'permission_keys not a list of at most 256 strings (migration 021)')
WHERE pg_catalog.jsonb_typeof(permission_keys) = 'array'
  AND (pg_catalog.jsonb_array_length(permission_keys) > 256
       OR pg_catalog.jsonb_path_exists(permission_keys, 'strict $[*] ? (@.type() != "string")'));
ALTER TABLE plystra.api_keys ADD CONSTRAINT api_keys_permission_keys_strings CHECK (
    pg_catalog.jsonb_typeof(permission_keys) <> 'array'
    OR (pg_catalog.jsonb_array_length(permission_keys) <= 256
        AND NOT pg_catalog.jsonb_path_exists(permission_keys, 'strict $[*] ? (@.type() != "string")')));

CREATE OR REPLACE FUNCTION plystra.tg_credential_changed()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Transition tables: changed_old and changed_new (UPDATE only).
    IF TG_OP = 'UPDATE' THEN
        IF TG_TABLE_NAME = 'api_keys' THEN
            -- A row missing on one side (an id changed with the immutability trigger off) counts as a change.
            IF NOT EXISTS (
                SELECT FROM changed_new n FULL JOIN changed_old o ON o.id = n.id
                WHERE n.id IS NULL OR o.id IS NULL
                   OR to_jsonb(n) - 'last_used_at' - 'updated_at' IS DISTINCT FROM to_jsonb(o) - 'last_used_at' - 'updated_at')
            THEN
                RETURN NULL;
            END IF;
        ELSIF TG_TABLE_NAME IN ('users', 'spaces') THEN
            IF NOT EXISTS (
                SELECT FROM changed_new n FULL JOIN changed_old o ON o.id = n.id
                WHERE n.id IS NULL OR o.id IS NULL OR (n.status, n.deleted_at) IS DISTINCT FROM (o.status, o.deleted_at))
            THEN
                RETURN NULL;
            END IF;
        END IF;
    END IF;
    UPDATE plystra.catalog_version SET version = nextval('plystra.catalog_version_seq') WHERE name = 'catalog';
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION plystra.tg_credential_changed() IS
'Trigger: a statement wrote an AdminGrant, an API key (other than its last_used_at and updated_at), or a User''s '
'or a Space''s id, status or deleted_at; gives the catalog version a fresh value in the same transaction, so that '
'no backend keeps using the API key credential it read before.';

CREATE TRIGGER credential_changed AFTER DELETE OR TRUNCATE ON plystra.spaces
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_credential_changed();
CREATE TRIGGER credential_changed_update AFTER UPDATE ON plystra.spaces
    REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_credential_changed();
ALTER TABLE plystra.spaces ENABLE ALWAYS TRIGGER credential_changed;
ALTER TABLE plystra.spaces ENABLE ALWAYS TRIGGER credential_changed_update;

CREATE FUNCTION plystra.permission_key_covers(held text, required text)
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT held = '*' OR held = required
        OR (pg_catalog.strpos(held, ':') > 0 AND pg_catalog.strpos(required, ':') > 0
            AND pg_catalog.split_part(held, ':', 1) = pg_catalog.split_part(required, ':', 1)
            AND pg_catalog.substr(held, pg_catalog.strpos(held, ':') + 1) IN ('*', 'manage'));
$$;
COMMENT ON FUNCTION plystra.permission_key_covers(text, text) IS
'permission_key_covers(held, required): whether an admin permission key held covers the one required: * covers '
'everything, a key covers itself, domain:* and domain:manage cover every key of their domain (the rule of '
'AdminGrants and API keys; plystra_core::admin::permission_matches, which tests/sql/088 holds it to).';

CREATE OR REPLACE FUNCTION plystra.tg_api_keys_lineage()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parent plystra.api_keys;
    child_space text;
    child_path text;
    parent_space text;
    parent_path text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.created_by_api_key_id IS NULL OR plystra.restoring() THEN
            RETURN NEW;
        END IF;
        -- The parent row is written (its updated_at), not only read: a narrowing, expiry or revocation of the
        -- parent that is in progress is waited for and then read as committed (READ COMMITTED), or fails one of
        -- the two transactions with 40001 (REPEATABLE READ, either side), so no child escapes a change of its
        -- parent that the change's own cascade did not see.
        UPDATE plystra.api_keys k SET updated_at = k.updated_at WHERE k.id = NEW.created_by_api_key_id
        RETURNING * INTO parent;
        IF NOT FOUND OR parent.status <> 'active' OR parent.revoked_at IS NOT NULL OR parent.deleted_at IS NOT NULL
           OR (parent.expires_at IS NOT NULL AND parent.expires_at <= pg_catalog.statement_timestamp()) THEN
            RAISE EXCEPTION USING ERRCODE = '23514', CONSTRAINT = 'api_keys_parent_active',
                MESSAGE = 'plystra: an API key can only be created by an active API key';
        END IF;
        IF parent.expires_at IS NOT NULL AND (NEW.expires_at IS NULL OR NEW.expires_at > parent.expires_at) THEN
            RAISE EXCEPTION USING ERRCODE = '23514', CONSTRAINT = 'api_keys_child_outlives_parent',
                MESSAGE = 'plystra: an API key cannot outlive the API key that creates it',
                DETAIL = pg_catalog.format('The creating key expires at %s.', parent.expires_at);
        END IF;
        -- No wider than the parent: each permission key covered by one of the parent's, the scope inside its.
        SELECT g.space_id, g.path INTO child_space, child_path FROM plystra.groups g WHERE g.id = NEW.group_id;
        child_space := coalesce(child_space, NEW.space_id);
        SELECT g.space_id, g.path INTO parent_space, parent_path FROM plystra.groups g WHERE g.id = parent.group_id;
        parent_space := coalesce(parent_space, parent.space_id);
        IF EXISTS (SELECT FROM pg_catalog.jsonb_array_elements_text(NEW.permission_keys) AS wanted(key)
                   WHERE NOT EXISTS (SELECT FROM pg_catalog.jsonb_array_elements_text(parent.permission_keys) AS held(key)
                                     WHERE plystra.permission_key_covers(held.key, wanted.key)))
           OR (parent.level = 'space' AND (NEW.level = 'instance' OR child_space IS DISTINCT FROM parent_space))
           OR (parent.level = 'group' AND (NEW.level <> 'group' OR child_space IS DISTINCT FROM parent_space
                                           OR NOT (child_path = parent_path
                                                   OR pg_catalog.starts_with(child_path, parent_path || '.')))) THEN
            RAISE EXCEPTION USING ERRCODE = '23514', CONSTRAINT = 'api_keys_child_exceeds_parent',
                MESSAGE = 'plystra: an API key cannot hold more than the API key that creates it';
        END IF;
        -- A bounded lineage: every change to a key cascades through the keys below it, one trigger level each.
        IF (WITH RECURSIVE above(id, parent_id, depth) AS (
                SELECT parent.id, parent.created_by_api_key_id, 1
                UNION ALL
                SELECT k.id, k.created_by_api_key_id, a.depth + 1
                FROM above a JOIN plystra.api_keys k ON k.id = a.parent_id
                WHERE a.depth < 16)
            SELECT max(depth) FROM above) >= 16 THEN
            RAISE EXCEPTION USING ERRCODE = '23514', CONSTRAINT = 'api_keys_lineage_depth',
                MESSAGE = 'plystra: an API key can be created by a chain of at most 15 API keys',
                HINT = 'Create the key with a session, or with a key nearer to one made by a user.';
        END IF;
        RETURN NEW;
    END IF;
    -- AFTER UPDATE: a key that stopped being usable takes the keys it made with it (they cascade further).
    IF (NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL)
       OR (NEW.status <> 'active' AND OLD.status = 'active')
       OR (NEW.deleted_at IS NOT NULL AND OLD.deleted_at IS NULL) THEN
        UPDATE plystra.api_keys c
        SET status = 'revoked', revoked_at = pg_catalog.now(), revoked_by_user_id = NEW.revoked_by_user_id,
            revoked_reason = 'the API key that created it was revoked (' || NEW.id || ')'
        WHERE c.created_by_api_key_id = NEW.id AND c.revoked_at IS NULL;
        RETURN NULL;
    END IF;
    -- A key whose scope changed: the keys it made were made within the old one.
    IF (NEW.level, NEW.space_id, NEW.group_id) IS DISTINCT FROM (OLD.level, OLD.space_id, OLD.group_id) THEN
        UPDATE plystra.api_keys c
        SET status = 'revoked', revoked_at = pg_catalog.now(),
            revoked_reason = 'the API key that created it changed its scope (' || NEW.id || ')'
        WHERE c.created_by_api_key_id = NEW.id AND c.revoked_at IS NULL;
        RETURN NULL;
    END IF;
    -- A key narrowed in time: no key it made outlives it.
    IF NEW.expires_at IS NOT NULL AND NEW.expires_at IS DISTINCT FROM OLD.expires_at THEN
        UPDATE plystra.api_keys c SET expires_at = NEW.expires_at
        WHERE c.created_by_api_key_id = NEW.id AND c.revoked_at IS NULL
          AND (c.expires_at IS NULL OR c.expires_at > NEW.expires_at);
    END IF;
    -- A key narrowed in permissions: the keys it made keep only what it still covers; one left with none is revoked.
    IF NEW.permission_keys IS DISTINCT FROM OLD.permission_keys THEN
        UPDATE plystra.api_keys c
        SET permission_keys = narrowed.keys,
            status = CASE WHEN narrowed.keys = '[]' THEN 'revoked' ELSE c.status END,
            revoked_at = CASE WHEN narrowed.keys = '[]' THEN pg_catalog.now() ELSE c.revoked_at END,
            revoked_reason = CASE WHEN narrowed.keys = '[]'
                THEN 'the API key that created it no longer holds any of its permissions (' || NEW.id || ')'
                ELSE c.revoked_reason END
        FROM (
            SELECT k.id, coalesce(pg_catalog.jsonb_agg(e.value ORDER BY e.ordinality)
                       FILTER (WHERE EXISTS (
                           SELECT FROM pg_catalog.jsonb_array_elements_text(NEW.permission_keys) AS held(key)
                           WHERE plystra.permission_key_covers(held.key, e.value #>> '{}'))),
                       '[]') AS keys
            FROM plystra.api_keys k
            CROSS JOIN LATERAL pg_catalog.jsonb_array_elements(k.permission_keys) WITH ORDINALITY AS e(value, ordinality)
            WHERE k.created_by_api_key_id = NEW.id AND k.revoked_at IS NULL
            GROUP BY k.id
        ) AS narrowed
        WHERE c.id = narrowed.id AND c.permission_keys IS DISTINCT FROM narrowed.keys;
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION plystra.tg_api_keys_lineage() IS
'API keys created by an API key (created_by_api_key_id): BEFORE INSERT, the creating key must be active and the new '
'key must expire no later than it (SQLSTATE 23514, constraint api_keys_child_outlives_parent); AFTER UPDATE, '
'revoking, disabling or deleting a key, or changing its level, Space or Group, revokes every key it created; an '
'earlier expiry is passed on to the keys it created that would outlive it, and permission keys taken off it are '
'taken off them (one left with none is revoked); each change goes on to their keys in turn.';

-- Backends forget what they kept under the earlier version (a key's reading without its Space's state).
UPDATE plystra.catalog_version SET version = nextval('plystra.catalog_version_seq') WHERE name = 'catalog';
