\set r random(1, 2)
SELECT plystra.allowed('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme', 'invoice', CASE :r::int WHEN 1 THEN 'invoice_001' ELSE 'invoice_002' END, 'approve');
