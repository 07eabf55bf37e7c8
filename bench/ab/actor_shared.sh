#!/usr/bin/env bash
# Two installations of the extension, A and B (each a PostgreSQL bin folder whose lib holds its plystra.so),
# alternated on the full-size data a `bench/run --size full` left in target/bench-pg: each round restarts that
# cluster with one installation (the library is preloaded, so a restart is what switches it), runs the check
# workload once to warm it (8 s, not reported: a later workload of a real run finds what earlier ones filled),
# then measures it at CLIENTS clients and the primary-key lookup (pgbench -S) right after, and prints each one's
# transactions a second and the CPU time a transaction of the PostgreSQL backends and of pgbench (from /proc,
# ticks over the measured window). Only alternated rounds say anything on a shared machine.
# Usage: [WORKLOAD=check_batch.sql] bench/ab/actor_shared.sh BIN_A BIN_B [ROUNDS] [CLIENTS] [SERVER OPTIONS]
# (WORKLOAD: a script of bench/workloads, check.sql by default; it warms and is measured in place of the check.)
set -euo pipefail
cd "$(dirname "$0")/../.."
A=$1 B=$2 ROUNDS=${3:-3} CLIENTS=${4:-2} OPTIONS=${5:-"-c plystra.shared_actor_cache_entries=131072"}
DATA=$PWD/target/bench-pg/data
SOCKET=$(mktemp -d)
chown postgres: "$SOCKET"
PORT=55661
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
DEFINES=(-D spaces=10 -D breadth=3 -D depth=8 -D members=100000 -D resq=100000 -D gs=9840 -D alevels=3 -D batches=5000)
WORKLOAD=${WORKLOAD:-check.sql}
server() { # start|stop BIN
    if [ "$1" = stop ]; then
        su postgres -c "$2/pg_ctl -D $DATA -w stop -m fast" >/dev/null
        return
    fi
    su postgres -c "$2/pg_ctl -D $DATA -l $SOCKET/server.log -w start -o '-p $PORT -k $SOCKET \
        -c listen_addresses= -c max_connections=200 -c shared_buffers=1GB -c jit=off \
        -c shared_preload_libraries=plystra -c plystra.audit_writer_database=bench $OPTIONS'" >/dev/null
}
ticks() { # PID...: their CPU ticks (user + system); a process gone by then counts 0 (its delta is then wrong:
    # at 16 clients a backend of the previous run may still be exiting when the list is taken)
    local sum=0 p t
    for p in "$@"; do
        t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null) || t=0
        sum=$((sum + ${t:-0}))
    done
    echo "$sum"
}
measure() { # BIN [pgbench arguments...]: "tps backend-µs pgbench-µs"
    local bin=$1; shift
    PGOPTIONS="-c plystra.audit_mode=off" "$bin/pgbench" -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -T 8 "$@" \
        "${DEFINES[@]}" -h "$SOCKET" -p "$PORT" -U postgres bench >"$OUT" 2>&1 &
    local client=$!
    sleep 1
    local backends; backends=$(pgrep -f "postgres: postgres bench \[local\]" | tr '\n' ' ')
    local b0 c0 t0 b1 c1 t1
    # shellcheck disable=SC2086
    b0=$(ticks $backends); c0=$(ticks $client); t0=$(date +%s.%N)
    sleep 6
    # shellcheck disable=SC2086
    b1=$(ticks $backends); c1=$(ticks $client); t1=$(date +%s.%N)
    wait "$client"
    local tps; tps=$(grep -o '^tps = [0-9.]*' "$OUT" | awk '{print $3}')
    awk -v b=$((b1 - b0)) -v c=$((c1 - c0)) -v tps="$tps" -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { n = tps * (t1 - t0); printf "%.0f tps, backends %.1f µs, pgbench %.1f µs", tps, b / hz * 1e6 / n, c / hz * 1e6 / n }'
}
server stop "$A" 2>/dev/null || true
for round in $(seq 1 "$ROUNDS"); do
    # The order flips each round, so that an order effect (a warmer machine for the second) shows as noise.
    order="A B"; [ $((round % 2)) = 0 ] && order="B A"
    for build in $order; do
        bin=$A; [ "$build" = B ] && bin=$B
        server start "$bin"
        measure "$bin" -f "bench/workloads/$WORKLOAD" >/dev/null
        check=$(measure "$bin" -f "bench/workloads/$WORKLOAD")
        lookup=$(measure "$bin" -S)
        echo "round $round $build: ${WORKLOAD%.sql} $check | pgbench -S $lookup"
        server stop "$bin"
    done
done
rm -rf "$SOCKET"
