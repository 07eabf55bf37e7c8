-- The decision API's SQL faces: C-language entry points into the extension (plystra_pg/src/api.rs), so that no
-- SQL function body is parsed and planned again in every statement that decides. Both are SECURITY DEFINER so that
-- a role may be given check (plystra_app) without explain, and neither reads a table through the caller's rights.

CREATE FUNCTION plystra."check"(request jsonb)
RETURNS jsonb
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'plystra_check_jsonb';

CREATE FUNCTION plystra.explain(request jsonb)
RETURNS jsonb
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'plystra_explain_jsonb';

-- A decision asked without acting on it (plystra_pg/src/api.rs): explain's trace, never an audit row. Only
-- plystra_admin may call it (plystra.apply_privileges): it answers about any binding.
CREATE FUNCTION plystra.simulate(request jsonb)
RETURNS jsonb
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'plystra_simulate_jsonb';

-- Many decisions of one actor in one call (plystra_pg/src/api.rs); plystra_app may call it, as check.
CREATE FUNCTION plystra.check_batch(request jsonb)
RETURNS jsonb
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'plystra_check_batch_jsonb';

COMMENT ON FUNCTION plystra.check_batch(jsonb) IS
'Many decisions for one actor in one call: {"actor": {...as check...}, "items": [{"resource_type", "resource_id", '
'"action"} or {"resource": {"type", "id", ...inline fields as check}, "action"}, ...], "request": {request_id, ip, '
'user_agent}} returns '
'{"results": [...]}, for each item in order exactly the compact answer of plystra.check. One snapshot and one load '
'of the actor for the whole batch; each item is its own decision with its own trace id and, per '
'plystra.audit_mode, its own audit row (the row plystra.check would write). 1 to 1000 items; a malformed request '
'raises SQLSTATE 22023 naming the field (items[3].action).';

-- The REST front's authz routes in one statement (plystra_pg/src/gate.rs). Only plystra_admin may call it
-- (plystra.apply_privileges): it answers as any credential whose token HMAC the caller knows.
CREATE FUNCTION plystra.decide_with_credential(credential jsonb, permission text, request jsonb, explain boolean,
                                               authorize_only boolean)
RETURNS jsonb
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'plystra_decide_with_credential';

COMMENT ON FUNCTION plystra.decide_with_credential(jsonb, text, jsonb, boolean, boolean) IS
'The REST front''s authz check and explain in one call. credential is {"session_token_hashes": [...]} or '
'{"api_key_id": ..., "api_key_hashes": [...]} (the HMACs of the presented token under the front''s secrets). '
'In order: the credential must be a live session or an active API key, else {"outcome": "unauthenticated"}; it '
'must hold permission on every scope the request touches (the resource''s Space and Group, the actor''s Space, '
'binding and Member; an id that names nothing needs the instance), else {"outcome": "forbidden", "code": '
'"ADMIN_PERMISSION_REQUIRED"}; with authorize_only the answer is then {"outcome": "authorized"}; a session acts '
'through its active binding or must name one of its usable bindings, else "ACTIVE_MEMBER_REQUIRED"; then the '
'decision of plystra.check (or plystra.explain when explain), audited per plystra.audit_mode, as '
'{"outcome": "decided", "decision": ...}. Inline context (Context Mode) needs an API key (a session gets '
'"INLINE_CONTEXT_REQUIRES_API_KEY"), and every Space and Group it names (inline target, grants and their anchors) '
'is a scope the key must hold; an actor named by its User alone is resolved in the request''s Space, else in a '
'scoped key''s Space. A request with "items" is a batch (plystra.check_batch''s document): '
'the credential must hold permission on every scope any of its items would touch asked alone, and the decision '
'is {"results": [...]}. Every answer but unauthenticated names the credential. A malformed argument or request '
'raises 22023.';

-- Which presented credential is live (plystra_pg/src/credential.rs): the REST front asks it for every admin route.
CREATE FUNCTION plystra.authenticate(credential jsonb)
RETURNS jsonb
LANGUAGE c STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'plystra_authenticate';

COMMENT ON FUNCTION plystra.authenticate(jsonb) IS
'The live credential a presented token stands for, or NULL. credential is {"session_token_hashes": [...]} or '
'{"api_key_id": ..., "api_key_hashes": [...]}: the HMACs of the token under the front''s current and previous '
'secrets (the database keeps only HMACs). A session is live when not revoked, not expired and its user active; '
'an API key when active, not revoked, not deleted and not expired. Answers {"kind": "session", session_id, '
'user_id, email, user_status, active_space_id, active_member_id, active_user_member_id, expires_at, '
'refresh_expires_at} or {"kind": "api_key", api_key_id, name, level, space_id, group_id, permission_keys, '
'created_by_user_id, created_by_member_id}. A malformed argument raises 22023. For administration backends only.';
