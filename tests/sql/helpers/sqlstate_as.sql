-- Shared by the suites that test what a role may do (included with \ir inside their transaction).

-- sqlstate_as(role, stmt): runs stmt as role in a subtransaction and returns its SQLSTATE ('00000' when it
-- succeeded; a failed statement's work is rolled back, a successful one's kept).
CREATE FUNCTION pg_temp.sqlstate_as(role_name text, stmt text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    state text := '00000';
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', role_name);
    BEGIN
        EXECUTE stmt;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE;
    END;
    RESET ROLE;
    RETURN state;
END
$f$;
