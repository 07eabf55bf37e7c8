SELECT plystra.replay($1, $2)
