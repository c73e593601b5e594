-- One row per live user of the application (CDC replica, FINAL, _sign = 1). Email and name
-- are left out; the user id is carried as its keyed hash too.
SELECT
    user_id,
    {{ keyed_hash('user_id') }} AS user_hash,
    country,
    plan,
    toDateTime64(created_at, 3, 'UTC') AS signed_up_at,
    toDate(toDateTime64(created_at, 3, 'UTC')) AS signup_date,
    toDateTime64(updated_at, 3, 'UTC') AS updated_at
FROM {{ source('app', 'users') }} FINAL
WHERE _sign = 1
