{{ config(
    partition_by='toYYYYMMDD(day)',
    order_by='(workspace_id, day, model, provider)',
) }}
-- Grain: one row per day (UTC, of the llm_call event), workspace, model and provider.
-- Cost is the events' own cost_usd (tokens x the unit prices the agent reported), summed as
-- Decimal so the total does not depend on row order. Percentiles: quantileExactInclusive.
SELECT
    event_date AS day,
    workspace_id,
    model,
    provider,
    count() AS calls,
    quantileExactInclusive(0.5)(latency_ms) AS p50_latency_ms,
    quantileExactInclusive(0.9)(latency_ms) AS p90_latency_ms,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    toFloat64(sum(toDecimal128(cost_usd, 18))) AS cost_usd,
    countIf(is_success) / calls AS success_rate
FROM {{ ref('stg_kafka__agent_events') }}
WHERE {{ in_window('event_date') }}
  AND event_type = 'llm_call'
GROUP BY day, workspace_id, model, provider
