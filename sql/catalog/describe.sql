-- The catalog of schema plystra as lines to compare: tables, columns, defaults, constraints, indexes, triggers,
-- relations and policies. `plystractl schema check` and tests/catalog_check.sh both compare with it (a fresh
-- install against the migration files applied to an empty schema, and a live database against the same).
-- The audit log's monthly partitions (audit_logs_YYYY_MM, attached or detached by an archive) are left out, with
-- their columns, constraints, indexes and triggers: the audit writer and the operator make them as months come, so
-- they are in no migration, and every live database has some.
WITH months AS (
    SELECT oid FROM pg_class
    WHERE relnamespace = 'plystra'::regnamespace AND relkind = 'r' AND relname ~ '^audit_logs_[0-9]{4}_[0-9]{2}$'
)
SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
       || CASE a.attgenerated WHEN 's' THEN ' generated' ELSE '' END
       || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relnamespace = 'plystra'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p') AND a.attnum > 0 AND NOT a.attisdropped
  AND c.oid NOT IN (SELECT oid FROM months)
UNION ALL
SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'plystra'::regnamespace AND conrelid NOT IN (SELECT oid FROM months)
UNION ALL
SELECT 'index ' || pg_get_indexdef(indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE c.relnamespace = 'plystra'::regnamespace AND i.indrelid NOT IN (SELECT oid FROM months)
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = 'plystra'::regnamespace AND NOT t.tgisinternal AND t.tgrelid NOT IN (SELECT oid FROM months)
UNION ALL
SELECT 'relation ' || relname || ' kind=' || relkind::text FROM pg_class WHERE relnamespace = 'plystra'::regnamespace
  AND oid NOT IN (SELECT oid FROM months)
  AND oid NOT IN (SELECT indexrelid FROM pg_index WHERE indrelid IN (SELECT oid FROM months))
UNION ALL
SELECT 'policy ' || polname || ' on ' || polrelid::regclass FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
WHERE c.relnamespace = 'plystra'::regnamespace
ORDER BY 1;
