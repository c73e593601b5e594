-- The CDC replica: a MaterializedPostgreSQL database. Placeholders are filled (and quoted)
-- by platform_assets.cdc.replica.create_statement.
-- ATTACH with a new UUID, not CREATE: on CREATE the engine drops the existing publication and
-- creates its own (DROP PUBLICATION / CREATE PUBLICATION need the publication's and the tables'
-- owner); on ATTACH it uses the publication the owner created (source.ensure_publication) when
-- its tables match the list below, then creates its slot and loads the snapshot, which needs
-- only REPLICATION and SELECT (measured on 26.9.2.1, docs/cdc.md). Errors at ATTACH are only
-- logged by the engine: a missing privilege shows as tables that never appear.
ATTACH DATABASE {database} UUID {uuid}
ENGINE = MaterializedPostgreSQL({host_port}, {source_database}, {user}, {password})
SETTINGS
    -- Tables, with a column list where columns are excluded (users: no email, no name).
    materialized_postgresql_tables_list = {tables},
    -- Poll the slot every 100 ms when busy, back off to at most 1 s when idle: 0.1-0.5 s lag
    -- measured with backoff_max 1000 against the 10 s default.
    materialized_postgresql_backoff_min_ms = 100,
    materialized_postgresql_backoff_max_ms = 1000,
    -- Rows per insert block while streaming; the default (65536) suits snapshot and stream.
    materialized_postgresql_max_block_size = 65536
