{#- The agent runs of the window, one row per run, from stg_kafka__spans: the CTE `runs` (to
    follow a WITH), shared by mart_agent_health_daily and mart_agent_failures_daily so both
    count the same runs. A run is a trace with an agent span (gen_ai_operation 'invoke_agent');
    the trace's earliest one (span_id breaks ties) gives the run its day, workspace, agent,
    failure (is_error) and error_type. Steps: the trace's other spans that are LLM calls
    (is_llm_call) or else tool calls (gen_ai_operation 'execute_tool'); a step timed out when
    its error_type is 'timeout'. Spans of the day after the window are read for the steps of
    runs that cross midnight; a run counts when its agent span starts in the window. -#}
{% macro agent_runs() %}
span_rows AS (
    SELECT trace_id, span_id, workspace_id, agent_name, gen_ai_operation, is_llm_call, is_error,
           error_type, start_time, span_date
    FROM {{ ref('stg_kafka__spans') }}
    WHERE {{ in_window('span_date', days_after=1) }}
),
agent_spans AS (
    SELECT
        trace_id,
        argMin(span_date, (start_time, span_id)) AS day,
        CAST(argMin(workspace_id, (start_time, span_id)) AS LowCardinality(String)) AS workspace_id,
        toString(argMin(agent_name, (start_time, span_id))) AS agent_name,
        argMin(is_error, (start_time, span_id)) AS run_failed,
        toString(argMin(error_type, (start_time, span_id))) AS run_error_type
    FROM span_rows
    WHERE gen_ai_operation = 'invoke_agent'
    GROUP BY trace_id
),
run_steps AS (
    SELECT
        trace_id,
        countIf(is_llm_call) AS run_llm_steps,
        countIf(NOT is_llm_call) AS run_tool_steps,
        countIf(error_type = 'timeout') AS run_timeouts
    FROM span_rows
    WHERE gen_ai_operation != 'invoke_agent' AND (is_llm_call OR gen_ai_operation = 'execute_tool')
    GROUP BY trace_id
),
runs AS (
    SELECT
        a.trace_id AS trace_id,
        a.day AS day,
        a.workspace_id AS workspace_id,
        a.agent_name AS agent_name,
        a.run_failed AS run_failed,
        a.run_error_type AS run_error_type,
        s.run_llm_steps AS run_llm_steps,  -- 0 for a run without steps (join_use_nulls is 0)
        s.run_tool_steps AS run_tool_steps,
        s.run_timeouts AS run_timeouts
    FROM agent_spans AS a
    LEFT ANY JOIN run_steps AS s ON s.trace_id = a.trace_id
    WHERE {{ in_window('a.day') }}
)
{% endmacro %}
