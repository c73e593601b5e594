"""Agent telemetry dashboard: latency, errors per call and per trace, tokens, cost, tools, SLO, throughput.

The panels over LLM call spans (latency, error rate, tokens, cost and throughput by model or
service) read two halves in one UNION ALL, split at the recent window (panels.RECENT_START:
yesterday and today, UTC):
- the recent part of the range from the streaming rollup rollups.llm_calls_1m, with true
  percentiles of each time bucket (quantilesDDMerge of the minutes' DDSketch states, any width);
- the part before it from the marts: mart_agent_metrics_1m for ranges up to two days,
  mart_agent_metrics_1h (the hours' own exact percentiles) beyond. Per-minute percentiles cannot
  be merged exactly, so there a bucket shows the calls-weighted mean of the per-minute (per-hour)
  percentiles, and the descriptions say so.
Each half tests constants (the range's bounds and now()); ClickHouse folds them and a half whose
condition is false reads no part, so a 30-day view scans hours, not 1.8 M minute rows
(docs/benchmarks.md), and a view of the last hours reads the rollup alone. An outer query merges
the halves per bucket, so a bucket that straddles the split is one point, not two.

The rollup's agent_name is the span's own attribute (the marts take the trace's root-span agent,
which an insert-time view cannot see), so these panels group by model or service, never by agent.
"""

from __future__ import annotations

from dataclasses import dataclass

from platform_assets.publish.panels import (
    IN_WORKSPACE,
    RANGE_BEFORE_RECENT,
    RANGE_IN_RECENT,
    RECENT_START,
    DashboardSpec,
    PanelSpec,
    VariableSpec,
    before_recent,
    recent_minutes,
)

ROLLUP = "rollups.llm_calls_1m"
HOUR_ROLLUP = "rollups.llm_calls_1h"  # the same calls per hour (012), for ranges over two days
MINUTE_MART = "marts.mart_agent_metrics_1m"
HOUR_MART = "marts.mart_agent_metrics_1h"
PRICES = "staging.model_prices"

WORKSPACE_VARIABLE = VariableSpec(
    name="workspace",
    label="Workspace",
    # The rollup for the recent window, the hour mart (a tenth of the minute rows) before it; the
    # hour holding the range's start counts too.
    sql=f"""SELECT DISTINCT workspace_id FROM (
    SELECT workspace_id FROM {ROLLUP} WHERE {RANGE_IN_RECENT} AND {recent_minutes()}
    UNION ALL
    SELECT workspace_id FROM {HOUR_MART}
    WHERE {RANGE_BEFORE_RECENT} AND hour >= toStartOfHour($__fromTime) AND hour <= $__toTime AND hour < {RECENT_START}
)
ORDER BY workspace_id""",
)

_DAY = "$__dateFilter(day)"
_SPLIT = (
    "Today and yesterday (UTC) from the streaming rollup: each bucket's own percentile (DDSketch, within 0.5 %). "
    "Earlier days from the marts: the calls-weighted mean of the per-minute percentile over each bucket "
    "(per-hour percentile for ranges over two days)."
)
_GROUPED = "Grouped by model or service: the rollup's agent name is the span's own, not the trace's agent."
_HALVES = "Today and yesterday (UTC) from the streaming rollup (counted as they land), earlier days from the marts."
MINUTES_UP_TO_S = 2 * 86_400  # longest range read at minute resolution (before the recent window)
_SHORT_RANGE = f"dateDiff('second', $__fromTime, $__toTime) <= {MINUTES_UP_TO_S}"
_QUANTILES = "quantilesDDMerge(0.005, 0.5, 0.95, 0.99)(latency_ms)"  # [p50, p95, p99], as 010_rollups.sql
_QUANTILE_INDEX = {"p50": 1, "p95": 2, "p99": 3}
# Cost of the rollup's minutes: the calls' reported cost plus the tokens of the calls without one at
# the model_prices row in effect on the minute's day (the latest effective_from on or before it), as
# stg_kafka__spans prices a call; a model without a row costs 0 (join_use_nulls is 0: defaults).
_ROLLUP_COST = (
    "toFloat64(sum(r.reported_cost_usd) + sum(toDecimal128(r.unreported_input_tokens * p.usd_per_input_token "
    "+ r.unreported_cached_input_tokens * p.usd_per_cached_input_token "
    "+ r.unreported_output_tokens * p.usd_per_output_token, 18)))"
)

_PRICED_COLUMNS = [
    "reported_cost_usd",
    "unreported_input_tokens",
    "unreported_cached_input_tokens",
    "unreported_output_tokens",
]


@dataclass(frozen=True)
class Measure:
    """A column of a call panel: what each half computes per bucket (``recent`` over the rollup,
    ``mart`` over either mart; same name ``inner``) and how the outer query merges the halves'
    rows of one bucket (``outer``, ending in its alias)."""

    inner: str
    recent: str
    mart: str
    outer: str


_CALLS = Measure("n_calls", "sum(calls)", "sum(calls)", "sum(n_calls) AS calls")


def _latency_measure(q: str) -> Measure:
    return Measure(
        f"{q}_inner",
        f"{_QUANTILES}[{_QUANTILE_INDEX[q]}]",
        f"sum({q}_latency_ms * calls) / sum(calls)",
        f"sum({q}_inner * n_calls) / sum(n_calls) AS {q}_ms",
    )


def _recent_part(col: str, table: str, cond: str, series: str, columns: str, priced: bool) -> str:
    """One resolution of the recent half: the minute rollup for ranges up to two days, the hour
    rollup (a sixtieth of the states to merge) for longer ones; ``cond`` is constant per query."""
    rows = f"{RANGE_IN_RECENT} AND {cond} AND {recent_minutes(col)}"
    if not priced:
        return f"""SELECT $__timeInterval({col}) AS time, {series} AS series, {columns}
FROM {table}
WHERE {rows} AND {IN_WORKSPACE}
GROUP BY time, series"""
    picked = ", ".join(dict.fromkeys([col, "model", series, "calls", *_PRICED_COLUMNS]))
    return f"""SELECT $__timeInterval(r.{col}) AS time, r.{series} AS series, {columns}
FROM (SELECT {picked}, toDate({col}) AS day FROM {table}
      WHERE {rows} AND {IN_WORKSPACE}) AS r
ASOF LEFT JOIN (SELECT model, effective_from, usd_per_input_token, usd_per_cached_input_token,
                       usd_per_output_token FROM {PRICES} WHERE {RANGE_IN_RECENT}) AS p
    ON p.model = r.model AND r.day >= p.effective_from
GROUP BY time, series"""


def split_at_recent(series: str, measures: tuple[Measure, ...], priced: bool = False) -> str:
    """``time, series, <measures>`` per $__timeInterval bucket: the rollup for the range's part in
    the recent window, the minute mart (ranges up to two days) or the hour mart (longer) for the
    part before it, merged per bucket. ``priced`` joins the rollup's rows to their model's price
    (for the cost measure, which reads ``r.`` and ``p.`` columns)."""
    uniq = list({m.inner: m for m in (_CALLS, *measures)}.values())  # calls once, for the merge

    def cols(pick: str) -> str:
        return ", ".join(f"{getattr(m, pick)} AS {m.inner}" for m in uniq)

    recent = [
        _recent_part(col, table, cond, series, cols("recent"), priced)
        for col, table, cond in (("minute", ROLLUP, _SHORT_RANGE), ("hour", HOUR_ROLLUP, f"NOT {_SHORT_RANGE}"))
    ]
    marts = [
        f"""SELECT $__timeInterval({col}) AS time, {series} AS series, {cols("mart")}
FROM {table}
WHERE {RANGE_BEFORE_RECENT} AND {cond} AND {before_recent(col)} AND {IN_WORKSPACE}
GROUP BY time, series"""
        for col, table, cond in (
            ("minute", MINUTE_MART, _SHORT_RANGE),
            ("hour", HOUR_MART, f"NOT {_SHORT_RANGE}"),
        )
    ]
    outer = ", ".join(m.outer for m in measures)
    union = "\nUNION ALL\n".join([*recent, *marts])
    return f"""SELECT time, series AS {series}, {outer}
FROM (
{union}
)
GROUP BY time, series
ORDER BY time"""


def _call_panel(key: str, title: str, series: str, measures: tuple[Measure, ...], **kw) -> PanelSpec:
    return PanelSpec(
        key=key,
        title=title,
        kind="timeseries",
        format="time_series",
        sql=split_at_recent(series, measures, priced=kw.pop("priced", False)),
        source=MINUTE_MART,
        rows_filter=before_recent("minute"),
        recent_source=ROLLUP,
        recent_rows_filter=recent_minutes(),
        **kw,
    )


def _latency(q: str) -> PanelSpec:
    return _call_panel(
        f"latency_{q}",
        f"{q} latency by model",
        "model",
        (_latency_measure(q),),
        unit="ms",
        description=f"LLM call spans. {_SPLIT}",
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
    _call_panel(
        "call_error_rate",
        "LLM call error rate by model",
        "model",
        (Measure("n_errors", "sum(errors)", "sum(errors)", "sum(n_errors) / sum(n_calls) AS error_rate"),),
        unit="percentunit",
        description=f"Share of LLM call spans with an error, per time bucket. {_HALVES} {_GROUPED}",
    ),
    _call_panel(
        "tokens_by_model",
        "Tokens by model",
        "model",
        (
            Measure(
                "n_tokens",
                "sum(input_tokens + output_tokens)",
                "sum(input_tokens + output_tokens)",
                "sum(n_tokens) AS tokens",
            ),
        ),
        unit="short",
        description=f"Input and output tokens of LLM call spans per time bucket. {_HALVES}",
    ),
    _call_panel(
        "cost_by_model",
        "LLM call cost by model (USD)",
        "model",
        (Measure("n_cost", _ROLLUP_COST, "toFloat64(sum(toDecimal128(cost_usd, 18)))", "sum(n_cost) AS cost_usd"),),
        priced=True,
        unit="currencyUSD",
        description="Each call's reported cost, else its tokens at the model_prices row in effect on its day "
        f"(cache reads at the cached-input price), as staging prices a span. {_HALVES}",
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
        description="p95: calls-weighted mean of the per-hour percentile over the range. Tool calls are agent "
        "events; the mart is rebuilt hourly (the 5-minute job no longer builds it), and the rollup of agent "
        "events has no timeouts, so the table stays on the mart.",
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
    _call_panel(
        "throughput",
        "Throughput: LLM calls by service",
        "service",
        (_CALLS,),
        description=f"LLM calls per time bucket (the bucket grows with the time range). {_HALVES} {_GROUPED}",
        width=18,
    ),
)

DASHBOARD = DashboardSpec(
    uid="platform-agent-telemetry",
    title="Agent telemetry",
    description="LLM latency, errors, tokens, cost, tool reliability, SLO burn and throughput: today and "
    "yesterday from the streaming rollups, earlier days from the marts.",
    tags=("platform", "agents"),
    panels=PANELS,
    variables=(WORKSPACE_VARIABLE,),
    time_from="now-7d",
)
