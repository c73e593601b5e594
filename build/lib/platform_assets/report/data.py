"""What the daily report shows, read from the marts (SQL in ``sql/``): figures for the day and
the day before, 30-day trends, and the day's per-model latency, cost and tool panels."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

SQL_DIR = Path(__file__).parent / "sql"
TREND_DAYS = 30  # the trends cover the 30 days ending on the report's day (as MAU does)

# The marts the report reads: the asset's dependencies.
MARTS = (
    "mart_active_users_daily",
    "mart_llm_daily",
    "mart_trace_errors_daily",
    "mart_slo_daily",
    "mart_tool_reliability_hourly",
    "mart_orders_daily",
    "mart_mrr_daily",
    "mart_agent_metrics_1m",
    "mart_cost_daily",
)

# Headline figures: column of daily_kpis.sql -> (label, kind); kind picks formatting and change.
KPIS: dict[str, tuple[str, str]] = {
    "dau": ("Daily active users", "count"),
    "wau": ("Weekly active users", "count"),
    "mau": ("Monthly active users", "count"),
    "llm_calls": ("LLM calls", "count"),
    "llm_cost_usd": ("LLM cost", "usd"),
    "call_error_rate": ("Error rate per call (spans)", "rate"),
    "trace_error_rate": ("Error rate per trace", "rate"),
    "agent_runs": ("Agent runs", "count"),
    "agent_run_success_rate": ("Agent run success", "rate"),
    "tool_calls": ("Tool calls", "count"),
    "tool_success_rate": ("Tool success rate", "rate"),
    "orders": ("Orders", "count"),
    "net_revenue_usd": ("Net revenue", "usd"),
    "mrr_usd": ("MRR (end of day)", "usd"),
    "active_subscriptions": ("Active subscriptions", "count"),
}
LOWER_IS_BETTER = frozenset({"call_error_rate", "trace_error_rate"})  # a rise is bad news


@cache
def sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text()


def _number(value: Any) -> float | int | None:
    """ClickHouse Decimals and NaNs as plain Python numbers (None stays None)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


@dataclass
class ReportData:
    day: date
    daily: list[dict[str, Any]]  # one dict per day of the trend window, oldest first
    latency: list[tuple[datetime, str, int, float]] = field(default_factory=list)  # minute, model, calls, p95
    cost_by_model: list[tuple[date, str, float, int]] = field(default_factory=list)  # day, model, cost, calls
    tools: list[tuple[str, int, int, int, int]] = field(default_factory=list)  # tool, calls, ok, failed, timeouts

    @property
    def today(self) -> dict[str, Any]:
        return self.daily[-1]

    @property
    def previous(self) -> dict[str, Any]:
        return self.daily[-2] if len(self.daily) > 1 else {}

    def kpis(self) -> dict[str, float | int | None]:
        return {name: self.today.get(name) for name in KPIS}

    @property
    def has_data(self) -> bool:
        """Any headline figure that is neither missing nor zero on the day."""
        return any(v not in (None, 0) for v in self.kpis().values())


def load_report_data(client: Any, day: date, trend_days: int = TREND_DAYS) -> ReportData:
    """Every query the report needs for ``day``, through a clickhouse-connect client."""
    first = day - timedelta(days=trend_days - 1)
    window = {"first": first, "last": day}
    result = client.query(sql("daily_kpis"), parameters=window)
    daily = [{col: _number(v) for col, v in zip(result.column_names, row, strict=True)} for row in result.result_rows]
    return ReportData(
        day=day,
        daily=daily,
        latency=[
            (r[0], r[1], int(r[2]), float(r[3]))
            for r in client.query(sql("llm_latency"), parameters={"day": day}).result_rows
        ],
        cost_by_model=[
            (r[0], r[1], float(r[2]), int(r[3]))
            for r in client.query(sql("cost_by_model"), parameters=window).result_rows
        ],
        tools=[
            (r[0], int(r[1]), int(r[2]), int(r[3]), int(r[4]))
            for r in client.query(sql("tools"), parameters={"day": day}).result_rows
        ],
    )
