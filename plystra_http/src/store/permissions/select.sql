SELECT t.* FROM plystra.permissions t
