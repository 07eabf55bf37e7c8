#!/usr/bin/env bash
# The kernel's per-session CPU groups (`kernel.sched_autogroup_enabled`), on and off in alternated rounds (the
# order flips each round), on the full-size data a `bench/run --size full` left in target/bench-pg: each round
# starts the REST front (FRONT, a release binary) and measures POST /api/v1/authz/check over the check mix, audit
# off, at CLIENTS connections with wrk: req/s, p50, p99 and the slowest request; then the same for `plystra.check`
# over the mix from pgbench (tps and its latency's p99, from pgbench --log). The setting found is put back at the
# end. Run as root (the setting is the kernel's).
# Usage: bench/ab/autogroup.sh PGROOT FRONT [ROUNDS] [CLIENTS] [SECONDS]
#   PGROOT: a directory holding usr/lib/postgresql/15 with the extension installed in it (see gate_mix.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$1 FRONT=$2 ROUNDS=${3:-3} CLIENTS=${4:-16} SECS=${5:-12}
SETTING=/proc/sys/kernel/sched_autogroup_enabled
FOUND=$(cat $SETTING)
BIN=$ROOT/usr/lib/postgresql/15/bin
DATA=$PWD/target/bench-pg/data
SOCK=$(mktemp -d) && chown postgres "$SOCK"
PORT=55672 HTTP_PORT=18535
MIX=(-D spaces=10 -D breadth=3 -D depth=8 -D members=100000 -D resq=100000 -D gs=9840 -D alevels=3)
SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
TOKEN="ply_ak_ab_autogroup.$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
HASH=$(printf '%s' "$TOKEN" | openssl dgst -sha256 -hmac "$SECRET" | awk '{print $NF}')
# pg_ctl starts the postmaster in a session of its own, as the benchmark's cluster is started.
su postgres -c "$BIN/pg_ctl -D $DATA -l $SOCK/server.log -w start -o '-p $PORT -k $SOCK -c listen_addresses=127.0.0.1 \
    -c max_connections=200 -c shared_buffers=1GB -c jit=off -c shared_preload_libraries=plystra \
    -c plystra.audit_writer_database=bench -c plystra.shared_actor_cache_entries=131072'" >/dev/null
trap 'echo "$FOUND" > $SETTING; su postgres -c "$BIN/pg_ctl -D $DATA stop -m fast" >/dev/null' EXIT
psql -X -q -h "$SOCK" -p $PORT -U postgres bench -c "INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash,
    level, permission_keys) VALUES ('ab_autogroup', 'A/B autogroup', 'ply_ak_ab_autogroup', '$HASH', 'instance',
    '[\"authz:check\"]') ON CONFLICT (id) DO UPDATE SET key_hash = excluded.key_hash" >/dev/null
PGOPTIONS="-c plystra.audit_mode=off" "$BIN/pgbench" -n -M prepared -c 2 -j 2 -T 20 --random-seed=7 "${MIX[@]}" \
    -f bench/workloads/check.sql -h "$SOCK" -p $PORT -U postgres bench >/dev/null 2>&1

http_round() {
    local log out; log=$(mktemp); out=$(mktemp)
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
    wrk -t2 -c"$CLIENTS" -d"${SECS}s" "${args[@]}" >"$out" 2>&1
    kill "$front"; wait "$front" 2>/dev/null || true
    grep -q '"status":0' "$out" || { echo "wrk saw failed requests:"; cat "$out"; exit 1; }
    python3 - "$out" <<'PY'
import json, re, sys
d = json.loads(re.search(r"BENCHJSON\s*(\{.*\})", open(sys.argv[1]).read()).group(1))
ms = lambda us: f"{us / 1000:.1f}"
print(f"HTTP check {d['requests'] / d['duration_us'] * 1e6:,.0f} req/s, p50 {ms(d['p50_us'])} ms, p99 {ms(d['p99_us'])} ms, "
      f"slowest {ms(d['max_us'])} ms")
PY
}

sql_round() {
    local dir; dir=$(mktemp -d)
    (cd "$dir" && PGOPTIONS="-c plystra.audit_mode=off" "$BIN/pgbench" -n -M prepared -c "$CLIENTS" -j 2 -T "$SECS" \
        "${MIX[@]}" --log --log-prefix=t -f "$OLDPWD/bench/workloads/check.sql" -h "$SOCK" -p $PORT -U postgres bench \
        >out 2>&1)
    python3 - "$dir" <<'PY'
import glob, re, sys
lat = sorted(int(l.split()[2]) for f in glob.glob(sys.argv[1] + "/t.*") for l in open(f))
tps = re.search(r"tps = ([0-9.]+)", open(sys.argv[1] + "/out").read()).group(1)
print(f"plystra.check {float(tps):,.0f} tps, p99 {lat[int(len(lat) * 0.99)] / 1000:.1f} ms, slowest {lat[-1] / 1000:.1f} ms")
PY
    rm -rf "$dir"
}

echo "load at start: $(cat /proc/loadavg); autogroup found: $FOUND; $CLIENTS connections, $SECS s"
for round in $(seq 1 "$ROUNDS"); do
    order="1 0"; [ $((round % 2)) = 0 ] && order="0 1"
    for value in $order; do
        echo "$value" > $SETTING
        echo "round $round autogroup=$value: $(http_round)"
        echo "round $round autogroup=$value: $(sql_round)"
    done
done
echo "load at end: $(cat /proc/loadavg)"
