{{ config(
    partition_by='toYYYYMMDD(day)',
    order_by='(day, step)',
) }}
-- Grain: one row per day of step 1 and funnel step (1..3). Step 1 is a user's first
-- page_view of '/signup' on the day; step 2 the first 'signup_submitted' at or after it,
-- step 3 the first 'signup_completed' at or after step 2, both at most 7 days after step 1.
-- Reads 7 days of events after the window.
WITH events AS (
    SELECT user_hash, event_type, path, occurred_at, event_date
    FROM {{ ref('fct_product_events') }}
    WHERE user_hash != ''
      AND event_type IN ('page_view', 'signup_submitted', 'signup_completed')
      AND {{ in_window('event_date', days_after=7) }}
),
step1 AS (
    SELECT user_hash, event_date AS day, min(occurred_at) AS step1_at
    FROM events
    WHERE event_type = 'page_view' AND path = '/signup' AND {{ in_window('event_date') }}
    GROUP BY user_hash, day
),
step2 AS (
    SELECT s.user_hash AS user_hash, s.day AS day, s.step1_at AS step1_at, min(e.occurred_at) AS step2_at
    FROM step1 AS s
    INNER JOIN (SELECT user_hash, occurred_at FROM events WHERE event_type = 'signup_submitted') AS e
        ON e.user_hash = s.user_hash
    WHERE e.occurred_at >= s.step1_at AND e.occurred_at <= s.step1_at + INTERVAL 7 DAY
    GROUP BY s.user_hash, s.day, s.step1_at
),
step3 AS (
    SELECT s.user_hash AS user_hash, s.day AS day, s.step2_at AS step2_at, min(e.occurred_at) AS step3_at
    FROM step2 AS s
    INNER JOIN (SELECT user_hash, occurred_at FROM events WHERE event_type = 'signup_completed') AS e
        ON e.user_hash = s.user_hash
    WHERE e.occurred_at >= s.step2_at AND e.occurred_at <= s.step1_at + INTERVAL 7 DAY
    GROUP BY s.user_hash, s.day, s.step2_at
),
reached AS (
    SELECT day, toUInt8(2) AS step, count() AS users,
        toNullable(quantileExactInclusive(0.5)(dateDiff('millisecond', step1_at, step2_at) / 1000)) AS median_s
    FROM step2 GROUP BY day
    UNION ALL
    SELECT day, toUInt8(3) AS step, count() AS users,
        toNullable(quantileExactInclusive(0.5)(dateDiff('millisecond', step2_at, step3_at) / 1000)) AS median_s
    FROM step3 GROUP BY day
),
grid AS (
    SELECT day, count() AS step1_users, arrayJoin([toUInt8(1), toUInt8(2), toUInt8(3)]) AS step
    FROM step1 GROUP BY day
),
steps AS (
    SELECT
        g.day AS day,
        g.step AS step,
        if(g.step = 1, g.step1_users, coalesce(r.users, 0)) AS users,
        g.step1_users AS step1_users,
        if(g.step = 1, CAST(NULL AS Nullable(Float64)), r.median_s) AS median_s
    FROM grid AS g
    LEFT JOIN reached AS r ON r.day = g.day AND r.step = g.step
)
SELECT
    day,
    step,
    ['signup_page_view', 'signup_submitted', 'signup_completed'][step] AS step_name,
    users,
    if(prev_users = 0, NULL, users / prev_users) AS conversion_from_previous,
    users / step1_users AS conversion_from_first,
    median_s AS median_seconds_from_previous
FROM (
    SELECT *, lagInFrame(users, 1, users) OVER (PARTITION BY day ORDER BY step ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS prev_users
    FROM steps
)
