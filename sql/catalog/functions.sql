-- Every function of schema plystra with a digest of its definition (plystractl schema check, tests/catalog_check.sh).
SELECT p.oid::regprocedure::text || ' ' || md5(pg_get_functiondef(p.oid)) FROM pg_proc p
WHERE p.pronamespace = 'plystra'::regnamespace ORDER BY 1;
