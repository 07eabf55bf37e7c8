SELECT plystra.api_key_permission($1, $2, $3, $4)
