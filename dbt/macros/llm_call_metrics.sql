{#- LLM call metrics from stg_kafka__spans per time bucket (toStartOfMinute / toStartOfHour of
    the span's start), workspace, service, agent and model: the body shared by
    mart_agent_metrics_1m and mart_agent_metrics_1h, so both define calls, percentiles and cost
    the same way. Percentiles: quantileExactInclusive over the bucket's exact span durations.
    Cost: each span's own cost_usd from staging (reported, or priced from the model_prices row
    in effect on its day, or 0 when unpriced), summed as Decimal128(18) so a total does not
    depend on the order of the rows; split by cost_source into reported and priced. -#}
{% macro llm_call_metrics(bucket_function, bucket_column) %}
WITH calls AS (
    SELECT
        workspace_id, service, agent_name, model, start_time, duration_ms, is_error,
        input_tokens, output_tokens, cached_input_tokens, reasoning_tokens,
        toDecimal128(cost_usd, 18) AS cost_decimal, cost_source
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
    toFloat64(sum(c.cost_decimal)) AS cost_usd,
    sum(c.cached_input_tokens) AS cached_input_tokens,
    sum(c.reasoning_tokens) AS reasoning_tokens,
    toFloat64(sumIf(c.cost_decimal, c.cost_source = 'reported')) AS reported_cost_usd,
    toFloat64(sumIf(c.cost_decimal, c.cost_source = 'price_table')) AS priced_cost_usd,
    countIf(c.cost_source = 'reported') AS reported_calls,
    countIf(c.cost_source = 'unpriced') AS unpriced_calls
FROM calls AS c
GROUP BY {{ bucket_column }}, workspace_id, service, agent_name, model
{% endmacro %}
