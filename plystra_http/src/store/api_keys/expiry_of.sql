SELECT expires_at FROM plystra.api_keys WHERE id = $1
