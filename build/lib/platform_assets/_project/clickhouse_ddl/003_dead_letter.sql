-- Messages the Kafka engine could not parse, routed by kafka_handle_error_mode = 'stream':
-- kept with the parser's error and their Kafka coordinates, never blocking the good rows.

CREATE TABLE IF NOT EXISTS dead_letter.kafka_messages
(
    topic             LowCardinality(String),
    kafka_partition   UInt32,
    kafka_offset      UInt64,
    kafka_timestamp   Nullable(DateTime),
    raw_message       String,
    error             String,
    landed_at         DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toDate(landed_at)
ORDER BY (topic, landed_at)
TTL toDateTime(landed_at) + INTERVAL 30 DAY;
