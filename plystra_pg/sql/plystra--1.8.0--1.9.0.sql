-- Plystra 1.8.0 -> 1.9.0 (ALTER EXTENSION plystra UPDATE, or plystractl migrate up).
-- No migration: 1.9.0's library shares the actors a decision reads between the server's backends (a tier in shared
-- memory, plystra.shared_actor_cache_entries), and plystra.actor_kept_stats() reports it; this states what the
-- function now returns. tests/catalog_check.sh proves that an updated 1.0.0 equals a fresh 1.9.0.
\echo Use "ALTER EXTENSION plystra UPDATE TO '1.9.0'" to load this file. \quit

COMMENT ON FUNCTION plystra.actor_kept_stats() IS
'actor_kept_stats(): this backend''s kept actors (the User, Member, binding, Space and grants a decision reads, '
'kept per backend under each Space''s actor version, plystra.actor_versions): {entries, hits, fills, reads, '
'shared_hits, shared_fills, shared_slots} since the backend started; hits used an actor this backend kept, '
'shared_hits one the server''s backends share (shared memory), fills read one and kept it (shared_fills: and '
'shared it), reads read one that could not be kept; shared_slots is the shared tier''s size (0: none). '
'Bounded by plystra.actor_cache_entries and plystra.shared_actor_cache_entries. For the extension''s owner only '
'(tests and measurements).';
