SELECT space_id, NULL::text FROM plystra.members WHERE id = $1
