SELECT space_id FROM plystra.resources WHERE resource_type = $1 AND id = $2 AND deleted_at IS NULL
