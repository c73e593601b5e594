"""What the domains' automation shares: whether the sensors start running, the partition facts they
decide on (when a UTC day closed, the latest materialization of an asset's day), and the retry
policy of steps that talk to servers."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    Backoff,
    DagsterInstance,
    DefaultSensorStatus,
    EventLogRecord,
    Failure,
    Jitter,
    RetryPolicy,
)

AUTOMATION_ENV = "PLATFORM_AUTOMATION"
# Steps that talk to servers (ClickHouse, S3, Grafana, dbt over ClickHouse): 10 s, 20 s, 40 s apart,
# jittered, so a restarting server is waited for and many runs do not retry in step.
SERVER_RETRY = RetryPolicy(max_retries=3, delay=10, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)


def final(exc: Exception) -> Failure:
    """``exc`` as a failure the retry policy does not retry: a setting, a file or a request the
    server refuses stays wrong, so a retry would only fail alike, minutes later."""
    return Failure(description=str(exc), allow_retries=False)


def automation_on(env: Mapping[str, str] | None = None) -> bool:
    """PLATFORM_AUTOMATION=on/off; unset: on in docker and prod, off on the embedded stack (local),
    where the demo and the tests start every run themselves (docs/operations.md)."""
    e = os.environ if env is None else env
    value = e.get(AUTOMATION_ENV, "").strip().lower()
    if value in ("on", "1", "true", "yes"):
        return True
    if value in ("off", "0", "false", "no"):
        return False
    if value:
        raise ValueError(f"{AUTOMATION_ENV}={value!r} is not one of on, off")
    return e.get("PLATFORM_ENV", "local") != "local"


def automation_status() -> DefaultSensorStatus:
    """The default status of an automation sensor, as ``automation_on`` decides."""
    return DefaultSensorStatus.RUNNING if automation_on() else DefaultSensorStatus.STOPPED


def day_closed_at(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


def latest_materialization(instance: DagsterInstance, key: AssetKey, day: date) -> EventLogRecord | None:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[day.isoformat()]), limit=1
    ).records
    return records[0] if records else None
