SELECT space_id FROM plystra.groups WHERE id = $1 AND deleted_at IS NULL
