-- Plystra Core schema, version 001: every Core table, its columns, defaults, keys and indexes.
--
-- Released migration files are immutable: the ledger (plystra.schema_migrations) keeps the SHA-256 of each
-- file, and `plystractl migrate verify` fails when an applied file changes. Change the schema with a new file.
--
-- Conventions (reference 1.12): ids are non-empty text and never change; `status` defaults to 'active';
-- `metadata` is a JSON object defaulting to '{}'; `created_at`/`updated_at` default to now(); entities
-- that audit rows refer to have `deleted_at` (soft delete only, enforced in 002).

CREATE TABLE plystra.schema_migrations (
    version           text PRIMARY KEY,
    name              text NOT NULL,
    checksum          text NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),
    applied_at        timestamptz NOT NULL DEFAULT now(),
    execution_time_ms integer NOT NULL DEFAULT 0
);

CREATE TABLE plystra.users (
    id                  text PRIMARY KEY CONSTRAINT users_id_format CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
    email               text NOT NULL CONSTRAINT users_email_format CHECK (email ~ '^[^@\s]+@[^@\s]+$' AND length(email) <= 320),
    username            text,
    phone               text,
    status              text NOT NULL DEFAULT 'active' CONSTRAINT users_status_format CHECK (status ~ '^[a-z][a-z0-9_]{0,31}$'),
    password_hash       text,
    password_changed_at timestamptz,
    last_login_at       timestamptz,
    metadata            jsonb NOT NULL DEFAULT '{}' CONSTRAINT users_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz
);
-- Emails compare case-insensitively at login, so uniqueness does too.
CREATE UNIQUE INDEX users_email_key ON plystra.users (lower(email));

CREATE TABLE plystra.spaces (
    id         text PRIMARY KEY CONSTRAINT spaces_id_format CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
    name       text NOT NULL CONSTRAINT spaces_name_nonempty CHECK (name <> ''),
    slug       text,
    type       text NOT NULL DEFAULT 'custom',
    status     text NOT NULL DEFAULT 'active' CONSTRAINT spaces_status_format CHECK (status ~ '^[a-z][a-z0-9_]{0,31}$'),
    metadata   jsonb NOT NULL DEFAULT '{}' CONSTRAINT spaces_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE UNIQUE INDEX spaces_slug_key ON plystra.spaces (slug) WHERE slug IS NOT NULL AND slug <> '';

CREATE TABLE plystra.groups (
    id              text PRIMARY KEY CONSTRAINT groups_id_format CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
    space_id        text NOT NULL REFERENCES plystra.spaces (id),
    parent_group_id text REFERENCES plystra.groups (id),
    name            text NOT NULL,
    display_name    text,
    -- A materialized path of lowercase labels; immutable, and a child's path extends its parent's (002).
    path            text NOT NULL CONSTRAINT groups_path_format
                        CHECK (path ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$' AND length(path) <= 1024),
    -- Derived from the path, never supplied.
    depth           integer GENERATED ALWAYS AS (length(path) - length(replace(path, '.', ''))) STORED,
    sort_order      integer NOT NULL DEFAULT 1000,
    status          text NOT NULL DEFAULT 'active' CONSTRAINT groups_status_format CHECK (status ~ '^[a-z][a-z0-9_]{0,31}$'),
    metadata        jsonb NOT NULL DEFAULT '{}' CONSTRAINT groups_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz,
    CONSTRAINT groups_space_path_key UNIQUE (space_id, path)
);
CREATE INDEX groups_parent_group_id_idx ON plystra.groups (parent_group_id);
-- Prefix scans of a subtree (set-based group_tree lookups) use this index.
CREATE INDEX groups_space_path_pattern_idx ON plystra.groups (space_id, path text_pattern_ops);

CREATE TABLE plystra.members (
    id           text PRIMARY KEY CONSTRAINT members_id_format CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
    space_id     text NOT NULL REFERENCES plystra.spaces (id),
    display_name text NOT NULL DEFAULT '',
    member_type  text NOT NULL DEFAULT 'human',
    status       text NOT NULL DEFAULT 'active' CONSTRAINT members_status_format CHECK (status ~ '^[a-z][a-z0-9_]{0,31}$'),
    metadata     jsonb NOT NULL DEFAULT '{}' CONSTRAINT members_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz
);
CREATE INDEX members_space_id_idx ON plystra.members (space_id);

CREATE TABLE plystra.user_members (
    id                  text PRIMARY KEY CONSTRAINT user_members_id_format CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
    user_id             text NOT NULL REFERENCES plystra.users (id),
    member_id           text NOT NULL REFERENCES plystra.members (id),
    space_id            text NOT NULL REFERENCES plystra.spaces (id),
    relation_type       text NOT NULL CONSTRAINT user_members_relation_type_nonempty CHECK (relation_type <> ''),
    status              text NOT NULL DEFAULT 'active' CONSTRAINT user_members_status_format CHECK (status ~ '^[a-z][a-z0-9_]{0,31}$'),
    is_primary          boolean NOT NULL DEFAULT false,
    expires_at          timestamptz,
    linked_by_member_id text REFERENCES plystra.members (id),
    linked_at           timestamptz DEFAULT now(),
    revoked_at          timestamptz,
    revoked_reason      text,
    metadata            jsonb NOT NULL DEFAULT '{}' CONSTRAINT user_members_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz
);
CREATE INDEX user_members_user_id_idx ON plystra.user_members (user_id);
CREATE INDEX user_members_member_id_idx ON plystra.user_members (member_id);
CREATE INDEX user_members_space_id_idx ON plystra.user_members (space_id);
CREATE INDEX user_members_status_idx ON plystra.user_members (status);
CREATE INDEX user_members_expires_at_idx ON plystra.user_members (expires_at);

CREATE TABLE plystra.roles (
    id          text PRIMARY KEY CONSTRAINT roles_id_format CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
    space_id    text NOT NULL REFERENCES plystra.spaces (id),
    key         text NOT NULL CONSTRAINT roles_key_nonempty CHECK (key <> ''),
    name        text NOT NULL,
    description text,
    status      text NOT NULL DEFAULT 'active' CONSTRAINT roles_status_format CHECK (status ~ '^[a-z][a-z0-9_]{0,31}$'),
    metadata    jsonb NOT NULL DEFAULT '{}' CONSTRAINT roles_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    CONSTRAINT roles_space_key_key UNIQUE (space_id, key)
);

-- Permissions are instance-wide (not space-scoped). The scope lives here, the anchor on the MemberRole grant.
CREATE TABLE plystra.permissions (
    id          text PRIMARY KEY CONSTRAINT permissions_id_format CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
    resource    text NOT NULL CONSTRAINT permissions_resource_nonempty CHECK (resource <> ''),
    action      text NOT NULL CONSTRAINT permissions_action_nonempty CHECK (action <> ''),
    scope       text NOT NULL CONSTRAINT permissions_scope_known CHECK (scope IN ('self', 'group', 'group_tree', 'space', 'global')),
    description text,
    status      text NOT NULL DEFAULT 'active' CONSTRAINT permissions_status_format CHECK (status ~ '^[a-z][a-z0-9_]{0,31}$'),
    metadata    jsonb NOT NULL DEFAULT '{}' CONSTRAINT permissions_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    CONSTRAINT permissions_resource_action_scope_key UNIQUE (resource, action, scope)
);

CREATE TABLE plystra.member_roles (
    id                    text PRIMARY KEY CONSTRAINT member_roles_id_format CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
    member_id             text NOT NULL REFERENCES plystra.members (id),
    role_id               text NOT NULL REFERENCES plystra.roles (id),
    space_id              text NOT NULL REFERENCES plystra.spaces (id),
    scope_anchor_group_id text REFERENCES plystra.groups (id),
    status                text NOT NULL DEFAULT 'active' CONSTRAINT member_roles_status_format CHECK (status ~ '^[a-z][a-z0-9_]{0,31}$'),
    metadata              jsonb NOT NULL DEFAULT '{}' CONSTRAINT member_roles_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    deleted_at            timestamptz,
    -- One grant of a role per member and anchor; an unanchored grant counts once too (NULLS NOT DISTINCT).
    CONSTRAINT member_roles_member_role_anchor_key UNIQUE NULLS NOT DISTINCT (member_id, role_id, scope_anchor_group_id)
);
CREATE INDEX member_roles_role_id_idx ON plystra.member_roles (role_id);
CREATE INDEX member_roles_anchor_idx ON plystra.member_roles (scope_anchor_group_id);
CREATE INDEX member_roles_space_id_idx ON plystra.member_roles (space_id);

CREATE TABLE plystra.role_permissions (
    id            text PRIMARY KEY CONSTRAINT role_permissions_id_format CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
    role_id       text NOT NULL REFERENCES plystra.roles (id),
    permission_id text NOT NULL REFERENCES plystra.permissions (id),
    metadata      jsonb NOT NULL DEFAULT '{}' CONSTRAINT role_permissions_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz,
    CONSTRAINT role_permissions_role_permission_key UNIQUE (role_id, permission_id)
);
CREATE INDEX role_permissions_permission_id_idx ON plystra.role_permissions (permission_id);

CREATE TABLE plystra.resource_types (
    id           text PRIMARY KEY CONSTRAINT resource_types_id_format CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
    -- The key is the first half of an audit action (`invoice.approve`), so it carries no dot.
    key          text NOT NULL CONSTRAINT resource_types_key_format CHECK (key ~ '^[a-z][a-z0-9_-]{0,63}$'),
    display_name text NOT NULL,
    description  text,
    status       text NOT NULL DEFAULT 'active' CONSTRAINT resource_types_status_format CHECK (status ~ '^[a-z][a-z0-9_]{0,31}$'),
    source       text NOT NULL DEFAULT 'core',
    metadata     jsonb NOT NULL DEFAULT '{}' CONSTRAINT resource_types_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT resource_types_key_key UNIQUE (key)
);

CREATE TABLE plystra.resource_actions (
    id               text PRIMARY KEY CONSTRAINT resource_actions_id_format CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
    resource_type_id text NOT NULL REFERENCES plystra.resource_types (id),
    key              text NOT NULL CONSTRAINT resource_actions_key_format CHECK (key ~ '^[a-z][a-z0-9_-]{0,63}$'),
    display_name     text NOT NULL,
    description      text,
    risk_level       text NOT NULL DEFAULT 'normal' CONSTRAINT resource_actions_risk_level_known CHECK (risk_level IN ('low', 'normal', 'high', 'critical')),
    audit_default    boolean NOT NULL DEFAULT true,
    metadata         jsonb NOT NULL DEFAULT '{}' CONSTRAINT resource_actions_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT resource_actions_type_key_key UNIQUE (resource_type_id, key)
);

CREATE TABLE plystra.resource_mappings (
    id                 text PRIMARY KEY CONSTRAINT resource_mappings_id_format CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
    resource_type_id   text NOT NULL REFERENCES plystra.resource_types (id),
    storage_kind       text NOT NULL DEFAULT 'internal_table',
    table_name         text,
    id_field           text NOT NULL DEFAULT 'id',
    space_field        text NOT NULL DEFAULT 'space_id',
    group_field        text,
    owner_member_field text,
    visibility_field   text,
    metadata_field     text,
    status             text NOT NULL DEFAULT 'active' CONSTRAINT resource_mappings_status_format CHECK (status ~ '^[a-z][a-z0-9_]{0,31}$'),
    metadata           jsonb NOT NULL DEFAULT '{}' CONSTRAINT resource_mappings_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT resource_mappings_type_key UNIQUE (resource_type_id)
);

CREATE TABLE plystra.resources (
    -- Resource ids often come from the application (UUIDs, slugs, e-mails), so any printable text goes.
    id              text PRIMARY KEY CONSTRAINT resources_id_format CHECK (id !~ '[[:space:][:cntrl:]]' AND length(id) BETWEEN 1 AND 256),
    resource_type   text NOT NULL REFERENCES plystra.resource_types (key) ON UPDATE RESTRICT,
    external_id     text,
    space_id        text NOT NULL REFERENCES plystra.spaces (id),
    group_id        text REFERENCES plystra.groups (id),
    owner_member_id text REFERENCES plystra.members (id),
    display_name    text,
    visibility      text NOT NULL DEFAULT 'private',
    metadata        jsonb NOT NULL DEFAULT '{}' CONSTRAINT resources_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    status          text NOT NULL DEFAULT 'active' CONSTRAINT resources_status_format CHECK (status ~ '^[a-z][a-z0-9_]{0,31}$'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);
CREATE INDEX resources_space_id_idx ON plystra.resources (space_id);
CREATE INDEX resources_resource_type_idx ON plystra.resources (resource_type);
CREATE INDEX resources_group_id_idx ON plystra.resources (group_id);
CREATE INDEX resources_owner_member_id_idx ON plystra.resources (owner_member_id);
CREATE INDEX resources_space_type_group_idx ON plystra.resources (space_id, resource_type, group_id);
CREATE INDEX resources_external_id_idx ON plystra.resources (external_id);

-- Append-only (002). No foreign keys: a row is a snapshot and must outlive, and may name, what it refers to
-- (an ACTOR_NOT_FOUND deny names ids that exist nowhere). space_id is NULL only for instance-level
-- management mutations (users, permissions, the resource registry) made without an acting Space.
CREATE TABLE plystra.audit_logs (
    id                   text PRIMARY KEY,
    seq                  bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT audit_logs_seq_key UNIQUE,
    space_id             text,
    actor_user_id        text,
    actor_member_id      text,
    actor_user_member_id text,
    action               text NOT NULL,
    resource_type        text,
    resource_id          text,
    decision             text NOT NULL CONSTRAINT audit_logs_decision_known CHECK (decision IN ('allow', 'deny')),
    deny_code            text,
    -- lz4: traces are written on every decision; lz4 compresses them several times faster than pglz.
    trace                jsonb COMPRESSION lz4 NOT NULL,
    request_id           text,
    ip_address           text,
    user_agent           text,
    created_at           timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX audit_logs_space_created_idx ON plystra.audit_logs (space_id, created_at DESC);
CREATE INDEX audit_logs_created_idx ON plystra.audit_logs (created_at DESC);
CREATE INDEX audit_logs_actor_user_idx ON plystra.audit_logs (actor_user_id);
CREATE INDEX audit_logs_actor_member_idx ON plystra.audit_logs (actor_member_id);
CREATE INDEX audit_logs_actor_user_member_idx ON plystra.audit_logs (actor_user_member_id);
CREATE INDEX audit_logs_resource_idx ON plystra.audit_logs (resource_type, resource_id);
CREATE INDEX audit_logs_request_id_idx ON plystra.audit_logs (request_id);
CREATE INDEX audit_logs_decision_idx ON plystra.audit_logs (decision, created_at DESC);
-- Only denies carry a code; a partial index keeps allows (the common case) out of it.
CREATE INDEX audit_logs_deny_code_idx ON plystra.audit_logs (deny_code) WHERE deny_code IS NOT NULL;

CREATE TABLE plystra.admin_grants (
    id                   text PRIMARY KEY CONSTRAINT admin_grants_id_format CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
    user_id              text NOT NULL REFERENCES plystra.users (id),
    member_id            text REFERENCES plystra.members (id),
    space_id             text REFERENCES plystra.spaces (id),
    group_id             text REFERENCES plystra.groups (id),
    level                text NOT NULL CONSTRAINT admin_grants_level_known
                             CHECK (level IN ('instance_super_admin', 'instance_admin', 'space_admin', 'group_admin')),
    permission_key       text NOT NULL CONSTRAINT admin_grants_permission_key_format
                             CHECK (permission_key = '*' OR permission_key ~ '^[a-z0-9_-]+:([a-z0-9_-]+|\*)$'),
    status               text NOT NULL DEFAULT 'active' CONSTRAINT admin_grants_status_format CHECK (status ~ '^[a-z][a-z0-9_]{0,31}$'),
    granted_by_user_id   text REFERENCES plystra.users (id),
    granted_by_member_id text REFERENCES plystra.members (id),
    expires_at           timestamptz,
    revoked_at           timestamptz,
    revoked_reason       text,
    metadata             jsonb NOT NULL DEFAULT '{}' CONSTRAINT admin_grants_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at           timestamptz,
    CONSTRAINT admin_grants_level_scope CHECK (
        (level IN ('instance_super_admin', 'instance_admin') AND space_id IS NULL AND group_id IS NULL)
        OR (level = 'space_admin' AND space_id IS NOT NULL AND group_id IS NULL)
        OR (level = 'group_admin' AND group_id IS NOT NULL))
);
CREATE INDEX admin_grants_user_id_idx ON plystra.admin_grants (user_id);

CREATE TABLE plystra.api_keys (
    id                   text PRIMARY KEY CONSTRAINT api_keys_id_format CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$'),
    name                 text NOT NULL CONSTRAINT api_keys_name_nonempty CHECK (name <> ''),
    key_prefix           text NOT NULL,
    key_hash             text NOT NULL CONSTRAINT api_keys_key_hash_key UNIQUE,
    level                text NOT NULL CONSTRAINT api_keys_level_known CHECK (level IN ('instance', 'space', 'group')),
    space_id             text REFERENCES plystra.spaces (id),
    group_id             text REFERENCES plystra.groups (id),
    permission_keys      jsonb NOT NULL DEFAULT '[]' CONSTRAINT api_keys_permission_keys_array CHECK (jsonb_typeof(permission_keys) = 'array'),
    status               text NOT NULL DEFAULT 'active' CONSTRAINT api_keys_status_format CHECK (status ~ '^[a-z][a-z0-9_]{0,31}$'),
    expires_at           timestamptz,
    last_used_at         timestamptz,
    created_by_user_id   text REFERENCES plystra.users (id),
    created_by_member_id text REFERENCES plystra.members (id),
    revoked_at           timestamptz,
    revoked_by_user_id   text REFERENCES plystra.users (id),
    revoked_reason       text,
    metadata             jsonb NOT NULL DEFAULT '{}' CONSTRAINT api_keys_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at           timestamptz,
    CONSTRAINT api_keys_level_scope CHECK (
        (level = 'instance' AND space_id IS NULL AND group_id IS NULL)
        OR (level = 'space' AND space_id IS NOT NULL AND group_id IS NULL)
        OR (level = 'group' AND group_id IS NOT NULL))
);

CREATE TABLE plystra.sessions (
    id                    text PRIMARY KEY,
    user_id               text NOT NULL REFERENCES plystra.users (id),
    active_space_id       text REFERENCES plystra.spaces (id),
    active_member_id      text REFERENCES plystra.members (id),
    active_user_member_id text REFERENCES plystra.user_members (id),
    access_token_hash     text NOT NULL CONSTRAINT sessions_access_token_hash_key UNIQUE,
    refresh_token_hash    text NOT NULL CONSTRAINT sessions_refresh_token_hash_key UNIQUE,
    expires_at            timestamptz NOT NULL,
    refresh_expires_at    timestamptz NOT NULL,
    revoked_at            timestamptz,
    ip                    text,
    user_agent            text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_user_id_idx ON plystra.sessions (user_id);
