{{ config(order_by='(cohort_week, week_offset)') }}
-- Grain: one row per signup cohort week (Monday) and week offset, from the cohort's week up
-- to the latest week with a product event. A full rebuild: cohorts span weeks.
WITH users AS (
    SELECT user_hash, toMonday(signup_date) AS cohort_week
    FROM {{ ref('stg_app__users') }}
),
cohorts AS (
    SELECT cohort_week, count() AS cohort_users
    FROM users
    GROUP BY cohort_week
),
active_weeks AS (
    SELECT DISTINCT user_hash, toMonday(event_date) AS week_start
    FROM {{ ref('fct_product_events') }}
    WHERE user_hash != ''
),
retained AS (
    SELECT u.cohort_week AS cohort_week, a.week_start AS week_start, count() AS retained_users
    FROM users AS u
    INNER JOIN active_weeks AS a ON a.user_hash = u.user_hash
    WHERE a.week_start >= u.cohort_week
    GROUP BY cohort_week, week_start
),
grid AS (
    SELECT
        cohort_week,
        cohort_users,
        arrayJoin(range(toUInt32(greatest(0, intDiv(toInt32(last_week - cohort_week), 7)) + 1))) AS week_offset,
        cohort_week + 7 * week_offset AS week_start
    FROM cohorts
    CROSS JOIN (SELECT toMonday(max(event_date)) AS last_week FROM {{ ref('fct_product_events') }}) AS latest
)
SELECT
    g.cohort_week AS cohort_week,
    toUInt32(g.week_offset) AS week_offset,
    g.week_start AS week_start,
    g.cohort_users AS cohort_users,
    coalesce(r.retained_users, 0) AS retained_users,
    retained_users / g.cohort_users AS retention_rate
FROM grid AS g
LEFT JOIN retained AS r ON r.cohort_week = g.cohort_week AND r.week_start = g.week_start
