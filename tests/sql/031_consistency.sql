-- Same-transaction consistency ("new enemy" free): a decision sees exactly its transaction's snapshot.
-- A second session (dblink) proves that a concurrent, uncommitted grant is invisible until it commits.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS dblink;
BEGIN;
SELECT plan(6);

CREATE FUNCTION pg_temp.code(u text, m text, um text, res text, act text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(plystra.check(jsonb_build_object(
        'actor', jsonb_build_object('user_id', u, 'member_id', m, 'user_member_id', um, 'space_id', 'space_acme'),
        'resource_type', 'invoice', 'resource_id', res, 'action', act))->>'deny_code', 'ALLOW')
$$;

-- Revoke, then check, in one transaction.
SAVEPOINT s;
UPDATE plystra.member_roles SET status = 'revoked' WHERE id = 'mr_finance_reviewer_approver_finance';
SELECT is(pg_temp.code('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'invoice_001', 'approve'),
          'NO_MATCHING_PERMISSION', 'a grant revoked earlier in the transaction already denies');
ROLLBACK TO SAVEPOINT s;

-- Grant, then check, in one transaction.
SAVEPOINT s;
INSERT INTO plystra.role_permissions (id, role_id, permission_id)
VALUES ('rp_consistency_reject', 'role_finance_approver', 'perm_invoice_reject_group_tree');
SELECT is(pg_temp.code('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'invoice_001', 'reject'),
          'ALLOW', 'a grant added earlier in the transaction already allows');
ROLLBACK TO SAVEPOINT s;

-- A concurrent transaction: its own Member and binding (committed), then a grant it has not committed yet.
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=%s',
    split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_database(), current_user));
SELECT dblink_exec('other', $$
    INSERT INTO plystra.members (id, space_id, display_name) VALUES ('member_consistency', 'space_acme', 'Consistency')
    ON CONFLICT (id) DO NOTHING;
    INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type)
    VALUES ('um_bob_consistency', 'user_bob', 'member_consistency', 'space_acme', 'login') ON CONFLICT (id) DO NOTHING;
    UPDATE plystra.member_roles SET status = 'revoked' WHERE id = 'mr_consistency_approver' AND status <> 'revoked';$$);
SELECT dblink_exec('other', 'BEGIN');
SELECT dblink_exec('other', $$
    INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id)
    VALUES ('mr_consistency_approver', 'member_consistency', 'role_finance_approver', 'space_acme', 'group_finance')
    ON CONFLICT (id) DO UPDATE SET status = 'active'$$);
SELECT is(pg_temp.code('user_bob', 'member_consistency', 'um_bob_consistency', 'invoice_001', 'approve'),
          'NO_MATCHING_PERMISSION', 'a concurrent, uncommitted grant is invisible');
SELECT is(plystra.allowed('user_bob', 'member_consistency', 'um_bob_consistency', 'space_acme', 'invoice', 'invoice_001', 'approve'),
          false, '... to the typed form as well');
SELECT dblink_exec('other', 'COMMIT');
SELECT is(pg_temp.code('user_bob', 'member_consistency', 'um_bob_consistency', 'invoice_001', 'approve'),
          'ALLOW', 'once committed, the next statement sees it');
-- Leave the shared database as it was: the grant is revoked again (soft, as everything here).
SELECT dblink_exec('other', $$UPDATE plystra.member_roles SET status = 'revoked' WHERE id = 'mr_consistency_approver'$$);
SELECT is(pg_temp.code('user_bob', 'member_consistency', 'um_bob_consistency', 'invoice_001', 'approve'),
          'NO_MATCHING_PERMISSION', 'and a concurrent revocation is seen once committed');
SELECT dblink_disconnect('other');

SELECT * FROM finish();
ROLLBACK;
