#!/usr/bin/env bash
# Two installations of the extension, A and B, alternated on the full-size data a `bench/run --size full` left in
# target/bench-pg: each round restarts that cluster with one installation's binaries (the library is
# preloaded, as in the benchmark), runs the check mix unmeasured for WARM seconds (a running server holds its
# actors), then measures, audit off, at CLIENTS clients:
#   - plystra.decide_with_credential over the check mix with an instance API key (the REST front's one
#     statement), from pgbench: tps and the CPU time a transaction of the backends and of pgbench;
#   - POST /api/v1/authz/check through the REST front (FRONT, a release binary) with wrk and the same mix: req/s
#     and the CPU time a request of the front and of the backends.
# CPU time from /proc (utime + stime ticks) over the measured window. Only alternated rounds compare: the machine's
# speed moves by a fifth or more between windows.
# Usage: bench/ab/gate_mix.sh PGROOT_A PGROOT_B FRONT [ROUNDS] [CLIENTS] [SECONDS] [WARM]
#   PGROOT: a directory holding usr/lib/postgresql/15 with the extension installed in it (a copy of the system's
#   PostgreSQL, installed into with PLYSTRA_PG_BIN=<copy>/usr/lib/postgresql/15/bin scripts/lib.sh's
#   install_extension).
set -euo pipefail
cd "$(dirname "$0")/../.."
A=$1 B=$2 FRONT=$3 ROUNDS=${4:-2} CLIENTS=${5:-2} SECS=${6:-8} WARM=${7:-20}
DATA=$PWD/target/bench-pg/data
SOCK=$(mktemp -d) && chown postgres "$SOCK"
PORT=55671 HTTP_PORT=18534
MIX=(-D spaces=10 -D breadth=3 -D depth=8 -D members=100000 -D resq=100000 -D gs=9840 -D alevels=3)
SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
TOKEN="ply_ak_ab_gate_mix.$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
HASH=$(printf '%s' "$TOKEN" | openssl dgst -sha256 -hmac "$SECRET" | awk '{print $NF}')
# The gate's statement over the check mix: check.sql's request, asked with the key (pgbench reads ":name" as a
# variable, so the permission's colon is spelled out).
GATE_SQL=$(mktemp --suffix .sql)
sed -e "s/^SELECT plystra.check(\(.*\));$/SELECT plystra.decide_with_credential(jsonb_build_object('api_key_id', \
'ab_gate_mix', 'api_key_hashes', jsonb_build_array('$HASH')), 'authz' || chr(58) || 'check', \1, false, false);/" \
    bench/workloads/check.sql > "$GATE_SQL"
grep -q decide_with_credential "$GATE_SQL"

ticks() { local t=0 p; for p in "$@"; do [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo "$t"; }
backends() { pgrep -P "$(head -1 "$DATA/postmaster.pid")" -f "postgres: postgres bench" | tr '\n' ' '; }
TICK=$(getconf CLK_TCK)
per() { python3 -c "print(f'{($2 - $1) / $TICK * 1e6 / $3:.1f}')"; }

start() { # pgroot
    local bin=$1/usr/lib/postgresql/15/bin
    su postgres -c "$bin/pg_ctl -D $DATA -l $SOCK/server.log -w start -o '-p $PORT -k $SOCK -c listen_addresses=127.0.0.1 \
        -c max_connections=200 -c shared_buffers=1GB -c jit=off -c shared_preload_libraries=plystra \
        -c plystra.audit_writer_database=bench -c plystra.shared_actor_cache_entries=131072'" >/dev/null
    psql -X -q -h "$SOCK" -p $PORT -U postgres bench -c "INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash,
        level, permission_keys) VALUES ('ab_gate_mix', 'A/B gate mix', 'ply_ak_ab_gate_mix', '$HASH', 'instance',
        '[\"authz:check\"]') ON CONFLICT (id) DO UPDATE SET key_hash = excluded.key_hash" >/dev/null
    PGOPTIONS="-c plystra.audit_mode=off" "$bin/pgbench" -n -M prepared -c 2 -j 2 -T "$WARM" --random-seed=7 "${MIX[@]}" \
        -f bench/workloads/check.sql -h "$SOCK" -p $PORT -U postgres bench >/dev/null 2>&1
}
stop() { su postgres -c "$1/usr/lib/postgresql/15/bin/pg_ctl -D $DATA stop -m fast" >/dev/null; }

sql_round() { # pgroot
    local bin=$1/usr/lib/postgresql/15/bin out; out=$(mktemp)
    PGOPTIONS="-c plystra.audit_mode=off" "$bin/pgbench" -n -M prepared -c "$CLIENTS" -j 2 -T "$SECS" "${MIX[@]}" \
        -f "$GATE_SQL" -h "$SOCK" -p $PORT -U postgres bench >"$out" 2>&1 &
    local pb=$!; sleep 1
    local ids b0 c0 t0 b1 c1 t1; ids=$(backends)
    b0=$(ticks $ids); c0=$(ticks $pb); t0=$(date +%s.%N)
    sleep $((SECS - 2))
    b1=$(ticks $ids); c1=$(ticks $pb); t1=$(date +%s.%N)
    wait $pb
    local tps n; tps=$(grep -oP '^tps = \K[0-9.]+' "$out"); n=$(python3 -c "print($tps * ($t1 - $t0))")
    echo "gate statement: $(printf '%.0f' "$tps") tps, backends $(per "$b0" "$b1" "$n") µs, pgbench $(per "$c0" "$c1" "$n") µs a transaction"
}

http_round() {
    local log; log=$(mktemp)
    DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/bench" SERVER_HOST=127.0.0.1 SERVER_PORT=$HTTP_PORT \
        SERVER_MODE=production LOG_LEVEL=warn AUDIT_WRITE_MODE=disabled_for_dev DATABASE_MAX_OPEN_CONNS=20 \
        PLYSTRA_API_KEY_SECRET=$SECRET SERVER_THREADS=2 PLYSTRA_SESSION_SECRET=$SECRET \
        CORS_ALLOWED_ORIGINS=https://bench.plystra.invalid SERVER_PUBLIC_URL=https://bench.plystra.invalid \
        "$FRONT" >"$log" 2>&1 &
    local front=$!
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$HTTP_PORT/api/v1/health" >/dev/null && break; sleep 0.2; done
    local args=(-s bench/workloads/http_check.lua "http://127.0.0.1:$HTTP_PORT/api/v1/authz/check" --
                10 3 8 100000 100000 9840 3 "X-Plystra-API-Key: $TOKEN")
    wrk -t2 -c"$CLIENTS" -d2s "${args[@]}" >/dev/null
    local ids f0 b0 f1 b1 out; ids=$(backends); out=$(mktemp)
    f0=$(ticks $front); b0=$(ticks $ids)
    wrk -t2 -c"$CLIENTS" -d"${SECS}s" "${args[@]}" >"$out" 2>&1
    f1=$(ticks $front); b1=$(ticks $ids)
    kill "$front"; wait "$front" 2>/dev/null || true
    local n rps; n=$(grep -oP '"requests":\K[0-9]+' "$out"); rps=$(grep -oP 'Requests/sec:\s*\K[0-9.]+' "$out")
    grep -q '"status":0' "$out" || { echo "wrk saw failed requests:"; cat "$out"; exit 1; }
    echo "HTTP check: $(printf '%.0f' "$rps") req/s, front $(per "$f0" "$f1" "$n") µs, backends $(per "$b0" "$b1" "$n") µs a request"
}

echo "load at start: $(cat /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
    # The order flips each round, so that an order effect (a warmer machine for the second) shows as noise.
    order="A B"; [ $((round % 2)) = 0 ] && order="B A"
    for side in $order; do
        root=$A; [ $side = B ] && root=$B
        start "$root"
        echo "round $round $side: $(sql_round "$root")"
        echo "round $round $side: $(http_round)"
        stop "$root"
    done
done
echo "load at end: $(cat /proc/loadavg)"
