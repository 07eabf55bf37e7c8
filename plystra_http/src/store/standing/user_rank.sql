SELECT coalesce(max(CASE g.level WHEN 'instance_super_admin' THEN 4 WHEN 'instance_admin' THEN 3
                                 WHEN 'space_admin' THEN 2 WHEN 'group_admin' THEN 1 ELSE 0 END), 0)::int
FROM plystra.active_admin_grants g
WHERE g.user_id = $1
