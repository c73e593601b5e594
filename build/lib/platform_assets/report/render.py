"""The daily report as one self-contained HTML page: headline figures with their change from
the day before, and the panels as PNG images embedded as base64 data URIs (one file per day
that opens anywhere, from file:// or an attachment, with nothing beside it to keep in step).

Each figure also carries its exact value in a ``data-value`` attribute, for machines and tests.
"""

from __future__ import annotations

import base64
import html
import os
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from platform_assets.core.paths import state_dir
from platform_assets.report.charts import Chart, render_charts
from platform_assets.report.data import KPIS, LOWER_IS_BETTER, ReportData, load_report_data

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }
h1 { font-size: 1.5rem; } .muted { color: #666; font-size: .85rem; }
.kpis { display: grid; grid-template-columns: repeat(auto-fill, minmax(11rem, 1fr)); gap: .6rem; }
.kpi { border: 1px solid #ddd; border-radius: 6px; padding: .6rem; }
.kpi .label { font-size: .8rem; color: #555; } .kpi .value { font-size: 1.4rem; font-weight: 600; }
.good { color: #1a7f37; } .bad { color: #b42318; } .flat { color: #666; }
figure { margin: 1.5rem 0; } figure img { max-width: 100%; }
.nodata { padding: 2rem; border: 2px dashed #bbb; border-radius: 8px; text-align: center; }
"""


def report_dir() -> Path:
    """Where pages go: $REPORT_DIR, else reports/ below the state directory (.platform)."""
    return Path(os.environ["REPORT_DIR"]).resolve() if os.environ.get("REPORT_DIR") else state_dir() / "reports"


def page_path(day: date, root: Path | None = None) -> Path:
    return (root or report_dir()) / day.isoformat() / "index.html"


def format_value(value: float | int | None, kind: str) -> str:
    if value is None:
        return "\u2013"  # an en dash: no figure
    if kind == "rate":
        return f"{value:.2%}"
    if kind == "usd":
        return f"${value:,.2f}"
    return f"{value:,.0f}"


def format_change(name: str, value: float | int | None, previous: float | int | None, kind: str) -> tuple[str, str]:
    """(text, css class) of the change from the day before; rates change in percentage points.
    The class says whether the change is good news (more users, fewer errors), not its sign."""
    if value is None or previous is None:
        return "no figure the day before" if value is not None else "", "flat"
    delta = value - previous
    better = -delta if name in LOWER_IS_BETTER else delta
    css = "good" if better > 0 else "bad" if better < 0 else "flat"
    sign = "+" if delta > 0 else ""
    if kind == "rate":
        return f"{sign}{delta * 100:.2f} pp vs previous day", css
    text = f"{sign}{format_value(delta, kind)}".replace("+-", "-").replace("$-", "-$")
    if previous:
        text += f" ({sign}{delta / abs(previous):.1%})"
    return f"{text} vs previous day", css


def _kpi_html(name: str, data: ReportData) -> str:
    label, kind = KPIS[name]
    value, previous = data.today.get(name), data.previous.get(name)
    change, css = format_change(name, value, previous, kind)
    raw = "" if value is None else repr(value)
    return (
        f'<div class="kpi" data-kpi="{name}" data-value="{raw}">'
        f'<div class="label">{html.escape(label)}</div>'
        f'<div class="value">{format_value(value, kind)}</div>'
        f'<div class="change {css}">{html.escape(change)}</div></div>'
    )


def _chart_html(chart: Chart) -> str:
    b64 = base64.b64encode(chart.png).decode("ascii")
    title = html.escape(chart.title)
    return f'<figure data-chart="{chart.name}"><img alt="{title}" src="data:image/png;base64,{b64}"></figure>'


def render_html(data: ReportData, charts: list[Chart], generated_at: datetime | None = None) -> str:
    day = data.day.isoformat()
    stamp = (generated_at or datetime.now(UTC)).isoformat(timespec="seconds")
    if data.has_data:
        body = (
            f'<h2>Headline figures for {day}</h2><div class="kpis">'
            + "".join(_kpi_html(name, data) for name in KPIS)
            + "</div><h2>Trends</h2>"
            + "".join(_chart_html(c) for c in charts)
        )
    else:
        body = (
            f'<div class="nodata" id="no-data"><h2>No data for {day}</h2>'
            "<p>The marts have no activity, orders or subscriptions on this UTC day. "
            "Materialize the dbt models for this day's partition, then this report again.</p></div>"
        )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Platform report {day}</title>'
        f"<style>{STYLE}</style></head><body>"
        f'<h1>Platform daily report: {day} (UTC)</h1><p class="muted">Generated {stamp} from the ClickHouse '
        f"marts.</p>{body}</body></html>"
    )


@dataclass(frozen=True)
class Report:
    day: date
    path: Path
    has_data: bool
    kpis: dict[str, float | int | None]
    charts: list[str]
    bytes: int
    seconds: float


def write_report(client: Any, day: date, root: Path | None = None) -> Report:
    """Reads the marts for ``day`` through a clickhouse-connect client and writes its page."""
    started = time.monotonic()
    data = load_report_data(client, day)
    charts = render_charts(data) if data.has_data else []
    page = render_html(data, charts)
    path = page_path(day, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)  # atomic: a reader never sees half a page
    return Report(
        day=day,
        path=path,
        has_data=data.has_data,
        kpis=data.kpis(),
        charts=[c.name for c in charts],
        bytes=len(page.encode("utf-8")),
        seconds=round(time.monotonic() - started, 3),
    )
