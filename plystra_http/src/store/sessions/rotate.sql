UPDATE plystra.sessions s SET access_token_hash = $2, refresh_token_hash = $3,
    expires_at = now() + make_interval(secs => $4), refresh_expires_at = now() + make_interval(secs => $5)
FROM plystra.users u
WHERE s.id = $6 AND s.refresh_token_hash = ANY($1) AND s.revoked_at IS NULL
  AND s.refresh_expires_at > now()
  AND u.id = s.user_id AND u.status = 'active' AND u.deleted_at IS NULL
RETURNING s.expires_at, s.refresh_expires_at, s.id, s.user_id, s.active_space_id
