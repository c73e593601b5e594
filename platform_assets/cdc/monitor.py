"""Reads the figures the sensor and checks judge: slot lag, heartbeats, counts, columns."""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg

from platform_assets.cdc import replica, source
from platform_assets.cdc.lag import LagReading
from platform_assets.core.access import MONITOR
from platform_assets.core.resources import ClickHouseResource, PostgresResource


def read_lag(postgres: PostgresResource, clickhouse: ClickHouseResource, database: str, context=None) -> LagReading:
    """Never raises for an unreachable server: the reason goes into ``errors``."""
    now_ms = int(time.time() * 1000)
    errors: list[str] = []
    slot = None
    source_beat = None
    try:
        with postgres.connect(context) as conn:
            name = source.find_slot(conn)
            slot = source.slot_status(conn, name) if name else None
            row = conn.execute(
                "SELECT floor(extract(epoch FROM max(beat_at)) * 1000)::bigint FROM cdc_heartbeat"
            ).fetchone()
            source_beat = row[0] if row else None
    except psycopg.Error as exc:
        errors.append(f"source unreachable: {str(exc).strip().splitlines()[0]}")
    replica_beat = None
    try:
        with clickhouse.as_role(MONITOR).client(context) as client:
            replica_beat = replica.heartbeat_seen_ms(client, database)
    except Exception as exc:  # noqa: BLE001 - any client/transport error is a reading, not a crash
        errors.append(f"clickhouse unreachable: {str(exc).strip().splitlines()[0][:200]}")
    return LagReading(
        measured_at_ms=now_ms,
        lag_bytes=slot.lag_bytes if slot else None,
        slot_active=slot.active if slot else None,
        wal_status=slot.wal_status if slot else None,
        confirmed_flush_lsn=slot.confirmed_flush_lsn if slot else None,
        source_heartbeat_ms=source_beat,
        replica_heartbeat_ms=replica_beat,
        errors=errors,
    )


@dataclass(frozen=True)
class TableState:
    table: str
    source_rows: int
    replica_rows: int | None
    source_columns: list[str]
    replica_columns: list[str]

    @property
    def only_in_source(self) -> list[str]:
        return [c for c in self.source_columns if c not in self.replica_columns]

    @property
    def only_in_replica(self) -> list[str]:
        return [c for c in self.replica_columns if c not in self.source_columns]

    @property
    def drifted(self) -> bool:
        return self.replica_rows is None or bool(self.only_in_source or self.only_in_replica)

    def describe_drift(self) -> str:
        if self.replica_rows is None:
            return f"{self.table}: missing in the replica"
        parts = []
        if self.only_in_source:
            parts.append(f"column(s) {self.only_in_source} on the source only")
        if self.only_in_replica:
            parts.append(f"column(s) {self.only_in_replica} in the replica only")
        return f"{self.table}: " + "; ".join(parts)


def table_states(
    postgres: PostgresResource, clickhouse: ClickHouseResource, database: str, tables: list[str], context=None
) -> dict[str, TableState]:
    with postgres.connect(context) as conn:
        counts = source.source_counts(conn, tables)
        src_cols = source.source_columns(conn, tables)
    with clickhouse.as_role(MONITOR).client(context) as client:
        live = replica.live_counts(client, database, tables)
        rep_cols = replica.replica_columns(client, database, tables)
    return {t: TableState(t, counts[t], live[t], src_cols[t], rep_cols[t]) for t in tables}


def wait_caught_up(
    postgres: PostgresResource, clickhouse: ClickHouseResource, database: str = "pg_repl", timeout: float = 120.0
) -> float:
    """Writes a CDC heartbeat on the source and waits until the replica shows it: every commit
    before it has arrived. Returns the seconds it took; raises TimeoutError after ``timeout``."""
    with postgres.connect() as conn:
        beat_ms = int(source.write_heartbeat(conn).timestamp() * 1000)
        conn.commit()
    with clickhouse.as_role(MONITOR).client() as client:
        return replica.wait_for_heartbeat(client, database, beat_ms, timeout)
