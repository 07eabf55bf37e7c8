SELECT pg_catalog.set_config('plystra.audit_mode', $1, false)
