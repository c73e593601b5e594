{{ config(
    partition_by='toYYYYMMDD(toDate(minute))',
    order_by='(workspace_id, minute, service, route, method)',
) }}
-- Grain: one row per minute (of the histogram point, UTC), workspace, service, route, method and
-- bucket layout, from the http.server.request.duration histogram (seconds). Requests, errors
-- (5xx or error.type), success rate, merged buckets and p50/p95/p99 interpolated within them
-- the way Prometheus' histogram_quantile does (macros/histogram_metrics.sql).
{{ histogram_latency_1m('http.server.request.duration', ['route', 'method'], 'requests') }}
