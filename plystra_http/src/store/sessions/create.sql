INSERT INTO plystra.sessions (id, user_id, active_space_id, active_member_id, active_user_member_id,
    access_token_hash, refresh_token_hash, expires_at, refresh_expires_at, ip, user_agent)
VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8), now() + make_interval(secs => $9), $10, $11)
RETURNING expires_at, refresh_expires_at
