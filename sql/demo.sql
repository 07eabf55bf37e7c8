-- The Finance Reviewer demo (Plystra v1.0, migrations 001_finance_demo and 002_resource_registry), verbatim ids.
-- Load it into a database where `CREATE EXTENSION plystra` ran. Loading it twice changes nothing.
--
-- Alice and Bob both act through one Member, "Finance Reviewer", whose role `finance_approver` may approve
-- invoices anywhere under the `finance` group tree. Their passwords are `plystra-demo` (Argon2id).

BEGIN;
SELECT plystra.set_request_context('req_seed_finance_demo', NULL, 'plystra demo seed');

INSERT INTO plystra.spaces (id, name, slug, type, status) VALUES
    ('space_acme', 'Acme', 'acme', 'custom', 'active')
ON CONFLICT (id) DO NOTHING;

INSERT INTO plystra.users (id, email, status, password_hash) VALUES
    ('user_alice', 'alice@example.com', 'active',
     'argon2id$v=19$m=65536,t=3,p=2$cGx5c3RyYS1hbGljZS12MQ$ChTdO8Md0I+wjbQpSbWY+0dkIjCUtkCEQ4taCPbznTU'),
    ('user_bob', 'bob@example.com', 'active',
     'argon2id$v=19$m=65536,t=3,p=2$cGx5c3RyYS1ib2ItdjEhIQ$s4mmVEjf6+Q97qeutYCUbmlbfrB+8QT/iVc0mUCTU0s')
ON CONFLICT (id) DO NOTHING;

-- Parents before children: a child's path must extend its parent's.
INSERT INTO plystra.groups (id, space_id, parent_group_id, name, display_name, path) VALUES
    ('group_finance', 'space_acme', NULL, 'Finance', 'Finance', 'finance'),
    ('group_legal', 'space_acme', NULL, 'Legal', 'Legal', 'legal')
ON CONFLICT (id) DO NOTHING;
INSERT INTO plystra.groups (id, space_id, parent_group_id, name, display_name, path) VALUES
    ('group_finance_apac', 'space_acme', 'group_finance', 'APAC', 'APAC', 'finance.apac'),
    ('group_finance_emea', 'space_acme', 'group_finance', 'EMEA', 'EMEA', 'finance.emea'),
    ('group_legal_emea', 'space_acme', 'group_legal', 'EMEA', 'EMEA', 'legal.emea')
ON CONFLICT (id) DO NOTHING;

INSERT INTO plystra.members (id, space_id, display_name, member_type) VALUES
    ('member_finance_reviewer', 'space_acme', 'Finance Reviewer', 'human'),
    ('member_invoice_creator', 'space_acme', 'APAC Invoice Creator', 'human')
ON CONFLICT (id) DO NOTHING;

INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type, status, is_primary, expires_at) VALUES
    ('um_alice_finance_reviewer', 'user_alice', 'member_finance_reviewer', 'space_acme', 'delegate', 'active', true, NULL),
    ('um_bob_finance_reviewer', 'user_bob', 'member_finance_reviewer', 'space_acme', 'login', 'active', true, NULL),
    ('um_alice_finance_reviewer_revoked', 'user_alice', 'member_finance_reviewer', 'space_acme', 'delegate', 'revoked', false, NULL),
    ('um_alice_finance_reviewer_expired', 'user_alice', 'member_finance_reviewer', 'space_acme', 'temporary', 'active', false,
     '2020-01-01T00:00:00Z')
ON CONFLICT (id) DO NOTHING;

INSERT INTO plystra.roles (id, space_id, key, name) VALUES
    ('role_finance_approver', 'space_acme', 'finance_approver', 'Finance Approver')
ON CONFLICT (id) DO NOTHING;

INSERT INTO plystra.permissions (id, resource, action, scope) VALUES
    ('perm_invoice_approve_group_tree', 'invoice', 'approve', 'group_tree'),
    ('perm_invoice_read_self', 'invoice', 'read', 'self'),
    ('perm_invoice_read_group_tree', 'invoice', 'read', 'group_tree'),
    ('perm_invoice_create_group_tree', 'invoice', 'create', 'group_tree'),
    ('perm_invoice_reject_group_tree', 'invoice', 'reject', 'group_tree'),
    ('perm_invoice_delete_space', 'invoice', 'delete', 'space')
ON CONFLICT (id) DO NOTHING;

-- v1.0's migration 009 derives RolePermission ids from the pair.
INSERT INTO plystra.role_permissions (id, role_id, permission_id) VALUES
    ('rp_' || md5('role_finance_approver:perm_invoice_approve_group_tree'), 'role_finance_approver', 'perm_invoice_approve_group_tree')
ON CONFLICT (id) DO NOTHING;

INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id) VALUES
    ('mr_finance_reviewer_approver_finance', 'member_finance_reviewer', 'role_finance_approver', 'space_acme', 'group_finance')
ON CONFLICT (id) DO NOTHING;

INSERT INTO plystra.resource_types (id, key, display_name, description, source, metadata) VALUES
    ('rt_invoice', 'invoice', 'Invoice', 'Financial invoice requiring approval or rejection.', 'core', '{"demo": true}')
ON CONFLICT (id) DO NOTHING;

INSERT INTO plystra.resource_actions (id, resource_type_id, key, display_name, risk_level, audit_default) VALUES
    ('ra_invoice_read', 'rt_invoice', 'read', 'Read', 'low', true),
    ('ra_invoice_create', 'rt_invoice', 'create', 'Create', 'normal', true),
    ('ra_invoice_approve', 'rt_invoice', 'approve', 'Approve', 'high', true),
    ('ra_invoice_reject', 'rt_invoice', 'reject', 'Reject', 'high', true),
    ('ra_invoice_delete', 'rt_invoice', 'delete', 'Delete', 'critical', true)
ON CONFLICT (id) DO NOTHING;

INSERT INTO plystra.resource_mappings (id, resource_type_id, storage_kind, table_name, id_field, space_field, group_field,
                                       owner_member_field, visibility_field, metadata_field, status, metadata) VALUES
    ('rm_invoice_resources', 'rt_invoice', 'internal_table', 'resources', 'id', 'space_id', 'group_id',
     'owner_member_id', 'visibility', 'metadata', 'active', '{"demo": true}')
ON CONFLICT (id) DO NOTHING;

INSERT INTO plystra.resources (id, resource_type, space_id, group_id, owner_member_id, display_name, visibility, metadata) VALUES
    ('invoice_001', 'invoice', 'space_acme', 'group_finance_apac', 'member_invoice_creator', 'APAC Invoice INV-001', 'private',
     '{"number": "INV-001", "region": "APAC"}'),
    ('invoice_002', 'invoice', 'space_acme', 'group_legal_emea', 'member_invoice_creator', 'Legal EMEA Invoice INV-002', 'private',
     '{"number": "INV-002", "region": "EMEA"}')
ON CONFLICT (id) DO NOTHING;

COMMIT;
