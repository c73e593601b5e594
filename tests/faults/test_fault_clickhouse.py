"""kill -9 of ClickHouse while its Kafka consumer works through a backlog of 200,000 messages.

After `up` (the launcher re-attaches the Kafka tables, see stack/clickhouse_main.py) the
consumer resumes from the group's committed offsets: nothing is lost, and the only copies are
of messages past the offsets committed when it died (at-least-once), which the staging dedup
(one row per event_id) removes.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime

import pytest

from platform_assets.ingest.monitor import broker_lag

pytestmark = [pytest.mark.faults, pytest.mark.integration]

BACKLOG = 200_000
TOPIC = "product_events"
TODAY = datetime.now(UTC).strftime("%Y-%m-%d")  # inside the raw tables' 90-day TTL


def produce_backlog(kafka, ws: str, n: int) -> None:
    """``n`` one-event messages, batched as any producer does (librdkafka's defaults)."""
    producer = kafka.producer(**{"queue.buffering.max.messages": n + 1000, "linger.ms": 20})
    head = f'{{"event_type":"page_view","occurred_at":"{TODAY}T12:00:01Z","workspace_id":"{ws}",'
    tail = '"session_id":"s-1","actor_id":"","source":"web","properties":{"path":"/pricing"}}'
    for i in range(n):
        event_id = str(uuid.UUID(bytes=os.urandom(16), version=4))
        producer.produce(TOPIC, value=f'{head}"event_id":"{event_id}",{tail}'.encode())
        if i % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0


def test_clickhouse_kill_9_mid_consumption_loses_nothing(healed):
    fs = healed
    ws = f"ws_fault_ch_{uuid.uuid4().hex[:8]}"
    count_sql = f"SELECT count(), uniqExact(event_id) FROM raw.product_events WHERE workspace_id = '{ws}'"
    fs.detach_kafka_table(TOPIC)  # the backlog builds up on the broker first
    try:
        started = time.monotonic()
        produce_backlog(fs.res["kafka"], ws, BACKLOG)
        produce_s = time.monotonic() - started
    finally:
        fs.attach_kafka_table(TOPIC)
    # The consumers are at work once their first block has landed: kill -9 then.
    at_kill = fs.wait_rows(count_sql, lambda r: r[0] > 0, timeout=60, poll=0.05)
    fs.kill("clickhouse")
    committed = {p.partition: p.committed for p in broker_lag(fs.res["kafka"], TOPIC).partitions}
    restart_s = fs.restart("clickhouse")
    started = time.monotonic()
    fs.wait_rows(count_sql, lambda r: r[1] >= BACKLOG, timeout=180)
    converge_s = time.monotonic() - started
    time.sleep(2)  # anything still in flight lands too
    rows, distinct = fs.rows(count_sql)[0]
    copies = fs.rows(
        "SELECT kafka_partition, min(kafka_offset), count(), max(c) FROM (SELECT kafka_partition, kafka_offset, "
        f"count() AS c FROM raw.product_events WHERE workspace_id = '{ws}' GROUP BY kafka_partition, kafka_offset "
        "HAVING c > 1) GROUP BY kafka_partition ORDER BY kafka_partition"
    )
    dead = fs.rows(f"SELECT count() FROM dead_letter.kafka_messages WHERE position(raw_message, '{ws}') > 0")[0][0]
    message = (
        f"produced {BACKLOG:,} messages in {produce_s:.1f}s; at the kill {at_kill[0]:,} rows had landed, "
        f"committed offsets {committed}; ClickHouse back in {restart_s:.1f}s, caught up {converge_s:.1f}s later: "
        f"distinct event_id {distinct:,} in {rows:,} raw rows, duplicates (raw minus distinct) {rows - distinct:,}, "
        f"duplicated offsets per partition (partition, first offset, messages, max copies) {copies}, "
        f"dead letters {dead}"
    )
    print(message)
    assert 0 < at_kill[0] < BACKLOG, f"the kill was not mid-consumption: {message}"
    assert distinct == BACKLOG and dead == 0, message
    # At-least-once, no more: only messages past the offset committed at the kill are read twice.
    assert all(first >= (committed[p] or 0) for p, first, _, _ in copies), message
