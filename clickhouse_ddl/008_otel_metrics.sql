-- Metrics: OTLP JSON export requests (ExportMetricsServiceRequest) from topic otlp_metrics, as the
-- collector, or an OpenTelemetry Collector's Kafka exporter with encoding otlp_json, writes them.
-- One row per data point, in one table per point type with the columns of the OpenTelemetry
-- Collector ClickHouse exporter's tables (raw.otel_metrics_gauge, _sum, _histogram,
-- _exponential_histogram, _summary), plus the Kafka coordinates and the landing time. One Kafka
-- table; a view per point type reads each message and keeps the metrics of its type.
--
-- Decisions:
-- - Time columns are DateTime64(9, 'UTC') in all five tables, exemplar times too. Some exporter
--   versions create StartTimeUnix/TimeUnix of the sum and exponential-histogram tables as
--   DateTime (seconds); nanoseconds everywhere keep every point's time as sent and make the five
--   tables one shape. The zone is pinned so partitions and the TTL are UTC days.
-- - A metric carries one of gauge, sum, histogram, exponentialHistogram, summary. A metric with
--   none of them (a point type this file does not know, or no data) is not stored: the message's
--   other metrics land, and the message becomes one dead letter whose error names those metrics
--   (kafka_queue.otlp_metrics_unknown_types), so nothing goes missing unseen.
-- - Proto3 JSON leaves out fields at their default: a missing field reads as 0, false, '' or
--   empty (no min/max/sum: 0, as the exporter writes them). 64-bit integers (count, bucket counts,
--   asInt, times) are read from JSON strings or numbers alike; doubles also from the strings
--   "NaN", "Infinity", "-Infinity". Enums are integers; AggregationTemporality also as its name.
-- - A number point's Value is asDouble, or asInt as a Float64. TimeUnix is timeUnixNano, or the
--   Kafka message's timestamp when that is missing; StartTimeUnix is 0 (1970) when not sent.
-- - Attribute values as text, as raw.spans keeps them (005): strings as they are, ints and
--   doubles as the number, booleans as '1'/'0', arrays and maps as their OTLP JSON.
--   ServiceName is the resource attribute service.name. Ids are lowercase hex.
-- - At-least-once: a redelivered message lands its points again; points have no id, the
--   staging layer dedupes on series and times.

CREATE TABLE IF NOT EXISTS raw.otel_metrics_gauge
(
    ResourceAttributes     Map(LowCardinality(String), String),
    ResourceSchemaUrl      String,
    ScopeName              String,
    ScopeVersion           String,
    ScopeAttributes        Map(LowCardinality(String), String),
    ScopeDroppedAttrCount  UInt32,
    ScopeSchemaUrl         String,
    ServiceName            LowCardinality(String),
    MetricName             String,
    MetricDescription      String,
    MetricUnit             String,
    Attributes             Map(LowCardinality(String), String),
    StartTimeUnix          DateTime64(9, 'UTC'),
    TimeUnix               DateTime64(9, 'UTC'),
    Value                  Float64,
    Flags                  UInt32,
    Exemplars Nested
    (
        FilteredAttributes Map(LowCardinality(String), String),
        TimeUnix           DateTime64(9, 'UTC'),
        Value              Float64,
        SpanId             String,
        TraceId            String
    ),
    kafka_partition        UInt32,
    kafka_offset           UInt64,
    ingested_at            DateTime64(3, 'UTC') DEFAULT now64(3),
    -- skip indexes for lookups by attribute key or value
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_key mapKeys(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_value mapValues(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toDate(TimeUnix)
ORDER BY (ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix))
TTL toDateTime(TimeUnix) + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;  -- a partition is one day: expired parts are dropped whole, never rewritten

CREATE TABLE IF NOT EXISTS raw.otel_metrics_sum
(
    ResourceAttributes     Map(LowCardinality(String), String),
    ResourceSchemaUrl      String,
    ScopeName              String,
    ScopeVersion           String,
    ScopeAttributes        Map(LowCardinality(String), String),
    ScopeDroppedAttrCount  UInt32,
    ScopeSchemaUrl         String,
    ServiceName            LowCardinality(String),
    MetricName             String,
    MetricDescription      String,
    MetricUnit             String,
    Attributes             Map(LowCardinality(String), String),
    StartTimeUnix          DateTime64(9, 'UTC'),
    TimeUnix               DateTime64(9, 'UTC'),
    Value                  Float64,
    Flags                  UInt32,
    Exemplars Nested
    (
        FilteredAttributes Map(LowCardinality(String), String),
        TimeUnix           DateTime64(9, 'UTC'),
        Value              Float64,
        SpanId             String,
        TraceId            String
    ),
    AggregationTemporality Int32,                 -- 1 delta, 2 cumulative (0 unspecified)
    IsMonotonic            Boolean,
    kafka_partition        UInt32,
    kafka_offset           UInt64,
    ingested_at            DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_key mapKeys(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_value mapValues(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toDate(TimeUnix)
ORDER BY (ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix))
TTL toDateTime(TimeUnix) + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;  -- a partition is one day: expired parts are dropped whole, never rewritten

CREATE TABLE IF NOT EXISTS raw.otel_metrics_histogram
(
    ResourceAttributes     Map(LowCardinality(String), String),
    ResourceSchemaUrl      String,
    ScopeName              String,
    ScopeVersion           String,
    ScopeAttributes        Map(LowCardinality(String), String),
    ScopeDroppedAttrCount  UInt32,
    ScopeSchemaUrl         String,
    ServiceName            LowCardinality(String),
    MetricName             String,
    MetricDescription      String,
    MetricUnit             String,
    Attributes             Map(LowCardinality(String), String),
    StartTimeUnix          DateTime64(9, 'UTC'),
    TimeUnix               DateTime64(9, 'UTC'),
    Count                  UInt64,
    Sum                    Float64,
    BucketCounts           Array(UInt64),         -- one more than ExplicitBounds
    ExplicitBounds         Array(Float64),
    Exemplars Nested
    (
        FilteredAttributes Map(LowCardinality(String), String),
        TimeUnix           DateTime64(9, 'UTC'),
        Value              Float64,
        SpanId             String,
        TraceId            String
    ),
    Flags                  UInt32,
    Min                    Float64,
    Max                    Float64,
    AggregationTemporality Int32,                 -- 1 delta, 2 cumulative (0 unspecified)
    kafka_partition        UInt32,
    kafka_offset           UInt64,
    ingested_at            DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_key mapKeys(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_value mapValues(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toDate(TimeUnix)
ORDER BY (ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix))
TTL toDateTime(TimeUnix) + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;  -- a partition is one day: expired parts are dropped whole, never rewritten

CREATE TABLE IF NOT EXISTS raw.otel_metrics_exponential_histogram
(
    ResourceAttributes     Map(LowCardinality(String), String),
    ResourceSchemaUrl      String,
    ScopeName              String,
    ScopeVersion           String,
    ScopeAttributes        Map(LowCardinality(String), String),
    ScopeDroppedAttrCount  UInt32,
    ScopeSchemaUrl         String,
    ServiceName            LowCardinality(String),
    MetricName             String,
    MetricDescription      String,
    MetricUnit             String,
    Attributes             Map(LowCardinality(String), String),
    StartTimeUnix          DateTime64(9, 'UTC'),
    TimeUnix               DateTime64(9, 'UTC'),
    Count                  UInt64,
    Sum                    Float64,
    Scale                  Int32,
    ZeroCount              UInt64,
    PositiveOffset         Int32,
    PositiveBucketCounts   Array(UInt64),
    NegativeOffset         Int32,
    NegativeBucketCounts   Array(UInt64),
    Exemplars Nested
    (
        FilteredAttributes Map(LowCardinality(String), String),
        TimeUnix           DateTime64(9, 'UTC'),
        Value              Float64,
        SpanId             String,
        TraceId            String
    ),
    Flags                  UInt32,
    Min                    Float64,
    Max                    Float64,
    AggregationTemporality Int32,                 -- 1 delta, 2 cumulative (0 unspecified)
    kafka_partition        UInt32,
    kafka_offset           UInt64,
    ingested_at            DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_key mapKeys(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_value mapValues(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toDate(TimeUnix)
ORDER BY (ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix))
TTL toDateTime(TimeUnix) + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;  -- a partition is one day: expired parts are dropped whole, never rewritten

CREATE TABLE IF NOT EXISTS raw.otel_metrics_summary
(
    ResourceAttributes     Map(LowCardinality(String), String),
    ResourceSchemaUrl      String,
    ScopeName              String,
    ScopeVersion           String,
    ScopeAttributes        Map(LowCardinality(String), String),
    ScopeDroppedAttrCount  UInt32,
    ScopeSchemaUrl         String,
    ServiceName            LowCardinality(String),
    MetricName             String,
    MetricDescription      String,
    MetricUnit             String,
    Attributes             Map(LowCardinality(String), String),
    StartTimeUnix          DateTime64(9, 'UTC'),
    TimeUnix               DateTime64(9, 'UTC'),
    Count                  UInt64,
    Sum                    Float64,
    ValueAtQuantiles Nested
    (
        Quantile           Float64,
        Value              Float64
    ),
    Flags                  UInt32,
    kafka_partition        UInt32,
    kafka_offset           UInt64,
    ingested_at            DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_key mapKeys(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_value mapValues(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toDate(TimeUnix)
ORDER BY (ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix))
TTL toDateTime(TimeUnix) + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;  -- a partition is one day: expired parts are dropped whole, never rewritten

CREATE TABLE IF NOT EXISTS kafka_queue.otlp_metrics
(
    message String
)
ENGINE = Kafka
SETTINGS
    kafka_broker_list = '{{kafka_broker_list}}',
    kafka_topic_list = 'otlp_metrics',
    kafka_group_name = 'clickhouse_otlp_metrics',
    kafka_format = 'JSONAsString',        -- one export request (a JSON object) per message
    kafka_handle_error_mode = 'stream',   -- bad messages become rows with _error set
    kafka_num_consumers = {{kafka_consumers_otlp_metrics}},  -- one consumer per partition
    kafka_thread_per_consumer = 1,        -- parallel inserts, as for spans (006, docs/ingest.md)
    kafka_max_block_size = 65536,         -- up to 64k messages per insert into raw
    kafka_flush_interval_ms = 500;        -- points are queryable within about a second

-- The five views share their helpers (lambdas in WITH):
-- otlp_attributes: an OTLP JSON attribute list -> Map of text values;
-- json_number: the text of a number field, whether sent as a JSON number or a JSON string;
-- point_value: a number point or exemplar's asInt or asDouble as Float64;
-- nanos: a time field in nanoseconds since the epoch.

CREATE MATERIALIZED VIEW IF NOT EXISTS kafka_queue.otlp_metrics_to_gauge TO raw.otel_metrics_gauge
(
    ResourceAttributes Map(String, String), ResourceSchemaUrl String, ScopeName String, ScopeVersion String,
    ScopeAttributes Map(String, String), ScopeDroppedAttrCount UInt32, ScopeSchemaUrl String, ServiceName String,
    MetricName String, MetricDescription String, MetricUnit String, Attributes Map(String, String),
    StartTimeUnix DateTime64(9, 'UTC'), TimeUnix DateTime64(9, 'UTC'), Value Float64, Flags UInt32,
    `Exemplars.FilteredAttributes` Array(Map(String, String)), `Exemplars.TimeUnix` Array(DateTime64(9, 'UTC')),
    `Exemplars.Value` Array(Float64), `Exemplars.SpanId` Array(String), `Exemplars.TraceId` Array(String),
    kafka_partition UInt32, kafka_offset UInt64
)
AS WITH
    attrs -> CAST((
        arrayMap(a -> JSONExtractString(a, 'key'), attrs),
        arrayMap(a -> multiIf(
            JSONHas(a, 'value', 'stringValue'), JSONExtractString(a, 'value', 'stringValue'),
            JSONHas(a, 'value', 'boolValue'), toString(JSONExtractBool(a, 'value', 'boolValue')),
            trim(BOTH '"' FROM JSONExtractRaw(JSONExtractRaw(a, 'value'), 1))),
            attrs)
    ), 'Map(String, String)') AS otlp_attributes,
    (o, k) -> trim(BOTH '"' FROM JSONExtractRaw(o, k)) AS json_number,
    p -> if(JSONHas(p, 'asInt'), toFloat64(toInt64OrZero(json_number(p, 'asInt'))),
            toFloat64OrZero(json_number(p, 'asDouble'))) AS point_value,
    (o, k) -> toInt64OrZero(json_number(o, k)) AS nanos
SELECT
    otlp_attributes(JSONExtractArrayRaw(rs, 'resource', 'attributes')) AS ResourceAttributes,
    JSONExtractString(rs, 'schemaUrl') AS ResourceSchemaUrl,
    JSONExtractString(sm, 'scope', 'name') AS ScopeName,
    JSONExtractString(sm, 'scope', 'version') AS ScopeVersion,
    otlp_attributes(JSONExtractArrayRaw(sm, 'scope', 'attributes')) AS ScopeAttributes,
    toUInt32OrZero(json_number(JSONExtractRaw(sm, 'scope'), 'droppedAttributesCount')) AS ScopeDroppedAttrCount,
    JSONExtractString(sm, 'schemaUrl') AS ScopeSchemaUrl,
    ResourceAttributes['service.name'] AS ServiceName,
    JSONExtractString(metric, 'name') AS MetricName,
    JSONExtractString(metric, 'description') AS MetricDescription,
    JSONExtractString(metric, 'unit') AS MetricUnit,
    otlp_attributes(JSONExtractArrayRaw(point, 'attributes')) AS Attributes,
    fromUnixTimestamp64Nano(nanos(point, 'startTimeUnixNano'), 'UTC') AS StartTimeUnix,
    fromUnixTimestamp64Nano(if(nanos(point, 'timeUnixNano') > 0, nanos(point, 'timeUnixNano'), kafka_ns), 'UTC') AS TimeUnix,
    point_value(point) AS Value,
    toUInt32OrZero(json_number(point, 'flags')) AS Flags,
    arrayMap(e -> otlp_attributes(JSONExtractArrayRaw(e, 'filteredAttributes')), exemplars) AS `Exemplars.FilteredAttributes`,
    arrayMap(e -> fromUnixTimestamp64Nano(nanos(e, 'timeUnixNano'), 'UTC'), exemplars) AS `Exemplars.TimeUnix`,
    arrayMap(e -> point_value(e), exemplars) AS `Exemplars.Value`,
    arrayMap(e -> lower(JSONExtractString(e, 'spanId')), exemplars) AS `Exemplars.SpanId`,
    arrayMap(e -> lower(JSONExtractString(e, 'traceId')), exemplars) AS `Exemplars.TraceId`,
    _partition AS kafka_partition,
    _offset AS kafka_offset
FROM
(
    SELECT
        rs, sm, metric, point, _partition, _offset,
        JSONExtractArrayRaw(point, 'exemplars') AS exemplars,
        toUnixTimestamp64Nano(coalesce(_timestamp_ms, now64(3))) AS kafka_ns
    FROM kafka_queue.otlp_metrics
    ARRAY JOIN JSONExtractArrayRaw(message, 'resourceMetrics') AS rs
    ARRAY JOIN JSONExtractArrayRaw(rs, 'scopeMetrics') AS sm
    ARRAY JOIN JSONExtractArrayRaw(sm, 'metrics') AS metric
    ARRAY JOIN JSONExtractArrayRaw(metric, 'gauge', 'dataPoints') AS point
    WHERE length(_error) = 0
);

CREATE MATERIALIZED VIEW IF NOT EXISTS kafka_queue.otlp_metrics_to_sum TO raw.otel_metrics_sum
(
    ResourceAttributes Map(String, String), ResourceSchemaUrl String, ScopeName String, ScopeVersion String,
    ScopeAttributes Map(String, String), ScopeDroppedAttrCount UInt32, ScopeSchemaUrl String, ServiceName String,
    MetricName String, MetricDescription String, MetricUnit String, Attributes Map(String, String),
    StartTimeUnix DateTime64(9, 'UTC'), TimeUnix DateTime64(9, 'UTC'), Value Float64, Flags UInt32,
    `Exemplars.FilteredAttributes` Array(Map(String, String)), `Exemplars.TimeUnix` Array(DateTime64(9, 'UTC')),
    `Exemplars.Value` Array(Float64), `Exemplars.SpanId` Array(String), `Exemplars.TraceId` Array(String),
    AggregationTemporality Int32, IsMonotonic Bool,
    kafka_partition UInt32, kafka_offset UInt64
)
AS WITH
    attrs -> CAST((
        arrayMap(a -> JSONExtractString(a, 'key'), attrs),
        arrayMap(a -> multiIf(
            JSONHas(a, 'value', 'stringValue'), JSONExtractString(a, 'value', 'stringValue'),
            JSONHas(a, 'value', 'boolValue'), toString(JSONExtractBool(a, 'value', 'boolValue')),
            trim(BOTH '"' FROM JSONExtractRaw(JSONExtractRaw(a, 'value'), 1))),
            attrs)
    ), 'Map(String, String)') AS otlp_attributes,
    (o, k) -> trim(BOTH '"' FROM JSONExtractRaw(o, k)) AS json_number,
    p -> if(JSONHas(p, 'asInt'), toFloat64(toInt64OrZero(json_number(p, 'asInt'))),
            toFloat64OrZero(json_number(p, 'asDouble'))) AS point_value,
    (o, k) -> toInt64OrZero(json_number(o, k)) AS nanos
SELECT
    otlp_attributes(JSONExtractArrayRaw(rs, 'resource', 'attributes')) AS ResourceAttributes,
    JSONExtractString(rs, 'schemaUrl') AS ResourceSchemaUrl,
    JSONExtractString(sm, 'scope', 'name') AS ScopeName,
    JSONExtractString(sm, 'scope', 'version') AS ScopeVersion,
    otlp_attributes(JSONExtractArrayRaw(sm, 'scope', 'attributes')) AS ScopeAttributes,
    toUInt32OrZero(json_number(JSONExtractRaw(sm, 'scope'), 'droppedAttributesCount')) AS ScopeDroppedAttrCount,
    JSONExtractString(sm, 'schemaUrl') AS ScopeSchemaUrl,
    ResourceAttributes['service.name'] AS ServiceName,
    JSONExtractString(metric, 'name') AS MetricName,
    JSONExtractString(metric, 'description') AS MetricDescription,
    JSONExtractString(metric, 'unit') AS MetricUnit,
    otlp_attributes(JSONExtractArrayRaw(point, 'attributes')) AS Attributes,
    fromUnixTimestamp64Nano(nanos(point, 'startTimeUnixNano'), 'UTC') AS StartTimeUnix,
    fromUnixTimestamp64Nano(if(nanos(point, 'timeUnixNano') > 0, nanos(point, 'timeUnixNano'), kafka_ns), 'UTC') AS TimeUnix,
    point_value(point) AS Value,
    toUInt32OrZero(json_number(point, 'flags')) AS Flags,
    arrayMap(e -> otlp_attributes(JSONExtractArrayRaw(e, 'filteredAttributes')), exemplars) AS `Exemplars.FilteredAttributes`,
    arrayMap(e -> fromUnixTimestamp64Nano(nanos(e, 'timeUnixNano'), 'UTC'), exemplars) AS `Exemplars.TimeUnix`,
    arrayMap(e -> point_value(e), exemplars) AS `Exemplars.Value`,
    arrayMap(e -> lower(JSONExtractString(e, 'spanId')), exemplars) AS `Exemplars.SpanId`,
    arrayMap(e -> lower(JSONExtractString(e, 'traceId')), exemplars) AS `Exemplars.TraceId`,
    multiIf(temporality = 'AGGREGATION_TEMPORALITY_DELTA', 1, temporality = 'AGGREGATION_TEMPORALITY_CUMULATIVE', 2,
            toInt32OrZero(temporality)) AS AggregationTemporality,
    JSONExtractBool(metric, 'sum', 'isMonotonic') AS IsMonotonic,
    _partition AS kafka_partition,
    _offset AS kafka_offset
FROM
(
    SELECT
        rs, sm, metric, point, _partition, _offset,
        JSONExtractArrayRaw(point, 'exemplars') AS exemplars,
        trim(BOTH '"' FROM JSONExtractRaw(metric, 'sum', 'aggregationTemporality')) AS temporality,
        toUnixTimestamp64Nano(coalesce(_timestamp_ms, now64(3))) AS kafka_ns
    FROM kafka_queue.otlp_metrics
    ARRAY JOIN JSONExtractArrayRaw(message, 'resourceMetrics') AS rs
    ARRAY JOIN JSONExtractArrayRaw(rs, 'scopeMetrics') AS sm
    ARRAY JOIN JSONExtractArrayRaw(sm, 'metrics') AS metric
    ARRAY JOIN JSONExtractArrayRaw(metric, 'sum', 'dataPoints') AS point
    WHERE length(_error) = 0
);

CREATE MATERIALIZED VIEW IF NOT EXISTS kafka_queue.otlp_metrics_to_histogram TO raw.otel_metrics_histogram
(
    ResourceAttributes Map(String, String), ResourceSchemaUrl String, ScopeName String, ScopeVersion String,
    ScopeAttributes Map(String, String), ScopeDroppedAttrCount UInt32, ScopeSchemaUrl String, ServiceName String,
    MetricName String, MetricDescription String, MetricUnit String, Attributes Map(String, String),
    StartTimeUnix DateTime64(9, 'UTC'), TimeUnix DateTime64(9, 'UTC'), Count UInt64, Sum Float64,
    BucketCounts Array(UInt64), ExplicitBounds Array(Float64),
    `Exemplars.FilteredAttributes` Array(Map(String, String)), `Exemplars.TimeUnix` Array(DateTime64(9, 'UTC')),
    `Exemplars.Value` Array(Float64), `Exemplars.SpanId` Array(String), `Exemplars.TraceId` Array(String),
    Flags UInt32, Min Float64, Max Float64, AggregationTemporality Int32,
    kafka_partition UInt32, kafka_offset UInt64
)
AS WITH
    attrs -> CAST((
        arrayMap(a -> JSONExtractString(a, 'key'), attrs),
        arrayMap(a -> multiIf(
            JSONHas(a, 'value', 'stringValue'), JSONExtractString(a, 'value', 'stringValue'),
            JSONHas(a, 'value', 'boolValue'), toString(JSONExtractBool(a, 'value', 'boolValue')),
            trim(BOTH '"' FROM JSONExtractRaw(JSONExtractRaw(a, 'value'), 1))),
            attrs)
    ), 'Map(String, String)') AS otlp_attributes,
    (o, k) -> trim(BOTH '"' FROM JSONExtractRaw(o, k)) AS json_number,
    p -> if(JSONHas(p, 'asInt'), toFloat64(toInt64OrZero(json_number(p, 'asInt'))),
            toFloat64OrZero(json_number(p, 'asDouble'))) AS point_value,
    (o, k) -> toInt64OrZero(json_number(o, k)) AS nanos
SELECT
    otlp_attributes(JSONExtractArrayRaw(rs, 'resource', 'attributes')) AS ResourceAttributes,
    JSONExtractString(rs, 'schemaUrl') AS ResourceSchemaUrl,
    JSONExtractString(sm, 'scope', 'name') AS ScopeName,
    JSONExtractString(sm, 'scope', 'version') AS ScopeVersion,
    otlp_attributes(JSONExtractArrayRaw(sm, 'scope', 'attributes')) AS ScopeAttributes,
    toUInt32OrZero(json_number(JSONExtractRaw(sm, 'scope'), 'droppedAttributesCount')) AS ScopeDroppedAttrCount,
    JSONExtractString(sm, 'schemaUrl') AS ScopeSchemaUrl,
    ResourceAttributes['service.name'] AS ServiceName,
    JSONExtractString(metric, 'name') AS MetricName,
    JSONExtractString(metric, 'description') AS MetricDescription,
    JSONExtractString(metric, 'unit') AS MetricUnit,
    otlp_attributes(JSONExtractArrayRaw(point, 'attributes')) AS Attributes,
    fromUnixTimestamp64Nano(nanos(point, 'startTimeUnixNano'), 'UTC') AS StartTimeUnix,
    fromUnixTimestamp64Nano(if(nanos(point, 'timeUnixNano') > 0, nanos(point, 'timeUnixNano'), kafka_ns), 'UTC') AS TimeUnix,
    toUInt64OrZero(json_number(point, 'count')) AS Count,
    toFloat64OrZero(json_number(point, 'sum')) AS Sum,
    arrayMap(b -> toUInt64OrZero(trim(BOTH '"' FROM b)), JSONExtractArrayRaw(point, 'bucketCounts')) AS BucketCounts,
    arrayMap(b -> toFloat64OrZero(trim(BOTH '"' FROM b)), JSONExtractArrayRaw(point, 'explicitBounds')) AS ExplicitBounds,
    arrayMap(e -> otlp_attributes(JSONExtractArrayRaw(e, 'filteredAttributes')), exemplars) AS `Exemplars.FilteredAttributes`,
    arrayMap(e -> fromUnixTimestamp64Nano(nanos(e, 'timeUnixNano'), 'UTC'), exemplars) AS `Exemplars.TimeUnix`,
    arrayMap(e -> point_value(e), exemplars) AS `Exemplars.Value`,
    arrayMap(e -> lower(JSONExtractString(e, 'spanId')), exemplars) AS `Exemplars.SpanId`,
    arrayMap(e -> lower(JSONExtractString(e, 'traceId')), exemplars) AS `Exemplars.TraceId`,
    toUInt32OrZero(json_number(point, 'flags')) AS Flags,
    toFloat64OrZero(json_number(point, 'min')) AS Min,
    toFloat64OrZero(json_number(point, 'max')) AS Max,
    multiIf(temporality = 'AGGREGATION_TEMPORALITY_DELTA', 1, temporality = 'AGGREGATION_TEMPORALITY_CUMULATIVE', 2,
            toInt32OrZero(temporality)) AS AggregationTemporality,
    _partition AS kafka_partition,
    _offset AS kafka_offset
FROM
(
    SELECT
        rs, sm, metric, point, _partition, _offset,
        JSONExtractArrayRaw(point, 'exemplars') AS exemplars,
        trim(BOTH '"' FROM JSONExtractRaw(metric, 'histogram', 'aggregationTemporality')) AS temporality,
        toUnixTimestamp64Nano(coalesce(_timestamp_ms, now64(3))) AS kafka_ns
    FROM kafka_queue.otlp_metrics
    ARRAY JOIN JSONExtractArrayRaw(message, 'resourceMetrics') AS rs
    ARRAY JOIN JSONExtractArrayRaw(rs, 'scopeMetrics') AS sm
    ARRAY JOIN JSONExtractArrayRaw(sm, 'metrics') AS metric
    ARRAY JOIN JSONExtractArrayRaw(metric, 'histogram', 'dataPoints') AS point
    WHERE length(_error) = 0
);

CREATE MATERIALIZED VIEW IF NOT EXISTS kafka_queue.otlp_metrics_to_exponential_histogram
TO raw.otel_metrics_exponential_histogram
(
    ResourceAttributes Map(String, String), ResourceSchemaUrl String, ScopeName String, ScopeVersion String,
    ScopeAttributes Map(String, String), ScopeDroppedAttrCount UInt32, ScopeSchemaUrl String, ServiceName String,
    MetricName String, MetricDescription String, MetricUnit String, Attributes Map(String, String),
    StartTimeUnix DateTime64(9, 'UTC'), TimeUnix DateTime64(9, 'UTC'), Count UInt64, Sum Float64,
    Scale Int32, ZeroCount UInt64, PositiveOffset Int32, PositiveBucketCounts Array(UInt64),
    NegativeOffset Int32, NegativeBucketCounts Array(UInt64),
    `Exemplars.FilteredAttributes` Array(Map(String, String)), `Exemplars.TimeUnix` Array(DateTime64(9, 'UTC')),
    `Exemplars.Value` Array(Float64), `Exemplars.SpanId` Array(String), `Exemplars.TraceId` Array(String),
    Flags UInt32, Min Float64, Max Float64, AggregationTemporality Int32,
    kafka_partition UInt32, kafka_offset UInt64
)
AS WITH
    attrs -> CAST((
        arrayMap(a -> JSONExtractString(a, 'key'), attrs),
        arrayMap(a -> multiIf(
            JSONHas(a, 'value', 'stringValue'), JSONExtractString(a, 'value', 'stringValue'),
            JSONHas(a, 'value', 'boolValue'), toString(JSONExtractBool(a, 'value', 'boolValue')),
            trim(BOTH '"' FROM JSONExtractRaw(JSONExtractRaw(a, 'value'), 1))),
            attrs)
    ), 'Map(String, String)') AS otlp_attributes,
    (o, k) -> trim(BOTH '"' FROM JSONExtractRaw(o, k)) AS json_number,
    p -> if(JSONHas(p, 'asInt'), toFloat64(toInt64OrZero(json_number(p, 'asInt'))),
            toFloat64OrZero(json_number(p, 'asDouble'))) AS point_value,
    (o, k) -> toInt64OrZero(json_number(o, k)) AS nanos
SELECT
    otlp_attributes(JSONExtractArrayRaw(rs, 'resource', 'attributes')) AS ResourceAttributes,
    JSONExtractString(rs, 'schemaUrl') AS ResourceSchemaUrl,
    JSONExtractString(sm, 'scope', 'name') AS ScopeName,
    JSONExtractString(sm, 'scope', 'version') AS ScopeVersion,
    otlp_attributes(JSONExtractArrayRaw(sm, 'scope', 'attributes')) AS ScopeAttributes,
    toUInt32OrZero(json_number(JSONExtractRaw(sm, 'scope'), 'droppedAttributesCount')) AS ScopeDroppedAttrCount,
    JSONExtractString(sm, 'schemaUrl') AS ScopeSchemaUrl,
    ResourceAttributes['service.name'] AS ServiceName,
    JSONExtractString(metric, 'name') AS MetricName,
    JSONExtractString(metric, 'description') AS MetricDescription,
    JSONExtractString(metric, 'unit') AS MetricUnit,
    otlp_attributes(JSONExtractArrayRaw(point, 'attributes')) AS Attributes,
    fromUnixTimestamp64Nano(nanos(point, 'startTimeUnixNano'), 'UTC') AS StartTimeUnix,
    fromUnixTimestamp64Nano(if(nanos(point, 'timeUnixNano') > 0, nanos(point, 'timeUnixNano'), kafka_ns), 'UTC') AS TimeUnix,
    toUInt64OrZero(json_number(point, 'count')) AS Count,
    toFloat64OrZero(json_number(point, 'sum')) AS Sum,
    toInt32OrZero(json_number(point, 'scale')) AS Scale,
    toUInt64OrZero(json_number(point, 'zeroCount')) AS ZeroCount,
    toInt32OrZero(json_number(JSONExtractRaw(point, 'positive'), 'offset')) AS PositiveOffset,
    arrayMap(b -> toUInt64OrZero(trim(BOTH '"' FROM b)), JSONExtractArrayRaw(point, 'positive', 'bucketCounts')) AS PositiveBucketCounts,
    toInt32OrZero(json_number(JSONExtractRaw(point, 'negative'), 'offset')) AS NegativeOffset,
    arrayMap(b -> toUInt64OrZero(trim(BOTH '"' FROM b)), JSONExtractArrayRaw(point, 'negative', 'bucketCounts')) AS NegativeBucketCounts,
    arrayMap(e -> otlp_attributes(JSONExtractArrayRaw(e, 'filteredAttributes')), exemplars) AS `Exemplars.FilteredAttributes`,
    arrayMap(e -> fromUnixTimestamp64Nano(nanos(e, 'timeUnixNano'), 'UTC'), exemplars) AS `Exemplars.TimeUnix`,
    arrayMap(e -> point_value(e), exemplars) AS `Exemplars.Value`,
    arrayMap(e -> lower(JSONExtractString(e, 'spanId')), exemplars) AS `Exemplars.SpanId`,
    arrayMap(e -> lower(JSONExtractString(e, 'traceId')), exemplars) AS `Exemplars.TraceId`,
    toUInt32OrZero(json_number(point, 'flags')) AS Flags,
    toFloat64OrZero(json_number(point, 'min')) AS Min,
    toFloat64OrZero(json_number(point, 'max')) AS Max,
    multiIf(temporality = 'AGGREGATION_TEMPORALITY_DELTA', 1, temporality = 'AGGREGATION_TEMPORALITY_CUMULATIVE', 2,
            toInt32OrZero(temporality)) AS AggregationTemporality,
    _partition AS kafka_partition,
    _offset AS kafka_offset
FROM
(
    SELECT
        rs, sm, metric, point, _partition, _offset,
        JSONExtractArrayRaw(point, 'exemplars') AS exemplars,
        trim(BOTH '"' FROM JSONExtractRaw(metric, 'exponentialHistogram', 'aggregationTemporality')) AS temporality,
        toUnixTimestamp64Nano(coalesce(_timestamp_ms, now64(3))) AS kafka_ns
    FROM kafka_queue.otlp_metrics
    ARRAY JOIN JSONExtractArrayRaw(message, 'resourceMetrics') AS rs
    ARRAY JOIN JSONExtractArrayRaw(rs, 'scopeMetrics') AS sm
    ARRAY JOIN JSONExtractArrayRaw(sm, 'metrics') AS metric
    ARRAY JOIN JSONExtractArrayRaw(metric, 'exponentialHistogram', 'dataPoints') AS point
    WHERE length(_error) = 0
);

CREATE MATERIALIZED VIEW IF NOT EXISTS kafka_queue.otlp_metrics_to_summary TO raw.otel_metrics_summary
(
    ResourceAttributes Map(String, String), ResourceSchemaUrl String, ScopeName String, ScopeVersion String,
    ScopeAttributes Map(String, String), ScopeDroppedAttrCount UInt32, ScopeSchemaUrl String, ServiceName String,
    MetricName String, MetricDescription String, MetricUnit String, Attributes Map(String, String),
    StartTimeUnix DateTime64(9, 'UTC'), TimeUnix DateTime64(9, 'UTC'), Count UInt64, Sum Float64,
    `ValueAtQuantiles.Quantile` Array(Float64), `ValueAtQuantiles.Value` Array(Float64), Flags UInt32,
    kafka_partition UInt32, kafka_offset UInt64
)
AS WITH
    attrs -> CAST((
        arrayMap(a -> JSONExtractString(a, 'key'), attrs),
        arrayMap(a -> multiIf(
            JSONHas(a, 'value', 'stringValue'), JSONExtractString(a, 'value', 'stringValue'),
            JSONHas(a, 'value', 'boolValue'), toString(JSONExtractBool(a, 'value', 'boolValue')),
            trim(BOTH '"' FROM JSONExtractRaw(JSONExtractRaw(a, 'value'), 1))),
            attrs)
    ), 'Map(String, String)') AS otlp_attributes,
    (o, k) -> trim(BOTH '"' FROM JSONExtractRaw(o, k)) AS json_number,
    (o, k) -> toInt64OrZero(json_number(o, k)) AS nanos
SELECT
    otlp_attributes(JSONExtractArrayRaw(rs, 'resource', 'attributes')) AS ResourceAttributes,
    JSONExtractString(rs, 'schemaUrl') AS ResourceSchemaUrl,
    JSONExtractString(sm, 'scope', 'name') AS ScopeName,
    JSONExtractString(sm, 'scope', 'version') AS ScopeVersion,
    otlp_attributes(JSONExtractArrayRaw(sm, 'scope', 'attributes')) AS ScopeAttributes,
    toUInt32OrZero(json_number(JSONExtractRaw(sm, 'scope'), 'droppedAttributesCount')) AS ScopeDroppedAttrCount,
    JSONExtractString(sm, 'schemaUrl') AS ScopeSchemaUrl,
    ResourceAttributes['service.name'] AS ServiceName,
    JSONExtractString(metric, 'name') AS MetricName,
    JSONExtractString(metric, 'description') AS MetricDescription,
    JSONExtractString(metric, 'unit') AS MetricUnit,
    otlp_attributes(JSONExtractArrayRaw(point, 'attributes')) AS Attributes,
    fromUnixTimestamp64Nano(nanos(point, 'startTimeUnixNano'), 'UTC') AS StartTimeUnix,
    fromUnixTimestamp64Nano(if(nanos(point, 'timeUnixNano') > 0, nanos(point, 'timeUnixNano'), kafka_ns), 'UTC') AS TimeUnix,
    toUInt64OrZero(json_number(point, 'count')) AS Count,
    toFloat64OrZero(json_number(point, 'sum')) AS Sum,
    arrayMap(q -> toFloat64OrZero(json_number(q, 'quantile')), quantiles) AS `ValueAtQuantiles.Quantile`,
    arrayMap(q -> toFloat64OrZero(json_number(q, 'value')), quantiles) AS `ValueAtQuantiles.Value`,
    toUInt32OrZero(json_number(point, 'flags')) AS Flags,
    _partition AS kafka_partition,
    _offset AS kafka_offset
FROM
(
    SELECT
        rs, sm, metric, point, _partition, _offset,
        JSONExtractArrayRaw(point, 'quantileValues') AS quantiles,
        toUnixTimestamp64Nano(coalesce(_timestamp_ms, now64(3))) AS kafka_ns
    FROM kafka_queue.otlp_metrics
    ARRAY JOIN JSONExtractArrayRaw(message, 'resourceMetrics') AS rs
    ARRAY JOIN JSONExtractArrayRaw(rs, 'scopeMetrics') AS sm
    ARRAY JOIN JSONExtractArrayRaw(sm, 'metrics') AS metric
    ARRAY JOIN JSONExtractArrayRaw(metric, 'summary', 'dataPoints') AS point
    WHERE length(_error) = 0
);

-- Messages the Kafka engine could not parse: one dead letter each, as for spans (005).
CREATE MATERIALIZED VIEW IF NOT EXISTS kafka_queue.otlp_metrics_dead_letters TO dead_letter.kafka_messages
(
    topic String, kafka_partition UInt32, kafka_offset UInt64, kafka_timestamp Nullable(DateTime),
    raw_message String, error String
)
AS SELECT
    _topic AS topic, _partition AS kafka_partition, _offset AS kafka_offset, _timestamp AS kafka_timestamp,
    _raw_message AS raw_message, _error AS error
FROM kafka_queue.otlp_metrics
WHERE length(_error) > 0;

-- Messages that parsed but hold metrics of no point type above: one dead letter per message,
-- naming those metrics (the message's other metrics landed through the views above).
CREATE MATERIALIZED VIEW IF NOT EXISTS kafka_queue.otlp_metrics_unknown_types TO dead_letter.kafka_messages
(
    topic String, kafka_partition UInt32, kafka_offset UInt64, kafka_timestamp Nullable(DateTime),
    raw_message String, error String
)
AS SELECT
    _topic AS topic, _partition AS kafka_partition, _offset AS kafka_offset, _timestamp AS kafka_timestamp,
    message AS raw_message,
    concat(
        toString(length(unknown)), ' metric(s) with none of gauge, sum, histogram, exponentialHistogram, summary, ',
        'not stored: ', arrayStringConcat(arrayMap(m -> JSONExtractString(m, 'name'), unknown), ', ')
    ) AS error
FROM
(
    SELECT
        _topic, _partition, _offset, _timestamp, message,
        arrayFilter(
            m -> NOT (JSONHas(m, 'gauge') OR JSONHas(m, 'sum') OR JSONHas(m, 'histogram')
                      OR JSONHas(m, 'exponentialHistogram') OR JSONHas(m, 'summary')),
            arrayFlatten(arrayMap(
                rs -> arrayFlatten(arrayMap(sm -> JSONExtractArrayRaw(sm, 'metrics'), JSONExtractArrayRaw(rs, 'scopeMetrics'))),
                JSONExtractArrayRaw(message, 'resourceMetrics')))
        ) AS unknown
    FROM kafka_queue.otlp_metrics
    WHERE length(_error) = 0
)
WHERE length(unknown) > 0;
