SELECT space_id, NULL::text FROM plystra.user_members WHERE id = $1
