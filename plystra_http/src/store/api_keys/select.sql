SELECT t.* FROM plystra.api_keys t
