"""Each collector worker reports its counters (``app.Metrics``) to Kafka topic ``collector_stats``:
every ``COLLECTOR_STATS_INTERVAL_S`` (default 10 s) one JSON row with the increase of every counter
that moved since the previous report, which ClickHouse lands in ``ops.collector_stats``
(clickhouse_ddl/011) one row per counter.

The report goes through the worker's own producer (``KafkaSink.producer``) without waiting for
its acknowledgement. An increase is never dropped while the worker lives: a report the producer
cannot take (queue full) or that is not delivered (the broker stayed away past
``message.timeout.ms``) gives its counts back, and the next report carries them. So refusals
counted during a broker outage arrive once the broker is back. A report whose delivery timed out
but that the broker had in fact written is counted twice (rare: the acknowledgement lost).
``/metrics`` stays the running totals.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from confluent_kafka import KafkaException

from platform_assets.ingest.collector.app import Metrics

TOPIC = "collector_stats"
log = logging.getLogger("platform.collector.stats")


class Producer(Protocol):
    """What is used of ``confluent_kafka.Producer``."""

    def produce(self, topic: str, *, value: bytes, on_delivery: Callable[[Any, Any], None]) -> None: ...


class StatsPublisher:
    """Reports ``metrics``' increases to ``topic`` through ``producer`` every ``interval_s`` seconds
    (``run``); ``close`` sends the last report (the caller then flushes the producer)."""

    def __init__(
        self,
        metrics: Metrics,
        producer: Producer,
        interval_s: float,
        *,
        topic: str = TOPIC,
        host: str | None = None,
        pid: int | None = None,
    ) -> None:
        self.metrics = metrics
        self.producer = producer
        self.interval_s = interval_s
        self.topic = topic
        self.host = host or socket.gethostname()
        self.pid = os.getpid() if pid is None else pid
        self._reported: Counter = Counter()  # the counters as of the previous report
        self._unsent: Counter = Counter()  # increases of reports that were not taken or not delivered
        self._lock = threading.Lock()  # delivery callbacks run on the producer's poll thread
        self._task: asyncio.Task[None] | None = None

    def report(self, now: datetime | None = None) -> dict[str, Any] | None:
        """Produce one report of what moved since the last one (and what earlier reports could
        not deliver); returns the row, or None when nothing moved."""
        current = self.metrics.snapshot()
        moved = current - self._reported  # counters only grow: the increase of each
        self._reported = current
        with self._lock:
            moved.update(self._unsent)
            self._unsent.clear()
        if not moved:
            return None
        at = (now or datetime.now(UTC)).astimezone(UTC)
        row = {
            "reported_at": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
            "host": self.host,
            "pid": self.pid,
            "counters": dict(sorted(moved.items())),
        }
        try:
            self.producer.produce(self.topic, value=orjson.dumps(row), on_delivery=self._on_delivery(moved))
        except (BufferError, KafkaException) as exc:
            log.warning("collector stats not queued (%s): sent with the next report", exc)
            self._give_back(moved)
        return row

    def _give_back(self, counts: Counter) -> None:
        with self._lock:
            self._unsent.update(counts)

    def _on_delivery(self, counts: Counter) -> Callable[[Any, Any], None]:
        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                log.warning("collector stats not delivered (%s): sent with the next report", err)
                self._give_back(counts)

        return delivered

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            self.report()

    def start(self) -> StatsPublisher:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="collector-stats")
        return self

    async def close(self) -> None:
        """Stop reporting and send what moved since the last report."""
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.report()
