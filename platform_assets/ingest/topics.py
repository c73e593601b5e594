"""Kafka topics of the ingestion path, their settings, and the reconcile plan (pure).

What a topic should look like comes from the environment (``wanted``); what it looks like on
the broker is a ``TopicState``; ``reconcile`` turns the two into the actions the ``kafka/topics``
asset takes: create a missing topic, add partitions when the setting grew, set the managed
configs that differ. It never removes partitions or recreates a topic (that would lose the
messages and the consumer groups' offsets); a lower setting or another replication factor is a
warning.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

GIB = 1024**3
MIB = 1024**2
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Topic:
    name: str
    description: str
    raw_table: str | None  # the raw.* table its ClickHouse consumer fills (None: none, or see ops_table)
    partitions_var: str  # the setting with its partition count ("": none, always the default)
    default_partitions: int
    compression: str  # the topic's compression.type (why: docs/ingest.md, "Topics")
    ops_table: str | None = None  # the ops.* table its ClickHouse consumer fills (monitoring, no raw asset)


# Compression, measured on the simulator's messages (docs/ingest.md): zstd stores spans at 8.2x
# (lz4 4.3x) and export requests are few and large, so the extra CPU is small; the event topics
# carry the 50k events/s collector path on a CPU-bound box, where lz4 (2.8x) costs no more than
# sending uncompressed and zstd (5.6x) adds ~3 ms of producer CPU per MB.
TOPICS = (
    Topic(
        "agent_events",
        "signed JSON agent events (runs, LLM calls, tool calls, errors, business events)",
        "agent_events",
        "INGEST_PARTITIONS_EVENTS",
        3,
        "lz4",
    ),
    Topic(
        "product_events",
        "signed JSON product events (page views, sessions, signup steps, feature use)",
        "product_events",
        "INGEST_PARTITIONS_EVENTS",
        3,
        "lz4",
    ),
    Topic(
        "otlp_spans",
        "OTLP/HTTP traces re-encoded as OTLP JSON, one export request per message",
        "spans",
        "INGEST_PARTITIONS_SPANS",
        6,
        "zstd",
    ),
    # Written by the collector, or by an OpenTelemetry Collector's Kafka exporter (encoding
    # otlp_json). 3 partitions each, not measured against their volume; each partition is a
    # ClickHouse consumer thread (18 at the defaults, the broker pool runs 32).
    Topic(
        "otlp_logs",
        "OTLP log export requests as OTLP JSON, one export request per message",
        "otel_logs",
        "INGEST_PARTITIONS_LOGS",
        3,
        "zstd",
    ),
    # One topic fills five tables (raw.otel_metrics_gauge, _sum, _histogram,
    # _exponential_histogram, _summary); its consumer lag is reported on the histogram table.
    Topic(
        "otlp_metrics",
        "OTLP metric export requests as OTLP JSON, one export request per message",
        "otel_metrics_histogram",
        "INGEST_PARTITIONS_METRICS",
        3,
        "zstd",
    ),
    # Each collector worker's counter increases (refusals, rejections, accepted items), one JSON
    # row per worker every COLLECTOR_STATS_INTERVAL_S (default 10 s): a few messages a minute, so
    # one partition (no setting), and lz4 like the event topics (the rows are tiny either way).
    Topic(
        "collector_stats",
        "collector workers' counter increases, one JSON row per worker per interval",
        None,
        "",
        1,
        "lz4",
        ops_table="collector_stats",
    ),
)
# Topics whose ClickHouse consumer fills a raw table (an asset with a consumer_lag check).
CONSUMED = tuple(t for t in TOPICS if t.raw_table)
# Every topic a ClickHouse Kafka table reads: the raw ones and the ops (monitoring) ones.
KAFKA_TABLES = tuple(t for t in TOPICS if t.raw_table or t.ops_table)

LEGACY_PARTITIONS_VAR = "INGEST_TOPIC_PARTITIONS"  # the earlier single setting: still the events default
DEFAULT_RETENTION_HOURS = 48
DEFAULT_RETENTION_BYTES = GIB  # per partition; 18 partitions at the defaults: at most ~20 GiB on disk


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _int(env: Mapping[str, str], var: str, default: int, minimum: int = 1, allow: tuple[int, ...] = ()) -> int:
    raw = env.get(var, "").strip()
    if not raw:
        return default
    value = int(raw) if raw.lstrip("-").isdigit() else None
    if value is None or (value < minimum and value not in allow):
        also = f" (or {', '.join(map(str, allow))})" if allow else ""
        raise ValueError(f"{var}={raw!r} must be a whole number >= {minimum}{also}")
    return value


def partitions(topic: Topic, env: Mapping[str, str] | None = None) -> int:
    """The topic's ``partitions_var``: ``INGEST_PARTITIONS_SPANS`` (default 6),
    ``INGEST_PARTITIONS_LOGS`` and ``INGEST_PARTITIONS_METRICS`` (default 3 each) or
    ``INGEST_PARTITIONS_EVENTS`` (default ``INGEST_TOPIC_PARTITIONS``, else 3). ClickHouse runs
    one consumer per partition, so this is also the topic's consumer parallelism. A topic without
    a setting (``collector_stats``) keeps its default."""
    e = _env(env)
    default = topic.default_partitions
    if not topic.partitions_var:
        return default
    if topic.partitions_var == "INGEST_PARTITIONS_EVENTS":
        default = _int(e, LEGACY_PARTITIONS_VAR, default)
    return _int(e, topic.partitions_var, default)


def replication_factor(env: Mapping[str, str] | None = None) -> int:
    """``INGEST_REPLICATION_FACTOR``: default 1 on the embedded stack (one broker), 3 elsewhere
    (``PLATFORM_ENV`` docker/prod; docker/docker-compose.yml runs one broker and sets 1)."""
    e = _env(env)
    return _int(e, "INGEST_REPLICATION_FACTOR", 1 if e.get("PLATFORM_ENV", "local") == "local" else 3)


def retention_ms(env: Mapping[str, str] | None = None) -> int:
    """``INGEST_RETENTION_HOURS`` (default 48): how long messages stay for replays and late consumers."""
    return _int(_env(env), "INGEST_RETENTION_HOURS", DEFAULT_RETENTION_HOURS) * HOUR_MS


def retention_bytes(env: Mapping[str, str] | None = None) -> int:
    """``INGEST_RETENTION_BYTES`` per partition (default 1 GiB; -1: no size bound): the disk cap,
    whichever of time and size is reached first deletes the oldest messages."""
    return _int(_env(env), "INGEST_RETENTION_BYTES", DEFAULT_RETENTION_BYTES, minimum=MIB, allow=(-1,))


def topic_configs(topic: Topic, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The topic configs the asset manages (as Kafka reports them: strings). Others are left alone."""
    keep_ms, keep_bytes = retention_ms(env), retention_bytes(env)
    return {
        "compression.type": topic.compression,
        "retention.ms": str(keep_ms),
        "retention.bytes": str(keep_bytes),
        # Retention deletes whole closed segments. A segment closes at segment.ms (default 7 days)
        # or segment.bytes (default 1 GiB): with the defaults a quiet topic kept 7 days + 48 h and a
        # partition held up to twice retention.bytes. 48 segments per retention period and 8 per
        # byte bound make the bounds hold within about 2% (time) and 12.5% (size).
        "segment.ms": str(max(keep_ms // 48, 60_000)),
        "segment.bytes": str(GIB if keep_bytes < 0 else min(GIB, max(MIB, keep_bytes // 8))),
    }


def min_insync_replicas(replication_factor: int) -> str:
    """acks=all waits for the in-sync replicas: with 3 or more replicas 2 must have each write (one
    broker may be down); with fewer, 1, or every write would fail while one is down. Derived from
    the topic's actual replicas, never from the setting alone (2 on a 1-replica topic stops writes)."""
    return "2" if replication_factor >= 3 else "1"


@dataclass(frozen=True)
class TopicSpec:
    """A topic as the settings want it."""

    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str]  # the managed configs but min.insync.replicas (from the actual replicas)
    partitions_var: str = ""

    def create_configs(self) -> dict[str, str]:
        """The configs a new topic is created with."""
        return {**self.configs, "min.insync.replicas": min_insync_replicas(self.replication_factor)}


def wanted(env: Mapping[str, str] | None = None) -> list[TopicSpec]:
    rf = replication_factor(env)
    return [TopicSpec(t.name, partitions(t, env), rf, topic_configs(t, env), t.partitions_var) for t in TOPICS]


@dataclass(frozen=True)
class TopicState:
    """A topic as the broker has it: partitions, replicas, the current value of each managed config."""

    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str]


@dataclass(frozen=True)
class TopicActions:
    topic: str
    create: bool = False
    add_partitions: tuple[int, int] | None = None  # (now, wanted)
    set_configs: Mapping[str, tuple[str | None, str]] = field(default_factory=dict)  # key -> (now, wanted)
    warnings: tuple[str, ...] = ()

    @property
    def changes(self) -> bool:
        return self.create or self.add_partitions is not None or bool(self.set_configs)

    def describe(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.create:
            out["created"] = True
        if self.add_partitions:
            out["partitions"] = f"{self.add_partitions[0]} -> {self.add_partitions[1]}"
        if self.set_configs:
            out["configs"] = {k: f"{now} -> {new}" for k, (now, new) in self.set_configs.items()}
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


def reconcile(current: Mapping[str, TopicState], specs: Sequence[TopicSpec]) -> list[TopicActions]:
    """The actions that bring the broker to ``specs``: create a missing topic (with its configs),
    add partitions up to a higher setting, set each managed config whose value differs. A lower
    partition setting or another replication factor is only reported."""
    plan = []
    for spec in specs:
        state = current.get(spec.name)
        if state is None:
            plan.append(TopicActions(spec.name, create=True))
            continue
        warnings = []
        grow = None
        setting = spec.partitions_var or "the partition setting"
        if spec.partitions > state.partitions:
            grow = (state.partitions, spec.partitions)
        elif spec.partitions < state.partitions:
            warnings.append(
                f"{spec.name}: {state.partitions} partitions on the broker, {setting} asks for {spec.partitions}; "
                "Kafka cannot remove partitions and recreating the topic would lose its messages and offsets, "
                f"so it stays at {state.partitions}"
            )
        if spec.replication_factor != state.replication_factor:
            warnings.append(
                f"{spec.name}: replication factor {state.replication_factor} on the broker, "
                f"INGEST_REPLICATION_FACTOR asks for {spec.replication_factor}; changing it is a partition "
                "reassignment (kafka-reassign-partitions.sh), not done here"
            )
        want = {**spec.configs, "min.insync.replicas": min_insync_replicas(state.replication_factor)}
        differ = {k: (state.configs.get(k), v) for k, v in want.items() if state.configs.get(k) != v}
        plan.append(TopicActions(spec.name, add_partitions=grow, set_configs=differ, warnings=tuple(warnings)))
    return plan
