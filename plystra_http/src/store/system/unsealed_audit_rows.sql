SELECT count(*), count(*) FILTER (WHERE created_at < statement_timestamp() - plystra.audit_unsealed_alarm())
FROM plystra.audit_logs WHERE row_hash IS NULL
