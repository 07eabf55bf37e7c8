SELECT t.* FROM plystra.spaces t
