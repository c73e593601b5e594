{{ config(
    partition_by='toYYYYMMDD(day)',
    order_by='(workspace_id, day, prompt_hash)',
) }}
-- Grain: one row per day (UTC, of the llm_call event), workspace and prompt_hash (events with
-- one). A failure is a call with success = 0; top_error_type is the most frequent error_type
-- of the prompt's failures that day (ties: the first by name).
WITH calls AS (
    SELECT event_date AS day, workspace_id, prompt_hash, is_success, toString(error_type) AS error_type
    FROM {{ ref('stg_kafka__agent_events') }}
    WHERE {{ in_window('event_date') }}
      AND event_type = 'llm_call'
      AND prompt_hash != ''
),
failure_types AS (
    SELECT day, workspace_id, prompt_hash, error_type, count() AS n
    FROM calls
    WHERE NOT is_success
    GROUP BY day, workspace_id, prompt_hash, error_type
),
top_types AS (
    SELECT
        day, workspace_id, prompt_hash,
        -- (failures, error_type) pairs, most failures first, then by name
        arraySort(x -> (-toInt64(x.1), x.2), groupArray((n, error_type)))[1] AS top
    FROM failure_types
    GROUP BY day, workspace_id, prompt_hash
),
totals AS (
    SELECT day, workspace_id, prompt_hash, count() AS calls, countIf(NOT is_success) AS failures
    FROM calls
    GROUP BY day, workspace_id, prompt_hash
)
SELECT
    c.day AS day,
    c.workspace_id AS workspace_id,
    c.prompt_hash AS prompt_hash,
    c.calls AS calls,
    c.failures AS failures,
    c.failures / c.calls AS failure_rate,
    t.top.2 AS top_error_type,  -- '' and 0 for a prompt without failures (join_use_nulls is 0)
    t.top.1 AS top_error_type_failures
FROM totals AS c
LEFT ANY JOIN top_types AS t
    ON t.day = c.day AND t.workspace_id = c.workspace_id AND t.prompt_hash = c.prompt_hash
