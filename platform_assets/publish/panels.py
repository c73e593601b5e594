"""What a panel is, independent of Grafana's JSON: its SQL, how Grafana shows it, and what it reads.

``source`` and ``rows_filter`` let the panel check tell an empty result that is expected (the
table has no rows in the range) from one that is a bug (rows exist, the panel shows none). A
panel that reads the streaming rollups for the recent window and the marts before it names both:
``recent_source`` and ``recent_rows_filter`` are the rollup's half.
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

# The recent window, yesterday and today (UTC days), is read from the streaming rollups
# (clickhouse_ddl/010_rollups.sql, filled at insert time), every earlier minute from the marts: the
# daily run at 00:30 builds yesterday's marts, so the marts always hold every day before
# yesterday, with a day of slack. now('UTC'): the day starts at UTC midnight whatever the server's
# time zone. The split is a whole day, so every Grafana bucket width that divides a day keeps each
# bucket in one half; a bucket that straddles it is merged again by the panel's outer query.
RECENT_START = "(toStartOfDay(now('UTC')) - INTERVAL 1 DAY)"
# Constant per query (the range's bounds and now()): ClickHouse folds them, and the half whose
# condition is false reads no part.
RANGE_IN_RECENT = f"$__toTime >= {RECENT_START}"
RANGE_BEFORE_RECENT = f"$__fromTime < {RECENT_START}"


def recent_minutes(column: str = "minute") -> str:
    """The range's rows of a rollup: inside the range and the recent window."""
    return f"$__timeFilter({column}) AND {column} >= {RECENT_START}"


def before_recent(column: str) -> str:
    """The range's rows of a mart: inside the range and before the recent window."""
    return f"$__timeFilter({column}) AND {column} < {RECENT_START}"


# A $__timeInterval bucket's length in minutes. The plugin has no macro for it, so it is what
# $__timeInterval takes off a bucket start minus 1 s (that instant falls one bucket earlier).
BUCKET_MINUTES = """(
    SELECT dateDiff('second', $__timeInterval(before), probe) / 60
    FROM (SELECT $__timeInterval(instant) AS probe, probe - 1 AS before
          FROM (SELECT toDateTime('2030-01-01 00:00:00', 'UTC') AS instant))
)"""


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
    recent_source: str | None = None  # the rollup read for the recent window, when `source` serves the rest
    recent_rows_filter: str = "1"  # the rows of `recent_source` the panel covers (as rows_filter)
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
