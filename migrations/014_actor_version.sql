-- Plystra Core schema, version 014: each Space's actor version, so that a backend may keep what a decision reads
-- of its actor (the User, Member, UserMember binding and Space rows, the Member's grants and each grant's anchor
-- group) between decisions and know exactly when it may not.
--
-- The rule (plystra_pg/src/actor_kept.rs uses it), the catalog version's (migration 011) made per Space:
-- every statement that writes users, spaces, members, user_members, member_roles or groups gives the version row
-- of each Space whose actors it may change a fresh value of a sequence, in the same transaction. For a Space-local
-- row (a Member, binding, grant or group: their space_id never changes) that is the row's Space, old and new row
-- alike; for a Space, the Space itself; for a User whose id, email, status or deleted_at changes (what a decision
-- reads of it: a login's last_login_at moves nothing), every Space where the User has a binding (any binding row,
-- whatever its status). A sequence value is never handed out twice, so the version a snapshot sees names exactly
-- one state of that Space's actor rows. A backend keeps an actor only while every row it read lies in the
-- request's Space, under the version it read it with, and uses it only in transactions that have written
-- nothing, while their snapshot sees that same version of the same incarnation of the row (a random id the row is
-- created with: DROP/CREATE EXTENSION makes new ones). The version rows replicate like any other row, so a hot
-- standby, where no trigger fires, sees them change with the data. The triggers are ENABLE ALWAYS, so a session
-- with session_replication_role = replica bumps them too; only a superuser who disables triggers can change the
-- tables without it, and must then bump by hand
-- (UPDATE plystra.actor_versions SET version = nextval('plystra.actor_version_seq') WHERE space_id = '...').
-- A Space without a version row (restored without it, or deleted by hand) keeps nothing until its next write.
--
-- A User changed while one of its bindings is being created in another Space: the User's statement bumps only
-- the Spaces whose bindings its snapshot sees. So both statements also write the User's row in
-- plystra.actor_user_stamps, which serialises them: in READ COMMITTED the later one waits for the earlier to
-- commit and then sees its binding (each statement of the trigger takes a fresh snapshot); in REPEATABLE READ or
-- SERIALIZABLE the later one fails with a serialization failure (40001) and is retried by its client.
--
-- What it costs writers: a statement writing one Space's actor rows takes that Space's version row lock (and a
-- User's stamp row lock) until its transaction ends, so writers of one Space's Users, Members, bindings, grants and
-- groups are serialised with each other; writers of different Spaces are not, and a decision never writes them.
-- A change to a User with bindings in many Spaces locks every one of those Spaces' rows. Rows are locked in
-- space_id order, so two such statements do not deadlock on them.

CREATE SEQUENCE plystra.actor_version_seq;

-- `incarnation` names this installation of the row: a DROP/CREATE EXTENSION makes new ones, where the sequence
-- starts again and could hand out a number a backend kept an actor under.
CREATE TABLE plystra.actor_versions (
    space_id    text   PRIMARY KEY,
    version     bigint NOT NULL,
    incarnation text   NOT NULL DEFAULT pg_catalog.gen_random_uuid()::text
);
INSERT INTO plystra.actor_versions (space_id, version)
SELECT id, nextval('plystra.actor_version_seq') FROM (SELECT id FROM plystra.spaces ORDER BY id) s;

-- One row per User ever written since 014: the point where a User's change and a new binding of that User meet.
CREATE TABLE plystra.actor_user_stamps (
    user_id text   PRIMARY KEY,
    stamp   bigint NOT NULL
);

-- SECURITY DEFINER: whoever may write a Member needs no privilege on the version rows or their sequence.
CREATE FUNCTION plystra.tg_actor_changed()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    affected text[];
    changed_users text[];
BEGIN
    -- Transition tables: changed_new (INSERT, UPDATE), changed_old (UPDATE, DELETE); none for TRUNCATE.
    IF TG_OP = 'TRUNCATE' THEN
        affected := ARRAY(SELECT id FROM plystra.spaces UNION SELECT space_id FROM plystra.actor_versions);
    ELSIF TG_TABLE_NAME = 'users' THEN
        IF TG_OP = 'INSERT' THEN
            changed_users := ARRAY(SELECT id FROM changed_new);
        ELSIF TG_OP = 'UPDATE' THEN
            -- Only what a decision reads of a User (plystra_pg/src/loader.rs, actor: id, email, status,
            -- deleted_at): a login's last_login_at or a new password moves no Space. An id changed with the
            -- immutability trigger off appears on one side of the join only, and counts.
            changed_users := ARRAY(
                SELECT coalesce(n.id, o.id) FROM changed_new n FULL JOIN changed_old o ON o.id = n.id
                WHERE n.id IS NULL OR o.id IS NULL
                   OR (n.email, n.status, n.deleted_at) IS DISTINCT FROM (o.email, o.status, o.deleted_at));
        ELSE
            changed_users := ARRAY(SELECT id FROM changed_old);
        END IF;
    ELSIF TG_TABLE_NAME = 'spaces' THEN
        IF TG_OP = 'INSERT' THEN
            affected := ARRAY(SELECT id FROM changed_new);
        ELSIF TG_OP = 'UPDATE' THEN
            affected := ARRAY(SELECT id FROM changed_old UNION SELECT id FROM changed_new);
        ELSE
            affected := ARRAY(SELECT id FROM changed_old);
        END IF;
    ELSIF TG_TABLE_NAME = 'user_members' THEN
        IF TG_OP = 'INSERT' THEN
            affected := ARRAY(SELECT space_id FROM changed_new);
            changed_users := ARRAY(SELECT user_id FROM changed_new);
        ELSIF TG_OP = 'UPDATE' THEN
            affected := ARRAY(SELECT space_id FROM changed_old UNION SELECT space_id FROM changed_new);
            changed_users := ARRAY(SELECT user_id FROM changed_old UNION SELECT user_id FROM changed_new);
        ELSE
            affected := ARRAY(SELECT space_id FROM changed_old);
            changed_users := ARRAY(SELECT user_id FROM changed_old);
        END IF;
    ELSE
        -- members, member_roles, groups: Space-local rows.
        IF TG_OP = 'INSERT' THEN
            affected := ARRAY(SELECT space_id FROM changed_new);
        ELSIF TG_OP = 'UPDATE' THEN
            affected := ARRAY(SELECT space_id FROM changed_old UNION SELECT space_id FROM changed_new);
        ELSE
            affected := ARRAY(SELECT space_id FROM changed_old);
        END IF;
    END IF;

    IF changed_users IS NOT NULL THEN
        INSERT INTO plystra.actor_user_stamps AS s (user_id, stamp)
        SELECT u, nextval('plystra.actor_version_seq')
        FROM (SELECT DISTINCT u FROM unnest(changed_users) u WHERE u IS NOT NULL ORDER BY u) d
        ON CONFLICT (user_id) DO UPDATE SET stamp = excluded.stamp;
        IF TG_TABLE_NAME = 'users' THEN
            -- Read after the stamps are held: in READ COMMITTED this statement's snapshot sees a binding
            -- committed by a statement that held a stamp before.
            affected := ARRAY(SELECT space_id FROM plystra.user_members WHERE user_id = ANY (changed_users));
        END IF;
    END IF;

    INSERT INTO plystra.actor_versions AS v (space_id, version)
    SELECT s, nextval('plystra.actor_version_seq')
    FROM (SELECT DISTINCT s FROM unnest(affected) s WHERE s IS NOT NULL ORDER BY s) d
    ON CONFLICT (space_id) DO UPDATE SET version = excluded.version;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION plystra.tg_actor_changed() IS
'Trigger: a statement wrote Users, Spaces, Members, UserMember bindings, MemberRole grants or groups; gives the '
'actor version of every Space whose actors it may change (for a User, every Space where it has a binding) a fresh '
'value in the same transaction, so that no backend keeps using an actor it read before.';

CREATE TRIGGER actor_changed_insert AFTER INSERT ON plystra.users
    REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_actor_changed();
CREATE TRIGGER actor_changed_update AFTER UPDATE ON plystra.users
    REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_actor_changed();
CREATE TRIGGER actor_changed_delete AFTER DELETE ON plystra.users
    REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_actor_changed();
CREATE TRIGGER actor_changed_truncate AFTER TRUNCATE ON plystra.users
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_actor_changed();

CREATE TRIGGER actor_changed_insert AFTER INSERT ON plystra.spaces
    REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_actor_changed();
CREATE TRIGGER actor_changed_update AFTER UPDATE ON plystra.spaces
    REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_actor_changed();
CREATE TRIGGER actor_changed_delete AFTER DELETE ON plystra.spaces
    REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_actor_changed();
CREATE TRIGGER actor_changed_truncate AFTER TRUNCATE ON plystra.spaces
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_actor_changed();

CREATE TRIGGER actor_changed_insert AFTER INSERT ON plystra.members
    REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_actor_changed();
CREATE TRIGGER actor_changed_update AFTER UPDATE ON plystra.members
    REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_actor_changed();
CREATE TRIGGER actor_changed_delete AFTER DELETE ON plystra.members
    REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_actor_changed();
CREATE TRIGGER actor_changed_truncate AFTER TRUNCATE ON plystra.members
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_actor_changed();

CREATE TRIGGER actor_changed_insert AFTER INSERT ON plystra.user_members
    REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_actor_changed();
CREATE TRIGGER actor_changed_update AFTER UPDATE ON plystra.user_members
    REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_actor_changed();
CREATE TRIGGER actor_changed_delete AFTER DELETE ON plystra.user_members
    REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_actor_changed();
CREATE TRIGGER actor_changed_truncate AFTER TRUNCATE ON plystra.user_members
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_actor_changed();

CREATE TRIGGER actor_changed_insert AFTER INSERT ON plystra.member_roles
    REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_actor_changed();
CREATE TRIGGER actor_changed_update AFTER UPDATE ON plystra.member_roles
    REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_actor_changed();
CREATE TRIGGER actor_changed_delete AFTER DELETE ON plystra.member_roles
    REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_actor_changed();
CREATE TRIGGER actor_changed_truncate AFTER TRUNCATE ON plystra.member_roles
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_actor_changed();

CREATE TRIGGER actor_changed_insert AFTER INSERT ON plystra.groups
    REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_actor_changed();
CREATE TRIGGER actor_changed_update AFTER UPDATE ON plystra.groups
    REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_actor_changed();
CREATE TRIGGER actor_changed_delete AFTER DELETE ON plystra.groups
    REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_actor_changed();
CREATE TRIGGER actor_changed_truncate AFTER TRUNCATE ON plystra.groups
    FOR EACH STATEMENT EXECUTE FUNCTION plystra.tg_actor_changed();

ALTER TABLE plystra.users ENABLE ALWAYS TRIGGER actor_changed_insert;
ALTER TABLE plystra.users ENABLE ALWAYS TRIGGER actor_changed_update;
ALTER TABLE plystra.users ENABLE ALWAYS TRIGGER actor_changed_delete;
ALTER TABLE plystra.users ENABLE ALWAYS TRIGGER actor_changed_truncate;
ALTER TABLE plystra.spaces ENABLE ALWAYS TRIGGER actor_changed_insert;
ALTER TABLE plystra.spaces ENABLE ALWAYS TRIGGER actor_changed_update;
ALTER TABLE plystra.spaces ENABLE ALWAYS TRIGGER actor_changed_delete;
ALTER TABLE plystra.spaces ENABLE ALWAYS TRIGGER actor_changed_truncate;
ALTER TABLE plystra.members ENABLE ALWAYS TRIGGER actor_changed_insert;
ALTER TABLE plystra.members ENABLE ALWAYS TRIGGER actor_changed_update;
ALTER TABLE plystra.members ENABLE ALWAYS TRIGGER actor_changed_delete;
ALTER TABLE plystra.members ENABLE ALWAYS TRIGGER actor_changed_truncate;
ALTER TABLE plystra.user_members ENABLE ALWAYS TRIGGER actor_changed_insert;
ALTER TABLE plystra.user_members ENABLE ALWAYS TRIGGER actor_changed_update;
ALTER TABLE plystra.user_members ENABLE ALWAYS TRIGGER actor_changed_delete;
ALTER TABLE plystra.user_members ENABLE ALWAYS TRIGGER actor_changed_truncate;
ALTER TABLE plystra.member_roles ENABLE ALWAYS TRIGGER actor_changed_insert;
ALTER TABLE plystra.member_roles ENABLE ALWAYS TRIGGER actor_changed_update;
ALTER TABLE plystra.member_roles ENABLE ALWAYS TRIGGER actor_changed_delete;
ALTER TABLE plystra.member_roles ENABLE ALWAYS TRIGGER actor_changed_truncate;
ALTER TABLE plystra.groups ENABLE ALWAYS TRIGGER actor_changed_insert;
ALTER TABLE plystra.groups ENABLE ALWAYS TRIGGER actor_changed_update;
ALTER TABLE plystra.groups ENABLE ALWAYS TRIGGER actor_changed_delete;
ALTER TABLE plystra.groups ENABLE ALWAYS TRIGGER actor_changed_truncate;
