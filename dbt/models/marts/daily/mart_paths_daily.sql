{{ config(
    partition_by='toYYYYMMDD(day)',
    order_by='(day, workspace_id, step, next_step)',
) }}
-- Grain: one row per day, workspace, step and next step: how often a user's event (step) was
-- followed by their next event in the workspace at most 30 minutes later (the same session).
-- Step = page path for page_view, feature_used:<feature>, else the event type. Counted on the
-- step's day; reads one day of events after the window (a next event past midnight).
WITH events AS (
    SELECT
        workspace_id,
        user_hash,
        occurred_at,
        toString(event_id) AS event_key,
        event_date,
        multiIf(
            event_type = 'page_view', if(path = '', 'page_view', path),
            event_type = 'feature_used', if(feature = '', 'feature_used', concat('feature_used:', feature)),
            event_type
        ) AS step
    FROM {{ ref('fct_product_events') }}
    WHERE user_hash != '' AND {{ in_window('event_date', days_after=1) }}
),
paired AS (
    SELECT
        workspace_id, user_hash, event_date, occurred_at, step,
        leadInFrame(step) OVER w AS next_step,
        leadInFrame(occurred_at) OVER w AS next_at,
        leadInFrame(toUInt8(1), 1, toUInt8(0)) OVER w AS has_next
    FROM events
    WINDOW w AS (
        PARTITION BY workspace_id, user_hash ORDER BY occurred_at, event_key ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING
    )
)
SELECT
    event_date AS day,
    workspace_id,
    step,
    next_step,
    count() AS transitions,
    uniqExact(user_hash) AS users
FROM paired
WHERE has_next = 1
  AND dateDiff('millisecond', occurred_at, next_at) <= 1800000
  AND {{ in_window('event_date') }}
GROUP BY day, workspace_id, step, next_step
