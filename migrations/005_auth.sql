-- Plystra Core schema, version 005: failed-login bookkeeping for the login lockout.
--
-- The REST front counts failed logins per e-mail address (lower-cased, so unknown addresses are counted exactly
-- like known ones and the answer never tells them apart). PLYSTRA_AUTH_LOGIN_MAX_FAILURES failures within
-- PLYSTRA_AUTH_LOGIN_WINDOW lock the address for PLYSTRA_AUTH_LOGIN_LOCKOUT. A successful login deletes the row.
-- No password, hash or token is ever stored here.

CREATE TABLE plystra.login_failures (
    email_key         text PRIMARY KEY CONSTRAINT login_failures_email_key_lower CHECK (email_key = lower(email_key)),
    failure_count     integer NOT NULL DEFAULT 0 CONSTRAINT login_failures_failure_count_nonnegative CHECK (failure_count >= 0),
    window_started_at timestamptz NOT NULL DEFAULT now(),
    locked_until      timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE plystra.login_failures IS
'Failed logins per lower-cased e-mail address (known or not), for the login lockout of the REST front.';

-- A password change ends every session of the user, whoever makes it (the REST front, plain SQL, a console),
-- and records when it happened.
CREATE FUNCTION plystra.tg_users_password_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_WHEN = 'BEFORE' THEN
        IF NEW.password_hash IS DISTINCT FROM OLD.password_hash THEN
            NEW.password_changed_at := pg_catalog.now();
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.password_hash IS DISTINCT FROM OLD.password_hash THEN
        UPDATE plystra.sessions SET revoked_at = pg_catalog.now()
        WHERE user_id = NEW.id AND revoked_at IS NULL;
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION plystra.tg_users_password_changed() IS
'BEFORE UPDATE: stamps users.password_changed_at when password_hash changes. AFTER UPDATE: revokes every open '
'session of that user, so a changed password logs the old holder out everywhere.';

CREATE TRIGGER trg_users_password_stamp BEFORE UPDATE OF password_hash ON plystra.users
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_users_password_changed();
CREATE TRIGGER trg_users_password_revokes_sessions AFTER UPDATE OF password_hash ON plystra.users
    FOR EACH ROW EXECUTE FUNCTION plystra.tg_users_password_changed();
