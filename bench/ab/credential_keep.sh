#!/usr/bin/env bash
# Keeping the API key's reading (extension 1.10.0) against reading it every request, on one installation: the two
# sides differ only in plystra.catalog_version.keeps_api_keys (true: a backend keeps what the gate reads of the
# key under the catalog version; false: it reads the key, its creator and the creator's admin grants by probes at
# every request, as 1.9.0 did). On the full-size data a `bench/run --size full` left in target/bench-pg (its
# schema updated to 1.10.0 by this script), audit off, the key made as the API makes one: with a creator whose
# instance admin grant bounds it. Each round measures both sides, the order flipping every round:
#   - plystra.decide_with_credential over the check mix (the REST front's one statement), from pgbench at CLIENTS
#     clients: tps and the backends' CPU a statement;
#   - with FRONT (a release plystra_http), POST /api/v1/authz/check through it with wrk and the same mix: req/s,
#     and the CPU a request of the front and of the backends;
#   - the gate's statement with a session credential instead (a session of actor 1's User, holding an instance
#     admin grant; the mix with that one actor, as a session may ask only about its own User's bindings).
# CPU from /proc (utime + stime) over the measured window. Only alternated rounds compare: the machine's speed moves
# by a fifth or more between windows.
# Usage: bench/ab/credential_keep.sh PGROOT [FRONT] [ROUNDS] [CLIENTS] [SECONDS]
#   PGROOT: a directory holding usr/lib/postgresql/15 with the extension installed (`/` for the system's).
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/ab/lib.sh
ROOT=$1 FRONT=${2:-} ROUNDS=${3:-4} CLIENTS=${4:-2} SECS=${5:-8}
HTTP_PORT=18535
full_data_start "$ROOT" 55672 ab_credential_keep
q() { psql -X -q -At -h "$FULL_SOCK" -p "$FULL_PORT" -U postgres bench "$@"; }
q -c "ALTER EXTENSION plystra UPDATE" -c "INSERT INTO plystra.users (id, email)
        VALUES ('ab_credential_keep_creator', 'ab-credential-keep@example.com') ON CONFLICT (id) DO NOTHING;
    INSERT INTO plystra.admin_grants (id, user_id, level, permission_key)
        VALUES ('ab_credential_keep_grant', 'ab_credential_keep_creator', 'instance_admin', 'authz:check')
        ON CONFLICT (id) DO NOTHING;
    UPDATE plystra.api_keys SET created_by_user_id = 'ab_credential_keep_creator' WHERE id = 'ab_credential_keep';
    INSERT INTO plystra.admin_grants (id, user_id, level, permission_key)
        VALUES ('ab_credential_keep_session_grant', 'bu_1', 'instance_admin', 'authz:check') ON CONFLICT (id) DO NOTHING;
    INSERT INTO plystra.sessions (id, user_id, access_token_hash, refresh_token_hash, expires_at, refresh_expires_at)
        VALUES ('ab_credential_keep_session', 'bu_1', 'ab_credential_keep_access', 'ab_credential_keep_refresh',
                now() + interval '1 day', now() + interval '2 days')
        ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at, revoked_at = NULL"
[ "$(q -c "SELECT extversion FROM pg_extension WHERE extname = 'plystra'")" = 1.10.0 ] || {
    echo "the installation in $ROOT is not 1.10.0"; exit 1; }
HASH=$(printf '%s' "$FULL_TOKEN" | openssl dgst -sha256 -hmac "$FULL_SECRET" | awk '{print $NF}')
GATE_SQL=$(mktemp --suffix .sql)
sed -e "s/^SELECT plystra.check(\(.*\));$/SELECT plystra.decide_with_credential(jsonb_build_object('api_key_id', \
'ab_credential_keep', 'api_key_hashes', jsonb_build_array('$HASH')), 'authz' || chr(58) || 'check', \1, false, false);/" \
    bench/workloads/check.sql > "$GATE_SQL"
grep -q decide_with_credential "$GATE_SQL"
SESSION_SQL=$(mktemp --suffix .sql)
sed -e "s/^\\\\set i random(0, :members - 1)$/\\\\set i 1/" \
    -e "s/^SELECT plystra.check(\(.*\));$/SELECT plystra.decide_with_credential(jsonb_build_object('session_token_hashes', \
jsonb_build_array('ab_credential_keep_access')), 'authz' || chr(58) || 'check', \1, false, false);/" \
    bench/workloads/check.sql > "$SESSION_SQL"
grep -q '^\\set i 1$' "$SESSION_SQL" && grep -q decide_with_credential "$SESSION_SQL"
[ "$(q -c "SELECT plystra.decide_with_credential('{\"session_token_hashes\": [\"ab_credential_keep_access\"]}',
        'authz:check', '{\"actor\": {\"user_id\": \"bu_1\", \"member_id\": \"bm_1\", \"user_member_id\": \"bum_1\",
        \"space_id\": \"bsp_1\"}, \"resource_type\": \"invoice\", \"resource_id\": \"bres_1\", \"action\": \"read\"}',
        false, false) ->> 'outcome'")" = decided ] || { echo "the session's statement does not decide"; exit 1; }

TICK=$(getconf CLK_TCK)
ticks() { local t=0 p; for p in "$@"; do [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "$t"; }
backends() { pgrep -P "$(head -1 "$FULL_DATA/postmaster.pid")" -f "postgres: postgres bench" | tr '\n' ' '; }
per() { python3 -c "print(f'{($2 - $1) / $TICK * 1e6 / $3:.1f}')"; }

sql_round() { # script, what it is
    local out; out=$(mktemp)
    PGOPTIONS="-c plystra.audit_mode=off" "$FULL_BIN/pgbench" -n -M prepared -c "$CLIENTS" -j 2 -T "$SECS" \
        "${FULL_MIX[@]}" -f "$1" -h "$FULL_SOCK" -p "$FULL_PORT" -U postgres bench >"$out" 2>&1 &
    local pb=$!; sleep 1.5
    local ids b0 t0 b1 t1; ids=$(backends)
    b0=$(ticks $ids); t0=$(date +%s.%N)
    sleep $((SECS - 3))
    b1=$(ticks $ids); t1=$(date +%s.%N)
    wait $pb
    local tps n; tps=$(grep -oP '^tps = \K[0-9.]+' "$out"); n=$(python3 -c "print($tps * ($t1 - $t0))")
    echo "$2: $(printf '%.0f' "$tps") tps, backends $(per "$b0" "$b1" "$n") µs a statement"
}

http_round() {
    front_start "$FRONT" "$HTTP_PORT"
    check_mix_wrk "$CLIENTS" 2 "$HTTP_PORT" >/dev/null
    local ids f0 b0 f1 b1 out; ids=$(backends); out=$(mktemp)
    f0=$(ticks "$FRONT_PID"); b0=$(ticks $ids)
    check_mix_wrk "$CLIENTS" "$SECS" "$HTTP_PORT" >"$out" 2>&1
    f1=$(ticks "$FRONT_PID"); b1=$(ticks $ids)
    kill "$FRONT_PID"; wait "$FRONT_PID" 2>/dev/null || true
    local n rps; n=$(grep -oP '"requests":\K[0-9]+' "$out"); rps=$(grep -oP 'Requests/sec:\s*\K[0-9.]+' "$out")
    grep -q '"status":0' "$out" || { echo "wrk saw failed requests:"; cat "$out"; exit 1; }
    echo "HTTP check: $(printf '%.0f' "$rps") req/s, front $(per "$f0" "$f1" "$n") µs, backends $(per "$b0" "$b1" "$n") µs a request"
}

echo "load at start: $(cat /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
    order="true false"; [ $((round % 2)) = 0 ] && order="false true"
    for keeps in $order; do
        q -c "UPDATE plystra.catalog_version SET keeps_api_keys = $keeps"
        echo "round $round keeps=$keeps: $(sql_round "$GATE_SQL" "gate statement, API key")"
        echo "round $round keeps=$keeps: $(sql_round "$SESSION_SQL" "gate statement, session")"
        [ -n "$FRONT" ] && echo "round $round keeps=$keeps: $(http_round)"
    done
done
q -c "UPDATE plystra.catalog_version SET keeps_api_keys = true"
echo "load at end: $(cat /proc/loadavg)"
