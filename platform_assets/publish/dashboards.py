"""Dashboards built with grafana-foundation-sdk from the panel specs, as Grafana's JSON model."""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import barchart, stat, table, timeseries
from grafana_foundation_sdk.builders.dashboard import Dashboard, QueryVariable, TimePicker
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DynamicConfigValue,
    GridPos,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

from platform_assets.publish import (
    panels_agent_health,
    panels_agents,
    panels_health,
    panels_insights,
    panels_otel,
    panels_product,
)
from platform_assets.publish.clickhouse_query import DATASOURCE_TYPE, DATASOURCE_UID, ClickHouseQuery, datasource_ref
from platform_assets.publish.datasource import DATASOURCE_NAME
from platform_assets.publish.panels import DashboardSpec, PanelSpec, TraceLink, VariableSpec

DASHBOARDS: tuple[DashboardSpec, ...] = (
    panels_product.DASHBOARD,
    panels_insights.DASHBOARD,
    panels_agents.DASHBOARD,
    panels_agent_health.DASHBOARD,
    panels_health.DASHBOARD,
    panels_otel.DASHBOARD,
)
ALL_VALUE = "__all__"  # the workspace variable's "All"; panels test for it (see panels.IN_WORKSPACE)
GRID_WIDTH = 24  # Grafana's grid has 24 columns

_PANEL_BUILDERS: dict[str, Any] = {
    "timeseries": timeseries.Panel,
    "table": table.Panel,
    "stat": stat.Panel,
    "barchart": barchart.Panel,
}


def _layout(specs: tuple[PanelSpec, ...]) -> list[GridPos]:
    """Left to right, wrapping at 24 columns: positions depend only on the order of the specs."""
    out, x, y, row_h = [], 0, 0, 0
    for spec in specs:
        if x + spec.width > GRID_WIDTH:
            x, y, row_h = 0, y + row_h, 0
        out.append(GridPos(h=spec.height, w=spec.width, x=x, y=y))
        x, row_h = x + spec.width, max(row_h, spec.height)
    return out


# The ClickHouse plugin's trace format (its Format enum: 0 time series, 1 table, 2 logs, 3 traces).
_TRACE_FORMAT = 3


def _trace_link(link: TraceLink) -> dict[str, Any]:
    """An internal data link: Explore on the ClickHouse datasource, the trace query in trace format
    (Grafana substitutes ${__value.raw} with the clicked cell's value)."""
    return {
        "title": link.title,
        "url": "",
        "internal": {
            "datasourceUid": DATASOURCE_UID,
            "datasourceName": DATASOURCE_NAME,
            "query": {
                "refId": "A",
                "datasource": {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID},
                "editorType": "sql",
                "rawSql": link.sql,
                "format": _TRACE_FORMAT,
                "queryType": "traces",
            },
        },
    }


def _panel(spec: PanelSpec, panel_id: int, pos: GridPos) -> Any:
    panel = (
        _PANEL_BUILDERS[spec.kind]()
        .id(panel_id)
        .title(spec.title)
        .datasource(datasource_ref())
        .grid_pos(pos)
        .with_target(ClickHouseQuery(spec.sql).format(spec.format))
    )
    if spec.description:
        panel = panel.description(spec.description)
    if spec.unit:
        panel = panel.unit(spec.unit)
    if spec.trace_link:
        panel = panel.override_by_name(
            spec.trace_link.field, [DynamicConfigValue(id_val="links", value=[_trace_link(spec.trace_link)])]
        )
    return panel


def _variable(spec: VariableSpec) -> QueryVariable:
    return (
        QueryVariable(spec.name)
        .label(spec.label)
        .datasource(datasource_ref())
        .query(spec.sql)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .include_all(True)
        .all_value(ALL_VALUE)
        .current(VariableOption(selected=True, text="All", value="$__all"))
    )


def build_dashboard(spec: DashboardSpec) -> dict[str, Any]:
    """The dashboard's JSON model (a plain dict, keys as Grafana stores them)."""
    board = (
        Dashboard(spec.title)
        .uid(spec.uid)
        .description(spec.description)
        .tags(list(spec.tags))
        .timezone("utc")  # the marts' days are UTC days
        .time(spec.time_from, "now")
        .refresh("5m")  # the rollups are live; the histogram marts are rebuilt every 5 minutes
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .timepicker(TimePicker().refresh_intervals(["1m", "5m", "15m", "1h"]))
        .readonly()  # changed in the repository, not in the UI
    )
    for variable in spec.variables:
        board = board.with_variable(_variable(variable))
    for i, (panel, pos) in enumerate(zip(spec.panels, _layout(spec.panels), strict=True), start=1):
        board = board.with_panel(_panel(panel, i, pos))
    model = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    # The SDK leaves these empty or null; Grafana's own JSON always has the lists.
    model["templating"].setdefault("list", [])
    model["annotations"].setdefault("list", [])
    for panel in model["panels"]:
        if panel.get("options") is None:
            panel.pop("options", None)
    return model


def all_dashboards() -> dict[str, dict[str, Any]]:
    """uid -> dashboard JSON, for every dashboard."""
    return {spec.uid: build_dashboard(spec) for spec in DASHBOARDS}


def spec_by_uid(uid: str) -> DashboardSpec:
    return next(spec for spec in DASHBOARDS if spec.uid == uid)
