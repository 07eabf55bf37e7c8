SELECT plystra.set_request_context($1, $2, $3), pg_catalog.set_config('plystra.server_request_id', $4, true)
