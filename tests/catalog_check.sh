#!/usr/bin/env bash
# Proves that `CREATE EXTENSION plystra` holds exactly what migrations/ describes:
#   1. the catalog of a fresh install equals the catalog of an empty schema with every migration file applied
#      by psql (tables, columns, defaults, constraints, indexes, triggers, and every migration function);
#   2. the ledger's checksums are the SHA-256 of the files in the repository;
#   3. pg_dump includes the Core data tables (extension tables are left out unless registered);
#   4. every released version (plystra_pg/released/) updated with ALTER EXTENSION equals a fresh install of this
#      version: tables, functions and their definitions, comments, extension membership, the ledger and who may
#      execute each function; and rows a new version forbids are brought into its rules by the update.
# Needs PLYSTRA_TEST_PG_HOST / PLYSTRA_TEST_PG_PORT (set by scripts/test) and the demo in database plystra_test.
set -uo pipefail
cd "$(dirname "$0")/.."
H=${PLYSTRA_TEST_PG_HOST:?set by scripts/test}
P=${PLYSTRA_TEST_PG_PORT:?set by scripts/test}
q() { psql -X -q -v ON_ERROR_STOP=1 -h "$H" -p "$P" -U postgres "$@"; }
n=0
fails=0
tap() { # tap OK|FAIL description
    n=$((n + 1))
    if [ "$1" = OK ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi
}
echo "catalog check:"

# One description of the catalog, shared with `plystractl schema check`.
DESCRIBE=$(cat sql/catalog/describe.sql)
FUNCTIONS=$(cat sql/catalog/functions.sql)

tmp=$(mktemp -d)
q -d postgres -q -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS plystra_catalog_ext" -c "DROP DATABASE IF EXISTS plystra_catalog_files" \
  -c "CREATE DATABASE plystra_catalog_ext" -c "CREATE DATABASE plystra_catalog_files"
q -d plystra_catalog_ext -c "CREATE EXTENSION plystra"
q -d plystra_catalog_files -c "CREATE SCHEMA plystra"
applied=OK
for f in migrations/*.sql; do
    q -d plystra_catalog_files -f "$f" >/dev/null || applied=FAIL
done
# Then the privileges, as the install script's last step grants them (sql/finalize.sql).
q -d plystra_catalog_files -c "SELECT plystra.apply_privileges()" >/dev/null || applied=FAIL
tap "$applied" "every migration file applies with psql, in order, to an empty schema"
described=OK
q -d plystra_catalog_ext -At -c "$DESCRIBE" >"$tmp/ext" || described=FAIL
q -d plystra_catalog_files -At -c "$DESCRIBE" >"$tmp/files" || described=FAIL
[ -s "$tmp/ext" ] || described=FAIL
if [ "$described" = FAIL ]; then
    tap FAIL "the catalog could not be described"
elif diff -u "$tmp/files" "$tmp/ext" >"$tmp/diff"; then
    tap OK "fresh install has exactly the tables, columns, constraints, indexes and triggers of migrations/ ($(wc -l <"$tmp/ext") objects)"
else
    tap FAIL "fresh install differs from migrations/"
    cat "$tmp/diff"
fi
q -d plystra_catalog_ext -At -c "$FUNCTIONS" >"$tmp/ext_fn"
q -d plystra_catalog_files -At -c "$FUNCTIONS" >"$tmp/files_fn"
missing=$(comm -23 "$tmp/files_fn" "$tmp/ext_fn")
if [ -z "$missing" ]; then
    tap OK "every migration function is in the extension, with the same definition"
else
    tap FAIL "migration functions missing or different in the extension: $missing"
fi

ledger_ok=OK
for f in migrations/*.sql; do
    base=$(basename "$f" .sql)
    version=${base%%_*}
    name=${base#*_}
    sum=$(sha256sum "$f" | cut -d' ' -f1)
    got=$(q -d plystra_catalog_ext -At -c "SELECT name || ' ' || checksum FROM plystra.schema_migrations WHERE version = '$version'")
    [ "$got" = "$name $sum" ] || { ledger_ok=FAIL; echo "# ledger for $version: '$got', file: '$name $sum'"; }
done
rows=$(q -d plystra_catalog_ext -At -c "SELECT count(*) FROM plystra.schema_migrations")
[ "$rows" = "$(ls migrations/*.sql | wc -l)" ] || ledger_ok=FAIL
tap "$ledger_ok" "the ledger records every migration file with its SHA-256 ($rows files)"

# To a file: `echo "$dump" | grep -q` under pipefail fails whenever grep stops reading early.
pg_dump -h "$H" -p "$P" -U postgres -d plystra_test --data-only >"$tmp/dump.sql" 2>"$tmp/dump.err"
dump_ok=OK
for t in users spaces groups members user_members roles permissions member_roles role_permissions resources \
         resource_types resource_actions resource_mappings; do
    grep -q "^COPY plystra.$t " "$tmp/dump.sql" || { dump_ok=FAIL; echo "# pg_dump has no data for plystra.$t"; }
done
# The audit log is partitioned (migration 009): its rows are dumped per partition, monthly or DEFAULT.
grep -Eq "^COPY plystra.audit_logs_([0-9]{4}_[0-9]{2}|default) .*created_at, chain_position" "$tmp/dump.sql" ||
    { dump_ok=FAIL; echo "# pg_dump has no data for the partitions of plystra.audit_logs"; }
grep -q "user_alice" "$tmp/dump.sql" || dump_ok=FAIL
tap "$dump_ok" "pg_dump includes the data of every Core table"

# An upgrade script cannot include a file, so it embeds each migration it applies between markers: the embedded
# text must be the file, byte for byte (the ledger records the file's checksum).
embedded=OK
for script in plystra_pg/sql/plystra--*--*.sql; do
    for f in $(grep -o '^-- BEGIN migrations/[^ ]*\.sql' "$script" | sed 's/^-- BEGIN //'); do
        sed -n "\|^-- BEGIN $f\$|,\|^-- END $f\$|p" "$script" | sed '1d;$d' >"$tmp/embedded.sql"
        if ! diff -q <(sed -e '$a\' "$f") "$tmp/embedded.sql" >/dev/null; then
            embedded=FAIL
            echo "# $script embeds $f with different text"
        fi
    done
done
tap "$embedded" "every migration an upgrade script embeds is the migration file verbatim"

# Updating from each released version must give exactly what a fresh install gives.
MEMBERS="SELECT pg_describe_object(classid, objid, objsubid) FROM pg_depend
WHERE refclassid = 'pg_extension'::regclass AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'plystra')
  AND deptype = 'e' ORDER BY 1"
COMMENTS="SELECT pg_describe_object(classoid, objoid, objsubid) || ' ' || md5(description) FROM pg_description
WHERE classoid = 'pg_proc'::regclass AND objoid IN (SELECT oid FROM pg_proc WHERE pronamespace = 'plystra'::regnamespace)
   OR classoid = 'pg_class'::regclass AND objoid IN (SELECT oid FROM pg_class WHERE relnamespace = 'plystra'::regnamespace)
ORDER BY 1"
LEDGER="SELECT version || ' ' || name || ' ' || checksum FROM plystra.schema_migrations ORDER BY 1"
# Who may execute what (plystra.apply_privileges): an upgraded database must grant exactly what a fresh one does.
PRIVILEGES="SELECT p.oid::regprocedure::text || ' ' || coalesce(p.proacl::text, 'PUBLIC (default)') FROM pg_proc p
WHERE p.pronamespace = 'plystra'::regnamespace
UNION ALL SELECT 'schema plystra ' || coalesce(nspacl::text, '') FROM pg_namespace WHERE nspname = 'plystra' ORDER BY 1"
current=$(q -d plystra_catalog_ext -At -c "SELECT extversion FROM pg_extension WHERE extname = 'plystra'")
for released in plystra_pg/released/plystra--*.sql; do
    old=$(basename "$released" .sql)
    old=${old#plystra--}
    q -d postgres -q -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS plystra_catalog_upgraded" \
      -c "CREATE DATABASE plystra_catalog_upgraded"
    if ! q -d plystra_catalog_upgraded -q -c "CREATE EXTENSION plystra VERSION '$old'" \
         -c "ALTER EXTENSION plystra UPDATE" >"$tmp/upgrade.log" 2>&1; then
        tap FAIL "$old updates to $current"
        cat "$tmp/upgrade.log"
        continue
    fi
    got=$(q -d plystra_catalog_upgraded -At -c "SELECT extversion FROM pg_extension WHERE extname = 'plystra'")
    same=OK
    for what in DESCRIBE FUNCTIONS MEMBERS COMMENTS LEDGER PRIVILEGES; do
        q -d plystra_catalog_ext -At -c "${!what}" >"$tmp/fresh_$what"
        q -d plystra_catalog_upgraded -At -c "${!what}" >"$tmp/upgraded_$what"
        if ! diff -u "$tmp/fresh_$what" "$tmp/upgraded_$what" >"$tmp/diff_$what"; then
            same=FAIL
            echo "# $what differs between a fresh $current and $old updated:"
            sed 's/^/# /' "$tmp/diff_$what"
        fi
    done
    [ "$got" = "$current" ] || same=FAIL
    tap "$same" "$old updated with ALTER EXTENSION is $got and equals a fresh $current (tables, functions, comments, members, ledger, privileges)"
    q -d postgres -c "DROP DATABASE plystra_catalog_upgraded"
done

# Rows in a state the new version forbids are brought into it by the upgrade: a binding revoked (revoked_at set)
# but still 'active', which 1.0.0's check allowed and its login refused, is 'revoked' after the update, and the
# decision says so.
q -d postgres -q -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS plystra_catalog_data" \
  -c "CREATE DATABASE plystra_catalog_data"
if q -d plystra_catalog_data -q -c "CREATE EXTENSION plystra VERSION '1.0.0'" -f sql/demo.sql \
     -c "UPDATE plystra.user_members SET revoked_at = now() WHERE id = 'um_bob_finance_reviewer'" \
     -c "ALTER EXTENSION plystra UPDATE" >"$tmp/data.log" 2>&1; then
    status=$(q -d plystra_catalog_data -At -c "SELECT status FROM plystra.user_members WHERE id = 'um_bob_finance_reviewer'")
    code=$(q -d plystra_catalog_data -At -c "SET plystra.audit_mode = 'off'" -c "SELECT plystra.check('{\"actor\": {\"user_id\": \"user_bob\",
        \"member_id\": \"member_finance_reviewer\", \"user_member_id\": \"um_bob_finance_reviewer\", \"space_id\": \"space_acme\"},
        \"resource_type\": \"invoice\", \"resource_id\": \"invoice_001\", \"action\": \"approve\"}') ->> 'deny_code'")
    [ "$status $code" = "revoked USER_MEMBER_REVOKED" ] && r=OK || r=FAIL
    tap "$r" "a binding revoked but left 'active' under 1.0.0 is 'revoked' after the update, and check denies it (got: $status $code)"
else
    tap FAIL "a 1.0.0 database with the demo and a revoked-but-active binding updates"
    cat "$tmp/data.log"
fi
q -d postgres -q -c "DROP DATABASE plystra_catalog_data WITH (FORCE)"

q -d postgres -c "DROP DATABASE plystra_catalog_ext" -c "DROP DATABASE plystra_catalog_files"
rm -rf "$tmp"
echo "1..$n"
[ "$fails" -eq 0 ]
