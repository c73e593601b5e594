"""Evaluate an alert rule the way Grafana does, against ClickHouse: run query A, reduce each series
to its last value (B), compare it with the threshold (C).

Query A answers in table format: every string column is a label and the last numeric column the
value, one row per series (as the ClickHouse datasource turns a table into series for alerting).
``for`` (how long the condition must hold before the rule fires) is Grafana's state machine and is
not modelled: ``holds`` is the condition at this evaluation. An empty result is Grafana's NoData,
which the rule's no_data_state maps to Alerting, NoData or OK.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from platform_assets.publish.alert_spec import AlertSpec


@dataclass(frozen=True)
class Series:
    labels: tuple[tuple[str, str], ...]
    value: float | None  # None: NULL or NaN, which Grafana's reduce drops (no value: NoData)
    holds: bool

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


def condition(spec: AlertSpec, value: float | None) -> bool:
    if value is None:
        return False
    return value > spec.threshold if spec.op == "gt" else value < spec.threshold


def series(spec: AlertSpec, column_names: list[str], rows: list[list[Any]] | list[tuple[Any, ...]]) -> list[Series]:
    """Rows of query A as series; raises ValueError when the query has no numeric column."""
    out = []
    for row in rows:
        labels = tuple((c, str(v)) for c, v in zip(column_names, row, strict=True) if isinstance(v, str))
        numbers = [v for v in row if (isinstance(v, int | float | Decimal) and not isinstance(v, bool)) or v is None]
        if not numbers:
            raise ValueError(f"alert {spec.uid}: query A returned no numeric column ({column_names})")
        raw = numbers[-1]
        value = None if raw is None or (isinstance(raw, float) and math.isnan(raw)) else float(raw)
        out.append(Series(labels, value, condition(spec, value)))
    return out


def evaluate(spec: AlertSpec, client: Any) -> list[Series]:
    """The rule's series now; ``client`` is a clickhouse-connect client."""
    result = client.query(spec.sql)
    return series(spec, list(result.column_names), result.result_rows)


def state(spec: AlertSpec, found: list[Series]) -> str:
    """Alerting (condition holds for some series, or no data mapped to Alerting), NoData, or OK."""
    if not found:
        return {"Alerting": "Alerting", "NoData": "NoData", "OK": "OK"}[spec.no_data_state]
    return "Alerting" if any(s.holds for s in found) else "OK"
