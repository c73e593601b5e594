-- One row per live server-side product event (CDC replica, FINAL, _sign = 1; the primary key
-- event_id makes it unique). Hot JSON properties extracted to columns.
SELECT
    event_id,
    event_name AS event_type,
    toDateTime64(occurred_at, 3, 'UTC') AS occurred_at,
    toDate(toDateTime64(occurred_at, 3, 'UTC')) AS event_date,
    if(user_id IS NULL, '', {{ keyed_hash('assumeNotNull(user_id)') }}) AS user_hash,
    JSONExtractString(properties, 'path') AS path,
    JSONExtractString(properties, 'feature') AS feature,
    properties
FROM {{ source('app', 'events') }} FINAL
WHERE _sign = 1
