-- The platform watching itself, as time series the health dashboard and alert rules read:
-- - ops.kafka_consumer_lag: every observation of the ingest_consumer_lag sensor (one row per
--   topic and partition per tick; written by the sensor, platform_assets/ingest/sql/).
-- - ops.collector_stats: each collector worker's counter increases (refusals, rejections,
--   accepted items), one JSON row per worker every COLLECTOR_STATS_INTERVAL_S, through topic
--   collector_stats and the Kafka table and view below. A report produced while the broker is
--   down is delivered once it is back, so a refusal during an outage shows up after it.
-- Both keep 30 days, like the dead letters.

CREATE DATABASE IF NOT EXISTS ops COMMENT 'the platform watching itself: consumer lag and collector counters over time';

CREATE TABLE IF NOT EXISTS ops.kafka_consumer_lag
(
    observed_at    DateTime64(3, 'UTC'),
    topic          LowCardinality(String),
    consumer_group LowCardinality(String),
    partition      UInt32,
    high_watermark Int64,
    committed      Int64,   -- -1: the group has committed nothing on this partition yet
    lag            UInt64   -- high_watermark minus committed (or minus the low watermark when -1)
)
ENGINE = MergeTree
PARTITION BY toDate(observed_at)
ORDER BY (topic, partition, observed_at)
TTL toDateTime(observed_at) + INTERVAL 30 DAY;

CREATE TABLE IF NOT EXISTS ops.collector_stats
(
    reported_at DateTime64(3, 'UTC'),
    host        LowCardinality(String),
    pid         UInt32,
    counter     LowCardinality(String),  -- a /metrics counter without collector_ and _total
    delta       UInt64,                  -- its increase since the worker's previous report
    kafka_partition UInt32,
    kafka_offset    UInt64
)
ENGINE = MergeTree
PARTITION BY toDate(reported_at)
ORDER BY (counter, host, reported_at)
TTL toDateTime(reported_at) + INTERVAL 30 DAY;

-- One message is one report: {"reported_at": "...Z", "host": "...", "pid": 123, "counters": {"name": n, ...}}.
CREATE TABLE IF NOT EXISTS kafka_queue.collector_stats
(
    reported_at DateTime64(3, 'UTC'), host String, pid UInt32, counters Map(String, UInt64)
)
ENGINE = Kafka
SETTINGS
    kafka_broker_list = '{{kafka_broker_list}}',
    kafka_topic_list = 'collector_stats',
    kafka_group_name = 'clickhouse_collector_stats',
    kafka_format = 'JSONEachRow',
    kafka_handle_error_mode = 'stream',   -- bad messages become rows with _error set (dead letters)
    kafka_num_consumers = {{kafka_consumers_collector_stats}},  -- one consumer per partition
    kafka_thread_per_consumer = 1,        -- as the other Kafka tables (006): its own task in the broker pool
    kafka_flush_interval_ms = 1000,       -- reports are queryable within seconds (default 7.5 s)
    date_time_input_format = 'best_effort',  -- ISO 8601 with Z
    input_format_skip_unknown_fields = 1;    -- newer collectors may add fields

CREATE MATERIALIZED VIEW IF NOT EXISTS kafka_queue.collector_stats_to_ops TO ops.collector_stats
(
    reported_at DateTime64(3, 'UTC'), host String, pid UInt32, counter String, delta UInt64,
    kafka_partition UInt32, kafka_offset UInt64
)
AS SELECT
    reported_at, host, pid, counter, delta, _partition AS kafka_partition, _offset AS kafka_offset
FROM kafka_queue.collector_stats
ARRAY JOIN mapKeys(counters) AS counter, mapValues(counters) AS delta
WHERE length(_error) = 0;

CREATE MATERIALIZED VIEW IF NOT EXISTS kafka_queue.collector_stats_dead_letters TO dead_letter.kafka_messages
(
    topic String, kafka_partition UInt32, kafka_offset UInt64, kafka_timestamp Nullable(DateTime),
    raw_message String, error String
)
AS SELECT
    _topic AS topic, _partition AS kafka_partition, _offset AS kafka_offset, _timestamp AS kafka_timestamp,
    _raw_message AS raw_message, _error AS error
FROM kafka_queue.collector_stats
WHERE length(_error) > 0;
