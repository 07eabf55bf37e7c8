SELECT id, seq, space_id, actor_user_id, actor_member_id, actor_user_member_id, action, resource_type,
       resource_id, decision, deny_code, request_id, ip_address, user_agent, created_at, trace
FROM plystra.audit_logs WHERE id = $1 AND ($2::text IS NULL OR space_id = $2)
