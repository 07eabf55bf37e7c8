\set r random(1, 4)
SELECT plystra.check(CASE (:r)::int
  WHEN 1 THEN '{"actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer", "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"}, "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"}'::jsonb
  WHEN 2 THEN '{"actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer", "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"}, "resource_type": "invoice", "resource_id": "invoice_002", "action": "approve"}'::jsonb
  WHEN 3 THEN '{"actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer", "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"}, "resource_type": "invoice", "resource_id": "invoice_001", "action": "read"}'::jsonb
  ELSE '{"actor": {"user_id": "user_bob", "member_id": "member_finance_reviewer", "user_member_id": "um_bob_finance_reviewer", "space_id": "space_acme"}, "resource_type": "invoice", "resource_id": "invoice_001", "action": "delete"}'::jsonb END);
