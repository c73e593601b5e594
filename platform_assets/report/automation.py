"""The daily report writes itself: sensor `report_after_marts` requests yesterday's page (and any of
the last LOOKBACK_DAYS days without one) once every mart it reads was built after the day closed,
and again when such a mart's day is rebuilt after the page was written.

On by default in docker and prod, off on the embedded stack (PLATFORM_AUTOMATION, docs/operations.md).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta

from dagster import (
    AssetKey,
    DagsterInstance,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from platform_assets.core.automation import automation_status, day_closed_at, latest_materialization
from platform_assets.core.partitions import daily_partitions
from platform_assets.report.assets import REPORT_KEY, daily_report
from platform_assets.report.data import MARTS

LOOKBACK_DAYS = 3
SENSOR_INTERVAL_S = 300
MART_KEYS = [AssetKey(["marts", m]) for m in MARTS]


def report_due(instance: DagsterInstance, day: date) -> tuple[str | None, list[str]]:
    """(run key, or None when nothing to do) and the marts the day's page still waits for."""
    closed = day_closed_at(day).timestamp()
    built = {key: latest_materialization(instance, key, day) for key in MART_KEYS}
    waiting = [k.to_user_string() for k, r in built.items() if r is None or r.timestamp < closed]
    if waiting:
        return None, waiting
    newest = max(r.storage_id for r in built.values() if r is not None)
    page = latest_materialization(instance, REPORT_KEY, day)
    if page is not None and page.storage_id > newest:
        return None, []
    state = ",".join(f"{k.to_user_string()}@{r.storage_id}" for k, r in built.items() if r is not None)
    return f"report:{day.isoformat()}:{hashlib.sha256(state.encode()).hexdigest()[:16]}", []


@sensor(
    name="report_after_marts",
    target=[daily_report],
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=automation_status(),
    description="Writes each closed day's report page once the marts it reads were built after the day closed.",
)
def report_after_marts(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    today = datetime.now(UTC).date()
    first = daily_partitions.start.date()
    requests, waits = [], []
    for day in (today - timedelta(days=n) for n in range(LOOKBACK_DAYS, 0, -1)):
        if day < first:
            continue
        key, waiting = report_due(context.instance, day)
        if key:
            requests.append(RunRequest(run_key=key, partition_key=day.isoformat(), tags={"platform/domain": "report"}))
        elif waiting:
            waits.append(f"{day} waits for {', '.join(waiting)}")
    if requests:
        return SensorResult(run_requests=requests)
    return SkipReason("; ".join(waits) or f"the report of each of the last {LOOKBACK_DAYS} closed days is written")
