"""Superset dashboards as code: the saved metrics of the datasets and the charts of each dashboard.

``superset_bundle`` renders these, with a dataset per mart (its dbt columns) and per rollup table
(its DDL columns), into the import bundle the ``publish/superset_dashboards`` asset sends.
A chart names its dataset (``marts.<model>`` or ``rollups.<table>``) and saved metrics of it;
``metrics`` lists them per dataset (every dataset also gets ``count``). Layout: each dashboard is
rows of charts, widths in Superset's 12-column grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Metric:
    name: str
    expression: str  # ClickHouse SQL over the dataset's columns
    label: str = ""
    d3format: str | None = None


@dataclass(frozen=True)
class Chart:
    key: str  # stable: the chart's uuid derives from it
    title: str
    dataset: str  # marts.<model> | rollups.<table>
    viz: str  # "big_number_total" | "line" | "bar" | "table" | "funnel"
    metrics: tuple[str, ...]
    x_axis: str | None = None  # line/bar: the time (or category) column; table: the first groupby
    groupby: tuple[str, ...] = ()
    time_grain: str | None = "P1D"  # line/bar over a time column
    where: str = ""  # a SQL filter of the chart's query (an adhoc WHERE filter)
    x_sql: str = ""  # bar/line: the x-axis as a SQL expression (an adhoc column labelled x_axis)
    width: int = 6
    description: str = ""


@dataclass(frozen=True)
class SupersetDashboard:
    slug: str
    title: str
    description: str
    rows: tuple[tuple[Chart, ...], ...] = field(default_factory=tuple)

    @property
    def charts(self) -> list[Chart]:
        return [c for row in self.rows for c in row]


def _sum(column: str, label: str = "", d3format: str | None = None) -> Metric:
    return Metric(column, f"sum({column})", label or column.replace("_", " "), d3format)


# A percentile of a rollup's DDSketch state: quantilesDD(0.005, 0.5, 0.95, 0.99) is relative accuracy
# 0.005 and the levels p50, p95, p99 (array indexes 1, 2, 3). Merged through arrayReduce, not as
# quantilesDDMerge(...)(col): Superset's SQL parser (sqlglot) misreads a parametric aggregate inside
# another call or before a subscript.
def _quantile(name: str, column: str, index: int, label: str) -> Metric:
    merged = f"arrayReduce('quantilesDDMerge(0.005, 0.5, 0.95, 0.99)', groupArray({column}))"
    return Metric(name, f"arrayElement({merged}, {index})", label, ",.1f")


# mart_active_users_daily's row of the users of every workspace together.
ALL_WORKSPACES = "workspace_id = '__all__'"
USD = "$,.2f"
COUNT = ",d"  # whole numbers with thousands separators, never abbreviated
PERCENT = ".2%"

METRICS: dict[str, tuple[Metric, ...]] = {
    "marts.mart_active_users_daily": (
        _sum("dau", "daily active users"),
        _sum("wau", "weekly active users"),
        _sum("mau", "monthly active users"),
        Metric("avg_stickiness", "avg(stickiness)", "stickiness (DAU/MAU)", PERCENT),
    ),
    "marts.mart_signup_funnel_daily": (_sum("users", "users at the step"),),
    "marts.mart_orders_daily": (
        _sum("orders", d3format=COUNT),
        _sum("revenue_usd", "revenue (USD)", USD),
        _sum("refunds_usd", "refunds (USD)", USD),
        _sum("net_revenue_usd", "net revenue (USD)", USD),
    ),
    "marts.mart_llm_daily": (
        _sum("calls", "LLM calls", COUNT),
        _sum("input_tokens", "input tokens", COUNT),
        _sum("output_tokens", "output tokens", COUNT),
        _sum("cost_usd", "cost (USD)", USD),
        Metric("avg_p90_latency_ms", "avg(p90_latency_ms)", "p90 latency (ms, mean of models)", ",.1f"),
        Metric("call_success_rate", "sum(success_rate * calls) / sum(calls)", "success rate", PERCENT),
    ),
    "marts.mart_cost_daily": (_sum("cost_usd", "cost (USD)", USD), _sum("calls", "calls")),
    "marts.mart_slo_daily": (
        _sum("requests"),
        _sum("errors"),
        Metric("slo_success_rate", "1 - sum(errors) / sum(requests)", "success rate", PERCENT),
    ),
    "marts.mart_session_length_daily": (_sum("sessions", "sessions", COUNT),),
    "marts.mart_retention_l7_daily": (
        _sum("cohort_users", "signed-up users", COUNT),
        Metric("retention", "sum(retained_users) / sum(cohort_users)", "7-day retention", PERCENT),
    ),
    "marts.mart_breakdown_daily": (_sum("events", "events", COUNT), _sum("client_sessions", "sessions", COUNT)),
    "marts.mart_feature_adoption_weekly": (
        Metric("adoption", "sum(adopters) / sum(cohort_users)", "adoption (share of the cohort)", PERCENT),
    ),
    "marts.mart_paths_daily": (_sum("transitions", "transitions", COUNT), _sum("users", "users", COUNT)),
    "marts.mart_agent_health_daily": (
        _sum("runs", "runs", COUNT),
        Metric("run_failure_rate", "sum(failed_runs) / sum(runs)", "failed runs", PERCENT),
    ),
    "marts.mart_model_drift_daily": (
        Metric("refusal_rate", "sum(refusals) / sum(calls)", "refusal rate", PERCENT),
        Metric("avg_output_tokens", "sum(avg_output_tokens * calls) / sum(calls)", "mean output tokens", ",.1f"),
    ),
    "marts.mart_workspace_spend_daily": (_sum("cost_usd", "cost (USD)", USD),),
    "marts.mart_endpoint_latency_daily": (
        _sum("requests", "requests", COUNT),
        Metric("worst_p95_ms", "max(p95_ms)", "p95 latency (ms, slowest service version)", ",.1f"),
    ),
    "marts.mart_prompt_failures_daily": (_sum("failures", "failures", COUNT), _sum("calls", "calls", COUNT)),
    "rollups.product_events_1m": (
        _sum("events", "events"),
        Metric("users", "uniqCombined64Merge(users)", "distinct users"),
    ),
    "rollups.llm_calls_1m": (
        _sum("calls", "LLM calls"),
        _sum("errors", "errors"),
        _quantile("p50_latency_ms", "latency_ms", 1, "p50 latency (ms)"),
        _quantile("p95_latency_ms", "latency_ms", 2, "p95 latency (ms)"),
    ),
    "rollups.agent_events_1m": (
        _sum("events", "events"),
        _sum("failures", "failures"),
        Metric("cost_usd", "sum(toFloat64(cost_usd))", "cost (USD)", USD),
    ),
}

PRODUCT = SupersetDashboard(
    slug="platform-product",
    title="Product",
    description="Active users, the signup funnel, orders and revenue per day (marts), events per day (rollups).",
    rows=(
        (
            Chart("orders_total", "Orders", "marts.mart_orders_daily", "big_number_total", ("orders",), width=3),
            Chart(
                "revenue_total",
                "Net revenue (USD)",
                "marts.mart_orders_daily",
                "big_number_total",
                ("net_revenue_usd",),
                width=3,
            ),
            Chart(
                "dau_by_day",
                "Daily active users",
                "marts.mart_active_users_daily",
                "line",
                ("dau", "wau"),
                "day",
                where=ALL_WORKSPACES,  # the row of every workspace's users together (not a sum of workspaces)
            ),
        ),
        (
            Chart(
                "revenue_by_day",
                "Revenue per day (USD)",
                "marts.mart_orders_daily",
                "line",
                ("revenue_usd", "net_revenue_usd"),
                "day",
            ),
            Chart(
                "funnel_by_step",
                "Signup funnel: users per step",
                "marts.mart_signup_funnel_daily",
                "funnel",  # steps ordered by their users, the first step widest
                ("users",),
                "step_name",
                time_grain=None,
            ),
        ),
        (
            Chart(
                "events_by_day",
                "Product events per day (rollup)",
                "rollups.product_events_1m",
                "bar",
                ("events",),
                "minute",
            ),
            Chart(
                "orders_table",
                "Orders per day",
                "marts.mart_orders_daily",
                "table",
                ("orders", "revenue_usd", "refunds_usd", "net_revenue_usd"),
                "day",
            ),
        ),
        (
            Chart(
                "sessions_by_length",
                "Sessions by length",
                "marts.mart_session_length_daily",
                "bar",
                ("sessions",),
                "length",
                time_grain=None,
                # "1. 0-10s" .. "8. 60m+": the buckets in their order, not the labels' alphabetical one
                x_sql="concat(toString(bucket), '. ', bucket_label)",
            ),
            Chart(
                "retention_l7",
                "7-day retention by signup day",
                "marts.mart_retention_l7_daily",
                "line",
                ("retention",),
                "signup_date",
            ),
        ),
        (
            Chart(
                "events_by_country",
                "Events by country and device",
                "marts.mart_breakdown_daily",
                "bar",
                ("events",),
                "country",
                groupby=("device_type",),
                time_grain=None,
            ),
            Chart(
                "feature_adoption",
                "Feature adoption by signup cohort",
                "marts.mart_feature_adoption_weekly",
                "bar",
                ("adoption",),
                "feature",
                time_grain=None,
                where=ALL_WORKSPACES,
            ),
        ),
        (
            Chart(
                "top_paths",
                "Page transitions",
                "marts.mart_paths_daily",
                "table",
                ("transitions", "users"),
                "step",
                groupby=("next_step",),
                width=12,
            ),
        ),
    ),
)

AGENTS = SupersetDashboard(
    slug="platform-agents",
    title="Agents",
    description="LLM calls, tokens, cost, latency and the SLO per day (marts); calls and p95 latency (rollups).",
    rows=(
        (
            Chart("llm_calls_total", "LLM calls", "marts.mart_llm_daily", "big_number_total", ("calls",), width=3),
            Chart(
                "llm_cost_total", "LLM cost (USD)", "marts.mart_cost_daily", "big_number_total", ("cost_usd",), width=3
            ),
            Chart(
                "calls_by_model",
                "LLM calls per day by model",
                "marts.mart_llm_daily",
                "line",
                ("calls",),
                "day",
                groupby=("model",),
            ),
        ),
        (
            Chart(
                "cost_by_day",
                "Cost per day by model (USD)",
                "marts.mart_cost_daily",
                "bar",
                ("cost_usd",),
                "day",
                groupby=("model",),
            ),
            Chart(
                "slo_by_day", "SLO: success rate per day", "marts.mart_slo_daily", "line", ("slo_success_rate",), "day"
            ),
        ),
        (
            Chart(
                "rollup_latency",
                "p50 / p95 latency per day (rollup)",
                "rollups.llm_calls_1m",
                "line",
                ("p50_latency_ms", "p95_latency_ms"),
                "minute",
            ),
            Chart(
                "llm_table",
                "LLM calls, tokens and cost per day",
                "marts.mart_llm_daily",
                "table",
                ("calls", "input_tokens", "output_tokens", "cost_usd"),
                "day",
            ),
        ),
        (
            Chart(
                "agent_failures",
                "Failed agent runs per day by agent",
                "marts.mart_agent_health_daily",
                "line",
                ("run_failure_rate",),
                "day",
                groupby=("agent_name",),
            ),
            Chart(
                "model_refusals",
                "Refusal rate per day by model",
                "marts.mart_model_drift_daily",
                "line",
                ("refusal_rate",),
                "day",
                groupby=("model",),
                where=ALL_WORKSPACES,
            ),
        ),
        (
            Chart(
                "workspace_spend",
                "LLM spend per day by workspace (USD)",
                "marts.mart_workspace_spend_daily",
                "bar",
                ("cost_usd",),
                "day",
                groupby=("workspace_id",),
            ),
            Chart(
                "endpoint_p95",
                "p95 latency per day by route (ms)",
                "marts.mart_endpoint_latency_daily",
                "line",
                ("worst_p95_ms",),
                "day",
                groupby=("route",),
            ),
        ),
        (
            Chart(
                "failing_prompts",
                "Prompts with the most failures",
                "marts.mart_prompt_failures_daily",
                "table",
                ("failures", "calls"),
                "prompt_hash",
                width=12,
            ),
        ),
    ),
)

DASHBOARDS: tuple[SupersetDashboard, ...] = (PRODUCT, AGENTS)
