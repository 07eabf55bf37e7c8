-- Plystra 1.12.0 -> 1.13.0 (ALTER EXTENSION plystra UPDATE, or plystractl migrate up).
-- No migration: 1.13.0's library shares a decision's target group between the server's backends (a tier in shared
-- memory, plystra.shared_group_cache_entries, under each Space's actor version), and plystra.actor_kept_stats()
-- reports it; this states what the function now returns. tests/catalog_check.sh proves that an updated 1.0.0 equals
-- a fresh 1.13.0.
\echo Use "ALTER EXTENSION plystra UPDATE TO '1.13.0'" to load this file. \quit

COMMENT ON FUNCTION plystra.actor_kept_stats() IS
'actor_kept_stats(): this backend''s kept actors (the User, Member, binding, Space and grants a decision reads, '
'kept per backend under each Space''s actor version, plystra.actor_versions) and the groups it took from or gave to '
'the server''s shared groups: {entries, hits, fills, reads, shared_hits, shared_fills, shared_slots, '
'version_rows_remembered, group_hits, group_fills, shared_group_slots} since the backend started; hits used an '
'actor this backend kept, shared_hits one the server''s backends share (shared memory), fills read one and kept it '
'(shared_fills: and shared it), reads read one that could not be kept; shared_slots is the shared tier''s size (0: '
'none); version_rows_remembered counts version rows taken as last read instead of probed; group_hits counts '
'decisions whose target group came from the shared groups, group_fills groups read and shared, '
'shared_group_slots their tier''s size (0: none). Bounded by plystra.actor_cache_entries, '
'plystra.shared_actor_cache_entries and plystra.shared_group_cache_entries. For the extension''s owner only (tests '
'and measurements).';
