"""Service telemetry dashboard: what services report as OpenTelemetry metrics and logs.

Latency by route (http.server.request.duration) and by model (gen_ai.client.operation.duration),
success rate by route, tokens per minute split by an attribute the viewer picks, log volume by
severity and the latest error records with a link to their trace. Log volume reads the streaming
rollup rollups.logs_1m for the recent window (yesterday and today, panels.RECENT_START) and
mart_log_volume_1m before it; the histogram marts are still rebuilt every 5 minutes.

Percentiles are never averaged: each panel sums the minute marts' bucket counts over its time
bucket (only rows with the same bucket bounds, which stay part of the grouping) and estimates
p50/p95/p99 from the merged buckets the way Prometheus' histogram_quantile does, the same
estimate the marts store per minute (dbt macro histogram_quantile). So a 6-hour bucket's p95 is
the p95 of that bucket's requests, to within one bucket.

A separate dashboard rather than rows on the agent or health ones: the data is another source
(metrics and logs the services export, not spans or pipeline state), it needs its own variable
(the attribute to split tokens by), and its minute marts suit a range of hours by default.
"""

from __future__ import annotations

from platform_assets.publish.panels import (
    BUCKET_MINUTES,
    IN_WORKSPACE,
    RANGE_BEFORE_RECENT,
    RANGE_IN_RECENT,
    DashboardSpec,
    PanelSpec,
    TraceLink,
    VariableSpec,
    before_recent,
    recent_minutes,
)

ROUTES = "marts.mart_route_latency_1m"
MODELS = "marts.mart_llm_latency_1m"
TOKENS = "marts.mart_token_usage_1m"
LOGS = "marts.mart_log_volume_1m"
LOGS_ROLLUP = "rollups.logs_1m"  # the recent window's log volume (panels.RECENT_START)
ERROR_LOGS = "marts.fct_error_logs"
TRACE_SPANS = "marts.fct_error_trace_spans"
_MINUTES = "$__timeFilter(minute)"
ALL = "__all__"  # the variables' "All" (dashboards.ALL_VALUE)
TOKEN_ATTRIBUTE = "${token_attribute:sqlstring}"


def histogram_quantile_sql(q: float, buckets: str, bounds: str) -> str:
    """The q-quantile of merged bucket counts ``buckets`` (one more than the upper ``bounds``),
    as Prometheus' histogram_quantile: linear within the bucket where the cumulative count
    reaches q x total (the first bucket from 0; a rank in +inf gives the highest finite bound).
    The same expression as dbt/macros/histogram_metrics.sql."""
    total = f"arraySum({buckets})"
    rank = f"({q} * {total})"
    cum = f"arrayCumSum({buckets})"
    i = f"arrayFirstIndex(c -> c >= {rank}, {cum})"
    lower = f"if({i} = 1, 0, {bounds}[{i} - 1])"
    return (
        f"multiIf(length({bounds}) = 0 OR {total} = 0, NULL, "
        f"{i} > length({bounds}), {bounds}[length({bounds})], "
        f"{i} = 1 AND {bounds}[1] <= 0, {bounds}[1], "
        f"{lower} + ({bounds}[{i}] - {lower}) * (({rank} - if({i} = 1, 0, {cum}[{i} - 1])) / {buckets}[{i}]))"
    )


def _merged(table: str, label: str, time: bool) -> str:
    """Bucket counts summed per (time bucket,) label and bucket layout, with calls and errors."""
    calls = "requests" if table == ROUTES else "calls"
    head = "$__timeInterval(minute) AS time, " if time else ""
    group = "time, " if time else ""
    return f"""SELECT {head}{label} AS series, explicit_bounds AS bounds, sum({calls}) AS calls,
       sum(errors) AS errors, sumForEach(bucket_counts) AS buckets
FROM {table}
WHERE {_MINUTES} AND {IN_WORKSPACE}
GROUP BY {group}series, bounds"""


def _p95_over_time(key: str, title: str, table: str, label: str) -> PanelSpec:
    return PanelSpec(
        key=key,
        title=title,
        kind="timeseries",
        format="time_series",
        sql=f"""SELECT time, series, {histogram_quantile_sql(0.95, "buckets", "bounds")} AS p95_seconds
FROM (
{_merged(table, label, time=True)}
)
ORDER BY time""",
        source=table,
        rows_filter=_MINUTES,
        unit="s",
        description="p95 of each time bucket's observations, estimated from their merged histogram buckets "
        "(Prometheus' histogram_quantile), never an average of per-minute percentiles.",
    )


def _percentile_table(key: str, title: str, table: str, label: str, name: str) -> PanelSpec:
    qs = ", ".join(
        f"{histogram_quantile_sql(q, 'buckets', 'bounds')} AS p{int(q * 100)}_seconds" for q in (0.5, 0.95, 0.99)
    )
    return PanelSpec(
        key=key,
        title=title,
        kind="table",
        sql=f"""SELECT series AS {name}, calls, 1 - errors / calls AS success_rate, {qs}
FROM (
{_merged(table, label, time=False)}
)
ORDER BY calls DESC""",
        source=table,
        rows_filter=_MINUTES,
        description="Over the whole range: p50/p95/p99 from the range's merged histogram buckets, one row per "
        "bucket layout.",
    )


_ENDPOINT = "concat(method, ' ', route)"

PANELS = (
    _p95_over_time("route_p95", "p95 latency by route", ROUTES, _ENDPOINT),
    PanelSpec(
        key="route_success_rate",
        title="Success rate by route",
        kind="timeseries",
        format="time_series",
        sql=f"""SELECT $__timeInterval(minute) AS time, {_ENDPOINT} AS endpoint,
       1 - sum(errors) / sum(requests) AS success_rate
FROM {ROUTES}
WHERE {_MINUTES} AND {IN_WORKSPACE}
GROUP BY time, endpoint
ORDER BY time""",
        source=ROUTES,
        rows_filter=_MINUTES,
        unit="percentunit",
        description="Requests without a 5xx status or error.type, over all requests of the route.",
    ),
    _percentile_table("route_percentiles", "Latency percentiles by route", ROUTES, _ENDPOINT, "endpoint"),
    _p95_over_time("model_p95", "p95 LLM latency by model", MODELS, "model"),
    _percentile_table("model_percentiles", "LLM latency percentiles by model", MODELS, "model", "model"),
    PanelSpec(
        key="tokens_by_attribute",
        title="Tokens per minute by ${token_attribute:text}",
        kind="timeseries",
        format="time_series",
        # tokens per minute whatever the bucket: the bucket's sum over its length in minutes
        sql=f"""SELECT time, series, tokens / {BUCKET_MINUTES} AS tokens_per_minute
FROM (
    SELECT $__timeInterval(minute) AS time,
           if({TOKEN_ATTRIBUTE} = '{ALL}', model,
              coalesce(nullIf(attributes[{TOKEN_ATTRIBUTE}], ''), '(not set)')) AS series,
           sum(tokens) AS tokens
    FROM {TOKENS}
    WHERE {_MINUTES} AND {IN_WORKSPACE}
    GROUP BY time, series
)
ORDER BY time""",
        source=TOKENS,
        rows_filter=_MINUTES,
        unit="short",
        description="gen_ai.client.token.usage: tokens per minute, split by the value of the chosen attribute "
        "(All: by model).",
        width=24,
    ),
    PanelSpec(
        key="log_volume",
        title="Log records by severity",
        kind="timeseries",
        format="time_series",
        # Two halves split at the recent window, merged per bucket (a bucket across the split is one point).
        sql=f"""SELECT time, severity, sum(n) AS records
FROM (
SELECT $__timeInterval(minute) AS time, severity, sum(records) AS n
FROM {LOGS_ROLLUP}
WHERE {RANGE_IN_RECENT} AND {recent_minutes()} AND {IN_WORKSPACE}
GROUP BY time, severity
UNION ALL
SELECT $__timeInterval(minute) AS time, severity, sum(records) AS n
FROM {LOGS}
WHERE {RANGE_BEFORE_RECENT} AND {before_recent("minute")} AND {IN_WORKSPACE}
GROUP BY time, severity
)
GROUP BY time, severity
ORDER BY time""",
        source=LOGS,
        rows_filter=before_recent("minute"),
        recent_source=LOGS_ROLLUP,
        recent_rows_filter=recent_minutes(),
        description="OpenTelemetry log records per time bucket; severity from SeverityNumber ranges. Today and "
        "yesterday (UTC) from the streaming rollup (counted as they land: a redelivered record counts twice "
        "until the day's mart replaces it), earlier days from the deduplicated mart.",
    ),
    PanelSpec(
        key="recent_error_logs",
        title="Latest error logs",
        kind="table",
        sql=f"""SELECT log_time, service, severity, body, exception_type, trace_id, span_id
FROM {ERROR_LOGS}
WHERE $__dateFilter(log_date) AND $__timeFilter(log_time) AND {IN_WORKSPACE}
ORDER BY log_time DESC
LIMIT 100""",
        source=ERROR_LOGS,
        rows_filter="$__timeFilter(log_time)",
        description="The 100 newest ERROR and FATAL records; a trace id opens the trace's spans in Explore.",
        width=24,
        trace_link=TraceLink(
            field="trace_id",
            title="Show the trace",
            # The column names Grafana's trace view reads (its trace data frame).
            sql=f"""SELECT trace_id AS traceID, span_id AS spanID, parent_span_id AS parentSpanID,
       service AS serviceName, operation AS operationName,
       toUnixTimestamp64Milli(start_time) AS startTime, duration_ms AS duration,
       if(is_error, 2, 0) AS statusCode,
       arrayFilter(t -> t['value'] != '', [
           map('key', 'error.type', 'value', error_type),
           map('key', 'gen_ai.request.model', 'value', model),
           map('key', 'gen_ai.tool.name', 'value', tool_name)]) AS tags,
       [map('key', 'tenant.id', 'value', toString(workspace_id))] AS serviceTags
FROM {TRACE_SPANS}
WHERE trace_id = '${{__value.raw}}'
ORDER BY start_time""",
        ),
    ),
)

WORKSPACE_VARIABLE = VariableSpec(
    name="workspace",
    label="Workspace",
    sql=f"""SELECT DISTINCT workspace_id FROM (
    SELECT workspace_id FROM {ROUTES} WHERE {_MINUTES}
    UNION ALL SELECT workspace_id FROM {MODELS} WHERE {_MINUTES}
    UNION ALL SELECT workspace_id FROM {LOGS} WHERE {RANGE_BEFORE_RECENT} AND {before_recent("minute")}
    UNION ALL SELECT workspace_id FROM {LOGS_ROLLUP} WHERE {RANGE_IN_RECENT} AND {recent_minutes()}
)
ORDER BY workspace_id""",
)
TOKEN_ATTRIBUTE_VARIABLE = VariableSpec(
    name="token_attribute",
    label="Split tokens by",
    sql=f"SELECT DISTINCT arrayJoin(mapKeys(attributes)) AS attribute FROM {TOKENS} WHERE {_MINUTES} "
    "ORDER BY attribute",
)

DASHBOARD = DashboardSpec(
    uid="platform-service-telemetry",
    title="Service telemetry",
    description="Route and LLM latency percentiles from histogram buckets, success rates, tokens per minute, "
    "log volume and error logs with trace links, from the services' OpenTelemetry metrics and logs.",
    tags=("platform", "otel"),
    panels=PANELS,
    variables=(WORKSPACE_VARIABLE, TOKEN_ATTRIBUTE_VARIABLE),
    time_from="now-6h",
)
