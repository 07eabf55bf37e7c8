SELECT t.* FROM plystra.roles t
