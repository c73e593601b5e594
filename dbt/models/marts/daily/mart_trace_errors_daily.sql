{{ config(
    partition_by='toYYYYMMDD(day)',
    order_by='(workspace_id, day, service)',
) }}
-- Grain: one row per day (UTC), workspace and service. Call figures count every span on the
-- day of its own start. Trace figures count each trace once, on the day, workspace and
-- service of its root span (its earliest span when the root is missing), and a trace errs
-- when any of its spans errs; spans of the days either side of the window are read so that
-- traces crossing midnight are whole (a trace longer than a day is cut at that margin).
WITH span_rows AS (
    SELECT trace_id, span_id, is_root, workspace_id, service, is_error, start_time, span_date
    FROM {{ ref('stg_kafka__spans') }}
    WHERE {{ in_window('span_date', days_before=1, days_after=1) }}
),
trace_heads AS (
    SELECT
        trace_id,
        -- the root span, or else the earliest one (span_id breaks ties)
        argMin(workspace_id, (NOT is_root, start_time, span_id)) AS head_workspace,
        argMin(service, (NOT is_root, start_time, span_id)) AS head_service,
        argMin(start_time, (NOT is_root, start_time, span_id)) AS head_start,
        max(is_error) AS has_error
    FROM span_rows
    GROUP BY trace_id
)
SELECT
    day,
    workspace_id,
    service,
    sum(n_spans) AS spans,
    sum(n_error_spans) AS error_spans,
    if(spans = 0, 0, error_spans / spans) AS call_error_rate,
    sum(n_traces) AS traces,
    sum(n_error_traces) AS error_traces,
    if(traces = 0, 0, error_traces / traces) AS trace_error_rate
FROM
(
    SELECT
        span_date AS day, workspace_id, service,
        count() AS n_spans, countIf(is_error) AS n_error_spans,
        toUInt64(0) AS n_traces, toUInt64(0) AS n_error_traces
    FROM span_rows
    WHERE {{ in_window('span_date') }}
    GROUP BY day, workspace_id, service
    UNION ALL
    SELECT
        toDate(head_start) AS day, head_workspace AS workspace_id, head_service AS service,
        toUInt64(0) AS n_spans, toUInt64(0) AS n_error_spans,
        count() AS n_traces, countIf(has_error) AS n_error_traces
    FROM trace_heads
    WHERE {{ in_window('head_start') }}
    GROUP BY day, workspace_id, service
)
GROUP BY day, workspace_id, service
