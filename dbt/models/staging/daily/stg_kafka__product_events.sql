{{ config(
    partition_by='toYYYYMMDD(event_date)',
    order_by='(workspace_id, event_date, event_type, event_id)',
) }}
-- One row per client-side product event (event_id), deduplicated: the Kafka path is
-- at-least-once and a re-sent event repeats its event_id (copies carry the same payload, so
-- any copy will do). Duplicates share occurred_at, hence a day, so deduplicating within a
-- day's window is complete.
SELECT
    event_id,
    event_type,
    occurred_at,
    toDate(occurred_at) AS event_date,
    workspace_id,
    session_id,
    actor_id AS user_hash,  -- hashed at the collector with the same key and function as keyed_hash
    source,
    JSONExtractString(properties, 'path') AS path,
    JSONExtractString(properties, 'feature') AS feature,
    properties
FROM {{ source('kafka', 'product_events') }}
WHERE {{ in_window('occurred_at') }}
LIMIT 1 BY event_id
