SELECT count(*) FROM plystra.active_admin_grants g JOIN plystra.users u ON u.id = g.user_id
WHERE g.id <> $1 AND g.level = 'instance_super_admin'
  AND u.status = 'active' AND u.deleted_at IS NULL
