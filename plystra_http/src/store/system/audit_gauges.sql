SELECT count(*), count(*) FILTER (WHERE created_at < statement_timestamp() - plystra.audit_unsealed_alarm()),
       plystra.audit_writer_stats()
FROM plystra.audit_logs WHERE row_hash IS NULL
