SELECT space_id, group_id FROM plystra.admin_grants WHERE id = $1
