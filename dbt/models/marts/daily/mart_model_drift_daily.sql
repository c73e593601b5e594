{{ config(
    partition_by='toYYYYMMDD(day)',
    order_by='(workspace_id, day, provider, model)',
) }}
-- Grain: one row per day (UTC, of the span's start), workspace (and '__all__': every
-- workspace's calls together), provider and model, over LLM call spans. A refusal is a call
-- with is_refusal (finish reasons containing 'content_filter'). Percentiles:
-- quantileExactInclusive over each call's output_tokens.
SELECT
    span_date AS day,
    arrayJoin([toString(workspace_id), '__all__']) AS workspace_id,
    toString(provider) AS provider,
    toString(model) AS model,
    count() AS calls,
    sum(output_tokens) / calls AS avg_output_tokens,
    quantileExactInclusive(0.5)(toFloat64(output_tokens)) AS p50_output_tokens,
    quantileExactInclusive(0.95)(toFloat64(output_tokens)) AS p95_output_tokens,
    countIf(is_refusal) AS refusals,
    refusals / calls AS refusal_rate
FROM {{ ref('stg_kafka__spans') }}
WHERE {{ in_window('span_date') }}
  AND is_llm_call
GROUP BY day, workspace_id, provider, model
