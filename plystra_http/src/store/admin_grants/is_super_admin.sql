SELECT EXISTS (SELECT 1 FROM plystra.active_admin_grants WHERE user_id = $1 AND level = 'instance_super_admin')
