SELECT t.* FROM plystra.admin_grants t
WHERE t.user_id = $1 AND t.id IN (SELECT id FROM plystra.active_admin_grants)
ORDER BY t.id
