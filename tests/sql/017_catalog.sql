-- Catalog checks for 002 and 003: every trigger is where it should be, functions are documented, and the
-- functions that read or write beyond the caller's privileges pin their search_path.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN;
SELECT plan(32);

CREATE TEMP TABLE audited (tbl text PRIMARY KEY, entity text NOT NULL) ON COMMIT DROP;
INSERT INTO audited VALUES
    ('users', 'user'), ('spaces', 'space'), ('groups', 'group'), ('members', 'member'), ('user_members', 'user_member'),
    ('roles', 'role'), ('permissions', 'permission'), ('member_roles', 'member_role'),
    ('role_permissions', 'role_permission'), ('resources', 'resource'), ('resource_types', 'resource_type'),
    ('resource_actions', 'resource_action'), ('resource_mappings', 'resource_mapping'),
    ('admin_grants', 'admin_grant'), ('api_keys', 'api_key');

-- Functions
SELECT has_function('plystra', 'sensitive_key', ARRAY['text'], 'plystra.sensitive_key(text) exists');
SELECT has_function('plystra', 'redact_sensitive', ARRAY['jsonb'], 'plystra.redact_sensitive(jsonb) exists');
SELECT has_function('plystra', 'tg_audit_mutation', '{}'::name[], 'plystra.tg_audit_mutation() exists');
SELECT function_returns('plystra', 'sensitive_key', ARRAY['text'], 'boolean', 'sensitive_key returns boolean');
SELECT function_returns('plystra', 'redact_sensitive', ARRAY['jsonb'], 'jsonb', 'redact_sensitive returns jsonb');
-- The functions of 002 and 003 (other files test their own).
CREATE TEMP TABLE ours (fn regprocedure PRIMARY KEY) ON COMMIT DROP;
INSERT INTO ours VALUES ('plystra.sensitive_key(text)'), ('plystra.redact_sensitive(jsonb)'),
    ('plystra.tg_immutable_columns()'), ('plystra.tg_touch_updated_at()'),
    ('plystra.raise_cross_space(text, text, text, text, text, text, text)'), ('plystra.tg_same_space()'),
    ('plystra.tg_groups_tree()'), ('plystra.tg_soft_delete_only()'), ('plystra.tg_audit_logs_append_only()'),
    ('plystra.tg_audit_mutation()');
SELECT is(ARRAY(SELECT fn::text FROM ours WHERE obj_description(fn, 'pg_proc') IS NULL ORDER BY 1),
          '{}'::text[], 'every function of 002 and 003 has a COMMENT');
SELECT is(ARRAY(SELECT fn::text FROM ours AS o JOIN pg_proc AS p ON p.oid = o.fn
                 WHERE NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false) ORDER BY 1),
          '{}'::text[], 'every function of 002 and 003 pins search_path = pg_catalog, pg_temp');
SELECT is(ARRAY(SELECT fn::text FROM ours AS o JOIN pg_proc AS p ON p.oid = o.fn
                 WHERE p.prolang <> (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')
                   AND p.prolang <> (SELECT oid FROM pg_language WHERE lanname = 'sql') ORDER BY 1),
          '{}'::text[], 'every function of 002 and 003 is SQL or plpgsql');
SELECT is_definer('plystra', 'tg_audit_mutation', '{}'::name[], 'tg_audit_mutation is SECURITY DEFINER');
SELECT is_definer('plystra', 'tg_same_space', '{}'::name[], 'tg_same_space is SECURITY DEFINER');
SELECT is_definer('plystra', 'tg_groups_tree', '{}'::name[], 'tg_groups_tree is SECURITY DEFINER');
SELECT function_lang_is('plystra', 'tg_audit_mutation', '{}'::name[], 'plpgsql', 'tg_audit_mutation is plpgsql');

-- Management audit triggers: AFTER INSERT OR UPDATE, per row, with the entity name.
SELECT is((SELECT pg_get_triggerdef(t.oid) FROM pg_trigger AS t
            WHERE t.tgrelid = ('plystra.' || a.tbl)::regclass AND t.tgname = 'trg_' || a.tbl || '_audit_mutation'),
          format('CREATE TRIGGER trg_%s_audit_mutation AFTER INSERT OR UPDATE ON plystra.%s FOR EACH ROW EXECUTE FUNCTION plystra.tg_audit_mutation(''%s'')',
                 a.tbl, a.tbl, a.entity),
          a.tbl || ': audited as ' || a.entity)
  FROM audited AS a ORDER BY a.tbl;
SELECT is(ARRAY(SELECT DISTINCT c.relname::text FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid
                 WHERE t.tgfoid = 'plystra.tg_audit_mutation()'::regprocedure ORDER BY 1),
          ARRAY(SELECT tbl FROM audited ORDER BY 1), 'no other table carries the management-audit trigger');

-- Soft-delete triggers: on exactly the fifteen Core tables, for DELETE (row) and TRUNCATE (statement).
SELECT is(ARRAY(SELECT c.relname::text || ':' || CASE WHEN t.tgtype & 1 = 1 THEN 'row' ELSE 'statement' END
                 FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid
                 WHERE t.tgfoid = 'plystra.tg_soft_delete_only()'::regprocedure ORDER BY 1),
          ARRAY(SELECT a.tbl || ':' || k FROM audited AS a, unnest(ARRAY['row', 'statement']) AS k ORDER BY 1),
          'soft-delete-only triggers are on exactly the Core tables (sessions and schema_migrations stay deletable)');

-- Nothing in 002 or 003 is disabled; the audit_logs guards fire even in replica mode.
SELECT is(ARRAY(SELECT c.relname || '.' || t.tgname FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid
                 WHERE c.relnamespace = 'plystra'::regnamespace AND NOT t.tgisinternal AND t.tgenabled = 'D'
                 ORDER BY 1),
          '{}'::text[], 'no trigger in schema plystra is disabled');
SELECT is(ARRAY(SELECT t.tgname::text || '=' || t.tgenabled::text FROM pg_trigger AS t
                 WHERE t.tgrelid = 'plystra.audit_logs'::regclass
                   AND t.tgfoid = 'plystra.tg_audit_logs_append_only()'::regprocedure ORDER BY 1),
          ARRAY['trg_audit_logs_append_only=A', 'trg_audit_logs_append_only_truncate=A'],
          'audit_logs has the two append-only triggers, both ENABLE ALWAYS');
SELECT is((SELECT pg_get_triggerdef(oid) FROM pg_trigger
            WHERE tgrelid = 'plystra.audit_logs'::regclass AND tgname = 'trg_audit_logs_append_only'),
          'CREATE TRIGGER trg_audit_logs_append_only BEFORE DELETE OR UPDATE ON plystra.audit_logs FOR EACH ROW EXECUTE FUNCTION plystra.tg_audit_logs_append_only()',
          'the append-only row trigger fires BEFORE UPDATE OR DELETE, per row');

SELECT * FROM finish();
ROLLBACK;
