"""What a panel is, independent of Grafana's JSON: its SQL, how Grafana shows it, and what it reads.

``source`` and ``rows_filter`` let the panel check tell an empty result that is expected (the
table has no rows in the range) from one that is a bug (rows exist, the panel shows none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from platform_assets.publish.clickhouse_query import Format

PanelKind = Literal["timeseries", "table", "stat", "barchart"]

# Workspace filter for marts with a workspace_id column; the variable's "All" value is '__all__'
# (the same key mart_active_users_daily uses for its all-workspaces row). :sqlstring quotes and escapes.
WORKSPACE = "${workspace:sqlstring}"
IN_WORKSPACE = f"({WORKSPACE} = '__all__' OR workspace_id = {WORKSPACE})"


@dataclass(frozen=True)
class TraceLink:
    """A data link on the column ``field`` (trace ids): opens Explore's trace view on the ClickHouse
    datasource with ``sql``, in which ``${__value.raw}`` stands for the clicked trace id."""

    field: str
    title: str
    sql: str


@dataclass(frozen=True)
class PanelSpec:
    key: str  # stable within its dashboard: gives the panel id its place and the check its name
    title: str
    kind: PanelKind
    sql: str
    source: str  # the table the panel reads (database.table)
    rows_filter: str = "1"  # the rows of `source` the panel covers with workspace = All (macros allowed)
    format: Format = "table"
    unit: str | None = None
    description: str = ""
    width: int = 12
    height: int = 8
    trace_link: TraceLink | None = None


@dataclass(frozen=True)
class VariableSpec:
    name: str
    label: str
    sql: str


@dataclass(frozen=True)
class DashboardSpec:
    uid: str
    title: str
    description: str
    tags: tuple[str, ...]
    panels: tuple[PanelSpec, ...]
    variables: tuple[VariableSpec, ...] = ()
    time_from: str = "now-30d"  # daily marts: a month is the useful default window
