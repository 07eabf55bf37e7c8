SELECT (pg_catalog.pg_current_wal_lsn() - '0/0'::pg_lsn)::int8
