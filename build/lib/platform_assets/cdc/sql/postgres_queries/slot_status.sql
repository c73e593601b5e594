-- One replication slot: activity, WAL status, bytes of WAL it has not confirmed, its and the current LSN.
SELECT slot_name, active, wal_status,
       pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint,
       confirmed_flush_lsn::text, pg_current_wal_lsn()::text
FROM pg_replication_slots WHERE slot_name = %s
