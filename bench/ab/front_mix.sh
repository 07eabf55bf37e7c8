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
source bench/ab/lib.sh
PORT=55673 HTTP_PORT=18536
full_data_start "$ROOT" $PORT ab_front_mix
TICK=$(getconf CLK_TCK)
ticks() { local t=0 p; for p in "$@"; do [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo "$t"; }
backends() { pgrep -P "$(head -1 "$FULL_DATA/postmaster.pid")" -f "postgres: postgres bench" | tr '\n' ' '; }

round() { # front binary
    local out; out=$(mktemp)
    front_start "$1" $HTTP_PORT "${AUDIT:-disabled_for_dev}"
    check_mix_wrk "$CLIENTS" 2 $HTTP_PORT >/dev/null
    local ids f0 b0 f1 b1; ids=$(backends)
    f0=$(ticks $FRONT_PID); b0=$(ticks $ids)
    check_mix_wrk "$CLIENTS" "$SECS" $HTTP_PORT >"$out" 2>&1
    f1=$(ticks $FRONT_PID); b1=$(ticks $(backends))
    kill "$FRONT_PID"; wait "$FRONT_PID" 2>/dev/null || true
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
