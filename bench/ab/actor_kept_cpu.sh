#!/usr/bin/env bash
# CPU time of one backend for N decisions in a loop (bench/ab/lib.sh), with the actor kept (default) and not
# (actor_cache_entries = 0), alternated; the catalog is kept in both.
# Usage: bench/ab/actor_kept_cpu.sh SOCKET_DIR PORT DATABASE [ROUNDS] [CALLS]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
HOST=$1 PORT=$2 DB=$3 ROUNDS=${4:-3} CALLS=${5:-20000}
run() { # mode workload
    local setting=10000
    [ "$1" = off ] && setting=0
    local call="plystra.check('$REQ_ALICE_APPROVES'::jsonb)->>'decision'"
    [ "$2" = allowed ] && call=$ALLOWED_ALICE_APPROVES
    local figure hits
    read -r figure hits < <(cpu_a_call "$HOST" "$PORT" "$DB" \
        "SET plystra.actor_cache_entries = $setting; SET plystra.audit_mode = off;" "$call" "$CALLS" \
        "SELECT plystra.actor_kept_stats()->>'hits';")
    # The kept actor must in fact have been used (on) or not (off): a figure for the wrong path is no figure.
    if [ "$1" = on ] && [ "$hits" -lt "$CALLS" ]; then echo "(only $hits kept-actor hits)"; return; fi
    if [ "$1" = off ] && [ "$hits" -ne 0 ]; then echo "($hits kept-actor hits with the actor not kept)"; return; fi
    echo "$figure"
}
echo "load at start: $(cat /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
    for w in check allowed; do
        echo "round $round $w: actor not kept $(run off $w) µs CPU a call, kept $(run on $w) µs"
    done
done
echo "load at end: $(cat /proc/loadavg)"
