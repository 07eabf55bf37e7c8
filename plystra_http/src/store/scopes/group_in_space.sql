SELECT 1 FROM plystra.groups WHERE id = $1 AND space_id = $2
