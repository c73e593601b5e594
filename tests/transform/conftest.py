"""Transform tests: the session stack with the schema and CDC replica in place, and dbt.

History data sits on past days (HISTORY_END is two days ago, UTC) so that what other test
modules write "now" on the shared stack never reaches the days these tests assert on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from dagster import DagsterInstance, materialize

from platform_assets.cdc.assets import app_schema, build_replica_asset, source_replication
from platform_assets.cdc.monitor import wait_caught_up
from platform_assets.cdc.resources import configured_tables
from platform_assets.ingest.assets import kafka_topics
from platform_assets.ops.assets import clickhouse_schema

HISTORY_DAYS = 35
HISTORY_END = datetime.now(UTC).date() - timedelta(days=2)  # last history day (inclusive)
HISTORY_START = HISTORY_END - timedelta(days=HISTORY_DAYS - 1)


@pytest.fixture(scope="session")
def platform_ready(stack, clickhouse, postgres, kafka, cdc) -> dict[str, Any]:
    """ClickHouse schema, topics and the CDC replica materialized, as from the UI."""
    res = {"clickhouse": clickhouse, "postgres": postgres, "kafka": kafka, "cdc": cdc}
    result = materialize(
        [kafka_topics, clickhouse_schema, app_schema, source_replication, build_replica_asset(configured_tables())],
        resources=res,
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    return res


def window(start: date, end_inclusive: date) -> dict[str, str]:
    """dbt vars for the days start..end_inclusive (max_date is exclusive)."""
    return {"min_date": start.isoformat(), "max_date": (end_inclusive + timedelta(days=1)).isoformat()}


@pytest.fixture(scope="session")
def history_window() -> tuple[date, date]:
    """(first day, last day) of the history the transform tests load and assert on."""
    return HISTORY_START, HISTORY_END


@pytest.fixture(scope="session")
def replica_caught_up(platform_ready) -> Callable[[], None]:
    """Call it after writing to Postgres: returns once the CDC replica has every commit."""
    res = platform_ready
    return lambda: wait_caught_up(res["postgres"], res["clickhouse"], res["cdc"].replica_database, 60.0)


@pytest.fixture(scope="session")
def dbt_window() -> Callable[[date, date], dict[str, str]]:
    return window
