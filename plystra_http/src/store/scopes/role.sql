SELECT space_id, NULL::text FROM plystra.roles WHERE id = $1
