"""Runs every panel's and variable's SQL against ClickHouse, with the macros expanded as Grafana
would (last 30 days, workspace = All), as the read-only Grafana user when it is configured.

A panel fails on a ClickHouse error, or on an empty result while the table it reads has rows in
the range (its ``rows_filter``): that is a panel bug, not a quiet day. A panel split at the recent
window counts both halves: the mart's rows before the window (``rows_filter``) and the rollup's
rows inside it (``recent_rows_filter``), so a range in the recent window expects rows where the
rollup has some, a range before it where the mart has some.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagster import AssetCheckResult, AssetChecksDefinition, AssetKey, MetadataValue, asset_check

from platform_assets.core.resources import ClickHouseResource
from platform_assets.publish.dashboards import ALL_VALUE, DASHBOARDS
from platform_assets.publish.macros import Expansion, TimeRange, expand
from platform_assets.publish.panels import DashboardSpec
from platform_assets.publish.resources import GrafanaResource

CHECK_DAYS = 30


@dataclass(frozen=True)
class QueryResult:
    dashboard: str
    key: str
    title: str
    rows: int | None
    source_rows: int | None  # rows of the panel's tables in its range: the mart's plus the rollup's
    error: str | None = None
    recent_rows: int | None = None  # of those, the rollup's (panels split at the recent window)

    @property
    def ok(self) -> bool:
        return self.error is None and not (self.rows == 0 and (self.source_rows or 0) > 0)

    @property
    def problem(self) -> str:
        if self.error:
            return self.error
        return f"no rows although its table has {self.source_rows} in the range" if not self.ok else ""


def _count(client: Any, sql: str) -> int:
    return len(client.query(sql).result_rows)


def run_dashboard_queries(client: Any, spec: DashboardSpec, time_range: TimeRange) -> list[QueryResult]:
    """One result per variable (key ``$name``) and per panel, in dashboard order."""
    exp = Expansion(time_range, {v.name: ALL_VALUE for v in spec.variables})
    out: list[QueryResult] = []
    for var in spec.variables:
        try:
            out.append(QueryResult(spec.uid, f"${var.name}", var.label, _count(client, expand(var.sql, exp)), None))
        except Exception as exc:  # noqa: BLE001 - ClickHouse and macro errors alike
            out.append(QueryResult(spec.uid, f"${var.name}", var.label, None, None, _error(exc)))
    for panel in spec.panels:
        try:
            rows = _count(client, expand(panel.sql, exp))
        except Exception as exc:  # noqa: BLE001
            out.append(QueryResult(spec.uid, panel.key, panel.title, None, None, _error(exc)))
            continue
        source_rows: int | None
        recent_rows: int | None
        try:
            source_rows = _rows_in_range(client, panel.source, panel.rows_filter, exp)
            recent_rows = None
            if panel.recent_source:
                recent_rows = _rows_in_range(client, panel.recent_source, panel.recent_rows_filter, exp)
                source_rows += recent_rows
        except Exception:  # noqa: BLE001 - the panel ran; an unknown source count only skips the emptiness rule
            source_rows = recent_rows = None
        out.append(QueryResult(spec.uid, panel.key, panel.title, rows, source_rows, recent_rows=recent_rows))
    return out


def _rows_in_range(client: Any, table: str, rows_filter: str, exp: Expansion) -> int:
    where = expand(rows_filter, exp)
    return int(client.query(f"SELECT count() FROM {table} WHERE {where}").result_rows[0][0])


def _error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"


def dashboard_key(uid: str) -> AssetKey:
    return AssetKey(["grafana", "dashboards", uid])


def check_metadata(results: list[QueryResult], time_range: TimeRange) -> dict[str, Any]:
    lines = ["| panel | rows | table rows in range | of which rollup | problem |", "|---|---|---|---|---|"]
    lines += [
        f"| {r.key} | {r.rows} | {r.source_rows} | {'' if r.recent_rows is None else r.recent_rows} | {r.problem} |"
        for r in results
    ]
    return {
        "time_range": f"{time_range.start:%Y-%m-%d %H:%M} .. {time_range.end:%Y-%m-%d %H:%M} UTC",
        "rows_per_panel": MetadataValue.json({r.key: r.rows for r in results}),
        "panels": MetadataValue.md("\n".join(lines)),
        "failed": MetadataValue.json({r.key: r.problem for r in results if not r.ok}),
    }


def build_panel_check(spec: DashboardSpec, days: int = CHECK_DAYS) -> AssetChecksDefinition:
    @asset_check(
        asset=dashboard_key(spec.uid),
        name="panels_return_rows",
        description=f"Every panel and variable of '{spec.title}' runs on ClickHouse over the last {days} days "
        "(workspace = All) and returns rows where its table has some.",
    )
    def _check(context, clickhouse: ClickHouseResource, grafana: GrafanaResource) -> AssetCheckResult:
        time_range = TimeRange.last(days)
        with grafana.reader(clickhouse).client(context) as ch:
            results = run_dashboard_queries(ch, spec, time_range)
        return AssetCheckResult(passed=all(r.ok for r in results), metadata=check_metadata(results, time_range))

    return _check


def build_panel_checks() -> list[AssetChecksDefinition]:
    return [build_panel_check(spec) for spec in DASHBOARDS]
