{{ config(
    partition_by='toYYYYMMDD(toDate(hour))',
    order_by='(workspace_id, hour, service, agent_name, model)',
) }}
-- Grain: one row per hour (of the span's start, UTC), workspace, service, agent and model: the
-- same calls, errors, tokens and costs as mart_agent_metrics_1m summed per hour, and
-- the hour's own exact percentiles (quantileExactInclusive over its spans, not a blend of the
-- minutes'). Dashboards read it for time ranges over two days, where minutes are too many rows.
{{ llm_call_metrics('toStartOfHour', 'hour') }}
