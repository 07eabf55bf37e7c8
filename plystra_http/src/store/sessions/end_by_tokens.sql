UPDATE plystra.sessions SET revoked_at = now()
WHERE revoked_at IS NULL AND (access_token_hash = ANY($1) OR refresh_token_hash = ANY($2))
RETURNING id, user_id, active_space_id
