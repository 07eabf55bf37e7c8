SELECT 1 FROM plystra.user_members WHERE user_id = $1 AND space_id = $2 AND deleted_at IS NULL LIMIT 1
