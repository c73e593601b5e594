{{ config(
    partition_by='toYYYYMMDD(log_date)',
    order_by='(workspace_id, log_date, service, log_time, log_id)',
) }}
-- One row per OpenTelemetry log record, deduplicated. Records carry no id, and the Kafka path is
-- at-least-once (a redelivery, or a client resending a batch after a 503, repeats records), so
-- log_id is a content key: sipHash128 over the record's timestamp (nanoseconds), service,
-- resource attributes, scope, trace and span ids, severity number and text, body and log
-- attributes. Copies share every one of these, hence the day, so `LIMIT 1 BY log_id` within a
-- day's window removes them all. Two genuinely distinct records would need all of them equal,
-- down to the nanosecond, to be merged.
-- severity: the OpenTelemetry severity ranges of SeverityNumber (1-4 TRACE, 5-8 DEBUG, 9-12 INFO,
-- 13-16 WARN, 17-20 ERROR, 21-24 FATAL); a record without a number (0) is named from its text.
SELECT
    lower(hex(sipHash128(
        Timestamp, ServiceName, ResourceAttributes, ScopeName, TraceId, SpanId,
        SeverityNumber, SeverityText, Body, LogAttributes
    ))) AS log_id,
    toDateTime64(Timestamp, 9, 'UTC') AS log_time,
    toDate(log_time) AS log_date,
    toLowCardinality(coalesce(nullIf(ResourceAttributes['tenant.id'], ''), LogAttributes['tenant.id'])) AS workspace_id,
    toLowCardinality(coalesce(nullIf(ResourceAttributes['deployment.environment.name'], ''),
                              ResourceAttributes['deployment.environment'])) AS env,
    toLowCardinality(coalesce(nullIf(ServiceName, ''), ResourceAttributes['service.name'])) AS service,
    ScopeName AS scope_name,
    SeverityNumber AS severity_number,
    SeverityText AS severity_text,
    toLowCardinality(multiIf(
        SeverityNumber BETWEEN 1 AND 4, 'TRACE',
        SeverityNumber BETWEEN 5 AND 8, 'DEBUG',
        SeverityNumber BETWEEN 9 AND 12, 'INFO',
        SeverityNumber BETWEEN 13 AND 16, 'WARN',
        SeverityNumber BETWEEN 17 AND 20, 'ERROR',
        SeverityNumber BETWEEN 21 AND 24, 'FATAL',
        upper(SeverityText) IN ('TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'), upper(SeverityText),
        upper(SeverityText) = 'WARNING', 'WARN',
        upper(SeverityText) = 'CRITICAL', 'FATAL',
        'UNSPECIFIED'
    )) AS severity,
    CAST(severity IN ('ERROR', 'FATAL') AS UInt8) AS is_error,  -- not LowCardinality(UInt8)
    Body AS body,
    lower(TraceId) AS trace_id,  -- hex, as raw.spans writes it
    lower(SpanId) AS span_id,
    LogAttributes['exception.type'] AS exception_type,
    LogAttributes AS attributes
FROM {{ source('kafka', 'otel_logs') }}
WHERE {{ in_window('TimestampTime') }}  -- the raw table's partition key (toDate(TimestampTime))
LIMIT 1 BY log_id
