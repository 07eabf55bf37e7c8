#!/usr/bin/env bash
# Where a transaction's CPU goes, by process: pgbench runs a workload on the full-size data a `bench/run --size full`
# left in target/bench-pg, and the script prints the CPU time a transaction of the serving backends, of pgbench
# itself and of the whole machine (every process and the kernel, from /proc/stat), over the same 6 s window.
# Throughput alone cannot tell a decision's own cost from what every round trip costs on this machine (waking the
# other side, the protocol); the split can, next to the floors run the same way.
# Usage: bench/ab/tx_cpu.sh PGROOT CLIENTS WORKLOAD...
#   PGROOT: a directory holding usr/lib/postgresql/15 with a release build of the extension installed.
#   WORKLOAD: a file of bench/workloads (check.sql, allowed.sql, ...), a path to another pgbench script, or `-S`
#   for pgbench's primary-key lookup. `nocall` is check.sql with the call left out (the request built and returned).
#   Each workload runs 8 s, audit off, after the check mix has run 20 s unmeasured (full_data_start).
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/ab/lib.sh
ROOT=$1 CLIENTS=$2
shift 2
full_data_start "$ROOT" 55679 ab_tx_cpu
TICK=$(getconf CLK_TCK)
NOCALL=$(mktemp --suffix .sql)
machine() { awk '/^cpu /{print $2 + $3 + $4 + $6 + $7 + $8}' /proc/stat; }
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
sed 's/^SELECT plystra.check(\(.*\));$/SELECT \1;/' bench/workloads/check.sql >"$NOCALL"
if grep -q '^SELECT plystra\.check' "$NOCALL"; then
    echo "tx_cpu.sh: could not take the call out of bench/workloads/check.sql" >&2
    exit 1
fi
printf '%-22s %8s %16s %16s %16s\n' workload tps "backends µs/tx" "pgbench µs/tx" "machine µs/tx"
for workload in "$@"; do
    case "$workload" in
        -S) what=(-S) ;;
        nocall) what=(-f "$NOCALL") ;;
        */*) what=(-f "$workload") ;;
        *) what=(-f "bench/workloads/$workload") ;;
    esac
    LOG=$(mktemp)
    PGOPTIONS="-c plystra.audit_mode=off" "$FULL_BIN/pgbench" -n -M prepared -c "$CLIENTS" -j 2 -T 8 \
        --random-seed=42 "${FULL_MIX[@]}" "${what[@]}" -h "$FULL_SOCK" -p "$FULL_PORT" -U postgres bench \
        >"$LOG" 2>&1 &
    PGBENCH=$!
    sleep 1
    POSTMASTER=$(head -1 "$FULL_DATA/postmaster.pid")
    PIDS=$(pgrep -P "$POSTMASTER" -f "postgres: postgres bench" | paste -sd' ')
    # shellcheck disable=SC2086
    B0=$(ticks $PIDS) C0=$(ticks "$PGBENCH") M0=$(machine)
    sleep 6
    # shellcheck disable=SC2086
    B1=$(ticks $PIDS) C1=$(ticks "$PGBENCH") M1=$(machine)
    wait "$PGBENCH"
    TPS=$(grep -oP 'tps = \K[0-9.]+' "$LOG")
    awk -v w="$workload" -v tps="$TPS" -v b=$((B1 - B0)) -v c=$((C1 - C0)) -v m=$((M1 - M0)) -v tick="$TICK" \
        'BEGIN { n = tps * 6; printf "%-22s %8.0f %16.1f %16.1f %16.1f\n", w, tps, b / tick * 1e6 / n,
                 c / tick * 1e6 / n, m / tick * 1e6 / n }'
    rm -f "$LOG"
done
rm -f "$NOCALL"
