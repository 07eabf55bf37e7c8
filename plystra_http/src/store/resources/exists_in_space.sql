SELECT 1 FROM plystra.resources WHERE id = $1 AND resource_type = $2 AND space_id = $3 AND deleted_at IS NULL
