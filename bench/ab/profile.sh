#!/usr/bin/env bash
# A perf profile of PostgreSQL's side of one SQL workload on the full-size data a `bench/run --size full` left in
# target/bench-pg: the backends serving pgbench, or the audit writer. Prints pgbench's figures, the profiled
# processes' CPU over the window, and the top of `perf report` (self and inclusive).
# Usage: bench/ab/profile.sh PGROOT WORKLOAD CLIENTS AUDIT_MODE [backends|writer] [OUT]
#   PGROOT: a directory holding usr/lib/postgresql/15 with a release build of the extension installed.
#   WORKLOAD: a file of bench/workloads (check.sql, check_batch.sql, ...). AUDIT_MODE: off, deny_only or always.
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/ab/lib.sh
ROOT=$1 WORKLOAD=$2 CLIENTS=$3 AUDIT=$4 WHO=${5:-backends} OUT=${6:-$(mktemp --suffix .perf)}
full_data_start "$ROOT" 55678 ab_profile
BATCHES=$(psql -X -At -h "$FULL_SOCK" -p "$FULL_PORT" -U postgres bench -c "SELECT count(*) FROM bench.batches")
LOG=$(mktemp)
PGOPTIONS="-c plystra.audit_mode=$AUDIT" "$FULL_BIN/pgbench" -n -M prepared -c "$CLIENTS" -j 2 -T 14 --random-seed=42 \
    "${FULL_MIX[@]}" -D batches="$BATCHES" -f "bench/workloads/$WORKLOAD" -h "$FULL_SOCK" -p "$FULL_PORT" -U postgres \
    bench >"$LOG" 2>&1 &
PGBENCH=$!
sleep 3
POSTMASTER=$(head -1 "$FULL_DATA/postmaster.pid")
if [ "$WHO" = writer ]; then
    PIDS=$(pgrep -P "$POSTMASTER" -f "plystra audit writer" | paste -sd,)
else
    PIDS=$(pgrep -P "$POSTMASTER" -f "postgres: postgres bench" | paste -sd,)
fi
ticks() { local t=0 p; for p in ${PIDS//,/ }; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo "$t"; }
T0=$(ticks) W0=$(date +%s.%N)
perf record -F 1999 -g -p "$PIDS" -o "$OUT" -- sleep 8 2>&1 | tail -1
T1=$(ticks) W1=$(date +%s.%N)
wait "$PGBENCH"
grep -E '^tps|latency average' "$LOG"
echo "$WHO ($PIDS): $(python3 -c "print(round(($T1 - $T0) / $(getconf CLK_TCK) / ($W1 - $W0), 2))") cores busy while profiled"
echo "--- self"
perf report -i "$OUT" --no-children -g none --sort dso,symbol 2>/dev/null | grep -E '^ +[0-9]' | head -25 | cut -c1-110 || true
echo "--- inclusive"
perf report -i "$OUT" --children -g none --sort symbol 2>/dev/null | grep -E '^ +[0-9]' | grep -v '\] 0x0000' | head -40 | cut -c1-110 || true
