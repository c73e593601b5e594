{{ config(
    partition_by='toYYYYMMDD(span_date)',
    order_by='(workspace_id, span_date, trace_id, start_time, span_id)',
) }}
-- Grain: one row per span (trace_id, span_id; stg_kafka__spans) of a trace in which an ERROR or
-- FATAL log record was written: what the trace view linked from the error-log panel shows.
-- Error records are read from one day either side of the window, so a trace that crosses
-- midnight keeps all its spans.
WITH traces AS (
    SELECT DISTINCT trace_id
    FROM {{ ref('stg_kafka__logs') }}
    WHERE {{ in_window('log_date', days_before=1, days_after=1) }}
      AND is_error
      AND trace_id != ''
)
SELECT
    span_date,
    trace_id,
    span_id,
    parent_span_id,
    workspace_id,
    service,
    operation,
    start_time,
    duration_ms,
    is_error,
    error_type,
    model,
    tool_name
FROM {{ ref('stg_kafka__spans') }}
WHERE {{ in_window('span_date') }}
  AND trace_id IN (SELECT trace_id FROM traces)
