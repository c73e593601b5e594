-- Bookkeeping for the DDL asset: one row per applied clickhouse_ddl file.
CREATE DATABASE IF NOT EXISTS platform_meta;

CREATE TABLE IF NOT EXISTS platform_meta.schema_migrations
(
    filename String,
    checksum String,              -- sha256 of the file as applied
    statements UInt32,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3),
    run_id String
)
ENGINE = ReplacingMergeTree(applied_at)  -- one live row per file; read with FINAL
ORDER BY filename;
