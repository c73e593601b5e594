{{ config(
    partition_by='toYYYYMMDD(toDate(hour))',
    order_by='(workspace_id, hour, tool_name)',
) }}
-- Grain: one row per hour (UTC, of the tool_call event), workspace and tool. A failure is a
-- call that did not succeed; timeouts (status 'timeout' or error_type 'timeout') are failures
-- too. Percentile: quantileExactInclusive.
SELECT
    toStartOfHour(occurred_at) AS hour,
    workspace_id,
    tool_name,
    count() AS calls,
    countIf(is_success) AS successes,
    calls - successes AS failures,
    countIf(status = 'timeout' OR error_type = 'timeout') AS timeouts,
    successes / calls AS success_rate,
    quantileExactInclusive(0.95)(latency_ms) AS p95_latency_ms
FROM {{ ref('stg_kafka__agent_events') }}
WHERE {{ in_window('event_date') }}
  AND event_type = 'tool_call'
GROUP BY hour, workspace_id, tool_name
