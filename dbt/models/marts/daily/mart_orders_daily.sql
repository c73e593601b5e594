{{ config(
    partition_by='toYYYYMMDD(day)',
    order_by='(day)',
) }}
-- Grain: one row per day of the window, from the first order's day up to today (UTC).
-- Amounts are summed as whole cents (exact, order-independent) and shown in USD.
WITH orders AS (
    SELECT ordered_at, refunded_at, round(amount_usd * 100) AS amount_cents
    FROM {{ ref('stg_app__orders') }}
),
bounds AS (
    SELECT
        greatest(toDate('{{ window_min() }}'), min(toDate(ordered_at))) AS lo,
        if(count() = 0, lo, least(toDate('{{ window_max() }}'), toDate(now(), 'UTC') + 1)) AS hi
    FROM orders
),
days AS (
    SELECT arrayJoin(arrayMap(i -> lo + i, range(toUInt32(greatest(0, toInt32(hi - lo)))))) AS day
    FROM bounds
),
created AS (
    SELECT toDate(ordered_at) AS day, count() AS orders, sum(amount_cents) AS gross_cents
    FROM orders
    WHERE {{ in_window('ordered_at') }}
    GROUP BY day
),
refunded AS (
    SELECT toDate(assumeNotNull(refunded_at)) AS day, sum(amount_cents) AS refund_cents
    FROM orders
    WHERE refunded_at IS NOT NULL AND {{ in_window('assumeNotNull(refunded_at)') }}
    GROUP BY day
)
SELECT
    d.day AS day,
    coalesce(c.orders, 0) AS orders,
    coalesce(c.gross_cents, 0) / 100 AS revenue_usd,
    coalesce(r.refund_cents, 0) / 100 AS refunds_usd,
    revenue_usd - refunds_usd AS net_revenue_usd
FROM days AS d
LEFT JOIN created AS c ON c.day = d.day
LEFT JOIN refunded AS r ON r.day = d.day
