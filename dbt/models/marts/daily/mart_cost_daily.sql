{{ config(
    partition_by='toYYYYMMDD(day)',
    order_by='(workspace_id, day, model, user_hash)',
) }}
-- Grain: one row per day (UTC, of the llm_call event), workspace, model and user (keyed hash).
-- Cost is the events' own cost_usd, summed as Decimal (independent of row order).
SELECT
    event_date AS day,
    workspace_id,
    model,
    user_hash,
    count() AS calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    toFloat64(sum(toDecimal128(cost_usd, 18))) AS cost_usd
FROM {{ ref('stg_kafka__agent_events') }}
WHERE {{ in_window('event_date') }}
  AND event_type = 'llm_call'
GROUP BY day, workspace_id, model, user_hash
