SELECT 1 FROM plystra.spaces WHERE id = $1 AND deleted_at IS NULL
