-- The decision API's SQL faces. The work is done by plystra.decide_request (Rust), which takes the request as
-- text so that no request, however deep, fails before it can be refused with SQLSTATE 22023. Both are SECURITY
-- DEFINER so that a role may be given check (plystra_app) without decide_request, which also explains.

CREATE FUNCTION plystra."check"(request jsonb)
RETURNS jsonb
LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT plystra.decide_request(request::text, false) $$;

CREATE FUNCTION plystra.explain(request jsonb)
RETURNS jsonb
LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT plystra.decide_request(request::text, true) $$;
