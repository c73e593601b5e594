-- Logs: OTLP JSON export requests (ExportLogsServiceRequest) from topic otlp_logs, as the
-- collector, or an OpenTelemetry Collector's Kafka exporter with encoding otlp_json, writes them:
-- camelCase fields, hex ids, integer enums, 64-bit integers as strings. One row per log record in
-- raw.otel_logs, in the columns of the OpenTelemetry Collector ClickHouse exporter's otel_logs
-- table (so its queries, dashboards and the Grafana ClickHouse plugin's OpenTelemetry mode work on
-- it), plus the Kafka coordinates and the landing time.
--
-- Decisions:
-- - Time columns are DateTime64(9, 'UTC') (TimestampTime DateTime('UTC')): the exporter's
--   DateTime64(9) with the zone pinned, so the daily partitions and the TTL are UTC days whatever
--   the server's timezone, as in every raw table. Values are the same instants either way.
-- - Timestamp is timeUnixNano; observedTimeUnixNano when that is 0 or missing; the Kafka message's
--   timestamp when both are (a record without any time would otherwise land in 1970 and expire).
-- - Proto3 JSON leaves out fields at their default: a missing field reads as 0, '' or an empty
--   map. 64-bit integers are read from JSON strings or numbers alike.
-- - Body: a stringValue as the string; the other AnyValue kinds as JSON: boolValue true/false,
--   intValue and doubleValue as the number (e.g. 42, 1.5; "NaN" and "Infinity" as those words),
--   arrayValue, kvlistValue and bytesValue as the AnyValue object itself, e.g.
--   {"kvlistValue":{"values":[...]}} (lossless, readable with the JSON functions); no body: ''.
-- - Attribute values as text, as raw.spans keeps them (005): strings as they are, ints and
--   doubles as the number, booleans as '1'/'0', arrays and maps as their OTLP JSON.
-- - ServiceName is the resource attribute service.name; TraceFlags the low 8 bits of flags.
-- - At-least-once: a redelivered message lands its records again (records carry no id); the
--   staging layer dedupes on content.

CREATE TABLE IF NOT EXISTS raw.otel_logs
(
    Timestamp           DateTime64(9, 'UTC'),
    TimestampTime       DateTime('UTC') DEFAULT toDateTime(Timestamp),
    TraceId             String,                  -- 32 hex chars, '' when the record has none
    SpanId              String,                  -- 16 hex chars
    TraceFlags          UInt8,
    SeverityText        LowCardinality(String),
    SeverityNumber      UInt8,                   -- OTLP SeverityNumber, 0 unspecified, 1-24
    ServiceName         LowCardinality(String),
    Body                String,
    ResourceSchemaUrl   LowCardinality(String),
    ResourceAttributes  Map(LowCardinality(String), String),
    ScopeSchemaUrl      LowCardinality(String),
    ScopeName           String,
    ScopeVersion        LowCardinality(String),
    ScopeAttributes     Map(LowCardinality(String), String),
    LogAttributes       Map(LowCardinality(String), String),
    EventName           String,                  -- LogRecord.eventName (newer exporter versions have it too)
    kafka_partition     UInt32,
    kafka_offset        UInt64,
    ingested_at         DateTime64(3, 'UTC') DEFAULT now64(3),
    -- skip indexes for lookups by trace id and by attribute key or value
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_key mapKeys(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_value mapValues(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toDate(TimestampTime)
PRIMARY KEY (ServiceName, TimestampTime)
ORDER BY (ServiceName, TimestampTime, Timestamp)
TTL TimestampTime + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;  -- a partition is one day: expired parts are dropped whole, never rewritten

CREATE TABLE IF NOT EXISTS kafka_queue.otlp_logs
(
    message String
)
ENGINE = Kafka
SETTINGS
    kafka_broker_list = '{{kafka_broker_list}}',
    kafka_topic_list = 'otlp_logs',
    kafka_group_name = 'clickhouse_otlp_logs',
    kafka_format = 'JSONAsString',        -- one export request (a JSON object) per message
    kafka_handle_error_mode = 'stream',   -- bad messages become rows with _error set
    kafka_num_consumers = {{kafka_consumers_otlp_logs}},  -- one consumer per partition
    kafka_thread_per_consumer = 1,        -- parallel inserts, as for spans (006, docs/ingest.md)
    kafka_max_block_size = 65536,         -- up to 64k messages per insert into raw
    kafka_flush_interval_ms = 500;        -- records are queryable within about a second

CREATE MATERIALIZED VIEW IF NOT EXISTS kafka_queue.otlp_logs_to_raw TO raw.otel_logs
(
    Timestamp DateTime64(9, 'UTC'), TraceId String, SpanId String, TraceFlags UInt8, SeverityText String,
    SeverityNumber UInt8, ServiceName String, Body String, ResourceSchemaUrl String,
    ResourceAttributes Map(String, String), ScopeSchemaUrl String, ScopeName String, ScopeVersion String,
    ScopeAttributes Map(String, String), LogAttributes Map(String, String), EventName String,
    kafka_partition UInt32, kafka_offset UInt64
)
AS WITH
    -- an OTLP JSON attribute list -> Map of text values
    attrs -> CAST((
        arrayMap(a -> JSONExtractString(a, 'key'), attrs),
        arrayMap(a -> multiIf(
            JSONHas(a, 'value', 'stringValue'), JSONExtractString(a, 'value', 'stringValue'),
            JSONHas(a, 'value', 'boolValue'), toString(JSONExtractBool(a, 'value', 'boolValue')),
            trim(BOTH '"' FROM JSONExtractRaw(JSONExtractRaw(a, 'value'), 1))),
            attrs)
    ), 'Map(String, String)') AS otlp_attributes
SELECT
    fromUnixTimestamp64Nano(multiIf(time_ns > 0, time_ns, observed_ns > 0, observed_ns, kafka_ns), 'UTC') AS Timestamp,
    lower(JSONExtractString(rec, 'traceId')) AS TraceId,
    lower(JSONExtractString(rec, 'spanId')) AS SpanId,
    toUInt8(bitAnd(toUInt32OrZero(trim(BOTH '"' FROM JSONExtractRaw(rec, 'flags'))), 255)) AS TraceFlags,
    JSONExtractString(rec, 'severityText') AS SeverityText,
    -- an integer; the enum's name (SEVERITY_NUMBER_INFO, ...) is read too: the names in number order
    toUInt8(if(NOT startsWith(severity, 'SEVERITY_NUMBER_'), toUInt8OrZero(severity), indexOf(
        ['SEVERITY_NUMBER_TRACE', 'SEVERITY_NUMBER_TRACE2', 'SEVERITY_NUMBER_TRACE3', 'SEVERITY_NUMBER_TRACE4',
         'SEVERITY_NUMBER_DEBUG', 'SEVERITY_NUMBER_DEBUG2', 'SEVERITY_NUMBER_DEBUG3', 'SEVERITY_NUMBER_DEBUG4',
         'SEVERITY_NUMBER_INFO', 'SEVERITY_NUMBER_INFO2', 'SEVERITY_NUMBER_INFO3', 'SEVERITY_NUMBER_INFO4',
         'SEVERITY_NUMBER_WARN', 'SEVERITY_NUMBER_WARN2', 'SEVERITY_NUMBER_WARN3', 'SEVERITY_NUMBER_WARN4',
         'SEVERITY_NUMBER_ERROR', 'SEVERITY_NUMBER_ERROR2', 'SEVERITY_NUMBER_ERROR3', 'SEVERITY_NUMBER_ERROR4',
         'SEVERITY_NUMBER_FATAL', 'SEVERITY_NUMBER_FATAL2', 'SEVERITY_NUMBER_FATAL3', 'SEVERITY_NUMBER_FATAL4'],
        severity))) AS SeverityNumber,
    ResourceAttributes['service.name'] AS ServiceName,
    multiIf(
        JSONHas(rec, 'body', 'stringValue'), JSONExtractString(rec, 'body', 'stringValue'),
        JSONHas(rec, 'body', 'boolValue'), if(JSONExtractBool(rec, 'body', 'boolValue'), 'true', 'false'),
        JSONHas(rec, 'body', 'intValue'), trim(BOTH '"' FROM JSONExtractRaw(rec, 'body', 'intValue')),
        JSONHas(rec, 'body', 'doubleValue'), trim(BOTH '"' FROM JSONExtractRaw(rec, 'body', 'doubleValue')),
        JSONExtractRaw(rec, 'body') IN ('', '{}', 'null'), '',
        JSONExtractRaw(rec, 'body')) AS Body,
    JSONExtractString(rs, 'schemaUrl') AS ResourceSchemaUrl,
    otlp_attributes(resource_attrs) AS ResourceAttributes,
    JSONExtractString(ss, 'schemaUrl') AS ScopeSchemaUrl,
    JSONExtractString(ss, 'scope', 'name') AS ScopeName,
    JSONExtractString(ss, 'scope', 'version') AS ScopeVersion,
    otlp_attributes(scope_attrs) AS ScopeAttributes,
    otlp_attributes(record_attrs) AS LogAttributes,
    JSONExtractString(rec, 'eventName') AS EventName,
    _partition AS kafka_partition,
    _offset AS kafka_offset
FROM
(
    SELECT
        rs, ss, rec, _partition, _offset,
        JSONExtractArrayRaw(rs, 'resource', 'attributes') AS resource_attrs,
        JSONExtractArrayRaw(ss, 'scope', 'attributes') AS scope_attrs,
        JSONExtractArrayRaw(rec, 'attributes') AS record_attrs,
        trim(BOTH '"' FROM JSONExtractRaw(rec, 'severityNumber')) AS severity,
        toInt64OrZero(trim(BOTH '"' FROM JSONExtractRaw(rec, 'timeUnixNano'))) AS time_ns,
        toInt64OrZero(trim(BOTH '"' FROM JSONExtractRaw(rec, 'observedTimeUnixNano'))) AS observed_ns,
        toUnixTimestamp64Nano(coalesce(_timestamp_ms, now64(3))) AS kafka_ns
    FROM kafka_queue.otlp_logs
    ARRAY JOIN JSONExtractArrayRaw(message, 'resourceLogs') AS rs
    ARRAY JOIN JSONExtractArrayRaw(rs, 'scopeLogs') AS ss
    ARRAY JOIN JSONExtractArrayRaw(ss, 'logRecords') AS rec
    WHERE length(_error) = 0
);

CREATE MATERIALIZED VIEW IF NOT EXISTS kafka_queue.otlp_logs_dead_letters TO dead_letter.kafka_messages
(
    topic String, kafka_partition UInt32, kafka_offset UInt64, kafka_timestamp Nullable(DateTime),
    raw_message String, error String
)
AS SELECT
    _topic AS topic, _partition AS kafka_partition, _offset AS kafka_offset, _timestamp AS kafka_timestamp,
    _raw_message AS raw_message, _error AS error
FROM kafka_queue.otlp_logs
WHERE length(_error) > 0;
