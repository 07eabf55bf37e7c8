#!/usr/bin/env bash
# Two builds of the REST front, A and B, alternated (the order flips each round) on the full-size data a
# `bench/run --size full` left in target/bench-pg: each round starts one front and measures
# POST /api/v1/authz/check over the check mix, audit off, at CLIENTS connections with wrk: req/s, p50, p99, and
# the CPU time a request of the front and of the PostgreSQL backends (from /proc, ticks over the measured
# window). Both fronts get the same environment (the defaults but for the bench's); AUDIT (default
# disabled_for_dev) is their AUDIT_WRITE_MODE.
# Usage: bench/ab/front_mix.sh PGROOT FRONT_A FRONT_B [ROUNDS] [CLIENTS] [SECONDS]
#   PGROOT: a directory holding usr/lib/postgresql/15 with the extension installed in it (see gate_mix.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$1 A=$2 B=$3 ROUNDS=${4:-3} CLIENTS=${5:-16} SECS=${6:-10}
BIN=$ROOT/usr/lib/postgresql/15/bin
DATA=$PWD/target/bench-pg/data
SOCK=$(mktemp -d) && chown postgres "$SOCK"
PORT=55673 HTTP_PORT=18536
SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
TOKEN="ply_ak_ab_front_mix.$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
HASH=$(printf '%s' "$TOKEN" | openssl dgst -sha256 -hmac "$SECRET" | awk '{print $NF}')
su postgres -c "$BIN/pg_ctl -D $DATA -l $SOCK/server.log -w start -o '-p $PORT -k $SOCK -c listen_addresses=127.0.0.1 \
    -c max_connections=200 -c shared_buffers=1GB -c jit=off -c shared_preload_libraries=plystra \
    -c plystra.audit_writer_database=bench -c plystra.shared_actor_cache_entries=131072'" >/dev/null
trap 'su postgres -c "$BIN/pg_ctl -D $DATA stop -m fast" >/dev/null' EXIT
psql -X -q -h "$SOCK" -p $PORT -U postgres bench -c "INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash,
    level, permission_keys) VALUES ('ab_front_mix', 'A/B front mix', 'ply_ak_ab_front_mix', '$HASH', 'instance',
    '[\"authz:check\"]') ON CONFLICT (id) DO UPDATE SET key_hash = excluded.key_hash" >/dev/null
PGOPTIONS="-c plystra.audit_mode=off" "$BIN/pgbench" -n -M prepared -c 2 -j 2 -T 20 --random-seed=7 \
    -D spaces=10 -D breadth=3 -D depth=8 -D members=100000 -D resq=100000 -D gs=9840 -D alevels=3 \
    -f bench/workloads/check.sql -h "$SOCK" -p $PORT -U postgres bench >/dev/null 2>&1
TICK=$(getconf CLK_TCK)
ticks() { local t=0 p; for p in "$@"; do [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo "$t"; }
backends() { pgrep -P "$(head -1 "$DATA/postmaster.pid")" -f "postgres: postgres bench" | tr '\n' ' '; }

round() { # front binary
    local log out; log=$(mktemp); out=$(mktemp)
    DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/bench" SERVER_HOST=127.0.0.1 SERVER_PORT=$HTTP_PORT \
        SERVER_MODE=production LOG_LEVEL=warn AUDIT_WRITE_MODE=${AUDIT:-disabled_for_dev} DATABASE_MAX_OPEN_CONNS=20 \
        PLYSTRA_API_KEY_SECRET=$SECRET PLYSTRA_SESSION_SECRET=$SECRET \
        CORS_ALLOWED_ORIGINS=https://bench.plystra.invalid SERVER_PUBLIC_URL=https://bench.plystra.invalid \
        "$1" >"$log" 2>&1 &
    local front=$!
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$HTTP_PORT/api/v1/health" >/dev/null && break; sleep 0.2; done
    local args=(-s bench/workloads/http_check.lua "http://127.0.0.1:$HTTP_PORT/api/v1/authz/check" --
                10 3 8 100000 100000 9840 3 "X-Plystra-API-Key: $TOKEN")
    wrk -t2 -c"$CLIENTS" -d2s "${args[@]}" >/dev/null
    local ids f0 b0 f1 b1; ids=$(backends)
    f0=$(ticks $front); b0=$(ticks $ids)
    wrk -t2 -c"$CLIENTS" -d"${SECS}s" "${args[@]}" >"$out" 2>&1
    f1=$(ticks $front); b1=$(ticks $(backends))
    kill "$front"; wait "$front" 2>/dev/null || true
    grep -q '"status":0' "$out" || { echo "wrk saw failed requests:"; cat "$out"; exit 1; }
    python3 - "$out" "$((f1 - f0))" "$((b1 - b0))" "$TICK" <<'PY'
import json, re, sys
d = json.loads(re.search(r"BENCHJSON\s*(\{.*\})", open(sys.argv[1]).read()).group(1))
n, tick = d["requests"], int(sys.argv[4])
per = lambda t: f"{int(t) / tick * 1e6 / n:.0f}"
print(f"{n / d['duration_us'] * 1e6:,.0f} req/s, p50 {d['p50_us'] / 1000:.2f} ms, p99 {d['p99_us'] / 1000:.2f} ms, "
      f"front {per(sys.argv[2])} µs, backends {per(sys.argv[3])} µs a request")
PY
}

echo "AUDIT_WRITE_MODE=${AUDIT:-disabled_for_dev}; load at start: $(cat /proc/loadavg); autogroup: $(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo -)"
for r in $(seq 1 "$ROUNDS"); do
    order="A B"; [ $((r % 2)) = 0 ] && order="B A"
    for side in $order; do
        front=$A; [ "$side" = B ] && front=$B
        echo "round $r $side ($CLIENTS connections): $(round "$front")"
    done
done
echo "load at end: $(cat /proc/loadavg)"
