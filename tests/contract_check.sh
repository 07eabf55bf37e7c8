#!/usr/bin/env bash
# The REST front's published contract, checked by tools nobody here wrote:
#   1. openapi-spec-validator accepts plystra_http/openapi.json (the document the server serves; the openapi
#      test of plystra_http keeps the file equal to it) with no error;
#   1b. its decision and batch request schemas accept exactly the requests the extension's parser accepts
#      (jsonschema against plystra.check and plystra.check_batch, tests/contract_rules.py), and its AuthZEN
#      request schemas exactly those the front accepts (tests/contract_rules_authzen.py);
#   1c. a client generated from it by openapi-python-client calls every operation and reads every answer
#      (tests/python_client.py);
#   2. schemathesis, bounded to a few minutes (coverage, fuzzing and stateful phases unless CONTRACT_PHASES names others,
#      a fixed seed), against a server this script starts on a fresh database with the demo data, finds no
#      server error, no answer with a status the document does not list, and no answer that does not match its
#      documented schema or content type.
# Step 2 needs PLYSTRA_TEST_PG_HOST / PLYSTRA_TEST_PG_PORT (a running cluster with the extension installed, set
# by scripts/test); without them it is skipped and says so. The tools come from scripts/lib.sh
# ensure_python_tools (target/python-tools).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
n=0
fails=0
tap() { # tap OK|FAIL description
    n=$((n + 1))
    if [ "$1" = OK ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi
}
echo "contract check:"

out=$("$PYTHON_TOOLS_VENV/bin/openapi-spec-validator" --validation-errors all plystra_http/openapi.json 2>&1)
if [ $? -eq 0 ]; then
    tap OK "openapi-spec-validator accepts plystra_http/openapi.json"
else
    printf '%s\n' "$out" | head -n 40
    tap FAIL "openapi-spec-validator: $(printf '%s\n' "$out" | grep -c 'Validation Error') errors in plystra_http/openapi.json"
fi

run_schemathesis() {
    local host=$PLYSTRA_TEST_PG_HOST port=$PLYSTRA_TEST_PG_PORT db=plystra_contract work=$REPO_ROOT/target/contract
    mkdir -p "$work"
    # The tool copies values it has read in answers into the rows it writes, by field name: an API key's `key` (the
    # whole secret, from creating a key) becomes a Role's `key`, and PostgreSQL's log echoes such values in its
    # error details (a duplicate key, a failing row). Its thousands of refused writes are the tool's data, not
    # ours: this database's sessions log FATAL and worse only, so that the test cluster's log, which the secrets
    # check reads, holds what the product logs. (The front's own log, target/contract/server.log, is checked.)
    cluster_psql "$host" "$port" postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" \
        -c "ALTER DATABASE $db SET log_min_messages = fatal" &&
        cluster_psql "$host" "$port" "$db" -c "CREATE EXTENSION plystra" -f sql/demo.sql >/dev/null || return 1
    cargo build -q -p plystra_http -p plystractl --bins || return 1
    export DATABASE_URL="postgres://postgres@127.0.0.1:$port/$db"
    export PLYSTRA_SESSION_SECRET=contract-check-session-secret-0123456789ab
    export PLYSTRA_API_KEY_SECRET=contract-check-api-key-secret-0123456789ab
    target/debug/plystractl admin bootstrap-super-admin --user-id user_alice --member-id member_finance_reviewer \
        --if-exists ok >/dev/null || return 1
    local http_port
    http_port=$(free_port 18620)
    SERVER_HOST=127.0.0.1 SERVER_PORT=$http_port LOG_FORMAT=text target/debug/plystra_http >"$work/server.log" 2>&1 &
    local pid=$!
    # shellcheck disable=SC2064 # the pid is fixed now
    trap "kill $pid 2>/dev/null" RETURN
    local base=http://127.0.0.1:$http_port/api/v1
    for _ in $(seq 1 100); do
        curl -fsS "$base/ready" >/dev/null 2>&1 && break
        sleep 0.2
    done
    local field='import json,sys; print(json.load(sys.stdin)["data"][sys.argv[1]])'
    local token key
    token=$(curl -fsS -X POST "$base/auth/login" -H 'Content-Type: application/json' \
        -d '{"email": "alice@example.com", "password": "plystra-demo"}' | python3 -c "$field" access_token) || return 1
    key=$(curl -fsS -X POST "$base/api-keys" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        -d '{"name": "contract check", "level": "instance", "permission_keys": ["*"]}' |
        python3 -c "$field" api_key) || return 1
    # The key authenticates every request (auto sign-up off: the document's login is not a sign-up). Operations
    # that would end the run's own credential (revoking its key or its creator's standing, disabling or
    # changing its creator) are left out: the tool finds the ids in list answers and would lock itself out. No
    # example database is kept between runs (the fixed seed makes a run repeatable).
    # A Python client generated from the document calls every operation and must read every answer
    # (tests/python_client.py; its report in target/contract/python-client.log, the tap below).
    rm -rf "$work/plystra_client"
    if PATH="$PYTHON_TOOLS_VENV/bin:$PATH" openapi-python-client generate --path plystra_http/openapi.json \
        --meta none --output-path "$work/plystra_client" >"$work/client-generate.log" 2>&1; then
        PYTHONPATH=$work "$PYTHON_TOOLS_VENV/bin/python3" tests/python_client.py plystra_http/openapi.json \
            "http://127.0.0.1:$http_port" "$key" >"$work/python-client.log" 2>&1
        CLIENT_RC=$?
    else
        echo "openapi-python-client could not generate a client:" >"$work/python-client.log"
        tail -n 20 "$work/client-generate.log" >>"$work/python-client.log"
        CLIENT_RC=1
    fi
    # AuthZEN's request schemas against the front, which reads those requests itself.
    "$PYTHON_TOOLS_VENV/bin/python3" tests/contract_rules_authzen.py plystra_http/openapi.json \
        "http://127.0.0.1:$http_port" "$key" >"$work/authzen-rules.log" 2>&1
    AUTHZEN_RC=$?
    printf '[auth]\nauto-signup = false\n\n[auth.openapi.api_key]\napi_key = "%s"\n' "$key" >"$work/schemathesis.toml"
    # Run from target/contract, where the tool keeps its own files (.schemathesis/).
    (cd "$work" && "$PYTHON_TOOLS_VENV/bin/schemathesis" --config-file schemathesis.toml run \
        "$REPO_ROOT/plystra_http/openapi.json" \
        --url "http://127.0.0.1:$http_port" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
        --phases "${CONTRACT_PHASES:-coverage,fuzzing,stateful}" --max-examples 15 --seed 20261128 --workers 1 \
        --suppress-health-check all \
        --exclude-operation-id revoke_api_key --exclude-operation-id revoke_admin_grant \
        --exclude-operation-id disable_user --exclude-operation-id update_user \
        --request-timeout 30 --generation-database none --no-color >schemathesis.log 2>&1)
    local rc=$?
    grep -E 'Test cases:|generated|failures|Failures|Server error|not_a_server_error|conformance' "$work/schemathesis.log" |
        tail -n 20
    cluster_psql "$host" "$port" postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
    return $rc
}

# tap_from_log RC LOG OK_TEXT FAIL_TEXT: one tap for a check run inside run_schemathesis (its log in
# target/contract): OK with the log's last line ("# N requests, ..."), else FAIL after the log's failing lines.
tap_from_log() {
    local log=$REPO_ROOT/target/contract/$2
    if [ "$1" = 0 ]; then
        tap OK "$3 ($(tail -n1 "$log" | sed 's/^# //'))"
    else
        grep -v '^ok' "$log" 2>/dev/null | head -n 40
        tap FAIL "$4"
    fi
}

# The decision contract's rules in the document, against the extension's parser (tests/contract_rules.py).
check_decision_rules() {
    local host=$PLYSTRA_TEST_PG_HOST port=$PLYSTRA_TEST_PG_PORT db=plystra_contract_rules rc
    cluster_psql "$host" "$port" postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" &&
        cluster_psql "$host" "$port" "$db" -c "CREATE EXTENSION plystra" -f sql/demo.sql >/dev/null || return 1
    "$PYTHON_TOOLS_VENV/bin/python3" tests/contract_rules.py plystra_http/openapi.json "$host" "$port" "$db"
    rc=$?
    cluster_psql "$host" "$port" postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
    return $rc
}

if [ -n "${PLYSTRA_TEST_PG_HOST:-}" ] && [ -n "${PLYSTRA_TEST_PG_PORT:-}" ]; then
    if out=$(check_decision_rules 2>&1); then
        tap OK "the document's decision and batch schemas accept exactly what the extension's parser accepts ($(printf '%s\n' "$out" | tail -n1 | sed 's/^# //'))"
    else
        printf '%s\n' "$out" | grep -v '^ok'
        tap FAIL "the document's decision schemas and the extension's parser disagree (tests/contract_rules.py)"
    fi
    CLIENT_RC= AUTHZEN_RC=
    if run_schemathesis; then
        tap OK "schemathesis: no server error and no answer outside the document (target/contract/schemathesis.log)"
    else
        tail -n 60 "$REPO_ROOT/target/contract/schemathesis.log" 2>/dev/null
        tap FAIL "schemathesis found answers outside the document (target/contract/schemathesis.log)"
    fi
    tap_from_log "$AUTHZEN_RC" authzen-rules.log "the document's AuthZEN request schemas accept exactly what the front accepts" \
        "the document's AuthZEN request schemas and the front disagree (tests/contract_rules_authzen.py)"
    tap_from_log "$CLIENT_RC" python-client.log "a client generated by openapi-python-client reads the answer of every operation" \
        "the generated Python client did not read every answer (target/contract/python-client.log)"
else
    echo "# schemathesis skipped: PLYSTRA_TEST_PG_HOST and PLYSTRA_TEST_PG_PORT are not set (scripts/test sets them)"
fi

echo "1..$n"
[ "$fails" -eq 0 ]
