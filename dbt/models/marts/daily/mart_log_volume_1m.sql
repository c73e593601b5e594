{{ config(
    partition_by='toYYYYMMDD(toDate(minute))',
    order_by='(workspace_id, minute, service, severity)',
) }}
-- Grain: one row per minute (of the record's timestamp, UTC), workspace, service and severity
-- bucket (stg_kafka__logs.severity), counting deduplicated log records.
SELECT
    toStartOfMinute(log_time) AS minute,
    workspace_id,
    service,
    severity,
    count() AS records
FROM {{ ref('stg_kafka__logs') }}
WHERE {{ in_window('log_date') }}
GROUP BY minute, workspace_id, service, severity
