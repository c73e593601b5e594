-- Spans: OTLP JSON export requests (as the collector, or an OpenTelemetry Collector's Kafka
-- exporter with encoding otlp_json, writes them) flattened to one row per span.
-- Attribute values are kept as text in a Map (ints arrive as strings in OTLP JSON anyway).

CREATE TABLE IF NOT EXISTS raw.spans
(
    trace_id             String,                  -- 32 hex chars
    span_id              String,                  -- 16 hex chars
    parent_span_id       String,                  -- empty for a root span
    tenant               LowCardinality(String),  -- resource or span attribute tenant.id
    env                  LowCardinality(String),  -- resource attribute deployment.environment(.name)
    service              LowCardinality(String),  -- resource attribute service.name
    scope                LowCardinality(String),  -- instrumentation scope name
    operation            LowCardinality(String),  -- span name
    kind                 UInt8,                   -- OTLP SpanKind number
    status_code          UInt8,                   -- 0 unset, 1 ok, 2 error
    status_message       String,
    start_time           DateTime64(3, 'UTC'),
    end_time             DateTime64(3, 'UTC'),
    duration_ms          Float64,                 -- from the nanosecond timestamps
    attributes           Map(String, String),
    resource_attributes  Map(String, String),
    kafka_partition      UInt32,
    kafka_offset         UInt64,
    ingested_at          DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toDate(start_time)
ORDER BY (tenant, service, start_time, trace_id)
TTL toDateTime(start_time) + INTERVAL 90 DAY;

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
    kafka_handle_error_mode = 'stream',
    kafka_num_consumers = 1,
    kafka_max_block_size = 65536,
    kafka_flush_interval_ms = 500;

CREATE MATERIALIZED VIEW IF NOT EXISTS kafka_queue.otlp_spans_to_raw TO raw.spans
(
    trace_id String, span_id String, parent_span_id String, tenant String, env String, service String,
    scope String, operation String, kind UInt8, status_code UInt8, status_message String,
    start_time DateTime64(3, 'UTC'), end_time DateTime64(3, 'UTC'), duration_ms Float64,
    attributes Map(String, String), resource_attributes Map(String, String),
    kafka_partition UInt32, kafka_offset UInt64
)
AS SELECT
    JSONExtractString(span, 'traceId') AS trace_id,
    JSONExtractString(span, 'spanId') AS span_id,
    JSONExtractString(span, 'parentSpanId') AS parent_span_id,
    coalesce(nullIf(resource_attributes['tenant.id'], ''), attributes['tenant.id']) AS tenant,
    coalesce(nullIf(resource_attributes['deployment.environment.name'], ''),
             resource_attributes['deployment.environment']) AS env,
    resource_attributes['service.name'] AS service,
    JSONExtractString(ss, 'scope', 'name') AS scope,
    JSONExtractString(span, 'name') AS operation,
    toUInt8(JSONExtractUInt(span, 'kind')) AS kind,
    toUInt8(JSONExtractUInt(span, 'status', 'code')) AS status_code,
    JSONExtractString(span, 'status', 'message') AS status_message,
    fromUnixTimestamp64Nano(start_ns, 'UTC') AS start_time,
    fromUnixTimestamp64Nano(end_ns, 'UTC') AS end_time,
    (end_ns - start_ns) / 1e6 AS duration_ms,
    CAST((
        arrayMap(a -> JSONExtractString(a, 'key'), JSONExtractArrayRaw(span, 'attributes')),
        arrayMap(a -> multiIf(
            JSONHas(a, 'value', 'stringValue'), JSONExtractString(a, 'value', 'stringValue'),
            JSONHas(a, 'value', 'boolValue'), toString(JSONExtractBool(a, 'value', 'boolValue')),
            trim(BOTH '"' FROM JSONExtractRaw(JSONExtractRaw(a, 'value'), 1))),
            JSONExtractArrayRaw(span, 'attributes'))
    ), 'Map(String, String)') AS attributes,
    CAST((
        arrayMap(a -> JSONExtractString(a, 'key'), JSONExtractArrayRaw(rs, 'resource', 'attributes')),
        arrayMap(a -> multiIf(
            JSONHas(a, 'value', 'stringValue'), JSONExtractString(a, 'value', 'stringValue'),
            JSONHas(a, 'value', 'boolValue'), toString(JSONExtractBool(a, 'value', 'boolValue')),
            trim(BOTH '"' FROM JSONExtractRaw(JSONExtractRaw(a, 'value'), 1))),
            JSONExtractArrayRaw(rs, 'resource', 'attributes'))
    ), 'Map(String, String)') AS resource_attributes,
    _partition AS kafka_partition,
    _offset AS kafka_offset
FROM
(
    SELECT
        rs, ss, span, _partition, _offset,
        toInt64OrZero(trim(BOTH '"' FROM JSONExtractRaw(span, 'startTimeUnixNano'))) AS start_ns,
        toInt64OrZero(trim(BOTH '"' FROM JSONExtractRaw(span, 'endTimeUnixNano'))) AS end_ns
    FROM kafka_queue.otlp_spans
    ARRAY JOIN JSONExtractArrayRaw(message, 'resourceSpans') AS rs
    ARRAY JOIN JSONExtractArrayRaw(rs, 'scopeSpans') AS ss
    ARRAY JOIN JSONExtractArrayRaw(ss, 'spans') AS span
    WHERE length(_error) = 0
);

CREATE MATERIALIZED VIEW IF NOT EXISTS kafka_queue.otlp_spans_dead_letters TO dead_letter.kafka_messages
(
    topic String, kafka_partition UInt32, kafka_offset UInt64, kafka_timestamp Nullable(DateTime),
    raw_message String, error String
)
AS SELECT
    _topic AS topic, _partition AS kafka_partition, _offset AS kafka_offset, _timestamp AS kafka_timestamp,
    _raw_message AS raw_message, _error AS error
FROM kafka_queue.otlp_spans
WHERE length(_error) > 0;
