{{ config(
    partition_by='toYYYYMMDD(point_date)',
    order_by='(workspace_id, point_date, metric_name, service, time_unix, series_id)',
) }}
-- One row per OpenTelemetry histogram point, as a DELTA: the observations of the interval
-- (interval_start, time_unix] only, whatever temporality the SDK exported.
-- - A series is one stream of points: the same service, metric, scope, resource attributes,
--   point attributes, temporality and bucket bounds (series_id), and the same StartTimeUnix.
-- - DELTA points (AggregationTemporality 1, or anything but 2) are taken as sent.
-- - CUMULATIVE points (2) hold totals since StartTimeUnix: each becomes the difference from the
--   previous point of its series (bucket counts, count and sum). The first point of a series
--   counts as its own delta since StartTimeUnix, and so does a point whose count or any bucket
--   went down (a reset the SDK did not mark with a new StartTimeUnix; a new StartTimeUnix is a
--   new series by definition).
-- - Identical points (a Kafka redelivery, a client resend) are one: LIMIT 1 BY series, start
--   and time, before any difference is taken.
-- Day boundaries: the previous point of the window's first cumulative points lies on the day
-- before, so points are read from one day before the window and only the window's are kept.
-- A cumulative series whose start is older than that read range and that has no earlier point
-- in it (silent for over a day, or its older rows gone) cannot be differenced: its first point
-- only serves as the baseline of the next and is not emitted (an interval undercounted rather
-- than days of totals counted in one minute).
WITH
points AS (
    SELECT
        sipHash64(
            ServiceName, MetricName, ScopeName, mapSort(ResourceAttributes), mapSort(Attributes),
            AggregationTemporality, ExplicitBounds
        ) AS series_id,
        toLowCardinality(coalesce(nullIf(ResourceAttributes['tenant.id'], ''), Attributes['tenant.id'])) AS workspace_id,
        toLowCardinality(coalesce(nullIf(ServiceName, ''), ResourceAttributes['service.name'])) AS service,
        ScopeName AS scope_name,
        toLowCardinality(MetricName) AS metric_name,
        MetricUnit AS metric_unit,
        coalesce(nullIf(Attributes['http.route'], ''), Attributes['url.template']) AS route,
        coalesce(nullIf(Attributes['http.request.method'], ''), Attributes['http.method']) AS method,
        toUInt16OrZero(coalesce(nullIf(Attributes['http.response.status_code'], ''), Attributes['http.status_code'])) AS status_code,
        {{ otel_attribute('model', 'Attributes', 'ResourceAttributes') }} AS model,
        {{ otel_attribute('provider', 'Attributes', 'ResourceAttributes') }} AS provider,
        {{ otel_attribute('gen_ai_operation', 'Attributes', 'ResourceAttributes') }} AS operation,
        Attributes['gen_ai.token.type'] AS token_type,
        {{ otel_attribute('error_type', 'Attributes', none) }} AS error_type,
        Attributes AS attributes,
        AggregationTemporality = 2 AS is_cumulative,
        toDateTime64(StartTimeUnix, 9, 'UTC') AS start_time_unix,
        toDateTime64(TimeUnix, 9, 'UTC') AS time_unix,
        Count AS point_count,
        Sum AS point_sum,
        BucketCounts AS point_buckets,
        ExplicitBounds AS explicit_bounds
    FROM {{ source('kafka', 'otel_metrics_histogram') }}
    WHERE {{ in_window('TimeUnix', days_before=1) }}
    LIMIT 1 BY series_id, StartTimeUnix, TimeUnix
),
sequenced AS (
    SELECT
        *,
        row_number() OVER w AS point_no,
        lagInFrame(time_unix) OVER w AS prev_time,
        lagInFrame(point_count) OVER w AS prev_count,
        lagInFrame(point_sum) OVER w AS prev_sum,
        arrayResize(lagInFrame(point_buckets) OVER w, length(point_buckets)) AS prev_buckets
    FROM points
    WINDOW w AS (PARTITION BY series_id, start_time_unix ORDER BY time_unix ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
),
deltas AS (
    SELECT
        *,
        -- a cumulative point that continues its series: subtract the previous point
        is_cumulative AND point_no > 1 AND point_count >= prev_count
            AND NOT arrayExists((b, p) -> b < p, point_buckets, prev_buckets) AS continues
    FROM sequenced
)
SELECT
    series_id,
    workspace_id,
    service,
    scope_name,
    metric_name,
    metric_unit,
    route,
    method,
    status_code,
    model,
    provider,
    operation,
    token_type,
    error_type,
    attributes,
    if(is_cumulative, 'cumulative', 'delta') AS temporality,
    is_cumulative AND NOT continues AS is_series_start,
    -- after a silent reset the observations are younger than the previous point
    if(is_cumulative AND point_no > 1, prev_time, start_time_unix) AS interval_start,
    time_unix,
    toDate(time_unix) AS point_date,
    if(continues, toUInt64(point_count - prev_count), point_count) AS count,
    if(continues, point_sum - prev_sum, point_sum) AS sum,
    if(continues, arrayMap((b, p) -> toUInt64(b - p), point_buckets, prev_buckets), point_buckets) AS bucket_counts,
    explicit_bounds
FROM deltas
WHERE {{ in_window('time_unix') }}
  -- a cumulative series first seen here but begun before the read range: a baseline only
  AND NOT (is_cumulative AND point_no = 1 AND NOT ({{ in_window('start_time_unix', days_before=1) }}))
