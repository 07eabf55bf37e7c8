SELECT space_id, group_id FROM plystra.api_keys WHERE id = $1
