SELECT t.* FROM plystra.members t
