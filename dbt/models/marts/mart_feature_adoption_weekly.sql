{{ config(order_by='(cohort_week, workspace_id, feature)') }}
-- Grain: one row per signup cohort week (Monday), workspace ('__all__' = every workspace) and
-- feature adopted by at least one user of the cohort. A user adopted a feature with a
-- 'feature_used' event of it at or after signing up. A full rebuild: adoption grows for as
-- long as a cohort's users come back.
WITH users AS (
    SELECT user_hash, signed_up_at, toMonday(signup_date) AS cohort_week
    FROM {{ ref('stg_app__users') }}
),
events AS (
    SELECT workspace_id, user_hash, event_type, feature, occurred_at
    FROM {{ ref('fct_product_events') }}
    WHERE user_hash != ''
),
members AS (
    -- a cohort user counts in every workspace they have an event in, and always in '__all__'
    SELECT DISTINCT u.cohort_week AS cohort_week, e.workspace_id AS workspace_id, u.user_hash AS user_hash
    FROM users AS u
    INNER JOIN (SELECT DISTINCT workspace_id, user_hash FROM events) AS e ON e.user_hash = u.user_hash
    UNION ALL
    SELECT cohort_week, '__all__' AS workspace_id, user_hash
    FROM users
),
adoptions AS (
    SELECT DISTINCT
        u.cohort_week AS cohort_week,
        arrayJoin([e.workspace_id, '__all__']) AS workspace_id,
        e.feature AS feature,
        u.user_hash AS user_hash
    FROM users AS u
    INNER JOIN (SELECT * FROM events WHERE event_type = 'feature_used' AND feature != '') AS e
        ON e.user_hash = u.user_hash
    WHERE e.occurred_at >= u.signed_up_at
),
cohorts AS (
    SELECT cohort_week, workspace_id, count() AS cohort_users
    FROM members
    GROUP BY cohort_week, workspace_id
),
cohort_features AS (
    SELECT DISTINCT cohort_week, feature
    FROM adoptions
),
adopted AS (
    SELECT cohort_week, workspace_id, feature, count() AS adopters
    FROM adoptions
    GROUP BY cohort_week, workspace_id, feature
)
SELECT
    c.cohort_week AS cohort_week,
    c.workspace_id AS workspace_id,
    f.feature AS feature,
    c.cohort_users AS cohort_users,
    coalesce(a.adopters, 0) AS adopters,
    adopters / c.cohort_users AS adoption_rate
FROM cohorts AS c
INNER JOIN cohort_features AS f ON f.cohort_week = c.cohort_week
LEFT JOIN adopted AS a
    ON a.cohort_week = c.cohort_week AND a.workspace_id = c.workspace_id AND a.feature = f.feature
