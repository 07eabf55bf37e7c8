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

# The full-size data of a `bench/run --size full` (target/bench-pg), served for HTTP A/B rounds.
#
# full_data_start PGROOT PORT KEY_ID
#   Starts that cluster with PGROOT's binaries (a directory holding usr/lib/postgresql/15 with the extension
#   installed; pg_ctl gives the postmaster a session of its own, as the benchmark's cluster has) on PORT, in a new
#   socket directory (FULL_SOCK), stops it when the script exits, adds an instance API key KEY_ID holding
#   authz:check under a new secret (FULL_SECRET; its token in FULL_TOKEN), and runs the check mix unmeasured for
#   20 s (a running server holds its actors).
# front_start FRONT HTTP_PORT [AUDIT_WRITE_MODE]
#   Starts the REST front binary FRONT on HTTP_PORT against that cluster (the bench's environment: a pool of 20,
#   production mode) and waits until it answers /health; its pid in FRONT_PID.
# check_mix_wrk CLIENTS SECONDS HTTP_PORT
#   wrk's check mix (bench/workloads/http_check.lua) against that front with FULL_TOKEN, printing wrk's output.
full_data_start() {
    local root=$1 port=$2 key=$3
    FULL_BIN=$root/usr/lib/postgresql/15/bin FULL_PORT=$port FULL_DATA=$PWD/target/bench-pg/data
    FULL_SOCK=$(mktemp -d) && chown postgres "$FULL_SOCK"
    FULL_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    FULL_TOKEN="ply_ak_$key.$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    local hash; hash=$(printf '%s' "$FULL_TOKEN" | openssl dgst -sha256 -hmac "$FULL_SECRET" | awk '{print $NF}')
    su postgres -c "$FULL_BIN/pg_ctl -D $FULL_DATA -l $FULL_SOCK/server.log -w start -o '-p $port -k $FULL_SOCK \
        -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=1GB -c jit=off \
        -c shared_preload_libraries=plystra -c plystra.audit_writer_database=bench \
        -c plystra.shared_actor_cache_entries=131072'" >/dev/null
    trap 'full_data_stop' EXIT
    psql -X -q -h "$FULL_SOCK" -p "$port" -U postgres bench -c "INSERT INTO plystra.api_keys (id, name, key_prefix,
        key_hash, level, permission_keys) VALUES ('$key', 'A/B', 'ply_ak_$key', '$hash', 'instance',
        '[\"authz:check\"]') ON CONFLICT (id) DO UPDATE SET key_hash = excluded.key_hash" >/dev/null
    PGOPTIONS="-c plystra.audit_mode=off" "$FULL_BIN/pgbench" -n -M prepared -c 2 -j 2 -T 20 --random-seed=7 \
        "${FULL_MIX[@]}" -f bench/workloads/check.sql -h "$FULL_SOCK" -p "$port" -U postgres bench >/dev/null 2>&1
}
FULL_MIX=(-D spaces=10 -D breadth=3 -D depth=8 -D members=100000 -D resq=100000 -D gs=9840 -D alevels=3)
full_data_stop() { su postgres -c "$FULL_BIN/pg_ctl -D $FULL_DATA stop -m fast" >/dev/null; }

front_start() {
    local front=$1 port=$2 audit=${3:-disabled_for_dev}
    DATABASE_URL="postgres://postgres@127.0.0.1:$FULL_PORT/bench" SERVER_HOST=127.0.0.1 SERVER_PORT=$port \
        SERVER_MODE=production LOG_LEVEL=warn AUDIT_WRITE_MODE=$audit DATABASE_MAX_OPEN_CONNS=20 \
        PLYSTRA_API_KEY_SECRET=$FULL_SECRET PLYSTRA_SESSION_SECRET=$FULL_SECRET \
        CORS_ALLOWED_ORIGINS=https://bench.plystra.invalid SERVER_PUBLIC_URL=https://bench.plystra.invalid \
        "$front" >"$FULL_SOCK/front.log" 2>&1 &
    FRONT_PID=$!
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/api/v1/health" >/dev/null && break; sleep 0.2; done
}

check_mix_wrk() {
    wrk -t2 -c"$1" -d"$2s" -s bench/workloads/http_check.lua "http://127.0.0.1:$3/api/v1/authz/check" -- \
        10 3 8 100000 100000 9840 3 "X-Plystra-API-Key: $FULL_TOKEN"
}
