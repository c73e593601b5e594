-- LLM calls per hour: the minute rollup (010) rolled up again, for panels over ranges longer than
-- two days. A 30-day latency panel merged every minute's DDSketch state of the recent window
-- (about 370k states at 10 M calls a day: 0.5-2.2 s, docs/benchmarks.md); per hour it merges a
-- sixtieth of them. The sketches merge exactly (bucket counts add), so an hour's percentiles are
-- those of its calls, as in the minute table.
--
-- The view reads each block the minute view (010) writes, so an hour row is complete when its
-- minutes are; several blocks of one hour are merged by the table (AggregatingMergeTree). It
-- starts counting when this file is applied: hours landed before are not backfilled (as 010).

CREATE TABLE IF NOT EXISTS rollups.llm_calls_1h
(
    hour                            DateTime('UTC'),
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
    unreported_input_tokens         SimpleAggregateFunction(sum, UInt64),
    unreported_cached_input_tokens  SimpleAggregateFunction(sum, UInt64),
    unreported_output_tokens        SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMMDD(hour)
ORDER BY (workspace_id, hour, service, agent_name, model)
TTL hour + INTERVAL 35 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollups.llm_calls_1h_mv TO rollups.llm_calls_1h
(
    hour DateTime('UTC'), workspace_id String, service String, agent_name String, model String,
    calls UInt64, errors UInt64, latency_ms AggregateFunction(quantilesDD(0.005, 0.5, 0.95, 0.99), Float64),
    input_tokens UInt64, output_tokens UInt64, cached_input_tokens UInt64, reasoning_tokens UInt64,
    reported_calls UInt64, reported_cost_usd Decimal128(18), unreported_input_tokens UInt64,
    unreported_cached_input_tokens UInt64, unreported_output_tokens UInt64
)
AS SELECT
    toStartOfHour(minute) AS hour,
    workspace_id, service, agent_name, model,
    sum(calls) AS calls,
    sum(errors) AS errors,
    quantilesDDMergeState(0.005, 0.5, 0.95, 0.99)(latency_ms) AS latency_ms,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cached_input_tokens) AS cached_input_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(reported_calls) AS reported_calls,
    sum(reported_cost_usd) AS reported_cost_usd,
    sum(unreported_input_tokens) AS unreported_input_tokens,
    sum(unreported_cached_input_tokens) AS unreported_cached_input_tokens,
    sum(unreported_output_tokens) AS unreported_output_tokens
FROM rollups.llm_calls_1m
GROUP BY hour, workspace_id, service, agent_name, model;
