"""The report's panels as PNG images, drawn with matplotlib's object API on the Agg canvas.

No pyplot: nothing global, no display needed, safe in a Dagster run process or a thread.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter, DayLocator
from matplotlib.figure import Figure

from platform_assets.report.data import ReportData

SIZE = (8.0, 3.4)  # inches; at DPI 100 an 800 px wide image fits the page column
DPI = 100
MAX_MODELS = 6  # more stacked series are unreadable; the rest are summed as "other"


@dataclass(frozen=True)
class Chart:
    name: str  # file-safe identifier
    title: str
    png: bytes


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)  # attaches the Agg canvas: rendering needs no display
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def _figure(title: str, rows: int = 1) -> tuple[Figure, list]:
    fig = Figure(figsize=(SIZE[0], SIZE[1] * rows))
    axes = [fig.add_subplot(rows, 1, i + 1) for i in range(rows)]
    axes[0].set_title(title, fontsize=11, loc="left")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig, axes


def _series(data: ReportData, column: str) -> tuple[list[date], list[float]]:
    """Days where the column has a value, and those values."""
    pairs = [(row["day"], float(row[column])) for row in data.daily if row.get(column) is not None]
    return [d for d, _ in pairs], [v for _, v in pairs]


def _date_axis(ax, data: ReportData) -> None:
    """The whole trend window on the x axis, whatever days have values: a tick every 5 days."""
    first, last = data.daily[0]["day"], data.daily[-1]["day"]
    ax.set_xlim(first - timedelta(hours=15), last + timedelta(hours=15))
    ax.xaxis.set_major_locator(DayLocator(interval=5))
    ax.xaxis.set_major_formatter(DateFormatter("%m-%d"))
    ax.tick_params(axis="x", labelsize=8, rotation=45)


def active_users(data: ReportData) -> Chart | None:
    if not any(_series(data, c)[0] for c in ("dau", "wau", "mau")):
        return None
    title = "Active users, 30 days"
    fig, (ax,) = _figure(title)
    for column in ("dau", "wau", "mau"):
        days, values = _series(data, column)
        ax.plot(days, values, marker=".", label=column.upper())
    ax.set_ylabel("users")
    ax.legend(fontsize=8)
    _date_axis(ax, data)
    return Chart("active_users", title, _png(fig))


def error_rates(data: ReportData) -> Chart | None:
    if not _series(data, "spans")[0]:
        return None
    title = "Error rate per call vs per trace, 30 days"
    fig, (ax,) = _figure(title)
    for column, label in (("call_error_rate", "per call (span)"), ("trace_error_rate", "per trace")):
        days, values = _series(data, column)
        ax.plot(days, [v * 100 for v in values], marker=".", label=label)
    ax.set_ylabel("% errors")
    ax.legend(fontsize=8)
    _date_axis(ax, data)
    return Chart("error_rates", title, _png(fig))


def revenue(data: ReportData) -> Chart | None:
    order_days, net = _series(data, "net_revenue_usd")
    mrr_days, mrr = _series(data, "mrr_usd")
    if not order_days and not mrr_days:
        return None
    title = "Orders, net revenue and MRR, 30 days"
    fig, (top, bottom) = _figure(title, rows=2)
    top.bar(order_days, net, color="tab:green", label="net revenue (USD)")
    top.set_ylabel("net revenue, USD")
    counts = top.twinx()
    o_days, orders = _series(data, "orders")
    counts.plot(o_days, orders, color="tab:blue", marker=".", label="orders")
    counts.set_ylabel("orders")
    top.legend(loc="upper left", fontsize=8)
    counts.legend(loc="upper right", fontsize=8)
    bottom.plot(mrr_days, mrr, color="tab:purple", marker=".")
    bottom.set_ylabel("MRR, USD")
    for ax in (top, counts, bottom):  # the twin axis too, or it autoscales the shared x again
        _date_axis(ax, data)
    fig.tight_layout()
    return Chart("revenue", title, _png(fig))


def cost_by_model(data: ReportData) -> Chart | None:
    if not data.cost_by_model:
        return None
    totals: dict[str, float] = defaultdict(float)
    for _, model, cost, _ in data.cost_by_model:
        totals[model] += cost
    top = sorted(totals, key=lambda m: -totals[m])[:MAX_MODELS]
    per: dict[str, dict[date, float]] = defaultdict(lambda: defaultdict(float))
    for day, model, cost, _ in data.cost_by_model:
        per[model if model in top else "other"][day] += cost
    days = [row["day"] for row in data.daily]
    title = "LLM cost by model, 30 days"
    fig, (ax,) = _figure(title)
    bottom = [0.0] * len(days)
    for model in [*top, "other"] if "other" in per else top:
        values = [per[model].get(d, 0.0) for d in days]
        ax.bar(days, values, bottom=bottom, label=model or "(unknown)")
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("USD")
    ax.legend(fontsize=8)
    _date_axis(ax, data)
    return Chart("cost_by_model", title, _png(fig))


def llm_latency(data: ReportData) -> Chart | None:
    if not data.latency:
        return None
    title = f"LLM p95 latency by model, per minute on {data.day.isoformat()}"
    fig, (ax,) = _figure(title)
    by_model: dict[str, list[tuple]] = defaultdict(list)
    for minute, model, _, p95 in data.latency:
        by_model[model].append((minute, p95))
    for model, points in sorted(by_model.items()):
        ax.scatter([p[0] for p in points], [p[1] for p in points], s=10, label=model or "(unknown)")
    ax.set_ylabel("p95 ms")
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M"))
    ax.legend(fontsize=8)
    return Chart("llm_latency", title, _png(fig))


def tool_reliability(data: ReportData) -> Chart | None:
    if not data.tools:
        return None
    title = f"Tool calls by outcome on {data.day.isoformat()}"
    fig, (ax,) = _figure(title)
    names = [t[0] for t in data.tools]
    outcomes = {
        "success": ([t[2] for t in data.tools], "tab:green"),
        "failure": ([t[3] for t in data.tools], "tab:red"),
        "timeout": ([t[4] for t in data.tools], "tab:orange"),
    }
    left = [0] * len(names)
    for label, (values, color) in outcomes.items():
        ax.barh(names, values, left=left, label=label, color=color)
        left = [a + b for a, b in zip(left, values, strict=True)]
    for y, tool in enumerate(data.tools):
        ax.annotate(f"{tool[2] / tool[1]:.1%} ok", (left[y], y), xytext=(4, 0), textcoords="offset points", va="center")
    ax.set_xlabel("calls")
    ax.set_xlim(0, max(left) * 1.25)  # room for the "ok" labels
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
    return Chart("tool_reliability", title, _png(fig))


PANELS: tuple[Callable[[ReportData], Chart | None], ...] = (
    active_users,
    llm_latency,
    error_rates,
    cost_by_model,
    revenue,
    tool_reliability,
)


def render_charts(data: ReportData) -> list[Chart]:
    """Every panel that has data, in page order."""
    return [chart for panel in PANELS if (chart := panel(data)) is not None]
