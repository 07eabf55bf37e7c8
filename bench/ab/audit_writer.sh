#!/usr/bin/env bash
# A/B of the audit writer (issue 13): plystra.check with plystra.audit_mode = always under pgbench, one build
# against another, alternated on the same data, with the one-row JSONB insert (bench/workloads/insert_jsonb.sql,
# autocommitted, fsync on) as the floor in each round.
#
# Usage: bench/ab/audit_writer.sh OLD_PG_BIN NEW_PG_BIN DATA_DIR PORT [ROUNDS] [SECONDS]
#   OLD_PG_BIN / NEW_PG_BIN: the bin folders of two PostgreSQL 15 installs that differ only by the plystra
#   release build installed in them (same extension version). DATA_DIR is made on first use (the demo, the
#   generated data of bench/generate.sql at a small size, and the floor's table); each round starts the cluster
#   with one install, measures 2 and 16 clients for SECONDS each, stops it, then does the same with the other.
# Prints the load at start and end and one line per measurement, and per build and round the decisions made, the
# audit rows added (equal: one row a decision) and the CPU time the audit writer process used per 1,000 rows
# (from /proc: a figure that, unlike throughput, the machine's other load barely moves); at the end, whether
# every chain verifies.
set -euo pipefail
OLD=$1 NEW=$2 DIR=$3 PORT=$4 ROUNDS=${5:-3} SECONDS_EACH=${6:-10}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
DB=bench_audit
# The data's shape (bench/harness.py's "tiny" size): the writer's cost does not depend on it.
SPACES=2 BREADTH=3 DEPTH=3 MEMBERS=1000 RESQ=1000 APP_ROWS=20000 SEED=0.42
GS=$((BREADTH + BREADTH * BREADTH + BREADTH * BREADTH * BREADTH)) ALEVELS=3

start() { # start BIN [nowait]
    (PLYSTRA_PG_BIN=$1 PLYSTRA_AUDIT_DB=$DB bash -c "source '$REPO/scripts/lib.sh'; cluster_start '$DIR' '$PORT'")
    [ "${2:-}" = nowait ] && return 0
    for _ in $(seq 1 100); do
        [ "$(q "SELECT plystra.audit_writer_active()" 2>/dev/null)" = t ] && return 0
        sleep 0.2
    done
    echo "the audit writer did not start" >&2
    return 1
}
stop() { (PLYSTRA_PG_BIN=$1 bash -c "source '$REPO/scripts/lib.sh'; cluster_stop '$DIR'"); }
writer_cpu_ticks() { # utime + stime of the audit writer process, in clock ticks
    local pid
    pid=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'plystra audit writer'")
    awk '{print $14 + $15}' "/proc/$pid/stat"
}
q() { psql -X -q -At -h "$DIR" -p "$PORT" -U postgres -d "$DB" -c "$1"; }
run() { # run BIN CLIENTS SCRIPT [PGOPTIONS]: prints "tps processed"
    PGOPTIONS=${4:-} "$1/pgbench" -n -h "$DIR" -p "$PORT" -U postgres -M prepared -c "$2" -j 2 -T "$SECONDS_EACH" \
        -D spaces=$SPACES -D breadth=$BREADTH -D depth=$DEPTH -D members=$MEMBERS -D resq=$RESQ -D gs=$GS \
        -D alevels=$ALEVELS -f "$REPO/bench/workloads/$3" "$DB" 2>&1 |
        awk '/^tps = .*without initial/ {t = $3} /actually processed/ {p = $NF} END {print t, p}'
}

if [ ! -f "$DIR/data/PG_VERSION" ]; then
    start "$NEW" nowait
    psql -X -q -h "$DIR" -p "$PORT" -U postgres -d postgres -c "CREATE DATABASE $DB"
    p() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U postgres -d "$DB" "$@" >/dev/null; }
    p -c "CREATE EXTENSION plystra"
    p -f "$REPO/sql/demo.sql"
    p -f "$REPO/sql/examples/invoices_rls.sql"
    p -v spaces=$SPACES -v breadth=$BREADTH -v depth=$DEPTH -v members=$MEMBERS -v resq=$RESQ -v app_rows=$APP_ROWS \
        -v seed=$SEED -f "$REPO/bench/generate.sql"
    p -c "CREATE SCHEMA bench; CREATE TABLE bench.floor_insert (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, doc jsonb NOT NULL)"
    p -c "VACUUM (ANALYZE)"
    stop "$NEW"
fi

echo "load at start: $(cat /proc/loadavg)"
n_round=0
for round in $(seq 1 "$ROUNDS"); do
    # The order flips each round, so that an order effect (a warmer machine for the second) shows as noise.
    order="old new"; [ $((round % 2)) = 0 ] && order="new old"
    for build in $order; do
        bin=$OLD
        [ "$build" = new ] && bin=$NEW
        start "$bin"
        before=$(q "SELECT count(*) FROM plystra.audit_logs")
        ticks_before=$(writer_cpu_ticks)
        for clients in 2 16; do
            q "CHECKPOINT"
            read -r tps n < <(run "$bin" "$clients" check.sql "-c plystra.audit_mode=always")
            q "CHECKPOINT"
            read -r floor _ < <(run "$bin" "$clients" insert_jsonb.sql)
            echo "round $round build=$build clients=$clients check_always_tps=$tps insert_jsonb_tps=$floor ratio=$(
                awk -v a="$tps" -v b="$floor" 'BEGIN {printf "%.2f", a / b}')"
            n_round=$((n_round + n))
        done
        ticks_after=$(writer_cpu_ticks)
        after=$(q "SELECT count(*) FROM plystra.audit_logs")
        echo "round $round build=$build decisions=$n_round audit_rows_added=$((after - before)) writer_cpu_ms_per_1000_rows=$(
            awk -v t=$((ticks_after - ticks_before)) -v hz="$(getconf CLK_TCK)" -v n=$((after - before)) \
                'BEGIN {printf "%.1f", t * 1000 / hz * 1000 / n}')"
        n_round=0
        stop "$bin"
    done
done
echo "load at end: $(cat /proc/loadavg)"
start "$NEW"
echo "chains with a problem: $(q "SELECT count(*) FROM plystra.verify_audit_chain() WHERE problem IS NOT NULL")"
stop "$NEW"
