SELECT space_id, group_id FROM plystra.resources WHERE resource_type = $1 AND id = $2
