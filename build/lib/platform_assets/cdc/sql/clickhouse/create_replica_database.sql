-- The CDC replica: a MaterializedPostgreSQL database. Placeholders are filled (and quoted)
-- by platform_assets.cdc.replica.create_statement.
CREATE DATABASE IF NOT EXISTS {database}
ENGINE = MaterializedPostgreSQL({host_port}, {source_database}, {user}, {password})
SETTINGS
    materialized_postgresql_tables_list = {tables},
    -- Poll the slot every 100 ms when busy, back off to at most 1 s when idle: 0.1-0.5 s lag
    -- measured with backoff_max 1000 against the 10 s default.
    materialized_postgresql_backoff_min_ms = 100,
    materialized_postgresql_backoff_max_ms = 1000,
    -- Rows per insert block while streaming; the default (65536) suits snapshot and stream.
    materialized_postgresql_max_block_size = 65536
