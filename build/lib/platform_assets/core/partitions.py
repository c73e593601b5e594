"""Daily partitions of the transforms (UTC days)."""

from __future__ import annotations

import os
from datetime import date

from dagster import DailyPartitionsDefinition

# First day a backfill can reach. Raw tables keep 90 days (TTL), so earlier days are empty
# unless the raw data was restored; set TRANSFORM_START_DATE to change it.
DEFAULT_START = "2026-01-01"


def start_date() -> str:
    raw = os.environ.get("TRANSFORM_START_DATE", DEFAULT_START)
    try:
        date.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"TRANSFORM_START_DATE={raw!r} is not a YYYY-MM-DD date") from exc
    return raw


# end_offset=1: today is a partition too (the 5-minute and hourly schedules refresh it).
daily_partitions = DailyPartitionsDefinition(start_date=start_date(), end_offset=1, timezone="UTC")
