SELECT t.* FROM plystra.groups t
