-- Raw tables fed from Kafka by the materialized views in 004. Tenant first in the sort key
-- (every dashboard filters by workspace), one partition per day, 90-day TTL (raw data is
-- exported to S3 per day before it expires; change it with ALTER TABLE ... MODIFY TTL in a
-- new file). At-least-once delivery: duplicates of event_id can land here; staging dedupes.

CREATE TABLE IF NOT EXISTS raw.agent_events
(
    event_id          UUID,
    event_type        LowCardinality(String),   -- agent_run_started|agent_run_finished|tool_call|llm_call|error|business_event
    occurred_at       DateTime64(3, 'UTC'),
    workspace_id      LowCardinality(String),
    session_id        String,
    actor_id          String,                   -- keyed hash of the user identifier (collector)
    source            LowCardinality(String),
    context           String,                   -- JSON object as text
    model             LowCardinality(String),
    provider          LowCardinality(String),
    input_tokens      UInt32,
    output_tokens     UInt32,
    prompt_hash       String,
    latency_ms        Float64,
    success           UInt8,
    error_type        LowCardinality(String),
    tool_name         LowCardinality(String),
    status            LowCardinality(String),
    unit_cost_input   Float64,                  -- USD per input token
    unit_cost_output  Float64,                  -- USD per output token
    cost_usd          Float64,                  -- computed by the view: tokens x unit costs
    kafka_partition   UInt32,
    kafka_offset      UInt64,
    ingested_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toDate(occurred_at)
ORDER BY (workspace_id, event_type, occurred_at, event_id)
TTL toDateTime(occurred_at) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS raw.product_events
(
    event_id          UUID,
    event_type        LowCardinality(String),   -- page_view|session_start|session_end|signup_*|feature_used|...
    occurred_at       DateTime64(3, 'UTC'),
    workspace_id      LowCardinality(String),
    session_id        String,
    actor_id          String,
    source            LowCardinality(String),
    context           String,
    properties        String,                   -- JSON object as text
    kafka_partition   UInt32,
    kafka_offset      UInt64,
    ingested_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toDate(occurred_at)
ORDER BY (workspace_id, event_type, occurred_at, event_id)
TTL toDateTime(occurred_at) + INTERVAL 90 DAY;
