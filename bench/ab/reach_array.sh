#!/usr/bin/env bash
# Two builds of the extension, A and B, alternated (the order flips each round) on the benchmark's cluster: the wide
# reader's row-level-security scan (bench_wide, reader w2: one group_tree grant reaching 50,051 groups) and its floor,
# 2 clients, each round a fresh start of the cluster with one build. Written for reachable_group_ids' kept array.
# Each run also prints the InitPlans' time from one EXPLAIN (ANALYZE) of the scan. CLIENTS=1 FLOOR=0 measures the
# scan alone with one client (the first table of bench/results/ab-reach-array.md).
# Usage: [CLIENTS=N] [FLOOR=0] bench/ab/reach_array.sh PGROOT_A PGROOT_B
#   PGROOT: a directory holding usr/lib/postgresql/15 with the extension installed in it (see gate_mix.sh).
#   The cluster is target/bench-pg as `bench/run --size full` left it (stopped), with bench_wide loaded.
set -euo pipefail
cd "$(dirname "$0")/../.."
A=$1 B=$2 D=$PWD/target/bench-pg W=$(mktemp -d)
cp bench/workloads/rls_wide_scan.sql bench/workloads/rls_wide_off_scan.sql "$W/" && chmod -R a+rX "$W"
start() {
  su postgres -c "cd / && $1/usr/lib/postgresql/15/bin/pg_ctl -D $D/data -l $D/server.log -w -o '-p 55480 -k $D \
    -c listen_addresses= -c shared_preload_libraries=plystra -c plystra.audit_writer_database=bench \
    -c shared_buffers=1GB -c jit=off -c max_connections=200' start" >/dev/null
}
stop() { su postgres -c "cd / && $1/usr/lib/postgresql/15/bin/pg_ctl -D $D/data -m fast -w stop" >/dev/null; }
run() { # root label
  start "$1"
  sleep 2
  local bin=$1/usr/lib/postgresql/15/bin a f
  local c=${CLIENTS:-2}
  local pgb=("$bin/pgbench" -n -M prepared -c "$c" -j "$c" -D wr=2 -h "$D" -p 55480)
  (cd "$W" && "${pgb[@]}" -T 5 -f rls_wide_scan.sql -U invoices_app bench_wide >/dev/null 2>&1)
  a=$(cd "$W" && "${pgb[@]}" -T 25 -f rls_wide_scan.sql -U invoices_app bench_wide 2>&1 | awk '/latency average/ {print $4}')
  f=0
  if [ "${FLOOR:-1}" = 1 ]; then
    f=$(cd "$W" && "${pgb[@]}" -T 25 -f rls_wide_off_scan.sql -U postgres bench_wide 2>&1 | awk '/latency average/ {print $4}')
  fi
  ip=$("$bin/psql" -h "$D" -p 55480 -U invoices_app bench_wide -Atc "BEGIN; SELECT plystra.set_actor('bu_w2', 'bm_w2', \
    'bum_w2', 'bsp_w'); EXPLAIN (ANALYZE, FORMAT JSON) SELECT count(*), sum(amount_cents) FROM app.invoices; COMMIT;" |
    python3 -c "import sys, json; t = sys.stdin.read(); p = json.loads(t[t.index('['):t.rindex(']') + 1])[0]['Plan']
print(round(sum(c['Actual Total Time'] for c in p.get('Plans', []) if c.get('Parent Relationship') == 'InitPlan'), 1))")
  echo "$2 rls_ms $a floor_ms $f ratio $(python3 -c "print(round($a / $f, 3) if $f else '-')") initplans_ms $ip"
  stop "$1"
}
for r in 1 2 3; do
  if [ $((r % 2)) = 1 ]; then run "$A" A; run "$B" B; else run "$B" B; run "$A" A; fi
done
