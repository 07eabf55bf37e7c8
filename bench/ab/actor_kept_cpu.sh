#!/usr/bin/env bash
# CPU time of one backend for N decisions in a loop (utime + stime from /proc, so other work on the machine
# matters far less than for throughput), with the actor kept (default) and not (actor_cache_entries = 0),
# alternated; the catalog is kept in both. Usage: bench/ab/actor_kept_cpu.sh SOCKET_DIR PORT DATABASE [ROUNDS] [CALLS]
set -euo pipefail
HOST=$1 PORT=$2 DB=$3 ROUNDS=${4:-3} CALLS=${5:-20000}
PG_BIN=${PLYSTRA_PG_BIN:-/usr/lib/postgresql/15/bin}
TICK=$(getconf CLK_TCK)
REQ='{"actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer", "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"}, "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"}'
run() { # mode workload
    local setting=10000
    [ "$1" = off ] && setting=0
    local call="plystra.check('$REQ'::jsonb)->>'decision'"
    [ "$2" = allowed ] && call="plystra.allowed('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme', 'invoice', 'invoice_001', 'approve')::text"
    coproc B { "$PG_BIN/psql" -X -q -At -h "$HOST" -p "$PORT" -U postgres -d "$DB" 2>&1; }
    echo "SET plystra.actor_cache_entries = $setting; SET plystra.audit_mode = off; SELECT pg_backend_pid();" >&"${B[1]}"
    local pid; read -r pid <&"${B[0]}"
    echo "SELECT count($call) FROM generate_series(1, 100);" >&"${B[1]}"; local warm; read -r warm <&"${B[0]}"
    local t0; t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    echo "SELECT count($call) FROM generate_series(1, $CALLS);" >&"${B[1]}"; local n; read -r n <&"${B[0]}"
    local t1; t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    # The kept actor must in fact have been used (on) or not (off): a figure for the wrong path is no figure.
    echo "SELECT plystra.actor_kept_stats()->>'hits';" >&"${B[1]}"; local hits; read -r hits <&"${B[0]}"
    echo '\q' >&"${B[1]}"; wait "$B_PID" 2>/dev/null || true
    if [ "$1" = on ] && [ "$hits" -lt "$CALLS" ]; then echo "(only $hits kept-actor hits)"; return; fi
    if [ "$1" = off ] && [ "$hits" -ne 0 ]; then echo "($hits kept-actor hits with the actor not kept)"; return; fi
    awk -v t="$((t1 - t0))" -v tick="$TICK" -v n="$CALLS" 'BEGIN { printf "%.1f", t / tick * 1e6 / n }'
}
echo "load at start: $(cat /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
    for w in check allowed; do
        echo "round $round $w: actor not kept $(run off $w) µs CPU a call, kept $(run on $w) µs"
    done
done
echo "load at end: $(cat /proc/loadavg)"
