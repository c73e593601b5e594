{{ config(
    partition_by='toYYYYMMDD(day)',
    order_by='(workspace_id, day, agent_name)',
) }}
-- Grain: one row per day (UTC, of the run's agent span), workspace and agent. A run is a trace
-- with an invoke_agent span; its steps are the trace's LLM call and tool call spans, a timeout
-- a step with error_type 'timeout' (macros/agent_runs.sql, shared with mart_agent_failures_daily).
WITH {{ agent_runs() }}
SELECT
    day,
    workspace_id,
    agent_name,
    count() AS runs,
    countIf(run_failed) AS failed_runs,
    failed_runs / runs AS failure_rate,
    sum(run_llm_steps + run_tool_steps) AS steps,
    sum(run_llm_steps) AS llm_steps,
    sum(run_tool_steps) AS tool_steps,
    steps / runs AS avg_steps_per_run,
    sum(run_timeouts) AS timeouts
FROM runs
GROUP BY day, workspace_id, agent_name
