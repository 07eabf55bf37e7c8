#!/usr/bin/env bash
# CPU time of one backend for N decisions in a loop (bench/ab/lib.sh), with the catalog kept (default) and not
# (catalog_cache_entries = 0), alternated.
# Usage: bench/ab/catalog_cache_cpu.sh SOCKET_DIR PORT DATABASE [ROUNDS] [CALLS]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
HOST=$1 PORT=$2 DB=$3 ROUNDS=${4:-3} CALLS=${5:-20000}
run() { # mode workload
    local setting=10000
    [ "$1" = off ] && setting=0
    local call="plystra.check('$REQ_ALICE_APPROVES'::jsonb)->>'decision'"
    [ "$2" = allowed ] && call=$ALLOWED_ALICE_APPROVES
    cpu_a_call "$HOST" "$PORT" "$DB" "SET plystra.catalog_cache_entries = $setting; SET plystra.audit_mode = off;" \
        "$call" "$CALLS"
}
echo "load at start: $(cat /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
    for w in check allowed; do
        echo "round $round $w: catalog not kept $(run off $w) µs CPU a call, kept $(run on $w) µs"
    done
done
echo "load at end: $(cat /proc/loadavg)"
