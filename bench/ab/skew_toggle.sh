#!/usr/bin/env bash
# The noisy neighbours' skew, applied and taken away by hand on the full-size data a `bench/run --size full` left
# in target/bench-pg (which ends with the skew applied): the ordinary actors' check (audit off, 2 clients, 8 s,
# the check mix) twice with the skew, then twice without, round by round, so that the machine's drift falls on both.
# Usage: bench/ab/skew_toggle.sh PGROOT ROUNDS   (PGROOT: a directory holding usr/lib/postgresql/15 with a release
# build of the extension installed; / for the system's)
set -uo pipefail
cd "$(dirname "$0")/../.."
source bench/ab/lib.sh
ROOT=$1 ROUNDS=$2 N=20000
full_data_start "$ROOT" 55678 ab_skew
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$FULL_SOCK" -p "$FULL_PORT" -U postgres bench -c "$1"; }
run() {
    PGOPTIONS="-c plystra.audit_mode=off" "$FULL_BIN/pgbench" -n -M prepared -c 2 -j 2 -T 8 --random-seed=42 \
        "${FULL_MIX[@]}" -f bench/workloads/check.sql -h "$FULL_SOCK" -p "$FULL_PORT" -U postgres bench 2>&1 |
        awk '/^tps = .*without/ {print $3}'
}
unskew() {
    q "SET session_replication_role = replica; BEGIN;
       DELETE FROM plystra.member_roles WHERE member_id LIKE 'bm\_skew\_%';
       DELETE FROM plystra.groups WHERE id LIKE 'bg\_skew\_%';
       DELETE FROM plystra.user_members WHERE id LIKE 'bum\_skew\_%';
       DELETE FROM plystra.members WHERE id LIKE 'bm\_skew\_%';
       DELETE FROM plystra.users WHERE id LIKE 'bu\_skew\_%'; COMMIT;" && q "VACUUM (ANALYZE)"
}
skew() { # what bench/harness.py's apply_skew writes
    q "SET session_replication_role = replica; SET synchronous_commit = off; BEGIN;
       INSERT INTO plystra.users (id, email, status) SELECT 'bu_skew_' || k, 'bu_skew_' || k || '@bench.example',
           'active' FROM generate_series(0, 2) k;
       INSERT INTO plystra.members (id, space_id, display_name, member_type, status) SELECT 'bm_skew_' || k, 'bsp_0',
           'Skewed member ' || k, 'human', 'active' FROM generate_series(0, 2) k;
       INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type, status, is_primary)
           SELECT 'bum_skew_' || k, 'bu_skew_' || k, 'bm_skew_' || k, 'bsp_0', 'login', 'active', true
           FROM generate_series(0, 2) k;
       INSERT INTO plystra.groups (id, space_id, parent_group_id, name, display_name, path, sort_order)
           SELECT 'bg_skew_' || k, 'bsp_0', NULL, 'skew' || k, 'SKEW' || k, 'skew' || k, 0 FROM generate_series(0, 2) k;
       INSERT INTO plystra.groups (id, space_id, parent_group_id, name, display_name, path, sort_order)
           SELECT 'bg_skew_' || k || '_' || g, 'bsp_0', 'bg_skew_' || k, 'n' || g, 'N' || g, 'skew' || k || '.n' || g, 0
           FROM generate_series(0, 2) k, generate_series(1, $N - 1) g;
       INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id)
           SELECT 'bmr_skew_' || k || '_' || g, 'bm_skew_' || k, 'br_0_reader', 'bsp_0',
                  CASE WHEN g = 0 THEN 'bg_skew_' || k ELSE 'bg_skew_' || k || '_' || g END
           FROM generate_series(0, 2) k, generate_series(0, $N - 1) g;
       COMMIT;" && q "VACUUM (ANALYZE)"
}
[ "$(q "SELECT count(*) FROM plystra.member_roles WHERE member_id LIKE 'bm\_skew\_%'")" = $((3 * N)) ] ||
    { echo "the data does not hold the skew (a full run's end state)" >&2; exit 1; }
echo "load at start: $(cat /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
    a=$(run); b=$(run); unskew
    c=$(run); d=$(run); skew
    echo "round $r with the skew: $a $b; without: $c $d"
done
echo "load at end: $(cat /proc/loadavg)"
