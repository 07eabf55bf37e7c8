SELECT id, email, status, password_hash FROM plystra.users WHERE lower(email) = $1 AND deleted_at IS NULL
