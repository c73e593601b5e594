{{ config(
    partition_by='toYYYYMMDD(toDate(minute))',
    order_by='(workspace_id, minute, service, agent_name, model)',
) }}
-- Grain: one row per minute (of the span's start, UTC), workspace, service, agent and model,
-- over LLM call spans (stg_kafka__spans.is_llm_call: a chat operation, tokens, or a model
-- named on the span). Spans carry no prices: cost is the minute's tokens times the list prices
-- in the model_prices seed (0 for a model missing there). Percentiles: quantileExactInclusive (linear interpolation between
-- closest ranks, as numpy.percentile by default).
{{ llm_call_metrics('toStartOfMinute', 'minute') }}
