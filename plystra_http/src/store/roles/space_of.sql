SELECT space_id FROM plystra.roles WHERE id = $1
