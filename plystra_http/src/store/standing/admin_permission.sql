SELECT plystra.admin_permission($1, $2, $3, $4)
