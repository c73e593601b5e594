{{ config(
    partition_by='toYYYYMMDD(toDate(minute))',
    order_by='(workspace_id, minute, service, model, provider, operation)',
) }}
-- Grain: one row per minute (of the histogram point, UTC), workspace, service, model, provider,
-- operation and bucket layout, from the gen_ai.client.operation.duration histogram (seconds).
-- Calls, errors (error.type), success rate, merged buckets and p50/p95/p99 interpolated within
-- them the way Prometheus' histogram_quantile does (macros/histogram_metrics.sql).
{{ histogram_latency_1m('gen_ai.client.operation.duration', ['model', 'provider', 'operation'], 'calls') }}
