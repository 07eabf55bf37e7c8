SELECT to_regprocedure('plystra.audit_auth_event(text, text, text, text, jsonb)') IS NOT NULL
