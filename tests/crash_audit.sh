#!/usr/bin/env bash
# The audit guarantee under a crash: while clients make decisions, every PostgreSQL process of the cluster is
# killed with SIGKILL; after restart (crash recovery), every decision a client received an answer for has its
# audit row, and every audit chain verifies. Then a paused writer withholds decisions with a retryable SQLSTATE.
# Uses its own cluster in target/, started with the audit writer.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
CRASH_PG=$REPO_ROOT/target/plystra-crash-pg
PORT=$(free_port 55470)
DB=plystra_crash
CLIENTS=${CRASH_CLIENTS:-4}
WORK=$(mktemp -d)
n=0
fails=0
tap() { n=$((n + 1)); if [ "$1" = OK ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi; }
# Every psql here is bounded: a server that is being killed (or a backend left waiting on a lock a killed process
# held) must cost this check a failed call, never a wait without end.
export PGCONNECT_TIMEOUT=10
q() { timeout -k 5 60 psql -X -q -At -h "$CRASH_PG" -p "$PORT" -U postgres -d "$1" -c "$2"; }
echo "crash check:"

cluster_stop "$CRASH_PG"
PLYSTRA_AUDIT_DB=$DB cluster_start "$CRASH_PG" "$PORT"
q postgres "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
q postgres "CREATE DATABASE $DB" >/dev/null
q "$DB" "CREATE EXTENSION plystra" >/dev/null
cluster_psql "$CRASH_PG" "$PORT" "$DB" -f sql/demo.sql >/dev/null
wait_for_writer() {
    for _ in $(seq 1 50); do
        [ "$(q "$DB" "SELECT plystra.audit_writer_active()" 2>/dev/null)" = t ] && return 0
        sleep 0.2
    done
    return 1
}
wait_for_writer && tap OK "the audit writer runs" || tap FAIL "the audit writer runs"

# Each client records an audit id only once psql has returned the answer to it.
client() {
    local i=$1 k=0 misses=0
    while [ "$misses" -lt 3 ]; do
        k=$((k + 1))
        local res=invoice_001
        [ $((k % 3)) = 0 ] && res=invoice_002
        local id
        if id=$(q "$DB" "SELECT plystra.check('{\"actor\": {\"user_id\": \"user_bob\", \"member_id\": \"member_finance_reviewer\",
                \"user_member_id\": \"um_bob_finance_reviewer\", \"space_id\": \"space_acme\"}, \"resource_type\": \"invoice\",
                \"resource_id\": \"$res\", \"action\": \"approve\", \"request\": {\"request_id\": \"req_crash_${i}_$k\"}}')->>'audit_log_id'" 2>/dev/null) \
            && [ -n "$id" ]; then
            echo "$id" >>"$WORK/answered.$i"
        else
            misses=$((misses + 1))
            sleep 0.1
        fi
    done
}
for i in $(seq 1 "$CLIENTS"); do client "$i" & done
sleep "${CRASH_AFTER_SECONDS:-3}"
pm=$(head -n1 "$CRASH_PG/data/postmaster.pid")
# SIGKILL the postmaster and every process of the cluster (backends, the writer, the WAL writer): no clean
# shutdown. The postmaster is stopped first, so that it forks no backend after the processes are listed: such a
# backend would outlive the crash, and if a killed process held a lock it waits for, wait for ever (and keep the
# old shared memory, so that the restart fails). The cluster's processes are those whose working directory is its
# data directory; they are killed until none is left.
kill -STOP "$pm"
for _ in $(seq 1 50); do
    left=$(cluster_processes "$CRASH_PG/data")
    [ -n "$left" ] || break
    kill -9 $left 2>/dev/null
    sleep 0.1
done
[ -z "$(cluster_processes "$CRASH_PG/data")" ] && tap OK "every process of the cluster is killed" \
    || tap FAIL "processes of the cluster outlived SIGKILL: $(cluster_processes "$CRASH_PG/data")"
wait
answered=$(cat "$WORK"/answered.* 2>/dev/null | sort -u)
count=$(printf '%s\n' "$answered" | grep -c . || true)
[ "$count" -gt 0 ] && tap OK "clients received $count answers before the crash" || tap FAIL "clients received answers before the crash"

# Wait until the killed postmaster is gone or a zombie (a dead process nobody reaped yet still answers kill -0,
# so PostgreSQL would take its lock files for a live server), then clear what the crash left behind.
for _ in $(seq 1 100); do
    [ -e "/proc/$pm" ] && [ "$(awk '{print $3}' "/proc/$pm/stat" 2>/dev/null)" != Z ] || break
    sleep 0.1
done
rm -f "$CRASH_PG/data/postmaster.pid" "$CRASH_PG"/.s.PGSQL.*.lock
PLYSTRA_AUDIT_DB=$DB cluster_start "$CRASH_PG" "$PORT"
grep -q "database system was interrupted\|not properly shut down" "$CRASH_PG/server.log" \
    && tap OK "the server went through crash recovery" || tap FAIL "the server went through crash recovery"
printf '%s\n' "$answered" | grep . >"$WORK/answered"
missing=$(psql -X -q -At -h "$CRASH_PG" -p "$PORT" -U postgres -d "$DB" <<SQL
CREATE TEMP TABLE answered (id text);
\copy answered FROM '$WORK/answered'
SELECT count(*) FROM answered a WHERE NOT EXISTS (SELECT 1 FROM plystra.audit_logs l WHERE l.id = a.id);
SQL
)
[ "$missing" = 0 ] && tap OK "every one of the $count answered decisions has its audit row after the crash" \
    || tap FAIL "answered decisions without an audit row after the crash: $missing of $count"
wait_for_writer >/dev/null
broken=$(q "$DB" "SELECT count(*) FROM plystra.verify_audit_chain() WHERE broken_at_position IS NOT NULL")
[ "$broken" = 0 ] && tap OK "every audit chain verifies after the crash" || tap FAIL "broken audit chains after the crash: $broken"
rows=$(q "$DB" "SELECT count(*) FROM plystra.audit_logs WHERE request_id LIKE 'req\\_crash\\_%'")
echo "# decisions answered: $count; crash-run rows in the log: $rows (rows without an answer are decisions cut off mid-reply)"

# A writer that does not confirm (paused here) withholds the decision with SQLSTATE 57P03, a condition to retry
# (the REST front answers 503 AUDIT_UNAVAILABLE), never an internal error; resumed, decisions flow again.
writer=$(q "$DB" "SELECT pid FROM pg_stat_activity WHERE backend_type = 'plystra audit writer'")
if [ -n "$writer" ] && kill -STOP "$writer"; then
    paused=$(timeout -k 5 90 psql -X -q -At -h "$CRASH_PG" -p "$PORT" -U postgres -d "$DB" -v VERBOSITY=verbose 2>&1 <<'SQL'
\set VERBOSITY verbose
SET plystra.audit_mode = 'always';
SELECT plystra.check('{"actor": {"user_id": "user_bob", "member_id": "member_finance_reviewer",
  "user_member_id": "um_bob_finance_reviewer", "space_id": "space_acme"},
  "resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"}') ->> 'decision';
SQL
)
    kill -CONT "$writer"
    echo "$paused" | grep -q "57P03" && tap OK "a writer that does not confirm in time withholds the decision with 57P03" \
        || tap FAIL "a paused writer: expected SQLSTATE 57P03, got: $paused"
    after=$(q "$DB" "SELECT plystra.check('{\"actor\": {\"user_id\": \"user_bob\", \"member_id\": \"member_finance_reviewer\",
      \"user_member_id\": \"um_bob_finance_reviewer\", \"space_id\": \"space_acme\"}, \"resource_type\": \"invoice\",
      \"resource_id\": \"invoice_001\", \"action\": \"approve\"}') ->> 'decision'")
    [ "$after" = allow ] && tap OK "resumed, the writer records decisions again" || tap FAIL "after resuming the writer: $after"
else
    tap FAIL "found the audit writer to pause (pid '$writer')"
fi

# scripts/test detaches the installed library before `cargo pgrx test` writes its build into that file in place: a
# running cluster then keeps mapping the file it loaded (the write would otherwise change its pages under it:
# SIGBUS), and the installed path names another file with the same bytes.
lib="$("$PG_CONFIG" --pkglibdir)/plystra.so"
postmaster=$(head -1 "$CRASH_PG/data/postmaster.pid")
mapped() { awk -v l="$lib" 'index($0, l) {print $5; exit}' "/proc/$postmaster/maps"; }
before=$(mapped)
detach_installed_library 2>/dev/null
after=$(mapped) installed=$(stat -c %i "$lib")
if [ -n "$before" ] && [ "$after" = "$before" ] && [ "$installed" != "$before" ] \
    && grep -F "$lib" "/proc/$postmaster/maps" | grep -q '(deleted)'; then
    tap OK "a detached library: the running cluster maps the file it loaded, the installed path another (inode $before, then $installed)"
else
    tap FAIL "detach_installed_library: mapped inode '$before', then '$after'; installed '$installed'"
fi
decided=$(q "$DB" "SELECT plystra.check('{\"actor\": {\"user_id\": \"user_bob\", \"member_id\": \"member_finance_reviewer\",
  \"user_member_id\": \"um_bob_finance_reviewer\", \"space_id\": \"space_acme\"}, \"resource_type\": \"invoice\",
  \"resource_id\": \"invoice_001\", \"action\": \"approve\"}') ->> 'decision'")
[ "$decided" = allow ] && tap OK "the cluster decides after the detach" || tap FAIL "after the detach: '$decided'"

cluster_stop "$CRASH_PG"
rm -rf "$WORK"
echo "1..$n"
[ "$fails" -eq 0 ]
