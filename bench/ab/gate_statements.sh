#!/usr/bin/env bash
# Statements the REST front's gate (plystra.decide_with_credential) runs inside PostgreSQL per decision, counted
# by pg_stat_statements (track = all, so the extension's own SPI statements are counted as nested statements).
# A scratch cluster with the installed extension and the demo data; an instance API key and a Group key, each
# asked 200 times about a check that names its actor by binding and by User alone, and a session that names no
# actor. Prints one line per case: statements per decision (the top-level call excluded).
#   bash bench/ab/gate_statements.sh [port]
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
port=${1:-55600}
dir=$PWD/target/gate-statements-pg
cluster_stop "$dir"
rm -rf "$dir"
PLYSTRA_AUDIT_DB=postgres PLYSTRA_PG_OPTIONS="-c shared_preload_libraries=plystra,pg_stat_statements -c pg_stat_statements.track=all -c pg_stat_statements.max=10000" \
    cluster_start "$dir" "$port"
trap 'cluster_stop "$dir"' EXIT
# The decisions run in their own database, so that the audit writer's statements (it works in "postgres") are
# not counted.
cluster_psql "$dir" "$port" postgres -c "CREATE DATABASE gate_statements" >/dev/null
q() { cluster_psql "$dir" "$port" gate_statements -tA "$@"; }
q -c "CREATE EXTENSION plystra; CREATE EXTENSION pg_stat_statements;" >/dev/null
q -f sql/demo.sql >/dev/null
q >/dev/null <<'SQL'
SET plystra.audit_mode = 'off';
ALTER DATABASE gate_statements SET plystra.audit_mode = 'off';
INSERT INTO plystra.admin_grants (id, user_id, level, permission_key, space_id, group_id)
VALUES ('ag_gs_instance', 'user_alice', 'instance_admin', 'authz:check', NULL, NULL),
       ('ag_gs_group', 'user_alice', 'group_admin', 'authz:check', NULL, 'group_finance');
INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, group_id, permission_keys, created_by_user_id)
VALUES ('ak_gs_instance', 'gs', 'ply_ak_gs_i', 'hash_i', 'instance', NULL, '["authz:check"]', 'user_alice'),
       ('ak_gs_group', 'gs', 'ply_ak_gs_g', 'hash_g', 'group', 'group_finance', '["authz:check"]', 'user_alice');
INSERT INTO plystra.sessions (id, user_id, access_token_hash, refresh_token_hash, expires_at, refresh_expires_at,
                              active_space_id, active_member_id, active_user_member_id)
VALUES ('ses_gs', 'user_alice', 'hash_s', 'hash_rs', now() + interval '1 hour', now() + interval '1 day',
        'space_acme', 'member_finance_reviewer', 'um_alice_finance_reviewer');
SQL
by_binding='{"actor": {"user_id": "user_bob", "member_id": "member_finance_reviewer", "user_member_id": "um_bob_finance_reviewer", "space_id": "space_acme"}, "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"}'
by_user='{"actor": {"user_id": "user_bob", "space_id": "space_acme"}, "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"}'
no_actor='{"resource_type": "invoice", "resource_id": "invoice_001", "action": "read"}'
key_i='{"api_key_id": "ak_gs_instance", "api_key_hashes": ["hash_i"]}'
key_g='{"api_key_id": "ak_gs_group", "api_key_hashes": ["hash_g"]}'
session='{"session_token_hashes": ["hash_s"]}'
n=200
count() {
    local name=$1 credential=$2 request=$3
    # One warm-up call (the backend's first call prepares its kept statements), then n counted calls.
    local outcome nested
    outcome=$(q <<SQL
SELECT plystra.decide_with_credential('$credential', 'authz:check', '$request', false, false) #>> '{decision,decision}';
SELECT pg_stat_statements_reset() IS NULL;
SELECT count(plystra.decide_with_credential('$credential', 'authz:check', '$request', false, false) ->> 'outcome') FROM generate_series(1, $n);
SQL
)
    outcome=$(head -n 1 <<<"$outcome")
    nested=$(q -c "SELECT round(sum(calls)::numeric / $n, 2) FROM pg_stat_statements WHERE toplevel = false AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())")
    printf '%-40s %s statements a decision (decision: %s)\n' "$name" "$nested" "$outcome"
    [ -n "${GATE_STATEMENTS_DETAIL:-}" ] && q -c "SELECT round(calls::numeric / $n, 2), left(regexp_replace(query, '\\s+', ' ', 'g'), 110) FROM pg_stat_statements WHERE toplevel = false AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY calls DESC" || true
}
count "instance key, actor by binding" "$key_i" "$by_binding"
count "instance key, actor by User" "$key_i" "$by_user"
count "Group key, actor by binding" "$key_g" "$by_binding"
count "session, no actor (its active binding)" "$session" "$no_actor"
