{{ config(
    partition_by='toYYYYMMDD(day)',
    order_by='(day)',
) }}
-- Grain: one row per day of the window, from the first subscription's start day up to
-- today (UTC): the state at the end of the day. MRR uses each subscription's current plan.
-- (A full refresh without vars writes one partition per day since the first subscription,
-- often more than the server's default limit of 100 per INSERT: dbt_project.yml lifts it.)
WITH subs AS (
    SELECT
        round(mrr_usd * 100) AS mrr_cents,
        toDate(started_at) AS start_day,
        if(cancelled_at IS NULL, NULL, toDate(assumeNotNull(cancelled_at))) AS cancel_day
    FROM {{ ref('stg_app__subscriptions') }}
),
bounds AS (
    SELECT
        greatest(toDate('{{ window_min() }}'), min(start_day)) AS lo,
        if(count() = 0, lo, least(toDate('{{ window_max() }}'), toDate(now(), 'UTC') + 1)) AS hi
    FROM subs
),
days AS (
    SELECT arrayJoin(arrayMap(i -> lo + i, range(toUInt32(greatest(0, toInt32(hi - lo)))))) AS day
    FROM bounds
)
SELECT
    d.day AS day,
    sumIf(s.mrr_cents, s.start_day <= d.day AND (s.cancel_day IS NULL OR s.cancel_day > d.day)) / 100 AS mrr_usd,
    countIf(s.start_day <= d.day AND (s.cancel_day IS NULL OR s.cancel_day > d.day)) AS active_subscriptions,
    countIf(s.start_day = d.day) AS new_subscriptions,
    countIf(s.cancel_day IS NOT NULL AND s.cancel_day = d.day) AS churned_subscriptions
FROM days AS d
CROSS JOIN subs AS s
GROUP BY d.day
