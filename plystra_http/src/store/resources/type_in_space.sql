SELECT resource_type FROM plystra.resources WHERE id = $1 AND space_id = $2 AND deleted_at IS NULL
