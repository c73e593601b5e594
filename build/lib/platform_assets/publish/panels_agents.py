"""Agent telemetry dashboard: latency, errors per call and per trace, tokens, cost, tools, SLO, throughput.

Per-minute percentiles cannot be merged exactly; over a longer bucket the panels show the
calls-weighted mean of the per-minute percentiles and say so in the description.

Time series over LLM calls read two resolutions: mart_agent_metrics_1m for ranges up to two
days, mart_agent_metrics_1h (the hours' own exact percentiles) beyond. Both halves are in one
UNION ALL; the half whose range condition is false reads no part (ClickHouse folds the constant
condition), so a 30-day view scans hours, not 1.8 M minute rows (docs/benchmarks.md).
"""

from __future__ import annotations

from platform_assets.publish.panels import IN_WORKSPACE, DashboardSpec, PanelSpec, VariableSpec

WORKSPACE_VARIABLE = VariableSpec(
    name="workspace",
    label="Workspace",
    # The hour mart (a tenth of the minute rows); the hour holding the range's start counts too.
    sql="SELECT DISTINCT workspace_id FROM marts.mart_agent_metrics_1h "
    "WHERE hour >= toStartOfHour($__fromTime) AND hour <= $__toTime ORDER BY workspace_id",
)

_MINUTES = "$__timeFilter(minute)"
_DAY = "$__dateFilter(day)"
_WEIGHTED = (
    "calls-weighted mean of the per-minute percentile over each bucket (per-hour percentile for ranges over two days)"
)
MINUTES_UP_TO_S = 2 * 86_400  # longest range read at minute resolution
_SHORT_RANGE = f"dateDiff('second', $__fromTime, $__toTime) <= {MINUTES_UP_TO_S}"


def _two_resolutions(select: str, group: str) -> str:
    """``SELECT time, <select> ... GROUP BY time, <group>`` from the minute mart for short
    ranges and from the hour mart otherwise; the two marts share their column names."""
    halves = [
        f"""SELECT $__timeInterval({col}) AS time, {select}
FROM marts.{table}
WHERE {cond} AND $__timeFilter({col}) AND {IN_WORKSPACE}
GROUP BY time, {group}"""
        for col, table, cond in (
            ("minute", "mart_agent_metrics_1m", _SHORT_RANGE),
            ("hour", "mart_agent_metrics_1h", f"NOT {_SHORT_RANGE}"),
        )
    ]
    return f"SELECT * FROM (\n{halves[0]}\nUNION ALL\n{halves[1]}\n)\nORDER BY time"


def _latency(q: str) -> PanelSpec:
    return PanelSpec(
        key=f"latency_{q}",
        title=f"{q} latency by model",
        kind="timeseries",
        format="time_series",
        sql=_two_resolutions(f"model, sum({q}_latency_ms * calls) / sum(calls) AS {q}_ms", "model"),
        source="marts.mart_agent_metrics_1m",
        rows_filter=_MINUTES,
        unit="ms",
        description=f"LLM call spans: {_WEIGHTED}.",
        width=8,
    )


def _error_rate(per: str, errors: str, total: str) -> PanelSpec:
    return PanelSpec(
        key=f"error_rate_per_{per}",
        title=f"Error rate per {per} by service",
        kind="timeseries",
        format="time_series",
        sql=f"""SELECT toDateTime(day) AS time, service, sum({errors}) / sum({total}) AS error_rate
FROM marts.mart_trace_errors_daily
WHERE {_DAY} AND {IN_WORKSPACE}
GROUP BY time, service
ORDER BY time""",
        source="marts.mart_trace_errors_daily",
        rows_filter=_DAY,
        unit="percentunit",
        description="A trace errs when any of its spans errs; it counts for the service of its root span."
        if per == "trace"
        else "Share of spans with an error status.",
    )


PANELS = (
    _latency("p50"),
    _latency("p95"),
    _latency("p99"),
    _error_rate("call", "error_spans", "spans"),
    _error_rate("trace", "error_traces", "traces"),
    PanelSpec(
        key="tokens_by_model",
        title="Tokens by model",
        kind="timeseries",
        format="time_series",
        sql=_two_resolutions("model, sum(input_tokens + output_tokens) AS tokens", "model"),
        source="marts.mart_agent_metrics_1m",
        rows_filter=_MINUTES,
        unit="short",
    ),
    PanelSpec(
        key="cost_by_model_workspace",
        title="Cost by model and workspace (USD)",
        kind="table",
        # mart_llm_daily (one row per day, workspace, model, provider), not the per-user
        # mart_cost_daily: 30 days of the latter are millions of rows (0.8 s, docs/benchmarks.md).
        sql=f"""SELECT workspace_id, model, sum(calls) AS calls, sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd
FROM marts.mart_llm_daily
WHERE {_DAY} AND {IN_WORKSPACE}
GROUP BY workspace_id, model
ORDER BY cost_usd DESC""",
        source="marts.mart_llm_daily",
        rows_filter=_DAY,
        description="Cost the agents report with each llm_call event (tokens times their unit prices).",
    ),
    PanelSpec(
        key="tool_reliability",
        title="Tool reliability",
        kind="table",
        sql=f"""SELECT tool_name, sum(calls) AS tool_calls, sum(successes) / sum(calls) AS success_rate,
       sum(failures) AS failed_calls, sum(timeouts) AS timed_out_calls,
       sum(p95_latency_ms * calls) / sum(calls) AS p95_latency_ms
FROM marts.mart_tool_reliability_hourly
WHERE $__timeFilter(hour) AND {IN_WORKSPACE}
GROUP BY tool_name
ORDER BY success_rate""",
        source="marts.mart_tool_reliability_hourly",
        rows_filter="$__timeFilter(hour)",
        description=f"p95: {_WEIGHTED.replace('minute', 'hour')}.",
    ),
    PanelSpec(
        key="slo_burn",
        title="SLO burn rate (99% of agent runs succeed)",
        kind="timeseries",
        format="time_series",
        sql=f"""SELECT toDateTime(day) AS time, (sum(errors) / sum(requests)) / (1 - 0.99) AS burn_rate
FROM marts.mart_slo_daily
WHERE {_DAY} AND {IN_WORKSPACE}
GROUP BY time
ORDER BY time""",
        source="marts.mart_slo_daily",
        rows_filter=_DAY,
        description="1 spends the error budget exactly; above 1 it burns faster than the target allows.",
    ),
    PanelSpec(
        key="error_budget",
        title="Error budget remaining (runs)",
        kind="stat",
        sql=f"""SELECT sum(budget_remaining) AS budget_remaining
FROM marts.mart_slo_daily
WHERE {_DAY} AND {IN_WORKSPACE}""",
        source="marts.mart_slo_daily",
        rows_filter=_DAY,
        width=6,
    ),
    PanelSpec(
        key="throughput",
        title="Throughput: LLM calls by service",
        kind="timeseries",
        format="time_series",
        sql=_two_resolutions("service, sum(calls) AS calls", "service"),
        source="marts.mart_agent_metrics_1m",
        rows_filter=_MINUTES,
        description="LLM calls per time bucket (the bucket grows with the time range).",
        width=18,
    ),
)

DASHBOARD = DashboardSpec(
    uid="platform-agent-telemetry",
    title="Agent telemetry",
    description="LLM latency, errors, tokens, cost, tool reliability, SLO burn and throughput from the marts.",
    tags=("platform", "agents"),
    panels=PANELS,
    variables=(WORKSPACE_VARIABLE,),
    time_from="now-7d",
)
