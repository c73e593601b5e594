-- One row per live order (CDC replica, FINAL, _sign = 1). An order's amount never changes;
-- a refund flips its status, so refunded_at is the last update of a refunded order.
SELECT
    order_id,
    user_id,
    {{ keyed_hash('user_id') }} AS user_hash,
    amount_cents / 100 AS amount_usd,
    currency,
    status,
    status = 'refunded' AS is_refunded,
    toDateTime64(created_at, 3, 'UTC') AS ordered_at,
    if(status = 'refunded', toDateTime64(updated_at, 3, 'UTC'), NULL) AS refunded_at
FROM {{ source('app', 'orders') }} FINAL
WHERE _sign = 1
