-- Plystra 1.2.0 -> 1.3.0 (ALTER EXTENSION plystra UPDATE, or plystractl migrate up).
-- check and explain become C-language entry points into the extension instead of SQL wrappers around
-- decide_request: PostgreSQL 15 parses and plans a SQL function's body again in every statement that calls it.
-- Same signatures, privileges and comments (CREATE OR REPLACE keeps them). No schema change, no migration.
-- tests/catalog_check.sh proves that an updated 1.0.0 equals a fresh 1.3.0.
\echo Use "ALTER EXTENSION plystra UPDATE TO '1.3.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION plystra."check"(request jsonb)
RETURNS jsonb
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'plystra_check_jsonb';

CREATE OR REPLACE FUNCTION plystra.explain(request jsonb)
RETURNS jsonb
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'plystra_explain_jsonb';

SELECT plystra.apply_privileges();
