{{ config(
    materialized='incremental',
    partition_by='toYYYYMMDD(span_date)',
    order_by='(workspace_id, span_date, service, trace_id, span_id)',
    pre_hook="{{ replace_window() }}",
    tags=['daily'],
) }}
-- One row per span (trace_id, span_id), deduplicated, with OpenTelemetry GenAI attributes
-- flattened to columns. agent_name is the trace's `gen_ai.agent.name` (set on the agent's
-- root span) carried to every span of the trace; spans of the days either side of the window
-- are read for it only, so a trace that crosses midnight keeps its agent on both days.
SELECT *
FROM
(
SELECT
    trace_id,
    span_id,
    parent_span_id,
    parent_span_id = '' AS is_root,
    tenant AS workspace_id,
    env,
    service,
    operation,
    attributes['gen_ai.operation.name'] AS gen_ai_operation,
    max(attributes['gen_ai.agent.name']) OVER (PARTITION BY trace_id) AS agent_name,
    coalesce(nullIf(attributes['gen_ai.response.model'], ''), attributes['gen_ai.request.model']) AS model,
    coalesce(nullIf(attributes['gen_ai.provider.name'], ''), attributes['gen_ai.system']) AS provider,
    toUInt32OrZero(attributes['gen_ai.usage.input_tokens']) AS input_tokens,
    toUInt32OrZero(attributes['gen_ai.usage.output_tokens']) AS output_tokens,
    attributes['gen_ai.tool.name'] AS tool_name,
    status_code = 2 AS is_error,
    if(status_code = 2, coalesce(nullIf(attributes['error.type'], ''), status_message), '') AS error_type,
    start_time,
    end_time,
    toDate(start_time) AS span_date,
    duration_ms
FROM
(
    SELECT *
    FROM {{ source('kafka', 'spans') }}
    WHERE {{ in_window('start_time', days_before=1, days_after=1) }}
    LIMIT 1 BY trace_id, span_id
)
)
WHERE {{ in_window('span_date') }}
