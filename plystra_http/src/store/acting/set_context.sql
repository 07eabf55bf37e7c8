SELECT plystra.set_actor($1, $2, $3, $4), plystra.set_request_context($5, $6, $7),
       pg_catalog.set_config('plystra.server_request_id', $8, true),
       CASE WHEN $9::text IS NOT NULL THEN plystra.set_credential($9, $10, $11, $12, $13) END,
       plystra.set_audit_space($14)
