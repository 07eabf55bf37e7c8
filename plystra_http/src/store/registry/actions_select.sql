SELECT t.*, rt.key AS resource_type
FROM plystra.resource_actions t
JOIN plystra.resource_types rt ON rt.id = t.resource_type_id
