"""Pure lag arithmetic for the replication sensor and checks (unit-tested without servers)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class LagThresholds:
    max_lag_bytes: int = 64 * 1024 * 1024
    max_lag_seconds: float = 120.0
    # Ticks the slot's confirmed LSN may stand still while WAL is waiting before it is "stalled".
    stalled_after_ticks: int = 3


@dataclass(frozen=True)
class LagReading:
    """One measurement. ``None`` means the figure could not be read (and why is in ``errors``)."""

    measured_at_ms: int
    lag_bytes: int | None = None
    slot_active: bool | None = None
    wal_status: str | None = None
    confirmed_flush_lsn: str | None = None
    source_heartbeat_ms: int | None = None
    replica_heartbeat_ms: int | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def heartbeat_age_s(self) -> float | None:
        """Now minus the newest heartbeat visible in ClickHouse."""
        if self.replica_heartbeat_ms is None:
            return None
        return max(0.0, (self.measured_at_ms - self.replica_heartbeat_ms) / 1000)

    @property
    def lag_seconds(self) -> float | None:
        """0 when ClickHouse has the source's newest heartbeat; otherwise how old its newest is."""
        if self.replica_heartbeat_ms is None or self.source_heartbeat_ms is None:
            return None
        if self.replica_heartbeat_ms >= self.source_heartbeat_ms:
            return 0.0
        return self.heartbeat_age_s

    def figures(self) -> dict[str, Any]:
        out = asdict(self)
        out["heartbeat_age_s"] = self.heartbeat_age_s
        out["lag_seconds"] = self.lag_seconds
        return out


@dataclass(frozen=True)
class Verdict:
    flagged: bool
    reasons: list[str]
    stalled_ticks: int


def evaluate(reading: LagReading, previous_lsn: str | None, stalled_ticks: int, t: LagThresholds) -> Verdict:
    """Flag a lagging or stuck replica. MaterializedPostgreSQL polls its slot rather than holding
    a streaming connection, so ``active`` is false between polls; a stuck replica shows as a
    confirmed LSN that stops moving while WAL waits for it."""
    reasons = list(reading.errors)
    if reading.lag_bytes is not None and reading.lag_bytes > t.max_lag_bytes:
        reasons.append(f"slot lag {reading.lag_bytes} bytes > {t.max_lag_bytes}")
    if reading.lag_seconds is not None and reading.lag_seconds > t.max_lag_seconds:
        reasons.append(f"heartbeat lag {reading.lag_seconds:.1f} s > {t.max_lag_seconds:.0f} s")
    if reading.wal_status in ("lost", "unreserved"):
        reasons.append(f"slot wal_status is {reading.wal_status}")
    moving = reading.confirmed_flush_lsn != previous_lsn
    waiting = (reading.lag_bytes or 0) > 0
    ticks = 0 if moving or not waiting else stalled_ticks + 1
    if ticks >= t.stalled_after_ticks:
        reasons.append(f"slot inactive: confirmed LSN {reading.confirmed_flush_lsn} unchanged for {ticks} ticks")
    if reading.lag_bytes is None and not reading.errors:
        reasons.append("replication slot not found on the source")
    return Verdict(flagged=bool(reasons), reasons=reasons, stalled_ticks=ticks)


def parity_tolerance(lag_seconds: float | None, change_rate_per_s: float, floor: int = 0) -> int:
    """Rows the replica may trail the source by: what arrives on the source during the lag."""
    if lag_seconds is None:
        return floor
    return max(floor, int(change_rate_per_s * (lag_seconds + 1)))
