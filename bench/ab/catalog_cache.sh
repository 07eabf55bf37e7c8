#!/usr/bin/env bash
# A/B of the per-backend catalog (plystra_pg/src/catalog.rs) in one release build: the same workloads with
# plystra.catalog_cache_entries = 0 (keep nothing: every decision reads the registry, Roles and Permissions) and at
# its default, alternated, with `pgbench -S` (a primary-key lookup) as the floor in each round.
# Usage: bench/ab/catalog_cache.sh SOCKET_DIR PORT DATABASE [ROUNDS] [SECONDS]
# The database holds the demo (sql/demo.sql) with plystra.audit_mode = off and pgbench's tables (pgbench -i -s 10),
# on a cluster running a release build of the extension.
set -euo pipefail
HOST=$1 PORT=$2 DB=$3 ROUNDS=${4:-3} SECONDS_EACH=${5:-10}
PG_BIN=${PLYSTRA_PG_BIN:-/usr/lib/postgresql/15/bin}
HERE=$(cd "$(dirname "$0")" && pwd)
tps() { "$PG_BIN/pgbench" -h "$HOST" -p "$PORT" -U postgres -n -M prepared -c 2 -j 2 -T "$SECONDS_EACH" "$@" "$DB" 2>&1 |
    sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p'; }
echo "load at start: $(cat /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
    for mode in off on; do
        opts=""
        [ "$mode" = off ] && opts="-c plystra.catalog_cache_entries=0"
        for w in check allowed; do
            echo "round $round catalog kept=$mode $w tps=$(PGOPTIONS="$opts" tps -f "$HERE/${w}_demo.sql")"
        done
    done
    echo "round $round pgbench -S tps=$(tps -S)"
done
echo "load at end: $(cat /proc/loadavg)"
