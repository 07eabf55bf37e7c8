#!/usr/bin/env bash
# Two builds of the REST front, A and B, alternated against one cluster with the demo data: each round starts
# one front, sends POST /api/v1/authz/check (Alice approves invoice_001, audit off, an instance API key holding
# authz:check) with wrk for SECONDS, and prints its requests a second, its p99, and the CPU time a request of the
# front and of the PostgreSQL backends serving it (from /proc, ticks over the measured window). Only
# alternated rounds say anything on a shared machine: the same build moves by a third between windows.
# Usage: bench/ab/front_cpu.sh BINARY_A BINARY_B PG_HOST PG_PORT DATABASE [ROUNDS] [CONNECTIONS] [SECONDS]
set -euo pipefail
A=$1 B=$2 HOST=$3 PGPORT=$4 DB=$5 ROUNDS=${6:-4} CONNS=${7:-2} SECONDS_=${8:-8}
PSQL=${PLYSTRA_PG_BIN:-/usr/lib/postgresql/15/bin}/psql
PORT=18999
SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
TOKEN="ply_ak_ab_front.$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
HASH=$(printf '%s' "$TOKEN" | openssl dgst -sha256 -hmac "$SECRET" | awk '{print $NF}')
"$PSQL" -X -q -h "$HOST" -p "$PGPORT" -U postgres "$DB" -c "INSERT INTO plystra.api_keys (id, name, key_prefix,
    key_hash, level, permission_keys) VALUES ('ab_front', 'A/B front', 'ply_ak_ab_front', '$HASH', 'instance',
    '[\"authz:check\"]') ON CONFLICT (id) DO UPDATE SET key_hash = excluded.key_hash"
BODY='{"actor": {"user_id": "user_alice", "member_id": "member_finance_reviewer", "user_member_id": "um_alice_finance_reviewer", "space_id": "space_acme"}, "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"}'
SCRIPT=$(mktemp --suffix .lua)
OUT=$(mktemp)
trap 'rm -f "$SCRIPT" "$OUT"' EXIT
cat >"$SCRIPT" <<LUA
wrk.method = "POST"
wrk.body = [[$BODY]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Plystra-API-Key"] = "$TOKEN"
LUA
ticks() { # CPU ticks (user + system) of the processes given
    local sum=0 p
    for p in "$@"; do [ -r "/proc/$p/stat" ] && sum=$((sum + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
    echo "$sum"
}
round() { # binary
    env DATABASE_URL="postgres://postgres@127.0.0.1:$PGPORT/$DB" SERVER_HOST=127.0.0.1 SERVER_PORT=$PORT \
        SERVER_MODE=production LOG_LEVEL=warn AUDIT_WRITE_MODE=disabled_for_dev DATABASE_MAX_OPEN_CONNS=20 \
        PLYSTRA_API_KEY_SECRET="$SECRET" PLYSTRA_SESSION_SECRET="$SECRET$SECRET" \
        CORS_ALLOWED_ORIGINS=https://ab.invalid SERVER_PUBLIC_URL=https://ab.invalid "$1" >/dev/null 2>&1 &
    local server=$!
    for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/api/v1/health" >/dev/null && break; sleep 0.2; done
    local url="http://127.0.0.1:$PORT/api/v1/authz/check"
    wrk -t "$CONNS" -c "$CONNS" -d 3s -s "$SCRIPT" "$url" >/dev/null # warm-up: the pool, the backends' caches
    local backends
    backends=$(pgrep -f "postgres: postgres $DB 127.0.0.1" | tr '\n' ' ')
    local s0 p0 s1 p1
    s0=$(ticks "$server")
    p0=$(ticks $backends)
    wrk -t "$CONNS" -c "$CONNS" -d "${SECONDS_}s" --latency -s "$SCRIPT" "$url" >"$OUT"
    s1=$(ticks "$server")
    p1=$(ticks $backends)
    kill "$server"
    wait "$server" 2>/dev/null || true
    local requests
    requests=$(grep -Eo '[0-9]+ requests in' "$OUT" | awk '{print $1}')
    awk -v n="$requests" -v s=$((s1 - s0)) -v p=$((p1 - p0)) -v hz="$(getconf CLK_TCK)" \
        -v rps="$(grep -Eo 'Requests/sec: +[0-9.]+' "$OUT" | awk '{print $2}')" \
        -v p99="$(awk '$1 == "99%" {print $2}' "$OUT")" \
        'BEGIN { printf "%s req/s, p99 %s, CPU a request: front %.0f µs, PostgreSQL %.0f µs", rps, p99,
                 s / hz * 1e6 / n, p / hz * 1e6 / n }'
}
echo "load at start: $(cat /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
    # The order flips each round, so that an order effect (a warmer machine for the second) shows as noise.
    if [ $((r % 2)) = 1 ]; then
        echo "round $r A: $(round "$A")"
        echo "round $r B: $(round "$B")"
    else
        echo "round $r B: $(round "$B")"
        echo "round $r A: $(round "$A")"
    fi
done
echo "load at end: $(cat /proc/loadavg)"
