-- Every function of schema plystra with a digest of its definition and who may execute it, the owner aside
-- (plystractl schema check, tests/catalog_check.sh).
SELECT p.oid::regprocedure::text || ' ' || md5(pg_get_functiondef(p.oid)) || ' execute: '
       || CASE WHEN p.proacl IS NULL THEN 'PUBLIC (default)'
               ELSE coalesce((SELECT string_agg(g.who, ',' ORDER BY g.who)
                              FROM (SELECT CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END
                                           || CASE WHEN x.is_grantable THEN ' with grant option' ELSE '' END AS who
                                    FROM aclexplode(p.proacl) x WHERE x.grantee <> p.proowner) g), 'owner only') END
FROM pg_proc p
WHERE p.pronamespace = 'plystra'::regnamespace ORDER BY 1;
