{#- LLM call metrics from stg_kafka__spans per time bucket (toStartOfMinute / toStartOfHour of
    the span's start), workspace, service, agent and model: the body shared by
    mart_agent_metrics_1m and mart_agent_metrics_1h, so both define calls, percentiles and cost
    the same way. Percentiles: quantileExactInclusive over the bucket's exact span durations. -#}
{% macro llm_call_metrics(bucket_function, bucket_column) %}
WITH calls AS (
    SELECT workspace_id, service, agent_name, model, start_time, duration_ms, is_error, input_tokens, output_tokens
    FROM {{ ref('stg_kafka__spans') }}
    WHERE {{ in_window('span_date') }}
      AND is_llm_call
)
SELECT
    {{ bucket_function }}(c.start_time) AS {{ bucket_column }},
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
GROUP BY {{ bucket_column }}, workspace_id, service, agent_name, model
{% endmacro %}
