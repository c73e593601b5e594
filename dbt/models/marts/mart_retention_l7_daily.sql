{{ config(order_by='signup_date') }}
-- Grain: one row per signup day (UTC) with at least one user. Retained = at least one product
-- event on days 1..7 after the signup day (day 0 does not count). A full rebuild: a cohort's
-- value changes for 7 days after it, longer than an incremental run's window.
WITH users AS (
    SELECT user_hash, signup_date
    FROM {{ ref('stg_app__users') }}
),
active_days AS (
    SELECT DISTINCT user_hash, event_date
    FROM {{ ref('fct_product_events') }}
    WHERE user_hash != ''
),
cohorts AS (
    SELECT signup_date, count() AS cohort_users
    FROM users
    GROUP BY signup_date
),
retained AS (
    SELECT u.signup_date AS signup_date, uniqExact(u.user_hash) AS retained_users
    FROM users AS u
    INNER JOIN active_days AS a ON a.user_hash = u.user_hash
    WHERE a.event_date >= u.signup_date + 1 AND a.event_date <= u.signup_date + 7
    GROUP BY signup_date
)
SELECT
    c.signup_date AS signup_date,
    c.cohort_users AS cohort_users,
    coalesce(r.retained_users, 0) AS retained_users,
    retained_users / c.cohort_users AS retention_rate,
    CAST(c.signup_date + 7 < toDate(now(), 'UTC') AS Bool) AS is_complete
FROM cohorts AS c
LEFT JOIN retained AS r ON r.signup_date = c.signup_date
