"""CDC figures for the demo summary: a short workload, then counts on both sides and lag."""

from __future__ import annotations

import time
from typing import Any

from platform_assets.cdc import replica, source
from platform_assets.cdc.monitor import read_lag, table_states
from platform_assets.cdc.resources import CdcResource, configured_tables
from platform_assets.cdc.simulator import Workload
from platform_assets.resources import ClickHouseResource, PostgresResource


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
        beat_ms = int(source.write_heartbeat(conn).timestamp() * 1000)
    started = time.monotonic()
    with clickhouse.client() as ch:
        while (replica.heartbeat_seen_ms(ch, cdc.replica_database) or 0) < beat_ms:
            if time.monotonic() - started > 60:
                break
            time.sleep(0.05)
    caught_up_s = round(time.monotonic() - started, 3)
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
