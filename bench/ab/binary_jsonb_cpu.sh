#!/usr/bin/env bash
# CPU time of one backend a call (utime + stime from /proc over N calls in one statement, so other work on the
# machine matters far less than for throughput; this VM has no hardware counters for perf stat) for plystra.check, plystra.explain and plystra.allowed on two
# clusters with the demo data, alternated: A and B are two release builds (here: before and after the jsonb
# arguments and answers were read and written in jsonb's binary form). plystra.allowed takes and returns no jsonb:
# it is the control.
# Usage: bench/ab/binary_jsonb_cpu.sh SOCKET_A PORT_A SOCKET_B PORT_B DATABASE [ROUNDS] [CALLS]
set -euo pipefail
HA=$1 PA=$2 HB=$3 PB=$4 DB=$5 ROUNDS=${6:-3} CALLS=${7:-20000}
TICK=$(getconf CLK_TCK)
REQ='{"actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer", "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"}, "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"}'
run() { # host port workload
    local call
    case $3 in
        check) call="plystra.check('$REQ'::jsonb)->>'decision'" ;;
        explain) call="plystra.explain('$REQ'::jsonb)->>'decision'" ;;
        allowed) call="plystra.allowed('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme', 'invoice', 'invoice_001', 'approve')::text" ;;
    esac
    coproc B { psql -X -q -At -h "$1" -p "$2" -U postgres -d "$DB" 2>&1; }
    echo "SET plystra.audit_mode = off; SELECT pg_backend_pid();" >&"${B[1]}"
    local pid; read -r pid <&"${B[0]}"
    echo "SELECT count($call) FROM generate_series(1, 200);" >&"${B[1]}"; local warm; read -r warm <&"${B[0]}"
    local t0; t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    echo "SELECT count($call) FROM generate_series(1, $CALLS);" >&"${B[1]}"; local n; read -r n <&"${B[0]}"
    local t1; t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    echo '\q' >&"${B[1]}"; wait "$B_PID" 2>/dev/null || true
    awk -v t="$((t1 - t0))" -v tick="$TICK" -v n="$CALLS" 'BEGIN { printf "%.1f µs CPU", t / tick * 1e6 / n }'
}
echo "load at start: $(cat /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
    for w in check explain allowed; do
        echo "round $round $w a call: A $(run "$HA" "$PA" $w); B $(run "$HB" "$PB" $w)"
    done
done
echo "load at end: $(cat /proc/loadavg)"
