#!/usr/bin/env bash
# The audit trail survives a backup and restore, and nobody without the extension's privileges can hold sealing
# back:
#   1. pg_dump then restore (custom format with pg_restore, plain format with psql, into an empty database; and
#      data only, with and without --disable-triggers, into a fresh CREATE EXTENSION) gives back exactly the same
#      audit rows, keys and chain heads, fabricates no row, every chain verifies, and new decisions and mutations
#      are sealed after it (after --disable-triggers, plystra.restore_audit_log_keys() makes the live rows' keys);
#   2. a role that can only connect cannot delay sealing (it used to hold the sealers' advisory lock);
#   3. rows left unsealed too long are reported by verify_audit_chain;
#   4. what a live backend keeps (an API key's reading, plystra_pg/src/catalog.rs; an actor, actor_kept.rs and
#      actor_shared.rs) does not outlive a restore into its database, even where the restored version rows have the
#      numbers it was kept under.
# Needs PLYSTRA_TEST_PG_HOST / PLYSTRA_TEST_PG_PORT (set by scripts/test). PLYSTRA_BACKUP_EXTENSION_VERSION (optional)
# creates the source and the fresh extensions at an older installed version, to see what that version did.
set -uo pipefail
cd "$(dirname "$0")/.."
H=${PLYSTRA_TEST_PG_HOST:?set by scripts/test}
P=${PLYSTRA_TEST_PG_PORT:?set by scripts/test}
q() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -h "$H" -p "$P" -U postgres "$@"; }
qa() { q -At "$@"; }
n=0
fails=0
tap() { # tap OK|FAIL description
    n=$((n + 1))
    if [ "$1" = OK ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi
}
echo "backup check:"
tmp=$(mktemp -d)
SRC=plystra_backup_src
CREATE_EXTENSION="CREATE EXTENSION plystra${PLYSTRA_BACKUP_EXTENSION_VERSION:+ VERSION '$PLYSTRA_BACKUP_EXTENSION_VERSION'}"
DBS=(plystra_backup_src plystra_backup_fc plystra_backup_plain plystra_backup_data plystra_backup_data_dt)
for db in "${DBS[@]}"; do
    q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
done

# The source: the demo, decisions (allowed and denied), management mutations, all sealed, and one more
# mutation left unsealed (a restore must keep it unsealed, and sealing must pick it up afterwards).
q -d postgres -c "CREATE DATABASE $SRC"
q -d "$SRC" -c "$CREATE_EXTENSION" -f sql/demo.sql >/dev/null
q -d "$SRC" >/dev/null <<'SQL'
SELECT plystra.check(jsonb_build_object(
    'actor', jsonb_build_object('user_id', 'user_alice', 'member_id', 'member_finance_reviewer',
                                'user_member_id', b, 'space_id', 'space_acme'),
    'resource_type', 'invoice', 'resource_id', r, 'action', 'approve'))
FROM unnest(ARRAY['um_alice_finance_reviewer', 'um_alice_finance_reviewer_revoked']) b,
     unnest(ARRAY['invoice_001', 'invoice_002']) r;
-- A Context Mode decision: its row records which parts of the context came inline.
SELECT plystra.check('{"actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer",
                                 "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
                       "resource": {"type": "invoice", "id": "invoice_draft_backup", "group_path": "finance.apac"},
                       "action": "approve"}');
SELECT plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme');
UPDATE plystra.spaces SET name = 'Acme (before the backup)' WHERE id = 'space_acme';
SQL
# An instance-level row (no Space, no acting context): the instance chain ('').
q -d "$SRC" -c "INSERT INTO plystra.users (id, email, status) VALUES ('user_backup_instance', 'backup@example.com', 'active')"
q -d "$SRC" -c "SELECT plystra.seal_audit()" >/dev/null
q -d "$SRC" -c "UPDATE plystra.groups SET name = 'Finance (unsealed at backup time)' WHERE id = 'group_finance'"

AUDIT="SELECT count(*) || ' ' || md5(string_agg(row_to_json(a)::text, '|' ORDER BY a.seq)) FROM plystra.audit_logs a"
HEADS="SELECT count(*) || ' ' || coalesce(md5(string_agg(row_to_json(h)::text, '|' ORDER BY h.space_key)), '') FROM plystra.audit_chain_heads h"
# The row left unsealed at backup time is history, not a held-back sealer: broken links and heads are what count
# here (the stale-row alarm has its own test below).
PROBLEMS="SET plystra.audit_unsealed_alarm = '1 day'; SELECT count(*) FROM plystra.verify_audit_chain() WHERE problem IS NOT NULL"
INLINE_ROW="SELECT string_agg(decision || ' ' || (trace->'context_mode')::text, ',') FROM plystra.audit_logs WHERE resource_id = 'invoice_draft_backup'"
src_inline=$(qa -d "$SRC" -c "$INLINE_ROW")
[ "$src_inline" = 'allow {"actor": "core", "grants": "core", "target": "inline"}' ] &&
    tap OK "the source holds the Context Mode decision's row" ||
    tap FAIL "the source holds the Context Mode decision's row (got: $src_inline)"
src_audit=$(qa -d "$SRC" -c "$AUDIT")
src_heads=$(qa -d "$SRC" -c "$HEADS")
[ "$(qa -d "$SRC" -c "$PROBLEMS")" = 0 ] && [ "${src_heads%% *}" -gt 1 ] && tap OK "the source's chains verify ($src_audit rows)" ||
    tap FAIL "the source's chains verify"

KEYS="SELECT count(*) || ' ' || md5(string_agg(row_to_json(k)::text, '|' ORDER BY k.seq)) FROM plystra.audit_log_keys k"
src_keys=
if [ "$(qa -d "$SRC" -c "SELECT to_regclass('plystra.audit_log_keys') IS NOT NULL")" = t ]; then
    src_keys=$(qa -d "$SRC" -c "$KEYS")
    [ "${src_keys%% *}" = "${src_audit%% *}" ] && tap OK "the source has one key per audit row" ||
        tap FAIL "the source has one key per audit row (keys $src_keys, rows $src_audit)"
fi
pg_dump -h "$H" -p "$P" -U postgres -Fc -d "$SRC" -f "$tmp/src.dump" 2>"$tmp/dump.err" || cat "$tmp/dump.err"
pg_dump -h "$H" -p "$P" -U postgres -d "$SRC" -f "$tmp/src.sql" 2>>"$tmp/dump.err" || cat "$tmp/dump.err"

q -d postgres -c "CREATE DATABASE plystra_backup_fc" -c "CREATE DATABASE plystra_backup_plain" \
  -c "CREATE DATABASE plystra_backup_data" -c "CREATE DATABASE plystra_backup_data_dt"
pg_restore -h "$H" -p "$P" -U postgres -d plystra_backup_fc "$tmp/src.dump" >"$tmp/fc.log" 2>&1
echo "fc restore exit $?" >>"$tmp/fc.log"
psql -X -q -h "$H" -p "$P" -U postgres -d plystra_backup_plain -v ON_ERROR_STOP=1 -f "$tmp/src.sql" >"$tmp/plain.log" 2>&1
echo "plain restore exit $?" >>"$tmp/plain.log"
q -d plystra_backup_data -c "$CREATE_EXTENSION"
pg_restore -h "$H" -p "$P" -U postgres --data-only -d plystra_backup_data "$tmp/src.dump" >"$tmp/data.log" 2>&1
echo "data-only restore exit $?" >>"$tmp/data.log"
q -d plystra_backup_data_dt -c "$CREATE_EXTENSION"
pg_restore -h "$H" -p "$P" -U postgres --data-only --disable-triggers -d plystra_backup_data_dt "$tmp/src.dump" \
    >"$tmp/data_dt.log" 2>&1
echo "data-only --disable-triggers restore exit $?" >>"$tmp/data_dt.log"

for pair in "plystra_backup_fc:pg_restore (custom format) into an empty database:fc" \
            "plystra_backup_plain:psql (plain format) into an empty database:plain" \
            "plystra_backup_data:pg_restore --data-only into a fresh CREATE EXTENSION:data" \
            "plystra_backup_data_dt:pg_restore --data-only --disable-triggers into a fresh CREATE EXTENSION:data_dt"; do
    IFS=: read -r db how log <<<"$pair"
    if grep -q "exit 0$" "$tmp/$log.log" && ! grep -qi "error" "$tmp/$log.log"; then
        tap OK "$how: the restore succeeds without errors"
    else
        tap FAIL "$how: the restore succeeds without errors"
        sed 's/^/# /' "$tmp/$log.log" | head -n 20
    fi
    got=$(qa -d "$db" -c "$AUDIT" 2>&1)
    [ "$got" = "$src_audit" ] && tap OK "$how: exactly the same audit rows, none fabricated ($got)" ||
        tap FAIL "$how: exactly the same audit rows, none fabricated (source $src_audit, restored $got)"
    got=$(qa -d "$db" -c "$INLINE_ROW" 2>&1)
    [ "$got" = "$src_inline" ] && tap OK "$how: the Context Mode decision's row says its target came inline" ||
        tap FAIL "$how: the Context Mode decision's row says its target came inline (source $src_inline, restored $got)"
    got=$(qa -d "$db" -c "$HEADS" 2>&1)
    [ "$got" = "$src_heads" ] && tap OK "$how: the same chain heads" ||
        tap FAIL "$how: the same chain heads (source $src_heads, restored $got)"
    got=$(qa -d "$db" -c "$PROBLEMS" 2>&1)
    [ "$got" = 0 ] && tap OK "$how: every chain verifies" || {
        tap FAIL "$how: every chain verifies"
        qa -d "$db" -c "SELECT * FROM plystra.verify_audit_chain() WHERE problem IS NOT NULL" | sed 's/^/# /'
    }
    # The keys (plystra.audit_log_keys): a restore makes the live rows' keys as it loads them; a data-only restore
    # with --disable-triggers skips that, and plystra.restore_audit_log_keys() makes them afterwards.
    # (An older version, PLYSTRA_BACKUP_EXTENSION_VERSION, has no keys table.)
    if [ -n "$src_keys" ]; then
    made=$(qa -d "$db" -c "SELECT plystra.restore_audit_log_keys()" 2>&1)
    if [ "$log" = data_dt ]; then want=${src_audit%% *}; else want=0; fi
    [ "$made" = "$want" ] && tap OK "$how: keys left to make after the restore: $want" ||
        tap FAIL "$how: keys left to make after the restore: $want (got: $made)"
    got=$(qa -d "$db" -c "$KEYS" 2>&1)
    [ "$got" = "$src_keys" ] && tap OK "$how: the same keys (id, seq, chain position) as the source" ||
        tap FAIL "$how: the same keys (id, seq, chain position) as the source (source $src_keys, restored $got)"
    fi
    # Life goes on: a new mutation and a decision are recorded and sealed after the restored history.
    after=$(qa -d "$db" 2>&1 <<'SQL'
SELECT plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme');
UPDATE plystra.spaces SET name = 'Acme (after the restore)' WHERE id = 'space_acme';
SELECT plystra.check('{"actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer",
  "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"},
  "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"}') IS NOT NULL;
SELECT plystra.seal_audit() > 0;
SELECT count(*) FROM plystra.audit_logs WHERE row_hash IS NULL;
SELECT count(*) FROM plystra.verify_audit_chain() WHERE problem IS NOT NULL;
SELECT count(*) FROM plystra.audit_logs WHERE action = 'space.updated' AND trace->'details'->>'name' = 'Acme (after the restore)';
SQL
    )
    # (set_actor prints an empty line; word splitting drops it.)
    # shellcheck disable=SC2086
    [ "$(echo $after)" = "t t 0 0 1" ] && tap OK "$how: new mutations and decisions are sealed after it" ||
        tap FAIL "$how: new mutations and decisions are sealed after it (got: $(echo $after))"
done

# 2. A role that can only connect takes the advisory lock the sealers used to take, and the one they take now
#    (it may not), while a superuser seals.
q -d postgres -c "DROP ROLE IF EXISTS plystra_backup_nobody" -c "CREATE ROLE plystra_backup_nobody LOGIN"
(psql -X -q -h "$H" -p "$P" -U plystra_backup_nobody -d "$SRC" \
    -c "SELECT pg_advisory_lock(hashtext('plystra.audit_chain'))" -c "SELECT pg_sleep(6)" >/dev/null 2>&1 &)
sleep 1
lock=$(psql -X -q -At -h "$H" -p "$P" -U plystra_backup_nobody -d "$SRC" \
    -c "BEGIN" -c "SELECT 1 FROM plystra.audit_sealer FOR UPDATE" 2>&1)
case "$lock" in
    *"permission denied"*) tap OK "a role without the extension's privileges cannot take the sealer's lock" ;;
    *) tap FAIL "a role without the extension's privileges cannot take the sealer's lock (got: $lock)" ;;
esac
sealed=$(qa -d "$SRC" -c "UPDATE plystra.spaces SET name = 'Acme (sealed while a role holds a lock)' WHERE id = 'space_acme'" \
    -c "SELECT plystra.seal_audit()")
[ "${sealed:-0}" -ge 1 ] 2>/dev/null && tap OK "sealing goes on while another role holds the old advisory lock ($sealed rows)" ||
    tap FAIL "sealing goes on while another role holds the old advisory lock (sealed: $sealed)"

# 3. An unsealed row older than the alarm is a problem, not an intact chain.
stale=$(qa -d "$SRC" <<'SQL'
BEGIN;
INSERT INTO plystra.audit_logs (id, space_id, action, resource_type, resource_id, decision, trace, created_at)
VALUES ('audit_backup_stale', 'space_acme', 'invoice.read', 'invoice', 'invoice_001', 'allow', '{}', now() - interval '1 minute');
SET LOCAL plystra.audit_unsealed_alarm = '5 seconds';
SELECT problem FROM plystra.verify_audit_chain('space_acme');
ROLLBACK;
SQL
)
case "$stale" in
    *"unsealed for longer than"*) tap OK "verify_audit_chain reports a row left unsealed longer than the alarm" ;;
    *) tap FAIL "verify_audit_chain reports a row left unsealed longer than the alarm (got: $stale)" ;;
esac
inst=$(qa -d "$SRC" -c "SELECT count(*) || ' ' || count(problem) FROM plystra.verify_audit_chain('')")
[ "$inst" = "1 0" ] && tap OK "verify_audit_chain('') verifies the instance-level chain (intact)" ||
    tap FAIL "verify_audit_chain('') verifies the instance-level chain (got: $inst)"

# 4. A backend that stays connected while its database is restored (pg_restore --clean) must not answer from what
#    it kept before: neither an API key's reading (the catalog version, migration 011) nor an actor (its Space's
#    actor version, migration 014). The restored version rows are new incarnations; a version's number alone could
#    name another state, so each is set here to the very number the live backend kept its reading under.
KEEP=plystra_backup_keep
DBS+=("$KEEP")
q -d postgres -c "DROP DATABASE IF EXISTS $KEEP WITH (FORCE)" -c "CREATE DATABASE $KEEP"
q -d "$KEEP" -c "$CREATE_EXTENSION" -f sql/demo.sql >/dev/null
# (Skipped for an extension older than 1.10.0, PLYSTRA_BACKUP_EXTENSION_VERSION: it keeps no key's reading.)
if [ "$(qa -d "$KEEP" -c "SELECT to_regclass('plystra.actor_versions') IS NOT NULL AND EXISTS (SELECT FROM pg_attribute
        WHERE attrelid = to_regclass('plystra.catalog_version') AND attname = 'keeps_api_keys')")" = t ]; then
    # The backup: the key's creator without users:read, and Alice's approver grant revoked.
    q -d "$KEEP" >/dev/null <<'SQL'
INSERT INTO plystra.users (id, email) VALUES ('user_backup_keep', 'keep@example.com');
INSERT INTO plystra.admin_grants (id, user_id, level, permission_key)
VALUES ('ag_backup_keep_check', 'user_backup_keep', 'instance_admin', 'authz:check');
INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, permission_keys, created_by_user_id)
VALUES ('ak_backup_keep', 'backup', 'ply_backup', 'hash_backup_keep', 'instance', '["authz:check", "users:read"]',
        'user_backup_keep');
UPDATE plystra.member_roles SET status = 'revoked' WHERE id = 'mr_finance_reviewer_approver_finance';
SQL
    pg_dump -h "$H" -p "$P" -U postgres -Fc -d "$KEEP" -f "$tmp/keep.dump" 2>>"$tmp/dump.err" || cat "$tmp/dump.err"
    # After the backup: users:read granted to the creator, and Alice an approver again.
    q -d "$KEEP" >/dev/null <<'SQL'
INSERT INTO plystra.admin_grants (id, user_id, level, permission_key)
VALUES ('ag_backup_keep_read', 'user_backup_keep', 'instance_admin', 'users:read');
UPDATE plystra.member_roles SET status = 'active' WHERE id = 'mr_finance_reviewer_approver_finance';
SQL
    coproc KEEPER {
        PGOPTIONS="-c client_min_messages=warning -c plystra.audit_mode=off" \
            psql -X -q -At -h "$H" -p "$P" -U postgres -d "$KEEP" 2>&1
    }
    keeper_asks() { # the live backend's answers: the gate's for the key and permission $1, then Alice's approval
        echo "SELECT plystra.decide_with_credential('{\"api_key_id\": \"ak_backup_keep\",
                \"api_key_hashes\": [\"hash_backup_keep\"]}', '$1', 'null', false, true) ->> 'outcome';
              SELECT plystra.check('{\"actor\": {\"user_id\": \"user_alice\", \"member_id\": \"member_finance_reviewer\",
                \"user_member_id\": \"um_alice_finance_reviewer\", \"space_id\": \"space_acme\"},
                \"resource_type\": \"invoice\", \"resource_id\": \"invoice_001\", \"action\": \"approve\"}') ->> 'decision';" \
            >&"${KEEPER[1]}"
        local gate= decision=
        read -r -t 30 gate <&"${KEEPER[0]}"
        read -r -t 30 decision <&"${KEEPER[0]}"
        echo "$gate $decision"
    }
    got=$(keeper_asks users:read)
    kept_under=$(qa -d "$KEEP" -c "SELECT version FROM plystra.catalog_version")
    actor_kept_under=$(qa -d "$KEEP" -c "SELECT version FROM plystra.actor_versions WHERE space_id = 'space_acme'")
    # Proof that both were kept: both grants revoked with the version triggers disabled go unnoticed.
    q -d "$KEEP" -c "ALTER TABLE plystra.admin_grants DISABLE TRIGGER credential_changed" \
        -c "UPDATE plystra.admin_grants SET status = 'revoked', revoked_at = now() WHERE id = 'ag_backup_keep_read'" \
        -c "ALTER TABLE plystra.admin_grants ENABLE ALWAYS TRIGGER credential_changed" \
        -c "ALTER TABLE plystra.member_roles DISABLE TRIGGER actor_changed_update" \
        -c "UPDATE plystra.member_roles SET status = 'revoked' WHERE id = 'mr_finance_reviewer_approver_finance'" \
        -c "ALTER TABLE plystra.member_roles ENABLE ALWAYS TRIGGER actor_changed_update" >/dev/null ||
        got="$got (the revokes failed)"
    got="$got $(keeper_asks users:read)"
    [ "$got" = "authorized allow authorized allow" ] &&
        tap OK "a live backend keeps the key's reading and the actor (revokes made with the triggers disabled go unnoticed)" ||
        tap FAIL "a live backend keeps the key's reading and the actor (got: $got)"
    pg_restore -h "$H" -p "$P" -U postgres --clean --if-exists -d "$KEEP" "$tmp/keep.dump" >"$tmp/keep.log" 2>&1
    echo "restore exit $?" >>"$tmp/keep.log"
    if grep -q "exit 0$" "$tmp/keep.log" && ! grep -qi "error" "$tmp/keep.log"; then
        tap OK "pg_restore --clean into the live database succeeds without errors"
    else
        tap FAIL "pg_restore --clean into the live database succeeds without errors"
        sed 's/^/# /' "$tmp/keep.log" | head -n 20
    fi
    got=$(qa -d "$KEEP" -c "SELECT setval('plystra.catalog_version_seq', $kept_under - 1) IS NOT NULL" \
        -c "UPDATE plystra.catalog_version SET version = nextval('plystra.catalog_version_seq') RETURNING version" \
        -c "SELECT setval('plystra.actor_version_seq', $actor_kept_under - 1) IS NOT NULL" \
        -c "UPDATE plystra.actor_versions SET version = nextval('plystra.actor_version_seq')
            WHERE space_id = 'space_acme' RETURNING version")
    # shellcheck disable=SC2086
    got=$(echo $got)
    [ "$got" = "t $kept_under t $actor_kept_under" ] &&
        tap OK "the restored versions are given the numbers the live backend kept under ($kept_under, $actor_kept_under)" ||
        tap FAIL "the restored versions are given the numbers the live backend kept under ($kept_under, $actor_kept_under; got: $got)"
    got="$(keeper_asks users:read) $(keeper_asks authz:check)"
    [ "$got" = "forbidden deny authorized deny" ] &&
        tap OK "after the restore the live backend answers from the restored rows (users:read forbidden, Alice's approval denied)" ||
        tap FAIL "after the restore the live backend answers from the restored rows (got: $got)"
    echo '\q' >&"${KEEPER[1]}"
    wait "$KEEPER_PID" 2>/dev/null
fi

for db in "${DBS[@]}"; do
    q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
done
q -d postgres -c "DROP ROLE IF EXISTS plystra_backup_nobody"
rm -rf "$tmp"
echo "1..$n"
[ "$fails" -eq 0 ]
