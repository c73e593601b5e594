{{ config(
    partition_by='toYYYYMMDD(span_date)',
    order_by='(workspace_id, span_date, service, trace_id, span_id)',
) }}
-- One row per span (trace_id, span_id), deduplicated, with OpenTelemetry GenAI attributes
-- flattened to columns. agent_name is the trace's `gen_ai.agent.name` (set on the agent's
-- root span) carried to every span of the trace; spans of the days either side of the window
-- are read for it only, so a trace that crosses midnight keeps its agent on both days.
-- The attributes are extracted before the dedup (no Map column is carried through it), and
-- the agent comes from a join on a per-trace table of the spans that name one (no sort of every
-- span by trace): same rows as a window function, a fraction of the memory (docs/benchmarks.md).
WITH
spans AS (
    SELECT
        trace_id,
        span_id,
        parent_span_id,
        tenant AS workspace_id,
        env,
        service,
        operation,
        attributes['gen_ai.operation.name'] AS gen_ai_operation,
        coalesce(nullIf(attributes['gen_ai.response.model'], ''), attributes['gen_ai.request.model']) AS model,
        coalesce(nullIf(attributes['gen_ai.provider.name'], ''), attributes['gen_ai.system']) AS provider,
        toUInt32OrZero(attributes['gen_ai.usage.input_tokens']) AS input_tokens,
        toUInt32OrZero(attributes['gen_ai.usage.output_tokens']) AS output_tokens,
        attributes['gen_ai.tool.name'] AS tool_name,
        status_code = 2 AS is_error,
        if(status_code = 2, coalesce(nullIf(attributes['error.type'], ''), status_message), '') AS error_type,
        start_time,
        end_time,
        duration_ms
    FROM {{ source('kafka', 'spans') }}
    WHERE {{ in_window('start_time') }}
    LIMIT 1 BY trace_id, span_id
),
agents AS (
    SELECT trace_id, max(attributes['gen_ai.agent.name']) AS agent_name
    FROM {{ source('kafka', 'spans') }}
    WHERE {{ in_window('start_time', days_before=1, days_after=1) }}
      AND attributes['gen_ai.agent.name'] != ''
    GROUP BY trace_id
)
SELECT
    s.trace_id AS trace_id,
    s.span_id AS span_id,
    s.parent_span_id AS parent_span_id,
    s.parent_span_id = '' AS is_root,
    s.workspace_id AS workspace_id,
    s.env AS env,
    s.service AS service,
    s.operation AS operation,
    s.gen_ai_operation AS gen_ai_operation,
    a.agent_name AS agent_name,
    s.model AS model,
    s.provider AS provider,
    s.input_tokens AS input_tokens,
    s.output_tokens AS output_tokens,
    s.tool_name AS tool_name,
    s.is_error AS is_error,
    s.error_type AS error_type,
    s.start_time AS start_time,
    s.end_time AS end_time,
    toDate(s.start_time) AS span_date,
    s.duration_ms AS duration_ms
FROM spans AS s
LEFT ANY JOIN agents AS a ON a.trace_id = s.trace_id  -- no agent: '' (join_use_nulls is 0 by default)
