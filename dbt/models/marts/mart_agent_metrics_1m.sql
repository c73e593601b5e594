{{ config(
    materialized='incremental',
    partition_by='toYYYYMMDD(toDate(minute))',
    order_by='(workspace_id, minute, service, agent_name, model)',
    pre_hook="{{ replace_window() }}",
    tags=['daily'],
) }}
-- Grain: one row per minute (of the span's start, UTC), workspace, service, agent and model,
-- over LLM call spans (gen_ai.operation.name = 'chat', or any span naming a model). Spans carry
-- no prices: cost is the minute's tokens times the list prices in the model_prices seed (0 for
-- a model missing there). Percentiles: quantileExactInclusive (linear interpolation between
-- closest ranks, as numpy.percentile by default).
WITH calls AS (
    SELECT workspace_id, service, agent_name, model, start_time, duration_ms, is_error, input_tokens, output_tokens
    FROM {{ ref('stg_kafka__spans') }}
    WHERE {{ in_window('span_date') }}
      AND (gen_ai_operation = 'chat' OR model != '')
)
SELECT
    toStartOfMinute(c.start_time) AS minute,
    c.workspace_id AS workspace_id,
    c.service AS service,
    c.agent_name AS agent_name,
    c.model AS model,
    count() AS calls,
    countIf(c.is_error) AS errors,
    errors / calls AS error_rate,
    quantileExactInclusive(0.5)(c.duration_ms) AS p50_latency_ms,
    quantileExactInclusive(0.95)(c.duration_ms) AS p95_latency_ms,
    quantileExactInclusive(0.99)(c.duration_ms) AS p99_latency_ms,
    sum(c.input_tokens) AS input_tokens,
    sum(c.output_tokens) AS output_tokens,
    -- per-model prices times integer token sums: exact and independent of row order
    input_tokens * any(p.usd_per_input_token) + output_tokens * any(p.usd_per_output_token) AS cost_usd
FROM calls AS c
LEFT JOIN {{ ref('model_prices') }} AS p ON p.model = c.model
GROUP BY minute, workspace_id, service, agent_name, model
