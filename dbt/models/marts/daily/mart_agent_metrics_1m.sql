{{ config(
    partition_by='toYYYYMMDD(toDate(minute))',
    order_by='(workspace_id, minute, service, agent_name, model)',
) }}
-- Grain: one row per minute (of the span's start, UTC), workspace, service, agent and model,
-- over LLM call spans (stg_kafka__spans.is_llm_call: a chat operation, tokens, or a model
-- named on the span). Cost: each call's cost from staging (the span's reported cost, else its
-- tokens at the model_prices row in effect on its day, else 0: unpriced), summed, and split by
-- source. Percentiles: quantileExactInclusive (linear interpolation between closest ranks, as
-- numpy.percentile by default).
{{ llm_call_metrics('toStartOfMinute', 'minute') }}
