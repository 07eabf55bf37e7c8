#!/usr/bin/env bash
# The Plystra Console in a real browser: Debian's Chromium driven by playwright-core (console-tests/run.mjs),
# against the real server on a fresh database with the demo data (Alice an instance super admin). Prints
# "console check:" then TAP lines; screenshots go to target/test-logs/console/.
# Needs PLYSTRA_TEST_PG_HOST / PLYSTRA_TEST_PG_PORT (a running cluster with the extension, set by scripts/test),
# /usr/bin/chromium and the npm packages of console-tests/ (installed here with `npm ci` from the lock file).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
echo "console check:"
host=${PLYSTRA_TEST_PG_HOST:?set by scripts/test}
port=${PLYSTRA_TEST_PG_PORT:?set by scripts/test}
db=plystra_console
work=$REPO_ROOT/target/console-tests
out=$REPO_ROOT/target/test-logs/console
mkdir -p "$work" "$out"
fail() { echo "not ok 1 - $1"; exit 1; }

[ -x /usr/bin/chromium ] || fail "/usr/bin/chromium is missing (scripts/lib.sh ensure_prerequisites installs it)"
# Exactly the locked versions, every run (a few seconds; never `npx playwright install`: the browser is Debian's).
(cd console-tests && npm ci --no-audit --no-fund --silent) || fail "npm ci in console-tests failed"
cluster_psql "$host" "$port" postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" &&
    cluster_psql "$host" "$port" "$db" -c "CREATE EXTENSION plystra" -f sql/demo.sql >/dev/null ||
    fail "the console database could not be made"
cargo build -q -p plystra_http -p plystractl --bins || fail "plystra_http did not build"
export DATABASE_URL="postgres://postgres@127.0.0.1:$port/$db"
export PLYSTRA_SESSION_SECRET=console-check-session-secret-0123456789ab
export PLYSTRA_API_KEY_SECRET=console-check-api-key-secret-0123456789ab
target/debug/plystractl admin bootstrap-super-admin --user-id user_alice --member-id member_finance_reviewer \
    --if-exists ok >/dev/null || fail "bootstrap-super-admin failed"
http_port=${PLYSTRA_CONSOLE_HTTP_PORT:-$(free_port 18640)}
SERVER_HOST=127.0.0.1 SERVER_PORT=$http_port LOG_FORMAT=text CONSOLE_ENABLED=true target/debug/plystra_http \
    >"$work/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
base=http://127.0.0.1:$http_port
for _ in $(seq 1 100); do
    curl -fsS "$base/api/v1/ready" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -fsS "$base/api/v1/ready" >/dev/null || fail "the server did not become ready (log: $work/server.log)"
# The audit writer serves the test database only; here rows are sealed into their chain the documented other
# way, by calling plystra.seal_audit() (what the writer does every second).
(while kill -0 $pid 2>/dev/null; do
    cluster_psql "$host" "$port" "$db" -Atc "SELECT plystra.seal_audit()" >/dev/null 2>&1
    sleep 1
done) &
CONSOLE_BASE=$base CONSOLE_SHOTS=$out CONSOLE_PROFILE=$work/profile node console-tests/run.mjs
