SELECT plystra.audit_auth_event($1, $2, $3, $4, $5::jsonb)
