SELECT id, name FROM plystra.spaces WHERE id = $1
