-- The decision API's SQL faces: C-language entry points into the extension (plystra_pg/src/api.rs), so that no
-- SQL function body is parsed and planned again in every statement that decides. Both are SECURITY DEFINER so that
-- a role may be given check (plystra_app) without explain, and neither reads a table through the caller's rights.

CREATE FUNCTION plystra."check"(request jsonb)
RETURNS jsonb
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'plystra_check_jsonb';

CREATE FUNCTION plystra.explain(request jsonb)
RETURNS jsonb
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'plystra_explain_jsonb';
