-- Every materialized view runs as `ingest` (platform_assets/core/access.py): a view's inserts into
-- its target run with its definer's grants, and the definer was whoever applied the DDL (the admin,
-- who may do anything). As `ingest`, a view can only read the Kafka tables and the raw and rollup
-- tables it chains from and write raw, dead-letter, ops and rollup tables. The user is defined in
-- users.xml (the embedded stack, docker/clickhouse/users.d/components.xml); it never logs in.
-- Idempotent: setting the same definer again changes nothing.

ALTER TABLE kafka_queue.agent_events_to_raw MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE kafka_queue.product_events_to_raw MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE kafka_queue.agent_events_dead_letters MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE kafka_queue.product_events_dead_letters MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE kafka_queue.otlp_spans_to_raw MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE kafka_queue.otlp_spans_dead_letters MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE kafka_queue.otlp_logs_to_raw MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE kafka_queue.otlp_logs_dead_letters MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE kafka_queue.otlp_metrics_to_gauge MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE kafka_queue.otlp_metrics_to_sum MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE kafka_queue.otlp_metrics_to_histogram MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE kafka_queue.otlp_metrics_to_exponential_histogram MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE kafka_queue.otlp_metrics_to_summary MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE kafka_queue.otlp_metrics_dead_letters MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE kafka_queue.otlp_metrics_unknown_types MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE rollups.llm_calls_1m_mv MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE rollups.spans_1m_mv MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE rollups.agent_events_1m_mv MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE rollups.product_events_1m_mv MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE rollups.logs_1m_mv MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE rollups.metric_gauge_points_1m_mv MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE rollups.metric_sum_points_1m_mv MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE rollups.metric_histogram_points_1m_mv MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE rollups.metric_exponential_histogram_points_1m_mv MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE rollups.metric_summary_points_1m_mv MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE kafka_queue.collector_stats_to_ops MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE kafka_queue.collector_stats_dead_letters MODIFY DEFINER = ingest SQL SECURITY DEFINER;
ALTER TABLE rollups.llm_calls_1h_mv MODIFY DEFINER = ingest SQL SECURITY DEFINER;
