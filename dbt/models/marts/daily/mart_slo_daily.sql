{{ config(
    partition_by='toYYYYMMDD(day)',
    order_by='(workspace_id, day)',
) }}
-- Grain: one row per day (UTC) and workspace. A request is one agent run, counted on the day
-- its agent_run_finished event occurred; it is an error when the run did not succeed.
{% set slo_target = 0.99 %}
SELECT
    event_date AS day,
    workspace_id,
    count() AS requests,
    countIf(NOT is_success) AS errors,
    (requests - errors) / requests AS success_rate,
    toFloat64({{ slo_target }}) AS slo_target,
    (1 - {{ slo_target }}) * requests AS error_budget,
    error_budget - errors AS budget_remaining,
    (errors / requests) / (1 - {{ slo_target }}) AS burn_rate
FROM {{ ref('stg_kafka__agent_events') }}
WHERE {{ in_window('event_date') }}
  AND event_type = 'agent_run_finished'
GROUP BY day, workspace_id
