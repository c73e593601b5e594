{{ config(
    partition_by='toYYYYMMDD(event_date)',
    order_by='(workspace_id, event_date, event_type, event_id)',
) }}
-- One row per agent event (event_id), deduplicated (at-least-once Kafka path; see
-- stg_kafka__product_events). Cost comes from the event's own unit prices.
SELECT
    event_id,
    event_type,
    occurred_at,
    toDate(occurred_at) AS event_date,
    workspace_id,
    session_id,
    actor_id AS user_hash,  -- hashed at the collector with the same key and function as keyed_hash
    source,
    JSONExtractString(context, 'agent') AS agent_name,
    model,
    provider,
    input_tokens,
    output_tokens,
    latency_ms,
    success = 1 AS is_success,
    error_type,
    tool_name,
    status,
    cost_usd,
    prompt_hash
FROM {{ source('kafka', 'agent_events') }}
WHERE {{ in_window('occurred_at') }}
LIMIT 1 BY event_id
