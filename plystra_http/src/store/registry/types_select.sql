SELECT t.* FROM plystra.resource_types t
