"""Consumer-lag arithmetic for the ingestion sensor (pure; unit-tested without servers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PartitionLag:
    partition: int
    high_watermark: int
    committed: int | None  # None: the group has committed nothing on this partition yet
    low_watermark: int = 0

    @property
    def lag(self) -> int:
        start = self.committed if self.committed is not None else self.low_watermark
        return max(0, self.high_watermark - start)


@dataclass(frozen=True)
class TopicLag:
    topic: str
    group: str
    partitions: list[PartitionLag]
    consumer: dict[str, Any] = field(default_factory=dict)  # from system.kafka_consumers
    error: str | None = None

    @property
    def total(self) -> int:
        return sum(p.lag for p in self.partitions)

    def committed_map(self) -> dict[str, int | None]:
        return {str(p.partition): p.committed for p in self.partitions}


@dataclass(frozen=True)
class LagVerdict:
    flagged: bool
    reasons: list[str]
    stuck_ticks: int
    # Partitions with messages waiting that no consumer held while the topic was stuck: the
    # consumers have lost their assignment and the sensor restarts them (ingest/heal.py).
    orphans: list[int] = field(default_factory=list)


def evaluate(
    lag: TopicLag, previous: dict[str, int | None] | None, stuck_ticks: int, max_lag: int, stuck_after_ticks: int
) -> LagVerdict:
    """Flag lag past ``max_lag`` messages, a consumer error, or a consumer that stopped moving
    (messages waiting and no committed offset advanced for ``stuck_after_ticks`` ticks)."""
    reasons = []
    orphans: list[int] = []
    if lag.error:
        reasons.append(f"{lag.topic}: {lag.error}")
    if lag.total > max_lag:
        reasons.append(f"{lag.topic}: lag {lag.total} messages > {max_lag}")
    exception = lag.consumer.get("last_exception")
    if exception:
        reasons.append(f"{lag.topic}: consumer exception: {exception}")
    moved = previous is None or lag.committed_map() != previous
    ticks = 0 if moved or lag.total == 0 else stuck_ticks + 1
    if ticks >= stuck_after_ticks:
        reasons.append(f"{lag.topic}: consumer stuck, {lag.total} messages waiting and no commit for {ticks} ticks")
        orphans = unheld(lag)
        if orphans:
            held_by_none = f"no ClickHouse consumer holds partition(s) {orphans}, which have messages waiting"
            reasons.append(f"{lag.topic}: {held_by_none}")
    return LagVerdict(bool(reasons), reasons, ticks, orphans)


def unheld(lag: TopicLag) -> list[int]:
    """Partitions with messages waiting that none of the table's consumers holds
    (``system.kafka_consumers`` assignments); empty when the assignments are unknown."""
    if "assigned_partitions" not in lag.consumer:
        return []
    held = set(lag.consumer["assigned_partitions"])
    return [p.partition for p in lag.partitions if p.lag > 0 and p.partition not in held]
