"""What an alert rule is, independent of Grafana's JSON: query A's SQL, the condition on its last
value, how long it must hold, and what Grafana does when the query returns nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from platform_assets.core.sql import load

Op = Literal["gt", "lt"]


def alert_query(name: str) -> str:
    """Query A of a rule, from ``sql/alerts/<name>.sql``: the file's text without its final
    newline is what Grafana stores and shows (and docker/grafana/provisioning carries)."""
    return load(__file__, f"alerts/{name}.sql").rstrip("\n")


@dataclass(frozen=True)
class AlertSpec:
    uid: str
    title: str
    sql: str
    op: Op
    threshold: float
    for_: str
    summary: str
    lookback_s: int = 600  # time range handed to query A (its macros), seconds before now
    no_data_state: Literal["Alerting", "NoData", "OK"] = "NoData"
    labels: dict[str, str] = field(default_factory=dict)
