-- One row per live subscription (CDC replica, FINAL, _sign = 1), with its current plan and
-- MRR (the replica holds current state: earlier plans of a subscription are not kept).
SELECT
    subscription_id,
    user_id,
    {{ keyed_hash('user_id') }} AS user_hash,
    plan,
    mrr_cents / 100 AS mrr_usd,
    status,
    toDateTime64(started_at, 3, 'UTC') AS started_at,
    if(cancelled_at IS NULL, NULL, toDateTime64(assumeNotNull(cancelled_at), 3, 'UTC')) AS cancelled_at
FROM {{ source('app', 'subscriptions') }} FINAL
WHERE _sign = 1
