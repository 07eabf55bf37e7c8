SELECT t.*, r.space_id AS space_id, r.key AS role_key, p.resource AS resource, p.action AS action, p.scope AS scope
FROM plystra.role_permissions t
LEFT JOIN plystra.roles r ON r.id = t.role_id
LEFT JOIN plystra.permissions p ON p.id = t.permission_id
