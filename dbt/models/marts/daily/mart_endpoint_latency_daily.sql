{{ config(
    partition_by='toYYYYMMDD(day)',
    order_by='(workspace_id, day, service, service_version, route)',
) }}
-- Grain: one row per day (UTC, of the span's start), workspace, service, service version and
-- route. A request is a SERVER span (span_kind 2) with a route; an error is one with is_error.
-- Percentiles: quantileExactInclusive over the exact span durations.
SELECT
    span_date AS day,
    workspace_id,
    service,
    toString(service_version) AS service_version,
    toString(route) AS route,
    count() AS requests,
    countIf(is_error) AS errors,
    errors / requests AS error_rate,
    quantileExactInclusive(0.5)(duration_ms) AS p50_ms,
    quantileExactInclusive(0.95)(duration_ms) AS p95_ms
FROM {{ ref('stg_kafka__spans') }}
WHERE {{ in_window('span_date') }}
  AND span_kind = 2
  AND route != ''
GROUP BY day, workspace_id, service, service_version, route
