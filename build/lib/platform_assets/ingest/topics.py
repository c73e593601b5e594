"""Kafka topics of the ingestion path and their settings."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    name: str
    description: str
    raw_table: str | None  # the raw.* table its ClickHouse consumer fills (None: no consumer yet)


TOPICS = (
    Topic(
        "agent_events",
        "signed JSON agent events (runs, LLM calls, tool calls, errors, business events)",
        "agent_events",
    ),
    Topic(
        "product_events",
        "signed JSON product events (page views, sessions, signup steps, feature use)",
        "product_events",
    ),
    Topic("otlp_spans", "OTLP/HTTP traces re-encoded as OTLP JSON, one export request per message", "spans"),
)
CONSUMED = tuple(t for t in TOPICS if t.raw_table)


def partitions() -> int:
    """``INGEST_TOPIC_PARTITIONS`` (default 3): ClickHouse consumers and producers scale with it."""
    raw = os.environ.get("INGEST_TOPIC_PARTITIONS", "3")
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"INGEST_TOPIC_PARTITIONS={raw!r} must be a positive integer")
    return int(raw)


def replication_factor() -> int:
    """``INGEST_REPLICATION_FACTOR`` (default 1, the embedded broker has one node; use 3 on a cluster)."""
    raw = os.environ.get("INGEST_REPLICATION_FACTOR", "1")
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"INGEST_REPLICATION_FACTOR={raw!r} must be a positive integer")
    return int(raw)
