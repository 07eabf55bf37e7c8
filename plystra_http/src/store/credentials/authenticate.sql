SELECT plystra.authenticate($1)
