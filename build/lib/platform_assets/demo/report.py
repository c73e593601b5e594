"""Demo support for the report: write one day's page and describe it for the summary."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from platform_assets.core.resources import ClickHouseResource
from platform_assets.report.render import write_report


def report_summary(clickhouse: ClickHouseResource, day: date | None = None, root: Path | None = None) -> dict[str, Any]:
    """Writes the page for ``day`` (default: yesterday, the last whole UTC day) and returns
    where it is, whether it had data, its figures and its charts."""
    day = day or datetime.now(UTC).date() - timedelta(days=1)
    with clickhouse.client() as client:
        report = write_report(client, day, root)
    return {
        "day": day.isoformat(),
        "path": str(report.path),
        "url": report.path.as_uri(),
        "has_data": report.has_data,
        "kpis": report.kpis,
        "charts": report.charts,
        "bytes": report.bytes,
        "seconds": report.seconds,
    }
