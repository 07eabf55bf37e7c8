-- The acting context of a transaction: who is acting (User, Member, UserMember binding, Space) and on behalf of
-- which request. Set by the trusted backend (the REST front does it for every request), read by the
-- management-audit triggers and by row-level-security policies. Stored as transaction-local settings, so it
-- ends with the transaction and a pooled connection never leaks one caller's actor to the next. The settings are
-- SUSET (registered by the library, which is preloaded): only these SECURITY DEFINER setters can change them, so
-- the EXECUTE privilege on set_actor is what decides who may say who is acting.

CREATE FUNCTION plystra.set_actor(user_id text, member_id text, user_member_id text, space_id text)
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.set_config('plystra.actor_user_id', coalesce(user_id, ''), true),
           pg_catalog.set_config('plystra.actor_member_id', coalesce(member_id, ''), true),
           pg_catalog.set_config('plystra.actor_user_member_id', coalesce(user_member_id, ''), true),
           pg_catalog.set_config('plystra.actor_space_id', coalesce(space_id, ''), true);
$$;
COMMENT ON FUNCTION plystra.set_actor(text, text, text, text) IS
'Sets the acting User, Member, UserMember binding and Space for the rest of the current transaction. '
'Management-audit rows and row-level-security lookups read it. No validation happens here: a binding that is '
'revoked, expired or cross-space simply reaches nothing when a policy asks.';

CREATE FUNCTION plystra.set_request_context(request_id text, ip text, user_agent text)
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.set_config('plystra.request_id', coalesce(request_id, ''), true),
           pg_catalog.set_config('plystra.request_ip', coalesce(ip, ''), true),
           pg_catalog.set_config('plystra.request_user_agent', coalesce(user_agent, ''), true);
$$;
COMMENT ON FUNCTION plystra.set_request_context(text, text, text) IS
'Sets the request id, client IP and user agent recorded on audit rows written later in the current transaction.';

CREATE FUNCTION plystra.current_actor()
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.jsonb_build_object(
        'user_id', nullif(pg_catalog.current_setting('plystra.actor_user_id', true), ''),
        'member_id', nullif(pg_catalog.current_setting('plystra.actor_member_id', true), ''),
        'user_member_id', nullif(pg_catalog.current_setting('plystra.actor_user_member_id', true), ''),
        'space_id', nullif(pg_catalog.current_setting('plystra.actor_space_id', true), ''));
$$;
COMMENT ON FUNCTION plystra.current_actor() IS
'The acting context set by plystra.set_actor in this transaction, as {user_id, member_id, user_member_id, '
'space_id}; each is null when unset.';
