-- Streaming rollups: minute-grain AggregatingMergeTree tables filled at insert time by
-- materialized views on the raw tables (so a row is in its rollup as soon as it is in raw:
-- within the Kafka engine's 500 ms flush). They serve the recent hours to the panels and the
-- alerts; the dbt marts stay the deduplicated record of finished days (docs/transform.md).
--
-- Decisions:
-- - Counts and sums are SimpleAggregateFunction(sum); latency percentiles are quantilesDD
--   (DDSketch, relative accuracy 0.005) states at levels 0.5, 0.95, 0.99, merged with
--   quantilesDDMerge(0.005, 0.5, 0.95, 0.99) over any bucket width. Chosen by measurement
--   (docs/benchmarks.md): its error is bounded by the value, not by the distribution, and its
--   state is bucket counts, so a merge gives the same answer in any order. Distinct users are
--   uniqCombined64 states.
-- - At-least-once: a Kafka redelivery lands its rows in raw twice and is counted twice here;
--   the marts dedupe. The rollup_vs_marts check reports the difference per finished hour.
-- - Span attributes are read under the same names, in the same order, as staging reads them
--   (dbt_project.yml var otel_attribute_aliases; tests/ops/test_rollups_ddl.py keeps the lists
--   equal). agent_name is the span's own (or its resource's) gen_ai.agent.name: the marts take
--   the agent of the trace's root span, which an insert-time view cannot see.
-- - Cost: calls that report their cost sum it (reported_cost_usd); for the others the tokens are
--   summed by kind (unreported_*) and priced at query time with the model_prices row in effect
--   on the minute's day, as staging prices a call. Tokens times a price is linear, so the sum
--   priced equals the sum of each call priced.
-- - The views start counting when this file is applied; rows landed before are not backfilled.
-- - TTL 35 days: the alerts' 7-day cost baseline, and 30-day panels in the benchmark.

CREATE DATABASE IF NOT EXISTS rollups COMMENT 'minute rollups filled at insert time by materialized views';

CREATE TABLE IF NOT EXISTS rollups.llm_calls_1m
(
    minute                          DateTime('UTC'),
    workspace_id                    LowCardinality(String),
    service                         LowCardinality(String),
    agent_name                      LowCardinality(String),
    model                           LowCardinality(String),
    calls                           SimpleAggregateFunction(sum, UInt64),
    errors                          SimpleAggregateFunction(sum, UInt64),
    latency_ms                      AggregateFunction(quantilesDD(0.005, 0.5, 0.95, 0.99), Float64),
    input_tokens                    SimpleAggregateFunction(sum, UInt64),
    output_tokens                   SimpleAggregateFunction(sum, UInt64),
    cached_input_tokens             SimpleAggregateFunction(sum, UInt64),
    reasoning_tokens                SimpleAggregateFunction(sum, UInt64),
    reported_calls                  SimpleAggregateFunction(sum, UInt64),
    reported_cost_usd               SimpleAggregateFunction(sum, Decimal128(18)),
    unreported_input_tokens         SimpleAggregateFunction(sum, UInt64),  -- not read from the cache
    unreported_cached_input_tokens  SimpleAggregateFunction(sum, UInt64),
    unreported_output_tokens        SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMMDD(minute)
ORDER BY (workspace_id, minute, service, agent_name, model)
TTL minute + INTERVAL 35 DAY;

-- LLM call spans, as stg_kafka__spans.is_llm_call and is_error define them.
CREATE MATERIALIZED VIEW IF NOT EXISTS rollups.llm_calls_1m_mv TO rollups.llm_calls_1m
(
    minute DateTime('UTC'), workspace_id String, service String, agent_name String, model String,
    calls UInt64, errors UInt64, latency_ms AggregateFunction(quantilesDD(0.005, 0.5, 0.95, 0.99), Float64),
    input_tokens UInt64, output_tokens UInt64, cached_input_tokens UInt64, reasoning_tokens UInt64,
    reported_calls UInt64, reported_cost_usd Decimal128(18), unreported_input_tokens UInt64,
    unreported_cached_input_tokens UInt64, unreported_output_tokens UInt64
)
AS SELECT
    toStartOfMinute(toDateTime(start_time, 'UTC')) AS minute,
    workspace_id, service, agent_name, model,
    count() AS calls,
    countIf(is_error) AS errors,
    quantilesDDState(0.005, 0.5, 0.95, 0.99)(duration_ms) AS latency_ms,
    sum(n_input) AS input_tokens,
    sum(n_output) AS output_tokens,
    sum(n_cached) AS cached_input_tokens,
    sum(n_reasoning) AS reasoning_tokens,
    countIf(reported_cost IS NOT NULL) AS reported_calls,
    sum(toDecimal128(ifNull(reported_cost, 0), 18)) AS reported_cost_usd,
    sumIf(n_input - least(n_cached, n_input), reported_cost IS NULL) AS unreported_input_tokens,
    sumIf(least(n_cached, n_input), reported_cost IS NULL) AS unreported_cached_input_tokens,
    sumIf(n_output, reported_cost IS NULL) AS unreported_output_tokens
FROM
(
    WITH
        ['gen_ai.response.model', 'gen_ai.request.model', 'llm.response.model', 'llm.request.model',
         'llm.model', 'llm.model_name', 'model'] AS model_keys,
        ['gen_ai.operation.name'] AS gen_ai_operation_keys,
        ['gen_ai.usage.input_tokens', 'gen_ai.usage.prompt_tokens', 'llm.usage.prompt_tokens',
         'llm.token_count.prompt', 'tokens.prompt', 'tokens_prompt', 'prompt_tokens', 'input_tokens'] AS input_tokens_keys,
        ['gen_ai.usage.output_tokens', 'gen_ai.usage.completion_tokens', 'llm.usage.completion_tokens',
         'llm.token_count.completion', 'tokens.completion', 'tokens_completion', 'completion_tokens',
         'output_tokens'] AS output_tokens_keys,
        ['gen_ai.usage.cache_read.input_tokens', 'gen_ai.usage.cache_read_input_tokens',
         'llm.usage.cache_read_input_tokens', 'llm.token_count.prompt_details.cache_read', 'tokens.cached',
         'cache_read_input_tokens', 'cached_input_tokens', 'cached_tokens'] AS cached_input_tokens_keys,
        ['gen_ai.usage.reasoning.output_tokens', 'gen_ai.usage.reasoning_tokens', 'llm.usage.reasoning_tokens',
         'llm.token_count.completion_details.reasoning', 'tokens.reasoning', 'reasoning_tokens'] AS reasoning_tokens_keys,
        ['gen_ai.usage.cost', 'gen_ai.usage.cost_usd', 'llm.usage.cost', 'llm.cost.total', 'cost.usd',
         'cost_usd'] AS cost_usd_keys,
        ['gen_ai.agent.name', 'agent.name', 'agent_name', 'agent'] AS agent_name_keys,
        ['otel.status_code', 'status'] AS status_keys,
        ['error'] AS error_keys
    SELECT
        start_time, duration_ms,
        tenant AS workspace_id,
        service,
        arrayFirst(v -> v != '', arrayConcat(arrayMap(k -> attributes[k], agent_name_keys),
                                             arrayMap(k -> resource_attributes[k], agent_name_keys))) AS agent_name,
        arrayFirst(v -> v != '', arrayMap(k -> attributes[k], model_keys)) AS span_model,
        if(span_model != '', span_model,
           arrayFirst(v -> v != '', arrayMap(k -> resource_attributes[k], model_keys))) AS model,
        arrayFirst(v -> v != '', arrayConcat(arrayMap(k -> attributes[k], gen_ai_operation_keys),
                                             arrayMap(k -> resource_attributes[k], gen_ai_operation_keys))) AS gen_ai_operation,
        toUInt32OrZero(arrayFirst(v -> v != '', arrayConcat(arrayMap(k -> attributes[k], input_tokens_keys),
                                  arrayMap(k -> resource_attributes[k], input_tokens_keys)))) AS n_input,
        toUInt32OrZero(arrayFirst(v -> v != '', arrayConcat(arrayMap(k -> attributes[k], output_tokens_keys),
                                  arrayMap(k -> resource_attributes[k], output_tokens_keys)))) AS n_output,
        toUInt32OrZero(arrayFirst(v -> v != '', arrayConcat(arrayMap(k -> attributes[k], cached_input_tokens_keys),
                                  arrayMap(k -> resource_attributes[k], cached_input_tokens_keys)))) AS n_cached,
        toUInt32OrZero(arrayFirst(v -> v != '', arrayConcat(arrayMap(k -> attributes[k], reasoning_tokens_keys),
                                  arrayMap(k -> resource_attributes[k], reasoning_tokens_keys)))) AS n_reasoning,
        toFloat64OrNull(arrayFirst(v -> v != '', arrayConcat(arrayMap(k -> attributes[k], cost_usd_keys),
                                   arrayMap(k -> resource_attributes[k], cost_usd_keys)))) AS cost_attribute,
        if(cost_attribute BETWEEN 0 AND 1e6, cost_attribute, NULL) AS reported_cost,
        status_code = 2
            OR (status_code = 0
                AND (lower(arrayFirst(v -> v != '', arrayMap(k -> attributes[k], status_keys))) = 'error'
                     OR lower(arrayFirst(v -> v != '', arrayMap(k -> attributes[k], error_keys))) IN ('true', '1')))
            AS is_error
    FROM raw.spans
)
WHERE gen_ai_operation IN ('chat', 'text_completion', 'generate_content')
   OR n_input > 0 OR n_output > 0 OR span_model != ''
GROUP BY minute, workspace_id, service, agent_name, model;

-- Every span, per route (empty for spans without one): the traces signal's volume and latency.
CREATE TABLE IF NOT EXISTS rollups.spans_1m
(
    minute        DateTime('UTC'),
    workspace_id  LowCardinality(String),
    service       LowCardinality(String),
    route         LowCardinality(String),
    spans         SimpleAggregateFunction(sum, UInt64),
    errors        SimpleAggregateFunction(sum, UInt64),  -- status ERROR
    latency_ms    AggregateFunction(quantilesDD(0.005, 0.5, 0.95, 0.99), Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMMDD(minute)
ORDER BY (workspace_id, minute, service, route)
TTL minute + INTERVAL 35 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollups.spans_1m_mv TO rollups.spans_1m
(
    minute DateTime('UTC'), workspace_id String, service String, route String, spans UInt64, errors UInt64,
    latency_ms AggregateFunction(quantilesDD(0.005, 0.5, 0.95, 0.99), Float64)
)
AS SELECT
    toStartOfMinute(toDateTime(start_time, 'UTC')) AS minute,
    tenant AS workspace_id,
    service,
    route,
    count() AS spans,
    countIf(status_code = 2) AS errors,
    quantilesDDState(0.005, 0.5, 0.95, 0.99)(duration_ms) AS latency_ms
FROM raw.spans
GROUP BY minute, workspace_id, service, route;

-- Signed agent events (raw.agent_events), per type, model and tool.
CREATE TABLE IF NOT EXISTS rollups.agent_events_1m
(
    minute         DateTime('UTC'),
    workspace_id   LowCardinality(String),
    event_type     LowCardinality(String),
    model          LowCardinality(String),
    tool_name      LowCardinality(String),
    events         SimpleAggregateFunction(sum, UInt64),
    failures       SimpleAggregateFunction(sum, UInt64),  -- success = 0
    latency_ms     AggregateFunction(quantilesDD(0.005, 0.5, 0.95, 0.99), Float64),
    input_tokens   SimpleAggregateFunction(sum, UInt64),
    output_tokens  SimpleAggregateFunction(sum, UInt64),
    cost_usd       SimpleAggregateFunction(sum, Decimal128(18))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMMDD(minute)
ORDER BY (workspace_id, minute, event_type, model, tool_name)
TTL minute + INTERVAL 35 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollups.agent_events_1m_mv TO rollups.agent_events_1m
(
    minute DateTime('UTC'), workspace_id String, event_type String, model String, tool_name String,
    events UInt64, failures UInt64, latency_ms AggregateFunction(quantilesDD(0.005, 0.5, 0.95, 0.99), Float64),
    input_tokens UInt64, output_tokens UInt64, cost_usd Decimal128(18)
)
AS SELECT
    toStartOfMinute(toDateTime(occurred_at, 'UTC')) AS minute,
    workspace_id, event_type, model, tool_name,
    count() AS events,
    countIf(success = 0) AS failures,
    quantilesDDState(0.005, 0.5, 0.95, 0.99)(latency_ms) AS latency_ms,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(toDecimal128(cost_usd, 18)) AS cost_usd
FROM raw.agent_events
GROUP BY minute, workspace_id, event_type, model, tool_name;

-- Product events per type, with the distinct (hashed) users behind them.
CREATE TABLE IF NOT EXISTS rollups.product_events_1m
(
    minute        DateTime('UTC'),
    workspace_id  LowCardinality(String),
    event_type    LowCardinality(String),
    events        SimpleAggregateFunction(sum, UInt64),
    users         AggregateFunction(uniqCombined64, Nullable(String))  -- actor_id, '' not counted
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMMDD(minute)
ORDER BY (workspace_id, minute, event_type)
TTL minute + INTERVAL 35 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollups.product_events_1m_mv TO rollups.product_events_1m
(
    minute DateTime('UTC'), workspace_id String, event_type String, events UInt64,
    users AggregateFunction(uniqCombined64, Nullable(String))
)
AS SELECT
    toStartOfMinute(toDateTime(occurred_at, 'UTC')) AS minute,
    workspace_id, event_type,
    count() AS events,
    uniqCombined64State(nullIf(actor_id, '')) AS users
FROM raw.product_events
GROUP BY minute, workspace_id, event_type;

-- Log records per service and severity bucket (the buckets of stg_kafka__logs.severity).
CREATE TABLE IF NOT EXISTS rollups.logs_1m
(
    minute        DateTime('UTC'),
    workspace_id  LowCardinality(String),
    service       LowCardinality(String),
    severity      LowCardinality(String),
    records       SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMMDD(minute)
ORDER BY (workspace_id, minute, service, severity)
TTL minute + INTERVAL 35 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollups.logs_1m_mv TO rollups.logs_1m
(
    minute DateTime('UTC'), workspace_id String, service String, severity String, records UInt64
)
AS SELECT
    toStartOfMinute(toDateTime(Timestamp, 'UTC')) AS minute,
    coalesce(nullIf(ResourceAttributes['tenant.id'], ''), LogAttributes['tenant.id']) AS workspace_id,
    coalesce(nullIf(ServiceName, ''), ResourceAttributes['service.name']) AS service,
    multiIf(
        SeverityNumber BETWEEN 1 AND 4, 'TRACE',
        SeverityNumber BETWEEN 5 AND 8, 'DEBUG',
        SeverityNumber BETWEEN 9 AND 12, 'INFO',
        SeverityNumber BETWEEN 13 AND 16, 'WARN',
        SeverityNumber BETWEEN 17 AND 20, 'ERROR',
        SeverityNumber BETWEEN 21 AND 24, 'FATAL',
        upper(SeverityText) IN ('TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'), upper(SeverityText),
        upper(SeverityText) = 'WARNING', 'WARN',
        upper(SeverityText) = 'CRITICAL', 'FATAL',
        'UNSPECIFIED'
    ) AS severity,
    count() AS records
FROM raw.otel_logs
GROUP BY minute, workspace_id, service, severity;

-- Metric data points per metric and point type (one view per raw point table).
CREATE TABLE IF NOT EXISTS rollups.metric_points_1m
(
    minute        DateTime('UTC'),
    workspace_id  LowCardinality(String),
    service       LowCardinality(String),
    metric_name   LowCardinality(String),
    point_type    LowCardinality(String),  -- gauge|sum|histogram|exponential_histogram|summary
    points        SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMMDD(minute)
ORDER BY (workspace_id, minute, service, metric_name, point_type)
TTL minute + INTERVAL 35 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollups.metric_gauge_points_1m_mv TO rollups.metric_points_1m
(minute DateTime('UTC'), workspace_id String, service String, metric_name String, point_type String, points UInt64)
AS SELECT toStartOfMinute(toDateTime(TimeUnix, 'UTC')) AS minute, ResourceAttributes['tenant.id'] AS workspace_id,
    ServiceName AS service, MetricName AS metric_name, 'gauge' AS point_type, count() AS points
FROM raw.otel_metrics_gauge
GROUP BY minute, workspace_id, service, metric_name;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollups.metric_sum_points_1m_mv TO rollups.metric_points_1m
(minute DateTime('UTC'), workspace_id String, service String, metric_name String, point_type String, points UInt64)
AS SELECT toStartOfMinute(toDateTime(TimeUnix, 'UTC')) AS minute, ResourceAttributes['tenant.id'] AS workspace_id,
    ServiceName AS service, MetricName AS metric_name, 'sum' AS point_type, count() AS points
FROM raw.otel_metrics_sum
GROUP BY minute, workspace_id, service, metric_name;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollups.metric_histogram_points_1m_mv TO rollups.metric_points_1m
(minute DateTime('UTC'), workspace_id String, service String, metric_name String, point_type String, points UInt64)
AS SELECT toStartOfMinute(toDateTime(TimeUnix, 'UTC')) AS minute, ResourceAttributes['tenant.id'] AS workspace_id,
    ServiceName AS service, MetricName AS metric_name, 'histogram' AS point_type, count() AS points
FROM raw.otel_metrics_histogram
GROUP BY minute, workspace_id, service, metric_name;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollups.metric_exponential_histogram_points_1m_mv TO rollups.metric_points_1m
(minute DateTime('UTC'), workspace_id String, service String, metric_name String, point_type String, points UInt64)
AS SELECT toStartOfMinute(toDateTime(TimeUnix, 'UTC')) AS minute, ResourceAttributes['tenant.id'] AS workspace_id,
    ServiceName AS service, MetricName AS metric_name, 'exponential_histogram' AS point_type, count() AS points
FROM raw.otel_metrics_exponential_histogram
GROUP BY minute, workspace_id, service, metric_name;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollups.metric_summary_points_1m_mv TO rollups.metric_points_1m
(minute DateTime('UTC'), workspace_id String, service String, metric_name String, point_type String, points UInt64)
AS SELECT toStartOfMinute(toDateTime(TimeUnix, 'UTC')) AS minute, ResourceAttributes['tenant.id'] AS workspace_id,
    ServiceName AS service, MetricName AS metric_name, 'summary' AS point_type, count() AS points
FROM raw.otel_metrics_summary
GROUP BY minute, workspace_id, service, metric_name;
