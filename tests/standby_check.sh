#!/usr/bin/env bash
# The SQL-native lookups on a hot standby: a primary with the demo and the row-level-security example, a
# streaming replica made with pg_basebackup, and the same questions asked on the replica. Decisions that must
# write an audit row are refused there with a clear read-only error, never a crash.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
PRIMARY=$REPO_ROOT/target/plystra-primary-pg
REPLICA=$REPO_ROOT/target/plystra-replica-pg
n=0
fails=0
tap() { n=$((n + 1)); if [ "$1" = OK ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi; }
echo "standby check:"

cluster_stop "$REPLICA"
cluster_stop "$PRIMARY"
rm -rf "$REPLICA"
P1=$(free_port "${PLYSTRA_STANDBY_PORT:-55480}")
PLYSTRA_AUDIT_DB=plystra_standby PLYSTRA_PG_OPTIONS="-c wal_level=replica -c max_wal_senders=4" cluster_start "$PRIMARY" "$P1"
q1() { psql -X -q -At -h "$PRIMARY" -p "$P1" -U postgres -d plystra_standby "$@"; }
psql -X -q -h "$PRIMARY" -p "$P1" -U postgres -d postgres -c "DROP DATABASE IF EXISTS plystra_standby WITH (FORCE)" -c "CREATE DATABASE plystra_standby" 2>/dev/null
q1 -c "CREATE EXTENSION plystra" -f sql/demo.sql -f sql/examples/invoices_rls.sql >/dev/null

mkdir -p "$REPLICA"
[ "$(id -u)" = 0 ] && chown postgres: "$REPLICA"
as_postgres "$PG_BIN/pg_basebackup" -h "$PRIMARY" -p "$P1" -U postgres -D "$REPLICA/data" -R -X stream -c fast >/dev/null 2>&1 \
    && tap OK "pg_basebackup made a streaming replica" || tap FAIL "pg_basebackup made a streaming replica"
P2=$(free_port $((P1 + 1)))
PLYSTRA_AUDIT_DB=plystra_standby cluster_start "$REPLICA" "$P2"
q2() { psql -X -q -At -h "$REPLICA" -p "$P2" -U postgres -d plystra_standby "$@"; }
# Waits until QUERY on the standby answers VALUE (a change made on the primary has been replayed), at most 10 s;
# says so when it never does, and the test that follows fails on the stale answer.
replayed() {
    local _
    for _ in $(seq 1 50); do
        [ "$(q2 -c "$1")" = "$2" ] && return 0
        sleep 0.2
    done
    echo "# not replayed within 10 s: $1 (waited for '$2')"
}
[ "$(q2 -c "SELECT pg_is_in_recovery()")" = t ] && tap OK "the replica is a hot standby" || tap FAIL "the replica is a hot standby"

# A grant made on the primary after the base backup reaches the replica by streaming.
q1 -c "INSERT INTO plystra.role_permissions (id, role_id, permission_id) VALUES
       ('rp_standby_reject', 'role_finance_approver', 'perm_invoice_reject_group_tree')" >/dev/null
replayed "SELECT count(*) FROM plystra.role_permissions WHERE id = 'rp_standby_reject'" 1
ACTOR="SELECT plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme');"
groups=$(q2 -c "BEGIN; $ACTOR SELECT string_agg(g, ',' ORDER BY g) FROM plystra.reachable_groups('invoice', 'reject') AS g; COMMIT;" | tail -n 1)
[ "$groups" = "group_finance,group_finance_apac,group_finance_emea" ] \
    && tap OK "reachable_groups works on the standby and sees the streamed grant ($groups)" \
    || tap FAIL "reachable_groups on the standby: '$groups'"
visible=$(q2 -c "BEGIN; $ACTOR SET LOCAL ROLE invoices_app; SELECT string_agg(id, ',' ORDER BY id) FROM app.invoices; COMMIT;" | tail -n 1)
[ "$visible" = "inv_apac_1,inv_apac_2,inv_emea_1,inv_fin_1" ] \
    && tap OK "the row-level-security policy filters on the standby ($visible)" || tap FAIL "RLS on the standby: '$visible'"
row=$(q2 -c "BEGIN; $ACTOR SELECT plystra.allowed_row('invoice', 'read', 'space_acme', 'group_finance_apac', NULL)
             AND NOT plystra.allowed_row('invoice', 'read', 'space_acme', 'group_legal_emea', NULL)
             AND plystra.allowed_resource('invoice', 'invoice_001', 'approve'); COMMIT;" | tail -n 1)
[ "$row" = t ] && tap OK "the row predicates decide on the standby" || tap FAIL "row predicates on the standby: '$row'"
[ "$(q2 -c "SELECT plystra.audit_writer_active()")" = f ] \
    && tap OK "no audit writer runs on the standby" || tap FAIL "an audit writer runs on the standby"
err=$(q2 -v VERBOSITY=verbose -c "SELECT plystra.check('{\"actor\": {\"user_id\": \"user_alice\", \"member_id\": \"member_finance_reviewer\",
       \"user_member_id\": \"um_alice_finance_reviewer\", \"space_id\": \"space_acme\"}, \"resource_type\": \"invoice\",
       \"resource_id\": \"invoice_001\", \"action\": \"approve\"}')" 2>&1)
echo "$err" | grep -q "25006: plystra: cannot record this decision's audit row in a read-only transaction" \
    && tap OK "an audited decision is refused on the standby with SQLSTATE 25006, not an internal error" || tap FAIL "check on the standby: $err"
[ "$(q2 -c "SELECT 1")" = 1 ] && tap OK "the standby keeps serving" || tap FAIL "the standby keeps serving"

# One standby backend keeps its catalog (Roles, Permissions, the registry) between decisions. A change on the
# primary reaches the standby by replay alone, where no trigger fires: the same backend's next decision sees it.
# (Audit off: a standby records no decision.)
coproc STANDBY { PGOPTIONS="-c plystra.audit_mode=off" psql -X -q -At -h "$REPLICA" -p "$P2" -U postgres -d plystra_standby 2>&1; }
ask() { local reply=''; echo "$1" >&"${STANDBY[1]}"; read -r -t 10 reply <&"${STANDBY[0]}"; echo "$reply"; }
ALLOWED="SELECT plystra.allowed('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme', 'invoice', 'invoice_001', 'reject');"
pid_before=$(ask "SELECT pg_backend_pid();")
before=$(ask "$ALLOWED")
q1 -c "UPDATE plystra.role_permissions SET deleted_at = now() WHERE id = 'rp_standby_reject'" >/dev/null
replayed "SELECT count(*) FROM plystra.role_permissions WHERE id = 'rp_standby_reject' AND deleted_at IS NOT NULL" 1
after=$(ask "$ALLOWED")
pid_after=$(ask "SELECT pg_backend_pid();")
[ "$before $after" = "t f" ] && [ -n "$pid_before" ] && [ "$pid_before" = "$pid_after" ] \
    && tap OK "one standby backend sees a replayed RolePermission removal at its next decision (kept catalog: $before, then $after)" \
    || tap FAIL "kept catalog on the standby: before '$before', after '$after', backends $pid_before/$pid_after"

# The same backend keeps the invoice type's mapping (since 1.15.0), through which an inline resource is placed: a
# mapping changed on the primary reaches it by replay alone, and its next decision places the resource anew.
INLINE="SELECT coalesce(plystra.check('{\"actor\": {\"user_id\": \"user_alice\", \"member_id\": \"member_finance_reviewer\",
    \"user_member_id\": \"um_alice_finance_reviewer\", \"space_id\": \"space_acme\"}, \"resource\": {\"type\": \"invoice\",
    \"id\": \"invoice_standby\", \"metadata\": {\"group_id\": \"group_finance_apac\", \"other_group\": \"group_legal_emea\"}},
    \"action\": \"approve\"}') ->> 'deny_code', 'ALLOW');"
ask "$INLINE" >/dev/null
before=$(ask "$INLINE")
q1 -c "UPDATE plystra.resource_mappings SET group_field = 'other_group' WHERE id = 'rm_invoice_resources'" >/dev/null
replayed "SELECT group_field FROM plystra.resource_mappings WHERE id = 'rm_invoice_resources'" other_group
after=$(ask "$INLINE")
pid_after=$(ask "SELECT pg_backend_pid();")
q1 -c "UPDATE plystra.resource_mappings SET group_field = 'group_id' WHERE id = 'rm_invoice_resources'" >/dev/null
[ "$before $after" = "ALLOW SCOPE_OUT_OF_BOUNDS" ] && [ "$pid_before" = "$pid_after" ] \
    && tap OK "one standby backend sees a replayed mapping change at its next decision (inline resource: $before, then $after)" \
    || tap FAIL "kept mapping on the standby: before '$before', after '$after', backends $pid_before/$pid_after"

# The same standby backend keeps the actor (User, Member, binding, Space, grants) under space_acme's actor version,
# which replicates with the rows: a grant revoked on the primary denies at the backend's next decision after replay.
APPROVE="SELECT plystra.allowed('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme', 'invoice', 'invoice_001', 'approve');"
ask "$APPROVE" >/dev/null
before=$(ask "$APPROVE")
hits_before=$(ask "SELECT plystra.actor_kept_stats()->>'hits';")
# Between replayed commits the standby's snapshots stay the same, and the backend takes its version rows as last
# read (plystra_pg/src/same_snapshot.rs): the replayed revoke below must still reach its next decision.
for _ in 1 2 3 4 5; do ask "$APPROVE" >/dev/null; done
remembered_before=$(ask "SELECT plystra.actor_kept_stats()->>'version_rows_remembered';")
# The standby's backends share actors too (its own shared memory): a fresh backend takes the one just read.
SHARED="SELECT plystra.actor_kept_stats()->>'shared_hits';"
shared_before=$(q2 -c "SET plystra.audit_mode = off" -c "$APPROVE" -c "$SHARED" | tr '\n' ' ')
q1 -c "UPDATE plystra.member_roles SET status = 'revoked' WHERE id = 'mr_finance_reviewer_approver_finance'" >/dev/null
replayed "SELECT status FROM plystra.member_roles WHERE id = 'mr_finance_reviewer_approver_finance'" revoked
# A fresh backend first: the shared tier holds only the actor of the older version.
shared_after=$(q2 -c "SET plystra.audit_mode = off" -c "$APPROVE" -c "$SHARED" | tr '\n' ' ')
after=$(ask "$APPROVE")
pid_after=$(ask "SELECT pg_backend_pid();")
[ "$before $after" = "t f" ] && [ "${hits_before:-0}" -ge 1 ] && [ "${remembered_before:-0}" -ge 1 ] \
    && [ "$pid_before" = "$pid_after" ] \
    && tap OK "one standby backend, its actor kept ($hits_before kept-actor hits, $remembered_before version rows taken as last read), sees a replayed revoke at its next decision ($before, then $after)" \
    || tap FAIL "kept actor on the standby: before '$before', after '$after', hits '$hits_before', remembered '$remembered_before', backends $pid_before/$pid_after"
[ "$shared_before" = "t 1 " ] && [ "$shared_after" = "f 0 " ] \
    && tap OK "a fresh standby backend takes the shared actor ($shared_before), and after the replayed revoke does not ($shared_after)" \
    || tap FAIL "shared actor on the standby: before '$shared_before', after '$shared_after'"

# The same standby backend keeps what the REST front's gate reads of an API key (the key, its creator, the creator's
# admin grants) under the catalog version (migration 015): a key revoked on the primary is refused at the backend's
# next request after replay.
q1 -c "INSERT INTO plystra.admin_grants (id, user_id, level, permission_key) VALUES ('ag_standby', 'user_alice', 'instance_admin', 'authz:check');
       INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, permission_keys, created_by_user_id)
       VALUES ('ak_standby', 'standby', 'ply_standby', 'hash_standby', 'instance', '[\"authz:check\"]', 'user_alice')" >/dev/null
replayed "SELECT count(*) FROM plystra.api_keys WHERE id = 'ak_standby'" 1
GATE="SELECT plystra.decide_with_credential('{\"api_key_id\": \"ak_standby\", \"api_key_hashes\": [\"hash_standby\"]}', 'authz:check', 'null', false, true)->>'outcome';"
ask "$GATE" >/dev/null
before=$(ask "$GATE")
q1 -c "UPDATE plystra.api_keys SET status = 'revoked', revoked_at = now() WHERE id = 'ak_standby'" >/dev/null
replayed "SELECT status FROM plystra.api_keys WHERE id = 'ak_standby'" revoked
after=$(ask "$GATE")
pid_after=$(ask "SELECT pg_backend_pid();")
[ "$before $after" = "authorized unauthenticated" ] && [ "$pid_before" = "$pid_after" ] \
    && tap OK "one standby backend, the API key kept, refuses it at its next request after a replayed revocation ($before, then $after)" \
    || tap FAIL "kept API key on the standby: before '$before', after '$after', backends $pid_before/$pid_after"
# The target's group is shared under space_acme's actor version too (plystra_pg/src/group_shared.rs): a group
# archived on the primary reaches the standby by replay alone, and no standby backend takes the live group it
# shared before.
q1 -c "UPDATE plystra.member_roles SET status = 'active' WHERE id = 'mr_finance_reviewer_approver_finance'" >/dev/null
replayed "SELECT status FROM plystra.member_roles WHERE id = 'mr_finance_reviewer_approver_finance'" active
GROUP_HITS="SELECT plystra.actor_kept_stats()->>'group_hits';"
ask "$APPROVE" >/dev/null
before=$(ask "$APPROVE")
group_before=$(q2 -c "SET plystra.audit_mode = off" -c "$APPROVE" -c "$GROUP_HITS" | tr '\n' ' ')
q1 -c "UPDATE plystra.groups SET status = 'archived' WHERE id = 'group_finance_apac'" >/dev/null
replayed "SELECT status FROM plystra.groups WHERE id = 'group_finance_apac'" archived
group_after=$(q2 -c "SET plystra.audit_mode = off" -c "$APPROVE" -c "$GROUP_HITS" | tr '\n' ' ')
after=$(ask "$APPROVE")
pid_after=$(ask "SELECT pg_backend_pid();")
[ "$before $after" = "t f" ] && [ "$group_before" = "t 1 " ] && [ "$group_after" = "f 0 " ] && [ "$pid_before" = "$pid_after" ] \
    && tap OK "a standby backend takes the shared group ($group_before) and, after a replayed archive, does not (fresh: $group_after; the standing backend: $before, then $after)" \
    || tap FAIL "shared group on the standby: standing '$before' then '$after', fresh before '$group_before', after '$group_after', backends $pid_before/$pid_after"
echo '\q' >&"${STANDBY[1]}"

cluster_stop "$REPLICA"
cluster_stop "$PRIMARY"
echo "1..$n"
[ "$fails" -eq 0 ]
