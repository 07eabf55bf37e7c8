-- Shared by the invariant suites (included with \ir inside their transaction).

-- error_of(sql): runs sql in a subtransaction that is always rolled back and returns its error as
-- {sqlstate, constraint, message}, or {sqlstate: "00000"} when it succeeded.
CREATE FUNCTION pg_temp.error_of(sql text) RETURNS jsonb LANGUAGE plpgsql AS $f$
DECLARE
    st text; cn text; msg text;
BEGIN
    BEGIN
        EXECUTE sql;
        RAISE EXCEPTION '__no_error__';
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, cn = CONSTRAINT_NAME, msg = MESSAGE_TEXT;
        IF msg = '__no_error__' THEN
            RETURN jsonb_build_object('sqlstate', '00000');
        END IF;
        RETURN jsonb_build_object('sqlstate', st, 'constraint', nullif(cn, ''), 'message', msg);
    END;
END $f$;

-- rejects(sql, errcode, constraint, description): three tests: throws_ok with the SQLSTATE, the constraint
-- name reported with it, and a message that starts with "plystra: ".
CREATE FUNCTION pg_temp.rejects(sql text, errcode text, constraint_name text, description text)
RETURNS SETOF text LANGUAGE plpgsql AS $f$
DECLARE
    e jsonb;
BEGIN
    RETURN NEXT throws_ok(sql, errcode::char(5), NULL::text, description);
    e := pg_temp.error_of(sql);
    RETURN NEXT is(e ->> 'constraint', constraint_name, description || ': constraint ' || constraint_name);
    RETURN NEXT ok(starts_with(coalesce(e ->> 'message', ''), 'plystra: '),
                   description || ': message starts with "plystra: " (' || coalesce(e ->> 'message', 'none') || ')');
END $f$;
