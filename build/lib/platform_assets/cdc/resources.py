"""CDC settings: which tables replicate, where to, as whom, and the lag thresholds."""

from __future__ import annotations

import os
import re
from typing import ClassVar

from dagster import ConfigurableResource
from pydantic import Field

from platform_assets.cdc.lag import LagThresholds
from platform_assets.cdc.source import HEARTBEAT_TABLE
from platform_assets.core.settings import Setting, wired

DEFAULT_TABLES = "users,orders,subscriptions,events"
TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class CdcConfigError(ValueError):
    """CDC configuration is invalid; raised at definitions load time."""


def configured_tables(raw: str | None = None) -> list[str]:
    """Tables to replicate, from ``CDC_TABLES`` (comma-separated), plus the heartbeat table.

    Read at load time: each table becomes an asset, so the graph follows the configuration.
    """
    raw = os.environ.get("CDC_TABLES", DEFAULT_TABLES) if raw is None else raw
    tables = [t.strip() for t in raw.split(",") if t.strip()]
    bad = [t for t in tables if not TABLE_NAME.match(t)]
    if bad:
        raise CdcConfigError(f"CDC_TABLES: {bad} are not plain lower-case Postgres table names (schema public)")
    if not tables:
        raise CdcConfigError("CDC_TABLES is empty: name at least one table to replicate")
    return list(dict.fromkeys([*tables, HEARTBEAT_TABLE]))


class CdcResource(ConfigurableResource):
    SETTINGS: ClassVar[tuple[Setting, ...]] = (
        Setting("replication_password", "CDC_REPLICATION_PASSWORD"),
        Setting("source_address", "CDC_SOURCE_ADDRESS", required=False, secret=False),
    )

    replica_database: str = Field(default="pg_repl", description="ClickHouse database (MaterializedPostgreSQL)")
    replication_role: str = Field(default="cdc_replicator", description="Postgres role ClickHouse connects as")
    replication_password: str
    source_address: str = Field(
        default="",
        description="host:port at which ClickHouse reaches Postgres; empty = the postgres resource's",
    )
    max_lag_bytes: int = 64 * 1024 * 1024  # 64 MiB of WAL waiting: minutes behind at our rates
    max_lag_seconds: float = 120.0  # two heartbeat intervals
    stalled_after_ticks: int = 3  # sensor ticks (30 s each) with WAL waiting and no progress
    expected_change_rate: float = 2000.0  # changes/s used to size the parity tolerance

    def thresholds(self) -> LagThresholds:
        return LagThresholds(self.max_lag_bytes, self.max_lag_seconds, self.stalled_after_ticks)


def build_cdc_resource() -> CdcResource:
    return wired(CdcResource)
