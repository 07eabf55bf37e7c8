-- The last part of the install script, run after every table and function exists.

-- The ledger: each bundled migration with the SHA-256 of the exact file the install script embeds.
INSERT INTO plystra.schema_migrations (version, name, checksum)
SELECT version, name, checksum FROM plystra.bundled_migrations();

-- Tables owned by an extension are left out of pg_dump unless registered; the ledger is not registered
-- because CREATE EXTENSION rewrites it on restore.
-- One statement each: every call updates the same pg_extension row.
SELECT pg_catalog.pg_extension_config_dump('plystra.users', '');
SELECT pg_catalog.pg_extension_config_dump('plystra.spaces', '');
SELECT pg_catalog.pg_extension_config_dump('plystra.groups', '');
SELECT pg_catalog.pg_extension_config_dump('plystra.members', '');
SELECT pg_catalog.pg_extension_config_dump('plystra.user_members', '');
SELECT pg_catalog.pg_extension_config_dump('plystra.roles', '');
SELECT pg_catalog.pg_extension_config_dump('plystra.permissions', '');
SELECT pg_catalog.pg_extension_config_dump('plystra.member_roles', '');
SELECT pg_catalog.pg_extension_config_dump('plystra.role_permissions', '');
SELECT pg_catalog.pg_extension_config_dump('plystra.resources', '');
SELECT pg_catalog.pg_extension_config_dump('plystra.resource_types', '');
SELECT pg_catalog.pg_extension_config_dump('plystra.resource_actions', '');
SELECT pg_catalog.pg_extension_config_dump('plystra.resource_mappings', '');
SELECT pg_catalog.pg_extension_config_dump('plystra.audit_logs', '');
SELECT pg_catalog.pg_extension_config_dump('plystra.admin_grants', '');
SELECT pg_catalog.pg_extension_config_dump('plystra.api_keys', '');
SELECT pg_catalog.pg_extension_config_dump('plystra.sessions', '');
SELECT pg_catalog.pg_extension_config_dump('plystra.audit_logs_seq_seq', '');
-- The chain heads go with the log: without them a restored log reads as cut short and cannot be sealed further.
SELECT pg_catalog.pg_extension_config_dump('plystra.audit_chain_heads', '');

COMMENT ON FUNCTION plystra."check"(jsonb) IS
'Decides whether the actor {user_id, member_id, user_member_id, space_id} may perform action on resource '
'(resource_type, resource_id) and returns the compact answer {allow, decision, deny_code, reason, trace_id, '
'audit_log_id, audit}. Writes one audit row according to plystra.audit_mode. The actor may be named by its User '
'alone ({user_id} or {user_id, space_id}): the binding is the only one, else the usable primary one '
'(ACTOR_BINDING_AMBIGUOUS when none can be chosen). Context Mode: "resource": {type, id, space_id, group_id, '
'group_path, owner_member_id, display_name, visibility, status, metadata} describes a resource Plystra does not '
'hold (fields not given are read from metadata through the type''s mapping; the Space defaults to the actor''s); '
'a registered resource is always Core''s. Inline grants and actor metadata are accepted only from an API key '
'through the REST front. A malformed request raises SQLSTATE 22023 naming the field; unknown actors and '
'resources are denies (ACTOR_NOT_FOUND, RESOURCE_NOT_FOUND).';

COMMENT ON FUNCTION plystra.explain(jsonb) IS
'Same decision as plystra.check (and the same audit row), returning the full decision-time trace: actor, space, '
'target, resource registry, matched candidates with their scope checks, request context, reason and audit; with '
'Context Mode, context_mode says which of actor, target and grants came inline.';

COMMENT ON FUNCTION plystra.allowed(text, text, text, text, text, text, text) IS
'plystra.allowed(user_id, member_id, user_member_id, space_id, resource_type, resource_id, action): the decision '
'as a boolean, for WHERE clauses. Audited like plystra.check; request context comes from '
'plystra.set_request_context. NULL in any argument gives NULL.';

COMMENT ON FUNCTION plystra.decide_request(text, boolean) IS
'The engine behind plystra.check (explain = false) and plystra.explain (explain = true): parses the request text, '
'loads the context, decides, and writes the audit row per plystra.audit_mode. Call check or explain instead.';

COMMENT ON FUNCTION plystra.audit_writer_active() IS
'Whether the audit writer (a background worker; needs shared_preload_libraries = ''plystra'') serves this '
'database right now. When it does, decision audit rows survive the caller''s rollback and are durable before '
'the decision returns; otherwise they are written in the caller''s transaction.';

COMMENT ON FUNCTION plystra.bundled_migrations() IS
'The migration files bundled into this build of the extension: version, name and SHA-256 checksum. The ledger '
'plystra.schema_migrations must match it.';

COMMENT ON FUNCTION plystra.actor_space_id() IS
'The Space of the current actor (plystra.set_actor) when the actor can be allowed anything: every part of the '
'tuple exists, is active and unexpired, and the binding joins exactly this User and Member in this Space. NULL '
'otherwise. STABLE: wrap it in (SELECT ...) in a policy so it runs once per statement.';

COMMENT ON FUNCTION plystra.reaches_space(text, text) IS
'reaches_space(resource_type, action): whether a space-scope grant lets the current actor act on every resource '
'of its Space. STABLE, no audit row.';

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

COMMENT ON FUNCTION plystra.reachable_owner(text, text) IS
'reachable_owner(resource_type, action): the current actor''s Member id when a self-scope grant lets it act on '
'resources it owns; NULL otherwise. STABLE, no audit row.';

COMMENT ON FUNCTION plystra.lookup_resources(text, text) IS
'lookup_resources(resource_type, action): the ids of mirrored resources (plystra.resources) the current actor may '
'act on, in id order. STABLE, no audit row.';

COMMENT ON FUNCTION plystra.lookup_subjects(text, text, text, text, integer) IS
'lookup_subjects(resource_type, resource_id, action, after => NULL, max_rows => 100): who can? The bindings '
'(user_member_id, member_id, user_id) that plystra.check allows to perform action on the mirrored resource, in '
'binding-id order after `after`, at most max_rows (1 to 1000), each with the grants that let it (member_role_id, '
'role, permission, scope, anchor group). Decided by the same engine as check; no audit row. NULL '
'resource_type, resource_id or action, or max_rows outside 1..1000, raise 22023. For administration backends only.';

COMMENT ON FUNCTION plystra.resolve_actor(text, text) IS
'resolve_actor(user_id, space_id => NULL): the binding an actor named by its User alone acts through, by the rule '
'of plystra.check: among the User''s not-deleted bindings (in space_id when given), the only one, else the usable '
'primary one, else the only usable one. Returns {user_id, member_id, user_member_id, space_id}, or {deny_code} '
'(ACTOR_NOT_FOUND, ACTOR_BINDING_AMBIGUOUS). A NULL or empty user_id raises 22023. For administration backends only.';

COMMENT ON FUNCTION plystra.allowed_resource(text, text, text) IS
'allowed_resource(resource_type, resource_id, action): the decision of plystra.check for the current actor on a '
'mirrored resource, as a boolean, without an audit row. STABLE.';

COMMENT ON FUNCTION plystra.allowed_row(text, text, text, text, text) IS
'allowed_row(resource_type, action, space_id, group_id, owner_member_id): may the current actor act on a row the '
'application owns (not mirrored), in that Space, group and owner? Same rules as plystra.check, no audit row. '
'Meant for INSERT/UPDATE WITH CHECK policies; for SELECT policies prefer the set-based functions.';

COMMENT ON FUNCTION plystra.allowed_row_by_path(text, text, text, text, text) IS
'allowed_row_by_path(resource_type, action, space_id, group_path, owner_member_id): allowed_row for applications '
'that store the group path instead of the group id.';

COMMENT ON FUNCTION plystra.admin_permission(text, text, text, text) IS
'admin_permission(user_id, permission, space_id, group_id): whether the user''s active AdminGrants hold a Core '
'management permission (e.g. groups:manage) on the instance (both NULL), a Space, or a Group (its Space is derived). '
'Returns {allowed, grant_id, level, permission_key} or {allowed: false, reason}. Levels: instance_super_admin '
'(everything), instance_admin, space_admin, group_admin (the group and below, on label boundaries); keys match as '
'*, equal, domain:*, or domain:manage for any action of the domain.';

COMMENT ON FUNCTION plystra.api_key_permission(text, text, text, text) IS
'api_key_permission(api_key_id, permission, space_id, group_id): the same question for an active API key (levels '
'instance, space, group; its permission_keys). The caller authenticates the key (HMAC) first.';

-- Last: who may call what (PUBLIC nothing; plystra_app and plystra_admin their documented sets).
SELECT plystra.apply_privileges();

COMMENT ON FUNCTION plystra.replay(text, boolean) IS
'replay(audit_log_id, audit => false): the audited decision audit_log_id asked again against today''s data. The '
'request is the one the row''s decision-time trace records (the binding that acted, the target, the action); it is '
'decided by the engine of plystra.explain. Returns {audit_log_id, decided_at, replayed_at, request, then: '
'{decision, deny_code, reason, trace}, now: {decision, deny_code, reason, trace, audit_log_id}, decision_changed, '
'deny_code_changed, changes: [{kind, id, change, then, now}]}: each user, binding, member, space, resource, group, '
'resource_type, action, mapping or grant that differs between the two traces. Writes no audit row unless audit is '
'true (then per plystra.audit_mode, as a decision). NULL when no row has that id; a NULL or malformed id, or a '
'row that is not a replayable decision (a management or login row, inline actor or grants), raises 22023. For '
'administration backends only.';

COMMENT ON FUNCTION plystra.simulate(jsonb) IS
'simulate(request): what plystra.explain would answer for request (the same decision, deny code and full trace), '
'without acting on it: no audit row is written, whatever plystra.audit_mode says, and the answer carries '
'"simulated": true (its audit.audit_log_id is null). For an administrator asking how a binding would be answered '
'(the REST front''s POST /api/v1/spaces/{space_id}/authz/simulate). A malformed request raises SQLSTATE 22023 '
'naming the field; inline grants and actor metadata are refused as in plystra.explain. For administration '
'backends only.';

COMMENT ON FUNCTION plystra.audit_writer_stats() IS
'The audit writer''s queue (needs shared_preload_libraries = ''plystra''): {active (a writer serves this '
'database), preloaded, writer_starts, transactions, rows_refused, lanes: {single, bulk: {queued_records, '
'queued_bytes, capacity_bytes, rows_committed}}}. single holds one decision''s row, bulk the rows of requests of '
'many decisions; queued_* is what waits in the lane''s ring now, the rest count from the server''s start. In a '
'database the writer does not serve, only {active: false, preloaded}: the counters are another database''s. '
'Granted to plystra_admin (the REST front exports it on /metrics).';

COMMENT ON FUNCTION plystra.mark_kept_rows_written() IS
'Marks this transaction as having written rows the backends keep: its decisions read the kept tables from then on '
'(until the transaction ends). Called by the trigger plystra.tg_kept_rows_written; granted to no role.';

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
