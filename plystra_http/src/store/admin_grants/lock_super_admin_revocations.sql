SELECT 1 FROM plystra.admin_grants WHERE level = 'instance_super_admin' ORDER BY id FOR UPDATE
