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
source bench/ab/lib.sh
PORT=55672 HTTP_PORT=18535
full_data_start "$ROOT" $PORT ab_autogroup
trap 'echo "$FOUND" > $SETTING; full_data_stop' EXIT

http_round() {
    local out; out=$(mktemp)
    front_start "$FRONT" $HTTP_PORT
    check_mix_wrk "$CLIENTS" 2 $HTTP_PORT >/dev/null
    check_mix_wrk "$CLIENTS" "$SECS" $HTTP_PORT >"$out" 2>&1
    kill "$FRONT_PID"; wait "$FRONT_PID" 2>/dev/null || true
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
    (cd "$dir" && PGOPTIONS="-c plystra.audit_mode=off" "$FULL_BIN/pgbench" -n -M prepared -c "$CLIENTS" -j 2 \
        -T "$SECS" "${FULL_MIX[@]}" --log --log-prefix=t -f "$OLDPWD/bench/workloads/check.sql" -h "$FULL_SOCK" \
        -p $PORT -U postgres bench >out 2>&1)
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
