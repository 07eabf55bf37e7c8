#!/usr/bin/env bash
# CPU time of one backend a call (bench/ab/lib.sh) for the REST front's one statement a decision,
# plystra.decide_with_credential with an instance API key holding authz:check, against plystra.check of the same
# request (what the gate adds: the credential, the placement of the request's scopes, the permission), on two
# clusters with the demo data, alternated: A and B are two release builds.
# Usage: bench/ab/gate_cpu.sh SOCKET_A PORT_A SOCKET_B PORT_B DATABASE [ROUNDS] [CALLS]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
HA=$1 PA=$2 HB=$3 PB=$4 DB=$5 ROUNDS=${6:-3} CALLS=${7:-20000}
# The key's HMAC is a fixed string: the gate compares stored hashes, it never hashes.
KEY="INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, permission_keys)
     VALUES ('ab_gate_key', 'A/B gate', 'ply_ak_ab', 'ab-gate-hash', 'instance', '[\"authz:check\"]')
     ON CONFLICT DO NOTHING;"
CRED='{"api_key_id": "ab_gate_key", "api_key_hashes": ["ab-gate-hash"]}'
run() { # host port workload
    local call
    case $3 in
        check) call="plystra.check('$REQ_ALICE_APPROVES'::jsonb)->>'decision'" ;;
        gate) call="plystra.decide_with_credential('$CRED'::jsonb, 'authz:check', '$REQ_ALICE_APPROVES'::jsonb, false, false)#>>'{decision,decision}'" ;;
    esac
    echo "$(cpu_a_call "$1" "$2" "$DB" "$KEY SET plystra.audit_mode = off;" "$call" "$CALLS" "SELECT $call;") µs CPU"
}
echo "load at start: $(cat /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
    for w in check gate; do
        echo "round $round $w a call: A $(run "$HA" "$PA" $w); B $(run "$HB" "$PB" $w)"
    done
done
echo "load at end: $(cat /proc/loadavg)"
