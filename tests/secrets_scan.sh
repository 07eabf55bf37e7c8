#!/usr/bin/env bash
# After a full test run: no log line, test output or audit row holds a password, token, API key, password hash
# or secret. Scans every test log (target/test-logs), every PostgreSQL server log the run left, and the audit
# log of every database with the extension on the test cluster (the REST front's test databases included).
set -uo pipefail
cd "$(dirname "$0")/.."
H=${PLYSTRA_TEST_PG_HOST:?set by scripts/test}
P=${PLYSTRA_TEST_PG_PORT:?set by scripts/test}
# What a secret looks like here: session and refresh tokens, API keys, Argon2id hashes, the demo password.
PATTERN='ply_(at|rt)_[0-9a-f]{64}|ply_ak_[A-Za-z0-9_-]+\.[0-9a-f]{64}|argon2id\$v=19\$m=|plystra-demo'
n=0
fails=0
tap() { n=$((n + 1)); if [ "$1" = OK ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi; }
echo "secrets check:"

logs=$(ls target/test-logs/*.log target/*/server.log .plystra/*.log 2>/dev/null | grep -v '/secrets.log$')
scanned=0
for f in $logs; do
    scanned=$((scanned + 1))
    hits=$(grep -Ec "$PATTERN" "$f")
    [ "$hits" = 0 ] && continue
    # The demo password appears in the test sources' own assertions only if a test prints it; show where.
    tap FAIL "$f holds $hits line(s) that look like secrets"
    grep -En "$PATTERN" "$f" | head -n 3 | sed -E 's/(ply_[a-z]+_)[0-9a-f]{8}[0-9a-f]*/\1…/g; s/^/#   /'
done
tap OK "scanned $scanned log files for tokens, keys, password hashes and the demo password"

dbs=$(psql -X -q -At -h "$H" -p "$P" -U postgres -d postgres -c "SELECT datname FROM pg_database WHERE NOT datistemplate")
rows=0
for db in $dbs; do
    has=$(psql -X -q -At -h "$H" -p "$P" -U postgres -d "$db" \
        -c "SELECT to_regprocedure('plystra.sensitive_key(text)') IS NOT NULL" 2>/dev/null)
    [ "$has" = t ] || continue
    total=$(psql -X -q -At -h "$H" -p "$P" -U postgres -d "$db" -c "SELECT count(*) FROM plystra.audit_logs")
    bad=$(psql -X -q -At -h "$H" -p "$P" -U postgres -d "$db" -v pattern="$PATTERN" <<'SQL'
SELECT count(*) FROM plystra.audit_logs a
WHERE concat_ws(' ', a.trace::text, a.user_agent, a.request_id, a.resource_id) ~ :'pattern'
   OR EXISTS (SELECT 1 FROM jsonb_path_query(a.trace, '$.** ? (@.type() == "object").keyvalue().key') AS k
              -- The credential block names the acting API key by its id, which is no secret (a key's secret
              -- would match the pattern above); every other key the redaction rule names is one.
              WHERE plystra.sensitive_key(k #>> '{}') AND k #>> '{}' <> 'api_key_id');
SQL
)
    rows=$((rows + total))
    [ "$bad" = 0 ] && tap OK "database $db: none of its $total audit rows holds a secret or a sensitive key" \
        || tap FAIL "database $db: $bad of $total audit rows hold a secret or a sensitive key"
done
[ "$rows" -gt 0 ] && tap OK "audit rows scanned: $rows" || tap FAIL "no audit rows were found to scan"
echo "1..$n"
[ "$fails" -eq 0 ]
