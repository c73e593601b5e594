{{ config(
    partition_by='toYYYYMMDD(day)',
    order_by='(workspace_id, day, agent_name, error_type)',
) }}
-- Grain: one row per day (UTC, of the run's agent span), workspace, agent and error_type, for
-- failed runs only: the runs of mart_agent_health_daily (macros/agent_runs.sql) by the
-- error_type of their agent span ('_OTHER' when it has none).
WITH {{ agent_runs() }}
SELECT
    day,
    workspace_id,
    agent_name,
    if(run_error_type = '', '_OTHER', run_error_type) AS error_type,
    count() AS failures
FROM runs
WHERE run_failed
GROUP BY day, workspace_id, agent_name, error_type
