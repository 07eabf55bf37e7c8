SELECT space_id, NULL::text FROM plystra.audit_logs WHERE id = $1
