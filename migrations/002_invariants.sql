-- Plystra Core schema, version 002: the rules the database itself enforces.
--
-- A user who writes plain SQL gets the same guarantees as one who goes through HTTP (design rule 2), so every
-- data invariant that the reference enforced only in application hooks lives here, as triggers:
--
--   1. same-Space rules: a row never points at a Member, Role or Group of another Space;
--   2. group paths: a child's path is its parent's path plus one label; path and parent never change;
--   3. immutable ids and space_ids, and updated_at maintained on every UPDATE;
--   4. soft delete only for every entity that audit rows refer to;
--   5. append-only audit_logs, for every role, the table owner and session_replication_role = replica included;
--   6. the single definition of a "sensitive" key, used to keep secrets out of audit traces.
--
-- Every violation is raised from plpgsql with `RAISE ... USING ERRCODE, CONSTRAINT` so that clients map the
-- constraint name to an error code exactly as they do for a CHECK or UNIQUE constraint, and with a message that
-- starts with `plystra: ` and names the rule in words.
--
-- Trigger names are chosen for their firing order (PostgreSQL fires triggers of one kind in name order):
-- on UPDATE, trg_<table>_immutable fires before trg_<table>_same_space, so moving a row to another Space reports
-- <table>_space_immutable rather than a same-Space violation, and trg_<table>_touch_updated_at fires last; on
-- INSERT into groups, trg_groups_same_space fires before trg_groups_tree.
--
-- Every trigger function pins search_path and names objects with their schema: a caller's search_path must not
-- be able to substitute a table, function or operator.

------------------------------------------------------------------------------------------------------------------
-- 6. Sensitive keys (defined first: nothing else here depends on them, 003 does)
------------------------------------------------------------------------------------------------------------------

CREATE FUNCTION plystra.sensitive_key(key text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(
               pg_catalog.strpos(pg_catalog.lower(key), 'password') > 0
            OR pg_catalog.strpos(pg_catalog.lower(key), 'secret') > 0
            OR pg_catalog.strpos(pg_catalog.lower(key), 'token') > 0
            OR pg_catalog.strpos(pg_catalog.lower(key), 'api_key') > 0
            OR pg_catalog.strpos(pg_catalog.lower(key), 'authorization') > 0
            OR pg_catalog.strpos(pg_catalog.lower(key), 'key_hash') > 0,
           false);
$$;
COMMENT ON FUNCTION plystra.sensitive_key(text) IS
'The single definition of a sensitive key: true when the lower-cased key contains password, secret, token, '
'api_key, authorization or key_hash (a null key is not sensitive). The reference rejected audit documents '
'with such keys (contractaudit.RejectSensitiveFields); we strip them instead, so that an audit row is always '
'written and never carries a password hash, a session token hash or an API-key hash. Everything that decides '
'whether a key may reach an audit trace or a log must call this function, so that the list lives in one place.';

CREATE FUNCTION plystra.redact_sensitive(doc jsonb)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result jsonb;
BEGIN
    CASE pg_catalog.jsonb_typeof(doc)
        WHEN 'object' THEN
            SELECT coalesce(pg_catalog.jsonb_object_agg(e.key, plystra.redact_sensitive(e.value)), '{}'::jsonb)
              INTO result
              FROM pg_catalog.jsonb_each(doc) AS e(key, value)
             WHERE NOT plystra.sensitive_key(e.key);
        WHEN 'array' THEN
            SELECT coalesce(pg_catalog.jsonb_agg(plystra.redact_sensitive(a.value) ORDER BY a.ordinality), '[]'::jsonb)
              INTO result
              FROM pg_catalog.jsonb_array_elements(doc) WITH ORDINALITY AS a(value, ordinality);
        ELSE
            result := doc;
    END CASE;
    RETURN result;
END;
$$;
COMMENT ON FUNCTION plystra.redact_sensitive(jsonb) IS
'Returns the document with every key for which plystra.sensitive_key() is true removed, at any depth, objects '
'inside arrays included; scalars and array order are kept. Row snapshots (to_jsonb of a users or api_keys row, '
'free-form metadata) pass through it before they reach an audit trace, because an audit log is read by far '
'more people than the credential tables and is kept forever: a password hash or key hash copied there would '
'outlive its rotation.';

------------------------------------------------------------------------------------------------------------------
-- 3. Immutable columns and updated_at
------------------------------------------------------------------------------------------------------------------

CREATE FUNCTION plystra.tg_immutable_columns()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_doc jsonb := pg_catalog.to_jsonb(NEW);
    old_doc jsonb := pg_catalog.to_jsonb(OLD);
    col text;
    i integer := 0;
BEGIN
    -- TG_ARGV holds pairs: column name, constraint name reported when that column changes.
    WHILE i < TG_NARGS LOOP
        col := TG_ARGV[i];
        IF (new_doc -> col) IS DISTINCT FROM (old_doc -> col) THEN
            RAISE EXCEPTION USING
                ERRCODE = '23514',
                CONSTRAINT = TG_ARGV[i + 1],
                SCHEMA = TG_TABLE_SCHEMA,
                TABLE = TG_TABLE_NAME,
                COLUMN = col,
                MESSAGE = pg_catalog.format('plystra: %s.%s is immutable', TG_TABLE_NAME, col),
                DETAIL = pg_catalog.format('Row %s: %s would change from %s to %s.',
                                           old_doc ->> 'id', col, old_doc -> col, new_doc -> col),
                HINT = CASE col
                    WHEN 'space_id' THEN 'Moving rows between Spaces would silently break same-Space guarantees; create a new row in the other Space instead.'
                    WHEN 'id' THEN 'Audit rows and references name rows by id; create a new row instead.'
                    WHEN 'path' THEN 'A group path names a subtree that grants are anchored to; create a new group instead.'
                    WHEN 'parent_group_id' THEN 'A group''s path is derived from its parent; create a new group instead.'
                END;
        END IF;
        i := i + 2;
    END LOOP;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION plystra.tg_immutable_columns() IS
'BEFORE UPDATE row trigger. Its arguments are pairs (column, constraint name); it raises 23514 with that '
'constraint name when the column changes. Ids never change because audit rows (which have no foreign keys) '
'name rows by id forever; space_id never changes because every same-Space rule is checked when a row is '
'written, and moving a row to another Space later would silently invalidate the rows that point at it; a '
'group''s path and parent never change because grants anchored to a subtree must keep meaning the same subtree.';

CREATE FUNCTION plystra.tg_touch_updated_at()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.updated_at := pg_catalog.now();
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION plystra.tg_touch_updated_at() IS
'BEFORE UPDATE row trigger that sets updated_at to now(), so that the column is right for every writer '
'(plain SQL included) instead of depending on each client remembering to set it.';

------------------------------------------------------------------------------------------------------------------
-- 1. Same-Space rules
------------------------------------------------------------------------------------------------------------------

-- Raises the same-Space violation; a helper so that every rule reads alike and reports alike.
CREATE FUNCTION plystra.raise_cross_space(constraint_name text, table_name text, column_name text,
                                          ref_kind text, ref_id text, ref_space_id text, row_space_id text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = '23514',
        CONSTRAINT = constraint_name,
        SCHEMA = 'plystra',
        TABLE = table_name,
        COLUMN = column_name,
        MESSAGE = pg_catalog.format('plystra: %s.%s must belong to %s.space_id', table_name, column_name, table_name),
        DETAIL = pg_catalog.format('%s %L belongs to Space %L, the row to Space %L.',
                                   ref_kind, ref_id, ref_space_id, row_space_id);
END;
$$;
COMMENT ON FUNCTION plystra.raise_cross_space(text, text, text, text, text, text, text) IS
'Raises a same-Space violation (SQLSTATE 23514) with the given constraint name and the message '
'"plystra: <table>.<column> must belong to <table>.space_id". One helper so that every same-Space rule reports '
'in the same shape, which clients map to an error code by constraint name.';

CREATE FUNCTION plystra.tg_same_space()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    is_insert boolean := TG_OP = 'INSERT';
    ref_space text;
BEGIN
    -- A referenced row that does not exist is left to the foreign key, which reports it as 23503.
    -- On UPDATE a rule is re-checked only when one of its columns changes: space_id of the referenced rows is
    -- immutable, so an unchanged reference stays valid.
    CASE TG_TABLE_NAME
    WHEN 'user_members' THEN
        IF is_insert OR NEW.member_id IS DISTINCT FROM OLD.member_id OR NEW.space_id IS DISTINCT FROM OLD.space_id THEN
            SELECT m.space_id INTO ref_space FROM plystra.members AS m WHERE m.id = NEW.member_id;
            IF FOUND AND ref_space IS DISTINCT FROM NEW.space_id THEN
                PERFORM plystra.raise_cross_space('user_members_member_same_space', 'user_members', 'member_id',
                                                  'Member', NEW.member_id, ref_space, NEW.space_id);
            END IF;
        END IF;
        IF NEW.linked_by_member_id IS NOT NULL AND (is_insert
                OR NEW.linked_by_member_id IS DISTINCT FROM OLD.linked_by_member_id
                OR NEW.space_id IS DISTINCT FROM OLD.space_id) THEN
            SELECT m.space_id INTO ref_space FROM plystra.members AS m WHERE m.id = NEW.linked_by_member_id;
            IF FOUND AND ref_space IS DISTINCT FROM NEW.space_id THEN
                PERFORM plystra.raise_cross_space('user_members_linked_by_same_space', 'user_members',
                                                  'linked_by_member_id', 'Member', NEW.linked_by_member_id,
                                                  ref_space, NEW.space_id);
            END IF;
        END IF;

    WHEN 'member_roles' THEN
        IF is_insert OR NEW.member_id IS DISTINCT FROM OLD.member_id OR NEW.space_id IS DISTINCT FROM OLD.space_id THEN
            SELECT m.space_id INTO ref_space FROM plystra.members AS m WHERE m.id = NEW.member_id;
            IF FOUND AND ref_space IS DISTINCT FROM NEW.space_id THEN
                PERFORM plystra.raise_cross_space('member_roles_member_same_space', 'member_roles', 'member_id',
                                                  'Member', NEW.member_id, ref_space, NEW.space_id);
            END IF;
        END IF;
        IF is_insert OR NEW.role_id IS DISTINCT FROM OLD.role_id OR NEW.space_id IS DISTINCT FROM OLD.space_id THEN
            SELECT r.space_id INTO ref_space FROM plystra.roles AS r WHERE r.id = NEW.role_id;
            IF FOUND AND ref_space IS DISTINCT FROM NEW.space_id THEN
                PERFORM plystra.raise_cross_space('member_roles_role_same_space', 'member_roles', 'role_id',
                                                  'Role', NEW.role_id, ref_space, NEW.space_id);
            END IF;
        END IF;
        IF NEW.scope_anchor_group_id IS NOT NULL AND (is_insert
                OR NEW.scope_anchor_group_id IS DISTINCT FROM OLD.scope_anchor_group_id
                OR NEW.space_id IS DISTINCT FROM OLD.space_id) THEN
            SELECT g.space_id INTO ref_space FROM plystra.groups AS g WHERE g.id = NEW.scope_anchor_group_id;
            IF FOUND AND ref_space IS DISTINCT FROM NEW.space_id THEN
                PERFORM plystra.raise_cross_space('member_roles_anchor_same_space', 'member_roles',
                                                  'scope_anchor_group_id', 'Group', NEW.scope_anchor_group_id,
                                                  ref_space, NEW.space_id);
            END IF;
        END IF;

    WHEN 'resources' THEN
        IF NEW.group_id IS NOT NULL AND (is_insert OR NEW.group_id IS DISTINCT FROM OLD.group_id
                                         OR NEW.space_id IS DISTINCT FROM OLD.space_id) THEN
            SELECT g.space_id INTO ref_space FROM plystra.groups AS g WHERE g.id = NEW.group_id;
            IF FOUND AND ref_space IS DISTINCT FROM NEW.space_id THEN
                PERFORM plystra.raise_cross_space('resources_group_same_space', 'resources', 'group_id',
                                                  'Group', NEW.group_id, ref_space, NEW.space_id);
            END IF;
        END IF;
        IF NEW.owner_member_id IS NOT NULL AND (is_insert OR NEW.owner_member_id IS DISTINCT FROM OLD.owner_member_id
                                                OR NEW.space_id IS DISTINCT FROM OLD.space_id) THEN
            SELECT m.space_id INTO ref_space FROM plystra.members AS m WHERE m.id = NEW.owner_member_id;
            IF FOUND AND ref_space IS DISTINCT FROM NEW.space_id THEN
                PERFORM plystra.raise_cross_space('resources_owner_same_space', 'resources', 'owner_member_id',
                                                  'Member', NEW.owner_member_id, ref_space, NEW.space_id);
            END IF;
        END IF;

    WHEN 'groups' THEN
        IF NEW.parent_group_id IS NOT NULL AND (is_insert OR NEW.parent_group_id IS DISTINCT FROM OLD.parent_group_id
                                                OR NEW.space_id IS DISTINCT FROM OLD.space_id) THEN
            SELECT g.space_id INTO ref_space FROM plystra.groups AS g WHERE g.id = NEW.parent_group_id;
            IF FOUND AND ref_space IS DISTINCT FROM NEW.space_id THEN
                PERFORM plystra.raise_cross_space('groups_parent_same_space', 'groups', 'parent_group_id',
                                                  'Group', NEW.parent_group_id, ref_space, NEW.space_id);
            END IF;
        END IF;

    WHEN 'admin_grants', 'api_keys' THEN
        -- A group-scoped grant or key takes its Space from the group: derived when omitted, checked when given.
        -- (The level/scope CHECK constraints of 001 allow group_id only on group_admin grants and group keys.)
        -- This runs on every UPDATE: space_id of these tables is not immutable, and a NULL space_id must be
        -- derived again.
        IF NEW.group_id IS NOT NULL THEN
            SELECT g.space_id INTO ref_space FROM plystra.groups AS g WHERE g.id = NEW.group_id;
            IF FOUND THEN
                IF NEW.space_id IS NULL THEN
                    NEW.space_id := ref_space;
                ELSIF NEW.space_id IS DISTINCT FROM ref_space THEN
                    PERFORM plystra.raise_cross_space(TG_TABLE_NAME || '_group_same_space', TG_TABLE_NAME,
                                                      'group_id', 'Group', NEW.group_id, ref_space, NEW.space_id);
                END IF;
            END IF;
        END IF;
        -- Nested IFs: api_keys has no member_id, and NEW.member_id must not even be evaluated for it.
        IF TG_TABLE_NAME = 'admin_grants' THEN
            IF NEW.member_id IS NOT NULL AND NEW.space_id IS NOT NULL THEN
                SELECT m.space_id INTO ref_space FROM plystra.members AS m WHERE m.id = NEW.member_id;
                IF FOUND AND ref_space IS DISTINCT FROM NEW.space_id THEN
                    PERFORM plystra.raise_cross_space('admin_grants_member_same_space', 'admin_grants', 'member_id',
                                                      'Member', NEW.member_id, ref_space, NEW.space_id);
                END IF;
            END IF;
        END IF;

    ELSE
        RAISE EXCEPTION 'plystra: tg_same_space() has no rule for table %.%', TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = '39P01';
    END CASE;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION plystra.tg_same_space() IS
'BEFORE INSERT OR UPDATE row trigger enforcing the same-Space rules (SQLSTATE 23514): a UserMember, MemberRole, '
'Resource or child Group never points at a Member, Role or Group of another Space, and a group-scoped admin grant '
'or API key takes its Space from its group (derived when null, checked otherwise). The decision engine assumes '
'these rules (CROSS_SPACE_VIOLATION is only the last line of defence), so they must hold for plain SQL writers '
'too. SECURITY DEFINER so that the lookups see every row regardless of the caller''s privileges or row-level '
'security: a referenced row hidden from the caller must not make the check pass silently.';

------------------------------------------------------------------------------------------------------------------
-- 2. Group paths
------------------------------------------------------------------------------------------------------------------

CREATE FUNCTION plystra.tg_groups_tree()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parent_path text;
    label text;
BEGIN
    -- Only INSERT needs this: path and parent_group_id are immutable (trg_groups_immutable).
    IF NEW.parent_group_id IS NULL THEN
        IF pg_catalog.strpos(NEW.path, '.') > 0 THEN
            RAISE EXCEPTION USING
                ERRCODE = '23514', CONSTRAINT = 'groups_path_parent', SCHEMA = 'plystra', TABLE = 'groups',
                COLUMN = 'path',
                MESSAGE = 'plystra: a root group (no groups.parent_group_id) must have a one-label groups.path',
                DETAIL = pg_catalog.format('Group %L has path %L.', NEW.id, NEW.path);
        END IF;
        RETURN NEW;
    END IF;

    SELECT g.path INTO parent_path FROM plystra.groups AS g WHERE g.id = NEW.parent_group_id;
    IF NOT FOUND THEN
        RETURN NEW;  -- the foreign key reports the missing parent (23503)
    END IF;

    -- Plain string comparison: `_` and `%` are ordinary characters here, never LIKE wildcards.
    label := pg_catalog.substr(NEW.path, pg_catalog.length(parent_path) + 2);
    IF NOT (pg_catalog.starts_with(NEW.path, parent_path || '.')
            AND label <> ''
            AND pg_catalog.strpos(label, '.') = 0) THEN
        RAISE EXCEPTION USING
            ERRCODE = '23514', CONSTRAINT = 'groups_path_parent', SCHEMA = 'plystra', TABLE = 'groups',
            COLUMN = 'path',
            MESSAGE = 'plystra: groups.path must be the parent group''s path followed by ''.'' and one label',
            DETAIL = pg_catalog.format('Group %L has path %L; its parent %L has path %L, so the path must be %L.',
                                       NEW.id, NEW.path, NEW.parent_group_id, parent_path, parent_path || '.<label>');
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION plystra.tg_groups_tree() IS
'BEFORE INSERT row trigger on groups: a root group has a one-label path and a child''s path is exactly its '
'parent''s path, a dot and one label (constraint groups_path_parent, SQLSTATE 23514). group_tree scope checks are '
'prefix tests on paths, so a path that did not follow the real parent chain would grant or hide whole subtrees. '
'The comparison uses starts_with() and equality, never LIKE, so `_` and `%` stay literal. SECURITY DEFINER so '
'that the parent is always visible to the check.';

------------------------------------------------------------------------------------------------------------------
-- 4. Soft delete only
------------------------------------------------------------------------------------------------------------------

CREATE FUNCTION plystra.tg_soft_delete_only()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = '23001',
        CONSTRAINT = TG_TABLE_NAME || '_soft_delete_only',
        SCHEMA = TG_TABLE_SCHEMA,
        TABLE = TG_TABLE_NAME,
        MESSAGE = pg_catalog.format(
            'plystra: %I.%I rows are soft-delete only (audit rows refer to them): set deleted_at or status instead of %s',
            TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP);
END;
$$;
COMMENT ON FUNCTION plystra.tg_soft_delete_only() IS
'BEFORE DELETE row trigger and BEFORE TRUNCATE statement trigger on every Core entity that audit rows refer to. '
'Audit rows have no foreign keys and must stay explainable forever, so the rows they name are never removed: '
'callers set deleted_at or status instead. Raises SQLSTATE 23001 (restrict_violation) with constraint '
'<table>_soft_delete_only.';

------------------------------------------------------------------------------------------------------------------
-- 5. Append-only audit_logs
------------------------------------------------------------------------------------------------------------------

CREATE FUNCTION plystra.tg_audit_logs_append_only()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
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
'audit_logs_append_only). Privileges alone cannot do this: the owner and superusers hold every privilege. A '
'superuser can still DISABLE the trigger explicitly; that is detected later by the audit hash chain.';

------------------------------------------------------------------------------------------------------------------
-- Triggers
------------------------------------------------------------------------------------------------------------------

-- users
CREATE TRIGGER trg_users_immutable BEFORE UPDATE ON plystra.users
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_immutable_columns('id', 'users_id_immutable');
CREATE TRIGGER trg_users_touch_updated_at BEFORE UPDATE ON plystra.users
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_touch_updated_at();
CREATE TRIGGER trg_users_soft_delete_only BEFORE DELETE ON plystra.users
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_soft_delete_only();
CREATE TRIGGER trg_users_soft_delete_only_truncate BEFORE TRUNCATE ON plystra.users
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_soft_delete_only();

-- spaces
CREATE TRIGGER trg_spaces_immutable BEFORE UPDATE ON plystra.spaces
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_immutable_columns('id', 'spaces_id_immutable');
CREATE TRIGGER trg_spaces_touch_updated_at BEFORE UPDATE ON plystra.spaces
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_touch_updated_at();
CREATE TRIGGER trg_spaces_soft_delete_only BEFORE DELETE ON plystra.spaces
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_soft_delete_only();
CREATE TRIGGER trg_spaces_soft_delete_only_truncate BEFORE TRUNCATE ON plystra.spaces
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_soft_delete_only();

-- groups
CREATE TRIGGER trg_groups_immutable BEFORE UPDATE ON plystra.groups
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_immutable_columns(
        'id', 'groups_id_immutable',
        'space_id', 'groups_space_immutable',
        'parent_group_id', 'groups_parent_immutable',
        'path', 'groups_path_immutable');
CREATE TRIGGER trg_groups_same_space BEFORE INSERT OR UPDATE ON plystra.groups
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_same_space();
CREATE TRIGGER trg_groups_tree BEFORE INSERT ON plystra.groups
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_groups_tree();
CREATE TRIGGER trg_groups_touch_updated_at BEFORE UPDATE ON plystra.groups
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_touch_updated_at();
CREATE TRIGGER trg_groups_soft_delete_only BEFORE DELETE ON plystra.groups
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_soft_delete_only();
CREATE TRIGGER trg_groups_soft_delete_only_truncate BEFORE TRUNCATE ON plystra.groups
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_soft_delete_only();

-- members
CREATE TRIGGER trg_members_immutable BEFORE UPDATE ON plystra.members
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_immutable_columns(
        'id', 'members_id_immutable',
        'space_id', 'members_space_immutable');
CREATE TRIGGER trg_members_touch_updated_at BEFORE UPDATE ON plystra.members
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_touch_updated_at();
CREATE TRIGGER trg_members_soft_delete_only BEFORE DELETE ON plystra.members
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_soft_delete_only();
CREATE TRIGGER trg_members_soft_delete_only_truncate BEFORE TRUNCATE ON plystra.members
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_soft_delete_only();

-- user_members
CREATE TRIGGER trg_user_members_immutable BEFORE UPDATE ON plystra.user_members
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_immutable_columns(
        'id', 'user_members_id_immutable',
        'space_id', 'user_members_space_immutable');
CREATE TRIGGER trg_user_members_same_space BEFORE INSERT OR UPDATE ON plystra.user_members
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_same_space();
CREATE TRIGGER trg_user_members_touch_updated_at BEFORE UPDATE ON plystra.user_members
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_touch_updated_at();
CREATE TRIGGER trg_user_members_soft_delete_only BEFORE DELETE ON plystra.user_members
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_soft_delete_only();
CREATE TRIGGER trg_user_members_soft_delete_only_truncate BEFORE TRUNCATE ON plystra.user_members
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_soft_delete_only();

-- roles
CREATE TRIGGER trg_roles_immutable BEFORE UPDATE ON plystra.roles
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_immutable_columns(
        'id', 'roles_id_immutable',
        'space_id', 'roles_space_immutable');
CREATE TRIGGER trg_roles_touch_updated_at BEFORE UPDATE ON plystra.roles
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_touch_updated_at();
CREATE TRIGGER trg_roles_soft_delete_only BEFORE DELETE ON plystra.roles
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_soft_delete_only();
CREATE TRIGGER trg_roles_soft_delete_only_truncate BEFORE TRUNCATE ON plystra.roles
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_soft_delete_only();

-- permissions
CREATE TRIGGER trg_permissions_immutable BEFORE UPDATE ON plystra.permissions
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_immutable_columns('id', 'permissions_id_immutable');
CREATE TRIGGER trg_permissions_touch_updated_at BEFORE UPDATE ON plystra.permissions
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_touch_updated_at();
CREATE TRIGGER trg_permissions_soft_delete_only BEFORE DELETE ON plystra.permissions
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_soft_delete_only();
CREATE TRIGGER trg_permissions_soft_delete_only_truncate BEFORE TRUNCATE ON plystra.permissions
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_soft_delete_only();

-- member_roles
CREATE TRIGGER trg_member_roles_immutable BEFORE UPDATE ON plystra.member_roles
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_immutable_columns(
        'id', 'member_roles_id_immutable',
        'space_id', 'member_roles_space_immutable');
CREATE TRIGGER trg_member_roles_same_space BEFORE INSERT OR UPDATE ON plystra.member_roles
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_same_space();
CREATE TRIGGER trg_member_roles_touch_updated_at BEFORE UPDATE ON plystra.member_roles
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_touch_updated_at();
CREATE TRIGGER trg_member_roles_soft_delete_only BEFORE DELETE ON plystra.member_roles
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_soft_delete_only();
CREATE TRIGGER trg_member_roles_soft_delete_only_truncate BEFORE TRUNCATE ON plystra.member_roles
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_soft_delete_only();

-- role_permissions
CREATE TRIGGER trg_role_permissions_immutable BEFORE UPDATE ON plystra.role_permissions
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_immutable_columns('id', 'role_permissions_id_immutable');
CREATE TRIGGER trg_role_permissions_touch_updated_at BEFORE UPDATE ON plystra.role_permissions
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_touch_updated_at();
CREATE TRIGGER trg_role_permissions_soft_delete_only BEFORE DELETE ON plystra.role_permissions
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_soft_delete_only();
CREATE TRIGGER trg_role_permissions_soft_delete_only_truncate BEFORE TRUNCATE ON plystra.role_permissions
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_soft_delete_only();

-- resource_types
CREATE TRIGGER trg_resource_types_immutable BEFORE UPDATE ON plystra.resource_types
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_immutable_columns('id', 'resource_types_id_immutable');
CREATE TRIGGER trg_resource_types_touch_updated_at BEFORE UPDATE ON plystra.resource_types
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_touch_updated_at();
CREATE TRIGGER trg_resource_types_soft_delete_only BEFORE DELETE ON plystra.resource_types
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_soft_delete_only();
CREATE TRIGGER trg_resource_types_soft_delete_only_truncate BEFORE TRUNCATE ON plystra.resource_types
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_soft_delete_only();

-- resource_actions
CREATE TRIGGER trg_resource_actions_immutable BEFORE UPDATE ON plystra.resource_actions
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_immutable_columns('id', 'resource_actions_id_immutable');
CREATE TRIGGER trg_resource_actions_touch_updated_at BEFORE UPDATE ON plystra.resource_actions
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_touch_updated_at();
CREATE TRIGGER trg_resource_actions_soft_delete_only BEFORE DELETE ON plystra.resource_actions
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_soft_delete_only();
CREATE TRIGGER trg_resource_actions_soft_delete_only_truncate BEFORE TRUNCATE ON plystra.resource_actions
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_soft_delete_only();

-- resource_mappings
CREATE TRIGGER trg_resource_mappings_immutable BEFORE UPDATE ON plystra.resource_mappings
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_immutable_columns('id', 'resource_mappings_id_immutable');
CREATE TRIGGER trg_resource_mappings_touch_updated_at BEFORE UPDATE ON plystra.resource_mappings
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_touch_updated_at();
CREATE TRIGGER trg_resource_mappings_soft_delete_only BEFORE DELETE ON plystra.resource_mappings
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_soft_delete_only();
CREATE TRIGGER trg_resource_mappings_soft_delete_only_truncate BEFORE TRUNCATE ON plystra.resource_mappings
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_soft_delete_only();

-- resources
CREATE TRIGGER trg_resources_immutable BEFORE UPDATE ON plystra.resources
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_immutable_columns(
        'id', 'resources_id_immutable',
        'space_id', 'resources_space_immutable');
CREATE TRIGGER trg_resources_same_space BEFORE INSERT OR UPDATE ON plystra.resources
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_same_space();
CREATE TRIGGER trg_resources_touch_updated_at BEFORE UPDATE ON plystra.resources
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_touch_updated_at();
CREATE TRIGGER trg_resources_soft_delete_only BEFORE DELETE ON plystra.resources
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_soft_delete_only();
CREATE TRIGGER trg_resources_soft_delete_only_truncate BEFORE TRUNCATE ON plystra.resources
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_soft_delete_only();

-- admin_grants
CREATE TRIGGER trg_admin_grants_immutable BEFORE UPDATE ON plystra.admin_grants
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_immutable_columns('id', 'admin_grants_id_immutable');
CREATE TRIGGER trg_admin_grants_same_space BEFORE INSERT OR UPDATE ON plystra.admin_grants
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_same_space();
CREATE TRIGGER trg_admin_grants_touch_updated_at BEFORE UPDATE ON plystra.admin_grants
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_touch_updated_at();
CREATE TRIGGER trg_admin_grants_soft_delete_only BEFORE DELETE ON plystra.admin_grants
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_soft_delete_only();
CREATE TRIGGER trg_admin_grants_soft_delete_only_truncate BEFORE TRUNCATE ON plystra.admin_grants
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_soft_delete_only();

-- api_keys
CREATE TRIGGER trg_api_keys_immutable BEFORE UPDATE ON plystra.api_keys
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_immutable_columns('id', 'api_keys_id_immutable');
CREATE TRIGGER trg_api_keys_same_space BEFORE INSERT OR UPDATE ON plystra.api_keys
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_same_space();
CREATE TRIGGER trg_api_keys_touch_updated_at BEFORE UPDATE ON plystra.api_keys
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_touch_updated_at();
CREATE TRIGGER trg_api_keys_soft_delete_only BEFORE DELETE ON plystra.api_keys
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_soft_delete_only();
CREATE TRIGGER trg_api_keys_soft_delete_only_truncate BEFORE TRUNCATE ON plystra.api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_soft_delete_only();

-- sessions: deletable (logout, expiry clean-up), but ids never change and updated_at is maintained.
CREATE TRIGGER trg_sessions_immutable BEFORE UPDATE ON plystra.sessions
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_immutable_columns('id', 'sessions_id_immutable');
CREATE TRIGGER trg_sessions_touch_updated_at BEFORE UPDATE ON plystra.sessions
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_touch_updated_at();

-- audit_logs: append-only, ALWAYS so that session_replication_role = replica does not skip the triggers.
CREATE TRIGGER trg_audit_logs_append_only BEFORE UPDATE OR DELETE ON plystra.audit_logs
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_audit_logs_append_only();
CREATE TRIGGER trg_audit_logs_append_only_truncate BEFORE TRUNCATE ON plystra.audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_audit_logs_append_only();
ALTER TABLE plystra.audit_logs ENABLE ALWAYS TRIGGER trg_audit_logs_append_only;
ALTER TABLE plystra.audit_logs ENABLE ALWAYS TRIGGER trg_audit_logs_append_only_truncate;
