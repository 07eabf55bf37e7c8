SELECT plystra.resolve_actor($1, $2)
