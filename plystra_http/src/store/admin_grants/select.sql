SELECT t.* FROM plystra.admin_grants t
