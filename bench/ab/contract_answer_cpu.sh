#!/usr/bin/env bash
# CPU time of one backend a call (bench/ab/lib.sh) for plystra.check and plystra.check_batch (100 items), whose
# answers the extension writes through the decision contract's types (plystra_core::contract), and
# plystra.allowed (no answer document: the control), on one cluster with the demo data. Run it once per build
# (install one, restart the cluster, run; install the other, restart, run), alternating, for a before/after.
# Usage: bench/ab/contract_answer_cpu.sh SOCKET PORT DATABASE [ROUNDS] [CALLS]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
H=$1 P=$2 DB=$3 ROUNDS=${4:-3} CALLS=${5:-5000}
ITEM='{"resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"}'
ITEMS=$(printf "$ITEM,%.0s" $(seq 1 99))$ITEM
REQ_BATCH="{\"actor\": {\"user_id\": \"user_alice\", \"member_id\": \"member_finance_reviewer\", \"user_member_id\": \"um_alice_finance_reviewer\", \"space_id\": \"space_acme\"}, \"items\": [$ITEMS]}"
echo "load at start: $(cat /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
    check=$(cpu_a_call "$H" "$P" "$DB" "SET plystra.audit_mode = off;" \
        "plystra.check('$REQ_ALICE_APPROVES'::jsonb)->>'decision'" "$CALLS")
    batch=$(cpu_a_call "$H" "$P" "$DB" "SET plystra.audit_mode = off;" \
        "jsonb_array_length(plystra.check_batch('$REQ_BATCH'::jsonb)->'results')" "$((CALLS / 20))")
    allowed=$(cpu_a_call "$H" "$P" "$DB" "SET plystra.audit_mode = off;" "$ALLOWED_ALICE_APPROVES" "$CALLS")
    echo "round $round a call: check $check µs; check_batch(100) $batch µs; allowed $allowed µs CPU"
done
echo "load at end: $(cat /proc/loadavg)"
