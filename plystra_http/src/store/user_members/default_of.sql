SELECT id FROM plystra.user_members WHERE id = ANY($1) ORDER BY is_primary DESC, created_at, id LIMIT 1
