-- Kafka consumers with one consumer per partition and a thread per consumer (they had one
-- consumer each in 004 and 005). The Kafka engine has no ALTER ... MODIFY SETTING, so each Kafka
-- table is dropped and created again under the same name: the views into raw.* and
-- dead_letter.* (004, 005) read it by name and keep working, and the consumer group's committed
-- offsets are on the broker, so messages produced in between are read after, once (checked on the
-- embedded stack: produced while the table was gone, landed once, also after a restart).
-- The schema asset fills the placeholders when it applies the file: {{kafka_broker_list}} from
-- the kafka resource, {{kafka_consumers_<topic>}} with the topic's partition count on the broker
-- (kafka/topics runs first), capped at 16.

DROP TABLE IF EXISTS kafka_queue.agent_events SYNC;

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
    kafka_num_consumers = {{kafka_consumers_agent_events}},  -- one consumer per partition
    kafka_thread_per_consumer = 1,        -- parallel inserts: 3 consumers drained 284-379k rows/s, 1 consumer 180-227k (docs/ingest.md)
    kafka_max_block_size = 65536,         -- up to 64k messages per insert into raw
    kafka_flush_interval_ms = 500,        -- rows are queryable within about a second
    date_time_input_format = 'best_effort',  -- ISO 8601 with Z or offset
    input_format_skip_unknown_fields = 1;    -- newer producers may add fields

DROP TABLE IF EXISTS kafka_queue.product_events SYNC;

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
    kafka_handle_error_mode = 'stream',   -- bad messages become rows with _error set
    kafka_num_consumers = {{kafka_consumers_product_events}},  -- one consumer per partition
    kafka_thread_per_consumer = 1,        -- parallel inserts: 3 consumers drained 284-379k rows/s, 1 consumer 180-227k (docs/ingest.md)
    kafka_max_block_size = 65536,         -- up to 64k messages per insert into raw
    kafka_flush_interval_ms = 500,        -- rows are queryable within about a second
    date_time_input_format = 'best_effort',  -- ISO 8601 with Z or offset
    input_format_skip_unknown_fields = 1;    -- newer producers may add fields

DROP TABLE IF EXISTS kafka_queue.otlp_spans SYNC;

CREATE TABLE IF NOT EXISTS kafka_queue.otlp_spans
(
    message String
)
ENGINE = Kafka
SETTINGS
    kafka_broker_list = '{{kafka_broker_list}}',
    kafka_topic_list = 'otlp_spans',
    kafka_group_name = 'clickhouse_otlp_spans',
    kafka_format = 'JSONAsString',        -- one export request (a JSON object) per message
    kafka_handle_error_mode = 'stream',   -- bad messages become rows with _error set
    kafka_num_consumers = {{kafka_consumers_otlp_spans}},  -- one consumer per partition
    kafka_thread_per_consumer = 1,        -- parallel inserts: 6 consumers drained 64-74k spans/s, 1 consumer 38-54k (docs/ingest.md)
    kafka_max_block_size = 65536,         -- up to 64k messages per insert into raw
    kafka_flush_interval_ms = 500;        -- spans are queryable within about a second
