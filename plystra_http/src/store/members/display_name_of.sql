SELECT id, display_name FROM plystra.members WHERE id = $1
