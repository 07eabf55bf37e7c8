#!/usr/bin/env bash
# CPU time of one backend a call (bench/ab/lib.sh) for plystra.check, plystra.explain and plystra.allowed on two
# clusters with the demo data, alternated: A and B are two release builds (here: before and after the jsonb
# arguments and answers were read and written in jsonb's binary form). plystra.allowed takes and returns no jsonb:
# it is the control.
# Usage: bench/ab/binary_jsonb_cpu.sh SOCKET_A PORT_A SOCKET_B PORT_B DATABASE [ROUNDS] [CALLS]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
HA=$1 PA=$2 HB=$3 PB=$4 DB=$5 ROUNDS=${6:-3} CALLS=${7:-20000}
run() { # host port workload
    local call
    case $3 in
        check) call="plystra.check('$REQ_ALICE_APPROVES'::jsonb)->>'decision'" ;;
        explain) call="plystra.explain('$REQ_ALICE_APPROVES'::jsonb)->>'decision'" ;;
        allowed) call=$ALLOWED_ALICE_APPROVES ;;
    esac
    echo "$(cpu_a_call "$1" "$2" "$DB" "SET plystra.audit_mode = off;" "$call" "$CALLS") µs CPU"
}
echo "load at start: $(cat /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
    for w in check explain allowed; do
        echo "round $round $w a call: A $(run "$HA" "$PA" $w); B $(run "$HB" "$PB" $w)"
    done
done
echo "load at end: $(cat /proc/loadavg)"
