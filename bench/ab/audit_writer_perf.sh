#!/usr/bin/env bash
# A perf profile of the audit writer under load: 16 clients of plystra.check with plystra.audit_mode = always for
# 30 s on a data directory made by bench/ab/audit_writer.sh, the writer process sampled for 15 s of it.
# Usage: bench/ab/audit_writer_perf.sh PG_BIN DATA_DIR PORT LABEL   (writes target/perf-LABEL.{data,top,children})
set -euo pipefail
BIN=$1 DIR=$2 PORT=$3 LABEL=$4
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
PLYSTRA_PG_BIN=$BIN PLYSTRA_AUDIT_DB=bench_audit bash -c "source scripts/lib.sh; cluster_start '$DIR' '$PORT'"
sleep 4
q() { psql -X -q -At -h "$DIR" -p "$PORT" -U postgres -d bench_audit -c "$1"; }
pid=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'plystra audit writer'")
PGOPTIONS="-c plystra.audit_mode=always" "$BIN/pgbench" -n -h "$DIR" -p "$PORT" -U postgres -M prepared -c 16 -j 2 -T 30 \
    -D spaces=2 -D breadth=3 -D depth=3 -D members=1000 -D resq=1000 -D gs=39 -D alevels=3 \
    -f bench/workloads/check.sql bench_audit >"target/perf-$LABEL.pgbench" 2>&1 &
sleep 5
perf record -F 999 -g -p "$pid" -o "target/perf-$LABEL.data" -- sleep 15 2>/dev/null
wait
perf report -i "target/perf-$LABEL.data" --no-children --sort symbol --stdio -g none 2>/dev/null | grep "%" | head -40 \
    >"target/perf-$LABEL.top"
perf report -i "target/perf-$LABEL.data" --children --sort symbol --stdio -g none 2>/dev/null | grep "%" | head -60 \
    >"target/perf-$LABEL.children"
PLYSTRA_PG_BIN=$BIN bash -c "source scripts/lib.sh; cluster_stop '$DIR'"
