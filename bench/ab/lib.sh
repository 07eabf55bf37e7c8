# Sourced by the bench/ab scripts: the CPU time one backend spends a call.
#
# cpu_a_call HOST PORT DATABASE SETUP CALL CALLS [AFTER]
#   Opens one psql session (PLYSTRA_PG_BIN's psql, else the system's), runs SETUP (SQL; its last statement must
#   return one row), 100 warm-up calls of CALL (an SQL expression), then CALLS calls in one statement, and prints
#   the backend's utime + stime over those calls divided by CALLS, in µs. With AFTER (a query returning one value),
#   runs it in the same session afterwards and prints its value after the figure, space-separated. CPU time from
#   /proc: other work on the machine matters far less to it than to throughput.
REQ_ALICE_APPROVES='{"actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer", "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"}, "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"}'
ALLOWED_ALICE_APPROVES="plystra.allowed('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme', 'invoice', 'invoice_001', 'approve')::text"

cpu_a_call() {
    local host=$1 port=$2 db=$3 setup=$4 call=$5 calls=$6 after=${7:-}
    local psql_bin=${PLYSTRA_PG_BIN:-/usr/lib/postgresql/15/bin}/psql
    local tick; tick=$(getconf CLK_TCK)
    coproc B { "$psql_bin" -X -q -At -h "$host" -p "$port" -U postgres -d "$db" 2>&1; }
    echo "$setup SELECT pg_backend_pid();" >&"${B[1]}"
    local pid; read -r pid <&"${B[0]}"
    echo "SELECT count($call) FROM generate_series(1, 100);" >&"${B[1]}"; local warm; read -r warm <&"${B[0]}"
    local t0; t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    echo "SELECT count($call) FROM generate_series(1, $calls);" >&"${B[1]}"; local n; read -r n <&"${B[0]}"
    local t1; t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    local value=
    if [ -n "$after" ]; then echo "$after" >&"${B[1]}"; read -r value <&"${B[0]}"; fi
    echo '\q' >&"${B[1]}"; wait "$B_PID" 2>/dev/null || true
    awk -v t="$((t1 - t0))" -v tick="$tick" -v n="$calls" -v v="$value" \
        'BEGIN { printf "%.1f%s", t / tick * 1e6 / n, (v == "" ? "" : " " v) }'
}
