-- raw.spans gains route and service_version, and the spans are presented under the OpenTelemetry
-- Collector ClickHouse exporter's otel_traces column names.
--
-- route and service_version are DEFAULT columns over the attribute maps: the spans view (005)
-- does not name them, so every new row gets them computed on insert, and parts written before
-- this file have no such column on disk, so ClickHouse computes them from the maps when those
-- rows are read. Neither the view nor old rows are rewritten (tested on a part written before
-- the ALTER). A merge writes the computed values into the merged part.
-- route: the span's http.route, else its route attribute, else the same on its resource; ''.
-- service_version: the resource attribute service.version; ''.

ALTER TABLE raw.spans
    ADD COLUMN IF NOT EXISTS route LowCardinality(String) DEFAULT coalesce(
        nullIf(attributes['http.route'], ''), nullIf(attributes['route'], ''),
        nullIf(resource_attributes['http.route'], ''), resource_attributes['route'])
    AFTER operation;

ALTER TABLE raw.spans
    ADD COLUMN IF NOT EXISTS service_version LowCardinality(String) DEFAULT resource_attributes['service.version']
    AFTER service;

-- Lookups by trace id (a trace view, raw.otel_traces_trace_id_ts below) read few granules: the
-- sort key starts with tenant and service. Parts written from now on carry the index; older
-- ones get it when they merge (or at once with ALTER TABLE raw.spans MATERIALIZE INDEX idx_trace_id).
ALTER TABLE raw.spans ADD INDEX IF NOT EXISTS idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1;

-- The spans in the exporter's otel_traces columns, for the Grafana ClickHouse plugin's trace
-- queries (OpenTelemetry mode) and queries written for that table. SpanKind and StatusCode are
-- the text the current exporter writes ('Server', 'Client', 'Internal', 'Producer', 'Consumer',
-- 'Unspecified'; 'Ok', 'Error', 'Unset'); older exporter versions wrote 'SPAN_KIND_SERVER' and
-- 'STATUS_CODE_ERROR', and the plugin reads either for the status. Not kept in raw.spans, so
-- empty: TraceState, ScopeVersion, Events and Links (the plugin reads the nested columns).
-- Timestamp is the span's start as raw.spans keeps it, DateTime64(3, 'UTC') (the exporter's is
-- DateTime64(9)): a conversion in the view would hide the column from partition pruning and the
-- primary key, so a time-range query would read every part (seen with EXPLAIN indexes = 1).
-- Duration is in nanoseconds, from the nanosecond timestamps (exact up to about 100 days).
CREATE VIEW IF NOT EXISTS raw.otel_traces AS
SELECT
    start_time AS Timestamp,
    trace_id AS TraceId,
    span_id AS SpanId,
    parent_span_id AS ParentSpanId,
    '' AS TraceState,
    operation AS SpanName,
    CAST(multiIf(kind = 1, 'Internal', kind = 2, 'Server', kind = 3, 'Client', kind = 4, 'Producer',
                 kind = 5, 'Consumer', 'Unspecified'), 'LowCardinality(String)') AS SpanKind,
    service AS ServiceName,
    resource_attributes AS ResourceAttributes,
    scope AS ScopeName,
    '' AS ScopeVersion,
    attributes AS SpanAttributes,
    toUInt64(greatest(round(duration_ms * 1e6), 0)) AS Duration,
    CAST(multiIf(status_code = 1, 'Ok', status_code = 2, 'Error', 'Unset'), 'LowCardinality(String)') AS StatusCode,
    status_message AS StatusMessage,
    CAST([], 'Array(DateTime64(9, \'UTC\'))') AS `Events.Timestamp`,
    CAST([], 'Array(String)') AS `Events.Name`,
    CAST([], 'Array(Map(String, String))') AS `Events.Attributes`,
    CAST([], 'Array(String)') AS `Links.TraceId`,
    CAST([], 'Array(String)') AS `Links.SpanId`,
    CAST([], 'Array(String)') AS `Links.TraceState`,
    CAST([], 'Array(Map(String, String))') AS `Links.Attributes`
FROM raw.spans;

-- First and last span start per trace: the plugin's trace-id lookup (OpenTelemetry mode) reads
-- <trace table>_trace_id_ts to narrow the time range before it reads the trace.
CREATE VIEW IF NOT EXISTS raw.otel_traces_trace_id_ts AS
SELECT
    trace_id AS TraceId,
    min(start_time) AS Start,
    max(start_time) AS End
FROM raw.spans
GROUP BY trace_id;
