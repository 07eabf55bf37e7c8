SELECT space_id, id FROM plystra.groups WHERE id = $1
