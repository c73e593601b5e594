"""CDC figures for the demo summary: a short workload, then counts on both sides and lag."""

from __future__ import annotations

from typing import Any

from platform_assets.cdc.monitor import read_lag, table_states, wait_caught_up
from platform_assets.cdc.resources import CdcResource, configured_tables
from platform_assets.core.resources import ClickHouseResource, PostgresResource
from platform_assets.synthetic.app import Workload


def cdc_summary(
    postgres: PostgresResource,
    clickhouse: ClickHouseResource,
    cdc: CdcResource,
    seed: int = 1,
    rate: float = 200.0,
    seconds: float = 5.0,
) -> dict[str, Any]:
    with postgres.connect(autocommit=True) as conn:
        record = Workload(conn, seed=seed, rate=rate).run(duration=seconds, rate=rate)
    caught_up_s = wait_caught_up(postgres, clickhouse, cdc.replica_database, 60.0)
    reading = read_lag(postgres, clickhouse, cdc.replica_database)
    states = table_states(postgres, clickhouse, cdc.replica_database, configured_tables())
    return {
        "replica_database": cdc.replica_database,
        "workload": record.to_json(),
        "caught_up_after_workload_s": caught_up_s,
        "lag_bytes": reading.lag_bytes,
        "lag_seconds": reading.lag_seconds,
        "heartbeat_age_s": reading.heartbeat_age_s,
        "slot_wal_status": reading.wal_status,
        "errors": reading.errors,
        "tables": {
            t: {
                "source_rows": s.source_rows,
                "replica_rows": s.replica_rows,
                "in_sync": s.replica_rows == s.source_rows,
            }
            for t, s in states.items()
        },
    }
