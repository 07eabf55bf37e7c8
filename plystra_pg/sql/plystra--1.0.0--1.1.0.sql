-- Plystra 1.0.0 -> 1.1.0 (ALTER EXTENSION plystra UPDATE, or plystractl migrate up).
-- Adds the two policy arms that let a row-level-security policy be served by indexes (reachable_space,
-- reachable_group_ids) and refreshes the comments that point to them. No table changes: the migration ledger
-- is unchanged. tests/upgrade_check.sh proves that an updated 1.0.0 equals a fresh 1.1.0.
\echo Use "ALTER EXTENSION plystra UPDATE TO '1.1.0'" to load this file. \quit

CREATE FUNCTION reachable_space(resource_type text, action text) RETURNS text
STRICT STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'reachable_space_wrapper';

CREATE FUNCTION reachable_group_ids(resource_type text, action text) RETURNS text[]
STRICT STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'reachable_group_ids_wrapper';

COMMENT ON FUNCTION plystra.reachable_space(text, text) IS
'reachable_space(resource_type, action): the current actor''s Space when a space-scope grant lets it act on every '
'resource of it; NULL otherwise. A policy''s whole-Space arm: space_id BETWEEN (SELECT plystra.reachable_space(...)) '
'AND (SELECT plystra.reachable_space(...)), indexable on the Space column (BETWEEN, not =, keeps the planner''s '
'estimate small, so that it keeps the index-driven plan for the other arms). STABLE, no audit row.';

COMMENT ON FUNCTION plystra.reachable_groups(text, text) IS
'reachable_groups(resource_type, action): the ids of the groups the current actor''s group and group_tree grants '
'reach (anchors, and every group below a group_tree anchor on label boundaries), one row each; a space-scope '
'grant is plystra.reachable_space. For policies use plystra.reachable_group_ids. STABLE, no audit row.';

COMMENT ON FUNCTION plystra.reachable_group_ids(text, text) IS
'reachable_group_ids(resource_type, action): a policy''s group arm, as an array for group_id = ANY ((SELECT '
'plystra.reachable_group_ids(...))::text[]) (the cast makes ANY take the array, not a subquery): the groups plystra.reachable_groups returns, or none when a space-scope grant '
'reaches the whole Space (the whole-Space arm then covers every group). Computed once per statement; an index on '
'(space, group) serves it. STABLE, no audit row.';
