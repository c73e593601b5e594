-- Kafka consumers and the views that move their rows into raw.* (good rows) and
-- dead_letter.kafka_messages (unparseable ones). {{kafka_broker_list}} is filled in by the
-- schema asset from the kafka resource. One consumer group per topic: lag is read per group.
-- Column lists of the views are explicit, so a new raw column never shifts data silently.

CREATE TABLE IF NOT EXISTS kafka_queue.agent_events
(
    event_id UUID, event_type String, occurred_at DateTime64(3, 'UTC'), workspace_id String,
    session_id String, actor_id String, source String, context String, model String, provider String,
    input_tokens UInt32, output_tokens UInt32, prompt_hash String, latency_ms Float64, success UInt8,
    error_type String, tool_name String, status String, unit_cost_input Float64, unit_cost_output Float64
)
ENGINE = Kafka
SETTINGS
    kafka_broker_list = '{{kafka_broker_list}}',
    kafka_topic_list = 'agent_events',
    kafka_group_name = 'clickhouse_agent_events',
    kafka_format = 'JSONEachRow',
    kafka_handle_error_mode = 'stream',   -- bad messages become rows with _error set
    kafka_num_consumers = 1,              -- one consumer thread per table on 2 cores
    kafka_max_block_size = 65536,         -- rows per insert into raw
    kafka_flush_interval_ms = 500,        -- rows are queryable within about a second
    date_time_input_format = 'best_effort',  -- ISO 8601 with Z or offset
    input_format_skip_unknown_fields = 1;    -- newer producers may add fields

CREATE TABLE IF NOT EXISTS kafka_queue.product_events
(
    event_id UUID, event_type String, occurred_at DateTime64(3, 'UTC'), workspace_id String,
    session_id String, actor_id String, source String, context String, properties String
)
ENGINE = Kafka
SETTINGS
    kafka_broker_list = '{{kafka_broker_list}}',
    kafka_topic_list = 'product_events',
    kafka_group_name = 'clickhouse_product_events',
    kafka_format = 'JSONEachRow',
    kafka_handle_error_mode = 'stream',
    kafka_num_consumers = 1,
    kafka_max_block_size = 65536,
    kafka_flush_interval_ms = 500,
    date_time_input_format = 'best_effort',
    input_format_skip_unknown_fields = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS kafka_queue.agent_events_to_raw TO raw.agent_events
(
    event_id UUID, event_type String, occurred_at DateTime64(3, 'UTC'), workspace_id String,
    session_id String, actor_id String, source String, context String, model String, provider String,
    input_tokens UInt32, output_tokens UInt32, prompt_hash String, latency_ms Float64, success UInt8,
    error_type String, tool_name String, status String, unit_cost_input Float64, unit_cost_output Float64,
    cost_usd Float64, kafka_partition UInt32, kafka_offset UInt64
)
AS SELECT
    event_id, event_type, occurred_at, workspace_id, session_id, actor_id, source, context, model, provider,
    input_tokens, output_tokens, prompt_hash, latency_ms, success, error_type, tool_name, status,
    unit_cost_input, unit_cost_output,
    input_tokens * unit_cost_input + output_tokens * unit_cost_output AS cost_usd,
    _partition AS kafka_partition, _offset AS kafka_offset
FROM kafka_queue.agent_events
WHERE length(_error) = 0;

CREATE MATERIALIZED VIEW IF NOT EXISTS kafka_queue.product_events_to_raw TO raw.product_events
(
    event_id UUID, event_type String, occurred_at DateTime64(3, 'UTC'), workspace_id String,
    session_id String, actor_id String, source String, context String, properties String,
    kafka_partition UInt32, kafka_offset UInt64
)
AS SELECT
    event_id, event_type, occurred_at, workspace_id, session_id, actor_id, source, context, properties,
    _partition AS kafka_partition, _offset AS kafka_offset
FROM kafka_queue.product_events
WHERE length(_error) = 0;

CREATE MATERIALIZED VIEW IF NOT EXISTS kafka_queue.agent_events_dead_letters TO dead_letter.kafka_messages
(
    topic String, kafka_partition UInt32, kafka_offset UInt64, kafka_timestamp Nullable(DateTime),
    raw_message String, error String
)
AS SELECT
    _topic AS topic, _partition AS kafka_partition, _offset AS kafka_offset, _timestamp AS kafka_timestamp,
    _raw_message AS raw_message, _error AS error
FROM kafka_queue.agent_events
WHERE length(_error) > 0;

CREATE MATERIALIZED VIEW IF NOT EXISTS kafka_queue.product_events_dead_letters TO dead_letter.kafka_messages
(
    topic String, kafka_partition UInt32, kafka_offset UInt64, kafka_timestamp Nullable(DateTime),
    raw_message String, error String
)
AS SELECT
    _topic AS topic, _partition AS kafka_partition, _offset AS kafka_offset, _timestamp AS kafka_timestamp,
    _raw_message AS raw_message, _error AS error
FROM kafka_queue.product_events
WHERE length(_error) > 0;
