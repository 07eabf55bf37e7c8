SELECT t.* FROM plystra.users t
