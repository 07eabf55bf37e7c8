#!/usr/bin/env bash
# Two builds of the extension, A and B, alternated (the order flips each round) on one demo-data cluster: the example
# policy's SELECT (sql/examples/invoices_rls.sql, Alice reading app.invoices as invoices_app) in a transaction that
# has written nothing, and in one that has (an INSERT first, then ROLLBACK), 1 and 2 clients, 8 s each; prints the
# SELECT's own latency (pgbench -r). Written for the reach memo in writing transactions.
# Usage: bench/ab/reach_memo_written.sh PGROOT_A PGROOT_B CLUSTER_DIR [CLUSTER_DIR_B]
#   PGROOT: a directory holding usr/lib/postgresql/15 with the extension installed in it (see gate_mix.sh).
#   CLUSTER_DIR: a cluster made by scripts/lib.sh's cluster_start (stopped), whose database `rel` holds the
#   extension, sql/demo.sql and sql/examples/invoices_rls.sql (invoices_app may log in); its audit writer serves `rel`.
#   CLUSTER_DIR_B: B's own copy of that cluster, when B needs a newer schema (updated with B's library); default the
#   same cluster.
set -euo pipefail
cd "$(dirname "$0")/../.."
A=$1 B=$2 RA=$3 RB=${4:-$3} W=$(mktemp -d)
cat >"$W/ro.sql" <<'SQL'
BEGIN;
SELECT plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme');
SELECT count(*), sum(amount_cents) FROM app.invoices;
COMMIT;
SQL
cat >"$W/rw.sql" <<'SQL'
BEGIN;
SELECT plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme');
INSERT INTO app.scratch DEFAULT VALUES;
SELECT count(*), sum(amount_cents) FROM app.invoices;
ROLLBACK;
SQL
chmod -R a+rX "$W"
cluster_of() { if [ "$1" = "$B" ]; then echo "$RB"; else echo "$RA"; fi; }
start() {
  local R; R=$(cluster_of "$1")
  su postgres -c "cd / && $1/usr/lib/postgresql/15/bin/pg_ctl -D $R/data -l $R/server.log -w -o '-p 55501 -k $R \
    -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=256MB -c shared_preload_libraries=plystra \
    -c plystra.audit_writer_database=rel' start" >/dev/null
}
stop() { local R; R=$(cluster_of "$1"); su postgres -c "cd / && $1/usr/lib/postgresql/15/bin/pg_ctl -D $R/data -m fast -w stop" >/dev/null; }
run() { # root label
  start "$1"
  sleep 2
  local R; R=$(cluster_of "$1")
  local bin=$1/usr/lib/postgresql/15/bin out="" f c s
  "$bin/psql" -h "$R" -p 55501 -U postgres rel -qc "SET client_min_messages = warning; CREATE TABLE IF NOT EXISTS app.scratch (id bigserial PRIMARY KEY,
    at timestamptz DEFAULT now()); GRANT INSERT ON app.scratch TO invoices_app;
    GRANT USAGE ON SEQUENCE app.scratch_id_seq TO invoices_app"
  for f in ro rw; do
    for c in 1 2; do
      s=$(cd "$W" && "$bin/pgbench" -n -M prepared -r -c "$c" -j "$c" -T 8 -f "$f.sql" -h "$R" -p 55501 -U invoices_app rel \
        2>&1 | awk '/SELECT count/ {print $1}')
      out="$out $f/c$c $s"
    done
  done
  echo "$2 select_ms:$out"
  stop "$1"
}
for r in 1 2 3; do
  if [ $((r % 2)) = 1 ]; then run "$A" A; run "$B" B; else run "$B" B; run "$A" A; fi
done
