-- Restart the consumers of one Kafka engine table: DETACH drops them (they leave the group),
-- ATTACH creates new ones, which join the group, get an assignment and resume from the group's
-- committed offsets. Rows read but not committed before are read again (at-least-once; staging
-- dedupes). $table is a Kafka table of kafka_queue named by ingest/topics.py, never user input.
DETACH TABLE kafka_queue.$table$on_cluster;
ATTACH TABLE kafka_queue.$table$on_cluster;
