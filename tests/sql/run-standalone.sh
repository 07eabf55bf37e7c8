#!/usr/bin/env bash
# Runs the pgTAP tests of tests/sql against the plain SQL files, without building the extension:
# starts (or reuses) a private cluster, recreates a database from scratch, runs `CREATE SCHEMA plystra;`,
# applies migrations 001, 002, 003 and sql/actor_context.sql with ON_ERROR_STOP, then runs pg_prove.
#
# Usage: tests/sql/run-standalone.sh [pg_prove args, e.g. -v, and test files; default: tests/sql/01*_*.sql]
# Environment: PLYSTRA_TEST_DIR (default /tmp/plystra-b), PLYSTRA_TEST_PORT (55441), PLYSTRA_TEST_DB (plystra_sqltest).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../scripts/lib.sh
source "$here/../../scripts/lib.sh"

dir=${PLYSTRA_TEST_DIR:-/tmp/plystra-b}
port=${PLYSTRA_TEST_PORT:-55441}
db=${PLYSTRA_TEST_DB:-plystra_sqltest}

command -v pg_prove >/dev/null || die "pg_prove is missing: apt-get install libtap-parser-sourcehandler-pgtap-perl"
[ -f /usr/share/postgresql/15/extension/pgtap.control ] || die "pgTAP is missing: apt-get install postgresql-15-pgtap"

cluster_start "$dir" "$port"

log "recreating database $db on $dir:$port"
cluster_psql "$dir" "$port" postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" -c "CREATE DATABASE \"$db\""
cluster_psql "$dir" "$port" "$db" -c 'CREATE SCHEMA plystra;'
for f in migrations/001_core_schema.sql migrations/002_invariants.sql migrations/003_management_audit.sql \
         sql/actor_context.sql; do
    log "applying $f"
    cluster_psql "$dir" "$port" "$db" -f "$REPO_ROOT/$f"
done

# By default the suites that need nothing but these SQL files (01x: invariants and management audit); the
# 02x suites and later need the built extension and its demo data (scripts/test runs everything).
if [ $# -eq 0 ]; then
    set -- "$here"/01[0-9]_*.sql
fi
log "pg_prove"
pg_prove -h "$dir" -p "$port" -U postgres -d "$db" "$@"
