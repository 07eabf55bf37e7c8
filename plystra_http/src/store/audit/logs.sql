SELECT id, seq, space_id, actor_user_id, actor_member_id, actor_user_member_id, action, resource_type,
       resource_id, decision, deny_code, request_id, ip_address, user_agent, created_at
FROM plystra.audit_logs
