SELECT id FROM plystra.resource_types WHERE key = $1
