-- The catalog of schema plystra as lines to compare: tables, columns, defaults, constraints, indexes, triggers,
-- rules, relations (and whether row security is on), policies, the privileges granted on the schema, its relations
-- and their columns, and any owner who is neither the schema's owner nor a superuser. `plystractl schema check` and
-- tests/catalog_check.sh both compare with it (a fresh install against the migration files applied to an empty
-- schema, and a live database against the same).
--
-- The audit log's monthly partitions are in no migration: the audit writer and the operator make them as months
-- come (plystra.create_audit_partition), so every live database has some. The attached ones named
-- audit_logs_YYYY_MM are described once, under the name audit_logs_<month>: a line found in some months but not
-- all says in which, and each month's bounds are compared with the UTC month its name says. `plystractl schema
-- check` makes one month in its scratch database when the live one has any, so a month changed by hand (an index
-- dropped, a trigger disabled or added) is drift, as any table's change is. Left out: the months an archive
-- detached (recorded in plystra.audit_archive_partitions, not yet dropped), the operator's data until `plystractl
-- audit drop`. Any other table, named like a month or not, is described as itself.
WITH months AS (
    SELECT c.oid, c.relname, c.relpartbound, n.month::timestamp AT TIME ZONE 'UTC' AS month_start,
           (n.month::timestamp + interval '1 month') AT TIME ZONE 'UTC' AS month_end
    FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
    -- Read only from a name that is a month (the filter below), whatever order the planner gives the two.
    CROSS JOIN LATERAL (SELECT CASE WHEN c.relname ~ '^audit_logs_[1-9][0-9]{3}_(0[1-9]|1[0-2])$'
                               THEN pg_catalog.to_date(pg_catalog.substr(c.relname, 12), 'YYYY_MM') END AS month) n
    WHERE i.inhparent = 'plystra.audit_logs'::regclass AND n.month IS NOT NULL
),
archived AS (
    SELECT c.oid FROM pg_catalog.pg_class c JOIN plystra.audit_archive_partitions a ON a.partition_name = c.relname
    WHERE c.relnamespace = 'plystra'::regnamespace AND c.relkind = 'r' AND a.dropped_at IS NULL
      AND c.oid NOT IN (SELECT oid FROM months)
),
-- Each line with the table it belongs to (an index's relation line belongs to the index's table).
described (rel, line) AS (
    SELECT c.oid, 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
           || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
           || CASE a.attgenerated WHEN 's' THEN ' generated' ELSE '' END
           || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE c.relnamespace = 'plystra'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p') AND a.attnum > 0
      AND NOT a.attisdropped
    UNION ALL
    SELECT conrelid, 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace = 'plystra'::regnamespace
    UNION ALL
    SELECT i.indrelid, 'index ' || pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE c.relnamespace = 'plystra'::regnamespace
    UNION ALL
    SELECT t.tgrelid, 'trigger ' || pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
    WHERE c.relnamespace = 'plystra'::regnamespace AND NOT t.tgisinternal
    UNION ALL
    SELECT coalesce(x.indrelid, c.oid), 'relation ' || c.relname || ' kind=' || c.relkind::text
           || CASE WHEN c.relrowsecurity THEN ' row security' ELSE '' END
           || CASE WHEN c.relforcerowsecurity THEN ' forced' ELSE '' END
    FROM pg_class c LEFT JOIN pg_index x ON x.indexrelid = c.oid WHERE c.relnamespace = 'plystra'::regnamespace
    UNION ALL
    SELECT p.polrelid, 'policy ' || polname || ' on ' || polrelid::regclass FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
    WHERE c.relnamespace = 'plystra'::regnamespace
    UNION ALL
    -- Rewrite rules (a view's own _RETURN rule aside): a rule DO INSTEAD NOTHING on the audit log would drop rows.
    SELECT r.ev_class, 'rule ' || regexp_replace(pg_get_ruledef(r.oid), '\s+', ' ', 'g') || ' enabled=' || r.ev_enabled::text
    FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
    WHERE c.relnamespace = 'plystra'::regnamespace AND r.rulename <> '_RETURN'
    UNION ALL
    -- Who may do what on each relation and column, the owner aside (its name is the installation's own).
    SELECT c.oid, 'grant ' || g.privilege_type || coalesce(' (' || g.column_name || ')', '') || ' on ' || c.relname
                  || ' to ' || CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(g.grantee) END
                  || CASE WHEN g.is_grantable THEN ' with grant option' ELSE '' END
    FROM pg_class c
    CROSS JOIN LATERAL (SELECT NULL::name AS column_name, x.grantee, x.privilege_type, x.is_grantable
                        FROM aclexplode(c.relacl) x
                        UNION ALL
                        SELECT a.attname, x.grantee, x.privilege_type, x.is_grantable
                        FROM pg_attribute a CROSS JOIN LATERAL aclexplode(a.attacl) x
                        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) g
    WHERE c.relnamespace = 'plystra'::regnamespace AND g.grantee <> c.relowner
    UNION ALL
    SELECT 0, 'grant ' || x.privilege_type || ' on schema plystra to '
              || CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END
              || CASE WHEN x.is_grantable THEN ' with grant option' ELSE '' END
    FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) x
    WHERE n.nspname = 'plystra' AND x.grantee <> n.nspowner
    UNION ALL
    -- An owner other than the schema's owner or a superuser (the extension is installed by a superuser; the scratch
    -- database of `schema check` by the checking role): whoever owns a table or a function may change it at will.
    -- (An index's owner is always its table's.)
    SELECT c.oid, 'owner of ' || c.relname || ': ' || r.rolname
    FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'plystra' AND c.relkind <> 'i' AND c.relowner <> n.nspowner AND NOT r.rolsuper
    UNION ALL
    SELECT 0, 'owner of function ' || p.oid::regprocedure::text || ': ' || r.rolname
    FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'plystra' AND p.proowner <> n.nspowner AND NOT r.rolsuper
    UNION ALL
    -- Printed as the catalog prints a bound, in this session's settings, on both sides.
    SELECT m.oid, 'partition ' || m.relname || ' bounds ' ||
           CASE WHEN pg_get_expr(m.relpartbound, 0)
                     = format('FOR VALUES FROM (%L) TO (%L)', m.month_start, m.month_end)
                THEN 'its month' ELSE pg_get_expr(m.relpartbound, 0) END
    FROM months m
),
month_lines AS (
    SELECT replace(d.line, m.relname, 'audit_logs_<month>') AS line, count(DISTINCT m.oid) AS n,
           string_agg(DISTINCT m.relname, ', ') AS found_in
    FROM described d JOIN months m ON m.oid = d.rel
    GROUP BY 1
)
SELECT d.line FROM described d
WHERE d.rel NOT IN (SELECT oid FROM months) AND d.rel NOT IN (SELECT oid FROM archived)
UNION ALL
SELECT l.line || CASE WHEN l.n = (SELECT count(*) FROM months) THEN ''
                      ELSE format(' (in %s of %s months: %s)', l.n, (SELECT count(*) FROM months), l.found_in) END
FROM month_lines l
ORDER BY 1;
