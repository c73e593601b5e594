"""Consumer lag with ClickHouse's consumer stopped and batched produce, as the collector produces.

The messages go through the collector's own producer (``KafkaSink``: idempotent, acks=all,
linger.ms=5, so the broker receives them in batches) and its own encoding (newline-delimited
rows, one message per batch of events). With the Kafka table detached, the ingest
consumer-lag sensor reports exactly the unconsumed messages per partition; once the table is
attached again and the rows have landed, 0.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
from dagster import build_sensor_context

from platform_assets.ingest.collector import events as ev
from platform_assets.ingest.collector.config import CollectorConfig
from platform_assets.ingest.collector.sink import KafkaSink
from platform_assets.ingest.resources import IngestResource
from platform_assets.ingest.sensors import ingest_consumer_lag_sensor

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

TOPIC = "agent_events"
MESSAGES = 3_000
EVENTS_PER_MESSAGE = 5
TODAY = datetime.now(UTC).strftime("%Y-%m-%d")  # inside the raw tables' 90-day TTL


def tick(fs, cursor=None):
    res = {"clickhouse": fs.res["clickhouse"], "kafka": fs.res["kafka"], "ingest": IngestResource()}
    return ingest_consumer_lag_sensor(build_sensor_context(resources=res, instance=fs.instance, cursor=cursor))


def lags(result, topic: str = TOPIC) -> dict[int, int]:
    (obs,) = [
        e for e in result.asset_events if type(e).__name__ == "AssetObservation" and e.metadata["topic"].value == topic
    ]
    return {p["partition"]: p["lag"] for p in obs.metadata["per_partition"].value}


def tick_until(fs, done, cursor=None, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    result = tick(fs, cursor)
    while not done(lags(result)) and time.monotonic() < deadline:
        time.sleep(1)
        result = tick(fs, result.cursor)
    return result


def produce_like_the_collector(env: dict[str, str], ws: str) -> Counter:
    """``MESSAGES`` batches of agent events encoded and produced as the collector does; returns
    the messages the broker acknowledged, per partition (from the delivery reports)."""
    cfg = CollectorConfig.from_env(env)
    hasher = ev.actor_hasher(cfg.hash_key)
    sink = KafkaSink(cfg)
    delivered: Counter = Counter()
    errors: list[str] = []

    def report(err, msg) -> None:  # on the sink's delivery thread
        if err is None:
            delivered[msg.partition()] += 1
        else:
            errors.append(str(err))

    try:
        for _ in range(MESSAGES):
            batch = [
                {
                    "event_id": str(uuid.uuid4()),
                    "event_type": "tool_call",
                    "occurred_at": f"{TODAY}T10:00:00Z",
                    "workspace_id": ws,
                    "actor_id": "user-1",
                    "tool_name": "search",
                }
                for _ in range(EVENTS_PER_MESSAGE)
            ]
            rows = ev.encode_rows(ev.validate(batch), cfg.drop_keys, hasher)
            ((key, value),) = ev.pack(rows[TOPIC], cfg.max_message_bytes)
            sink.producer.produce(TOPIC, value=value, key=key, on_delivery=report)
    finally:
        sink.close()  # flushes: every delivery report is in
    assert not errors and sum(delivered.values()) == MESSAGES, (errors[:3], delivered)
    return delivered


def test_lag_sensor_counts_every_unconsumed_message_then_zero(healed):
    fs = healed
    ws = f"ws_fault_lag_{uuid.uuid4().hex[:8]}"
    drained = tick_until(fs, lambda lag: sum(lag.values()) == 0)  # earlier tests' messages consumed
    assert sum(lags(drained).values()) == 0, drained.skip_reason.skip_message
    fs.detach_kafka_table(TOPIC)
    try:
        delivered = produce_like_the_collector(fs.env, ws)
        waiting = tick(fs, drained.cursor)
        reported = lags(waiting)
    finally:
        fs.attach_kafka_table(TOPIC)
    expected = {p: delivered.get(p, 0) for p in reported}
    message = (
        f"produced {MESSAGES:,} messages ({MESSAGES * EVENTS_PER_MESSAGE:,} events) with the collector's producer, "
        f"acknowledged per partition {dict(sorted(delivered.items()))}, sensor reported {reported} "
        f"({waiting.skip_reason.skip_message})"
    )
    assert reported == expected and sum(reported.values()) == MESSAGES, message
    assert f"{TOPIC}: lag {MESSAGES} (" in waiting.skip_reason.skip_message, message

    events = MESSAGES * EVENTS_PER_MESSAGE
    count_sql = f"SELECT count(), uniqExact(event_id) FROM raw.agent_events WHERE workspace_id = '{ws}'"
    landed = fs.wait_rows(count_sql, lambda r: r[1] >= events, timeout=90)
    after = tick_until(fs, lambda lag: sum(lag.values()) == 0, cursor=waiting.cursor, timeout=30)
    message += (
        f"; after ATTACH {landed[1]:,} distinct events landed in {landed[0]:,} rows, "
        f"sensor reported {lags(after)} ({after.skip_reason.skip_message})"
    )
    print(message)
    assert landed == (events, events), message
    assert set(lags(after).values()) == {0}, message
