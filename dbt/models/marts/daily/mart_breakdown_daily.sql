{{ config(
    partition_by='toYYYYMMDD(day)',
    order_by='(day, workspace_id, country, device_type)',
) }}
-- Grain: one row per day, workspace, country and device type with a product event. Country
-- from the user's users row (current value), device type from the client event's context
-- (key device_type); 'unknown' when there is none.
WITH devices AS (
    -- staging keeps no context: the key is read from the raw rows, deduplicated as staging does
    SELECT event_id, JSONExtractString(context, 'device_type') AS device_type
    FROM {{ source('kafka', 'product_events') }}
    WHERE {{ in_window('occurred_at') }}
    LIMIT 1 BY event_id
),
countries AS (
    SELECT user_hash, country
    FROM {{ ref('stg_app__users') }}
),
events AS (
    SELECT event_id, event_date, workspace_id, user_hash, session_id
    FROM {{ ref('fct_product_events') }}
    WHERE {{ in_window('event_date') }}
)
SELECT
    e.event_date AS day,
    e.workspace_id AS workspace_id,
    coalesce(nullIf(c.country, ''), 'unknown') AS country,
    coalesce(nullIf(d.device_type, ''), 'unknown') AS device_type,
    count() AS events,
    uniqExactIf(e.user_hash, e.user_hash != '') AS active_users,
    uniqExactIf(e.session_id, e.session_id != '') AS client_sessions
FROM events AS e
LEFT JOIN countries AS c ON c.user_hash = e.user_hash
LEFT JOIN devices AS d ON d.event_id = e.event_id
GROUP BY day, workspace_id, country, device_type
