SELECT plystra.simulate($1)
