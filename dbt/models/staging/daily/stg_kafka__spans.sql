{{ config(
    partition_by='toYYYYMMDD(span_date)',
    order_by='(workspace_id, span_date, service, trace_id, span_id)',
) }}
-- One row per span (trace_id, span_id), deduplicated, with OpenTelemetry GenAI attributes
-- flattened to columns, each under its semantic-convention name or a listed alias, on the span
-- or else its resource (otel_attribute(), the `otel_attribute_aliases` var). agent_name is the
-- trace's `gen_ai.agent.name` (set on the agent's root span) carried to every span of the trace; spans of the days either side of the window
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
        {{ otel_attribute('gen_ai_operation') }} AS gen_ai_operation,
        {{ otel_attribute('model') }} AS model,
        {{ otel_attribute('provider') }} AS provider,
        toUInt32OrZero({{ otel_attribute('input_tokens') }}) AS input_tokens,
        toUInt32OrZero({{ otel_attribute('output_tokens') }}) AS output_tokens,
        {{ otel_attribute('tool_name') }} AS tool_name,
        -- An LLM call: a chat operation, tokens, or a model named on the span itself (a model set
        -- on the resource names every span of the program, agent and tool spans included).
        gen_ai_operation IN ('chat', 'text_completion', 'generate_content')
            OR input_tokens > 0 OR output_tokens > 0
            OR {{ otel_attribute('model', resource_map=none) }} != '' AS is_llm_call,
        status_code = 2 AS is_error,
        if(status_code = 2, coalesce(nullIf({{ otel_attribute('error_type') }}, ''), status_message), '') AS error_type,
        start_time,
        end_time,
        duration_ms
    FROM {{ source('kafka', 'spans') }}
    WHERE {{ in_window('start_time') }}
    LIMIT 1 BY trace_id, span_id
),
agents AS (
    SELECT trace_id, max(agent) AS agent_name
    FROM (
        SELECT trace_id, {{ otel_attribute('agent_name') }} AS agent
        FROM {{ source('kafka', 'spans') }}
        WHERE {{ in_window('start_time', days_before=1, days_after=1) }}
    )
    WHERE agent != ''
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
    s.is_llm_call AS is_llm_call,
    s.is_error AS is_error,
    s.error_type AS error_type,
    s.start_time AS start_time,
    s.end_time AS end_time,
    toDate(s.start_time) AS span_date,
    s.duration_ms AS duration_ms
FROM spans AS s
LEFT ANY JOIN agents AS a ON a.trace_id = s.trace_id  -- no agent: '' (join_use_nulls is 0 by default)
