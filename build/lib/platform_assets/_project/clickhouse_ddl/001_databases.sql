-- Databases for every stage of the platform. Idempotent: safe to apply on a server that has them.
-- The CDC replica database (ENGINE = MaterializedPostgreSQL) is created by the CDC asset,
-- because its table list comes from configuration.

-- Bookkeeping: applied DDL files, heartbeats, platform state.
CREATE DATABASE IF NOT EXISTS platform_meta COMMENT 'platform bookkeeping (applied DDL, heartbeats)';

-- ENGINE = Kafka tables: consumers only, never queried directly.
CREATE DATABASE IF NOT EXISTS kafka_queue COMMENT 'Kafka engine tables (consumers)';

-- MergeTree tables fed by materialized views from kafka_queue.
CREATE DATABASE IF NOT EXISTS raw COMMENT 'raw events and spans as landed from Kafka';

-- Messages that failed to parse, with the error and their Kafka coordinates.
CREATE DATABASE IF NOT EXISTS dead_letter COMMENT 'bad messages routed by kafka_handle_error_mode=stream';

-- dbt staging and marts (dbt-clickhouse writes here).
CREATE DATABASE IF NOT EXISTS staging COMMENT 'dbt staging models';
CREATE DATABASE IF NOT EXISTS marts COMMENT 'dbt marts';
