-- Bookkeeping for the DDL asset on a cluster (CLICKHOUSE_CLUSTER set): the table of
-- schema_migrations.sql, replicated to every node of the cluster, all shards included (one
-- Keeper path without {shard}; the replica name is the node's {shard}-{replica}). Any node the
-- asset connects to then knows which files were applied: a per-node table would make the next run
-- through another node apply everything again (006 would drop and recreate the Kafka tables).
-- No Distributed table: each node holds every row, read with FINAL as on one server.
CREATE DATABASE IF NOT EXISTS platform_meta ON CLUSTER '{{cluster}}';

CREATE TABLE IF NOT EXISTS platform_meta.schema_migrations ON CLUSTER '{{cluster}}'
(
    filename String,
    checksum String,              -- sha256 of the file as applied
    statements UInt32,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3),
    run_id String
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/platform_meta/schema_migrations', '{shard}-{replica}', applied_at)
ORDER BY filename;
