{{ config(
    partition_by='toYYYYMMDD(log_date)',
    order_by='(workspace_id, log_date, service, log_time, log_id)',
) }}
-- Grain: one row per deduplicated log record of severity ERROR or FATAL (SeverityNumber 17-24,
-- or that text without a number), with the trace and span it was logged in.
SELECT
    log_time,
    log_date,
    workspace_id,
    env,
    service,
    severity,
    severity_number,
    severity_text,
    body,
    exception_type,
    trace_id,
    span_id,
    log_id
FROM {{ ref('stg_kafka__logs') }}
WHERE {{ in_window('log_date') }}
  AND is_error
