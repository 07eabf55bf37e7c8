SELECT pg_catalog.pg_is_in_recovery(), (pg_catalog.pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::int8
