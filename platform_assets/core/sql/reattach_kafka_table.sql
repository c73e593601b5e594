-- Re-attach one Kafka engine table: DETACH drops its consumers (they leave the group), ATTACH
-- creates new ones, which join the group, get an assignment and resume from the group's
-- committed offsets, and which push into the views that exist now (a table's consumers keep the
-- views it had when they started, platform_assets/core/kafka_tables.py). Rows read but not
-- committed before are read again (at-least-once; staging dedupes). $table is a Kafka table of
-- kafka_queue named by the DDL, never user input.
DETACH TABLE kafka_queue.$table$on_cluster;
ATTACH TABLE kafka_queue.$table$on_cluster;
