SELECT (SELECT count(*) FROM plystra.spaces WHERE deleted_at IS NULL),
       (SELECT count(*) FROM plystra.users WHERE deleted_at IS NULL),
       (SELECT count(*) FROM plystra.members WHERE deleted_at IS NULL),
       (SELECT count(*) FROM plystra.groups WHERE deleted_at IS NULL),
       (SELECT count(*) FROM plystra.roles WHERE deleted_at IS NULL),
       (SELECT count(*) FROM plystra.permissions WHERE deleted_at IS NULL),
       (SELECT count(*) FROM plystra.resources WHERE deleted_at IS NULL),
       (SELECT count(*) FROM plystra.resource_types),
       (SELECT count(*) FROM plystra.audit_logs)
