{{ config(
    partition_by='toYYYYMMDD(day)',
    order_by='(day, workspace_id)',
) }}
-- Grain: one row per day and workspace (plus '__all__', users across every workspace) with
-- at least one user active in the trailing 30 days; days up to today (UTC). Reads 29 days of
-- events before the window.
WITH user_days AS (
    SELECT DISTINCT event_date, arrayJoin([toString(workspace_id), '__all__']) AS workspace_id, user_hash
    FROM {{ ref('fct_product_events') }}
    WHERE user_hash != '' AND {{ in_window('event_date', days_before=29) }}
),
counted AS (
    -- each active user-day counts on that day and the 29 days after it
    SELECT event_date + days_ago AS day, workspace_id, user_hash, days_ago
    FROM user_days
    ARRAY JOIN range(30) AS days_ago
)
SELECT
    day,
    workspace_id,
    uniqExactIf(user_hash, days_ago = 0) AS dau,
    uniqExactIf(user_hash, days_ago < 7) AS wau,
    uniqExact(user_hash) AS mau,
    dau / mau AS stickiness
FROM counted
WHERE {{ in_window('day') }} AND day <= toDate(now(), 'UTC')
GROUP BY day, workspace_id
