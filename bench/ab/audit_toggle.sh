#!/usr/bin/env bash
# A/B of one setting of the audit log, switched by SQL on one running cluster (no restart, one build): the audited
# check (plystra.check, plystra.audit_mode = always) at 2 and 16 clients under each setting, alternated round by
# round, with the audit writer's CPU time a row (from /proc, which the machine's other load barely moves).
#
# Usage: bench/ab/audit_toggle.sh DATA_DIR PORT ROUNDS SECONDS 'SQL of A' 'SQL of B' ['SQL at the end']
#   DATA_DIR: a cluster made by bench/ab/audit_writer.sh (database bench_audit), running on PORT.
# Example (the trace's storage, bench/results/ab-audit-storage.md):
#   bench/ab/audit_toggle.sh /work/abpg 55700 3 10 \
#     'ALTER TABLE plystra.audit_logs ALTER COLUMN trace SET STORAGE extended' \
#     'ALTER TABLE plystra.audit_logs ALTER COLUMN trace SET STORAGE main' \
#     'ALTER TABLE plystra.audit_logs ALTER COLUMN trace SET STORAGE extended'
set -uo pipefail
DIR=$1 PORT=$2 ROUNDS=$3 SECS=$4 A=$5 B=$6 END=${7:-}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${PLYSTRA_PG_BIN:-/usr/lib/postgresql/15/bin}
q() { "$BIN/psql" -X -q -At -h "$DIR" -p "$PORT" -U postgres -d bench_audit -v ON_ERROR_STOP=1 -c "$1"; }
writer_ticks() {
    local pid
    pid=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'plystra audit writer'")
    awk '{print $14 + $15}' "/proc/$pid/stat"
}
run() { # run CLIENTS: "tps processed"
    PGOPTIONS="-c plystra.audit_mode=always" "$BIN/pgbench" -n -h "$DIR" -p "$PORT" -U postgres -M prepared -c "$1" \
        -j 2 -T "$SECS" -D spaces=2 -D breadth=3 -D depth=3 -D members=1000 -D resq=1000 -D gs=39 -D alevels=3 \
        -f "$REPO/bench/workloads/check.sql" bench_audit 2>&1 |
        awk '/^tps = .*without initial/ {t = $3} /actually processed/ {p = $NF} END {print t, p}'
}
echo "load at start: $(cat /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
    order="A B"; [ $((round % 2)) = 0 ] && order="B A"
    for side in $order; do
        sql=$A; [ "$side" = B ] && sql=$B
        q "$sql" >/dev/null || exit 1
        for clients in 2 16; do
            q "CHECKPOINT"
            t0=$(writer_ticks)
            read -r tps n < <(run "$clients")
            t1=$(writer_ticks)
            echo "round $round side=$side clients=$clients tps=$tps rows=$n writer_us_a_row=$(
                awk -v t=$((t1 - t0)) -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.0f", t / hz * 1e6 / n}')"
        done
    done
done
[ -n "$END" ] && q "$END" >/dev/null
echo "load at end: $(cat /proc/loadavg)"
