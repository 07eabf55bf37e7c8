SELECT * FROM plystra.verify_audit_chain($1)
