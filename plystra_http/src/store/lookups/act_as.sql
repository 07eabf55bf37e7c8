SELECT plystra.set_actor($1, $2, $3, $4)::text
