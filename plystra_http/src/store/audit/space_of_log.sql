SELECT space_id FROM plystra.audit_logs WHERE id = $1
