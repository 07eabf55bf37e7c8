#!/usr/bin/env bash
# Two builds of the extension, A and B, alternated (the order flips each round) on one demo-data cluster: each round
# starts the cluster with one build, runs one audited check (audit always, 2 and 16 clients, 8 s) and the one-row
# insert floor, and prints both and their ratio. Written for the audit writer's lanes (A: the writer before them).
# Usage: bench/ab/writer_lanes.sh PGROOT_A PGROOT_B CLUSTER_DIR
#   PGROOT: a directory holding usr/lib/postgresql/15 with the extension installed in it (see gate_mix.sh).
#   CLUSTER_DIR: a cluster made by scripts/lib.sh's cluster_start (stopped), whose database `rel` holds the
#   extension, sql/demo.sql and `CREATE TABLE ins (id bigserial primary key, doc jsonb)`; its audit writer serves `rel`.
set -euo pipefail
cd "$(dirname "$0")/../.."
A=$1 B=$2 R=$3
WORK=$(mktemp -d)
echo "SELECT plystra.check('{\"actor\": {\"user_id\": \"user_alice\", \"member_id\": \"member_finance_reviewer\", \"user_member_id\": \"um_alice_finance_reviewer\", \"space_id\": \"space_acme\"}, \"resource_type\": \"invoice\", \"resource_id\": \"invoice_001\", \"action\": \"approve\"}'::jsonb);" >"$WORK/check.sql"
echo "INSERT INTO ins (doc) VALUES ('{\"a\": 1, \"b\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}'::jsonb);" >"$WORK/ins.sql"
cd "$WORK"
run() { # root label
  local bin=$1/usr/lib/postgresql/15/bin
  su postgres -c "cd / && $bin/pg_ctl -D $R/data -l $R/server.log -w -o '-p 55501 -k $R -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=256MB -c shared_preload_libraries=plystra -c plystra.audit_writer_database=rel' start" >/dev/null
  sleep 3
  for c in 2 16; do
    a=$(PGOPTIONS="-c plystra.audit_mode=always" $bin/pgbench -n -M prepared -c $c -j 2 -T 8 -f check.sql -h $R -p 55501 -U postgres rel 2>&1 | awk '/^tps/ {print $3}')
    i=$($bin/pgbench -n -M prepared -c $c -j 2 -T 8 -f ins.sql -h $R -p 55501 -U postgres rel 2>&1 | awk '/^tps/ {print $3}')
    echo "$2 c$c audited $a insert $i ratio $(python3 -c "print(round($a/$i,2))")"
  done
  su postgres -c "cd / && $bin/pg_ctl -D $R/data -m fast -w stop" >/dev/null
}
for r in 1 2 3; do
  if [ $((r % 2)) = 1 ]; then run "$A" A; run "$B" B; else run "$B" B; run "$A" A; fi
done
