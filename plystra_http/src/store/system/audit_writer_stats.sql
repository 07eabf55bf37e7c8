SELECT plystra.audit_writer_stats()
