SELECT s.id FROM plystra.sessions s JOIN plystra.users u ON u.id = s.user_id
WHERE s.refresh_token_hash = ANY($1) AND s.revoked_at IS NULL AND s.refresh_expires_at > now()
  AND u.status = 'active' AND u.deleted_at IS NULL
