#!/usr/bin/env bash
# The noisy neighbours' skew, applied and taken away by hand on the full-size data a `bench/run --size full` left
# in target/bench-pg (which ends with the skew applied): the ordinary actors' check (audit off, 2 clients, 8 s,
# the check mix) twice with the skew, then twice without, round by round, so that the machine's drift falls on both.
# Usage: bench/ab/skew_toggle.sh PGROOT ROUNDS   (PGROOT: a directory holding usr/lib/postgresql/15 with a release
# build of the extension installed; / for the system's)
set -uo pipefail
cd "$(dirname "$0")/../.."
source bench/ab/lib.sh
ROOT=$1 ROUNDS=$2 N=20000 # bench/harness.py SIZES["full"]["skew_grants"], for each of its 3 members
full_data_start "$ROOT" 55678 ab_skew
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$FULL_SOCK" -p "$FULL_PORT" -U postgres bench -c "$1"; }
run() {
    PGOPTIONS="-c plystra.audit_mode=off" "$FULL_BIN/pgbench" -n -M prepared -c 2 -j 2 -T 8 --random-seed=42 \
        "${FULL_MIX[@]}" -f bench/workloads/check.sql -h "$FULL_SOCK" -p "$FULL_PORT" -U postgres bench 2>&1 |
        awk '/^tps = .*without/ {print $3}'
}
# The skew is applied and taken away by the harness's own functions (bench/harness.py apply_skew, remove_skew).
skew() { # skew apply|remove
    python3 - "$1" "$FULL_SOCK" "$FULL_PORT" <<'PY'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("harness", "bench/harness.py")
harness = importlib.util.module_from_spec(spec)
spec.loader.exec_module(harness)
what, sock, port = sys.argv[1], sys.argv[2], int(sys.argv[3])


class Run:
    c = harness.Cluster(sock, port)

    def check(self, ok, what):
        if not ok:
            sys.exit(f"not ok: {what}")


if what == "apply":
    harness.apply_skew(Run(), "bench", harness.SIZES["full"])
else:
    harness.remove_skew(Run(), "bench")
PY
}
[ "$(q "SELECT count(*) FROM plystra.member_roles WHERE member_id LIKE 'bm\_skew\_%'")" = $((3 * N)) ] ||
    { echo "the data does not hold the skew (a full run's end state)" >&2; exit 1; }
echo "load at start: $(cat /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
    a=$(run); b=$(run); skew remove
    c=$(run); d=$(run); skew apply
    echo "round $r with the skew: $a $b; without: $c $d"
done
echo "load at end: $(cat /proc/loadavg)"
