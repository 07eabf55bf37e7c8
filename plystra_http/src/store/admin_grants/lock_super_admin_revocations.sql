SELECT pg_advisory_xact_lock(hashtext('plystra.admin_grants.super_admin'))
