-- pg_temp.or_error(query): the one text value `query` returns, or the error's message if it raises one, so that a
-- test that changes the schema under a second backend (a renamed table or column) puts it back whatever the query
-- does. Include with \ir helpers/or_error.sql.
CREATE FUNCTION pg_temp.or_error(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    result text;
BEGIN
    EXECUTE query INTO result;
    RETURN result;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLERRM;
END $$;
