"""Consumer lag is exact on Kafka for batched produce, and ClickHouse has one consumer per partition.

Messages are produced with the default batching (many records per produce request) while the
topic's ClickHouse consumer is detached; ``read_lag`` then reports exactly what was delivered to
each partition, and 0 once the re-attached consumer drained it."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from platform_assets.ingest.heal import restart_consumers
from platform_assets.ingest.monitor import consumer_rows, group_members, read_lag

pytestmark = pytest.mark.integration

TODAY = datetime.now(UTC).strftime("%Y-%m-%d")  # rows past the raw tables' 90-day TTL are dropped


def lag_of(kafka, clickhouse, topic):
    (lag,) = read_lag(kafka, clickhouse, [topic])
    return lag


def wait_lag(kafka, clickhouse, topic, total: int, timeout=120.0):
    deadline = time.monotonic() + timeout
    lag = lag_of(kafka, clickhouse, topic)
    while lag.total != total and time.monotonic() < deadline:
        time.sleep(0.5)
        lag = lag_of(kafka, clickhouse, topic)
    return lag


def product_event(tag: str) -> bytes:
    row = {
        "event_id": str(uuid.uuid4()),
        "event_type": "page_view",
        "occurred_at": f"{TODAY}T09:00:00Z",
        "workspace_id": tag,
        "properties": {"path": "/"},
    }
    return json.dumps(row).encode()


def span_request(tag: str) -> bytes:
    now = time.time_ns()
    span = {
        "traceId": uuid.uuid4().hex,
        "spanId": uuid.uuid4().hex[:16],
        "name": "lag probe",
        "kind": 1,
        "startTimeUnixNano": str(now),
        "endTimeUnixNano": str(now + 1_000_000),
        "attributes": [{"key": "marker", "value": {"stringValue": tag}}],
    }
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "lag-probe"}}]}
    return json.dumps({"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": [span]}]}]}).encode()


def produce_batched(kafka, topic: str, values: list[bytes]) -> tuple[Counter, int]:
    """Default batching (the collector's idempotent, acks=all producer); returns the messages
    delivered per partition and the largest number of records librdkafka put in one batch."""
    delivered: Counter = Counter()
    stats: list[dict] = []

    def on_delivery(err, msg):
        assert err is None, err
        delivered[msg.partition()] += 1

    producer = kafka.producer(**{"statistics.interval.ms": 100, "stats_cb": lambda s: stats.append(json.loads(s))})
    for value in values:
        producer.produce(topic, value=value, key=uuid.uuid4().bytes, on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(30) == 0
    time.sleep(0.3)
    producer.poll(0.2)  # one more statistics report, after the last batch
    largest = max((s["topics"][topic]["batchcnt"]["max"] for s in stats if topic in s.get("topics", {})), default=0)
    return delivered, largest


def attach(clickhouse, table: str) -> None:
    with clickhouse.client() as ch:
        try:
            ch.command(f"ATTACH TABLE {table}")
        except DatabaseError as exc:  # this build's known LOGICAL_ERROR on Kafka tables (ARCHITECTURE.md)
            if "Shutdown was called" not in str(exc):
                raise


@pytest.mark.parametrize(
    ("topic", "count", "landed_sql"),
    [
        ("product_events", 3000, "SELECT count() FROM raw.product_events WHERE workspace_id = '{tag}'"),
        ("otlp_spans", 1200, "SELECT count() FROM raw.spans WHERE attributes['marker'] = '{tag}'"),
    ],
)
def test_lag_counts_every_batched_message_per_partition(schema, kafka, clickhouse, topic, count, landed_sql):
    table = f"kafka_queue.{topic}"
    start = wait_lag(kafka, clickhouse, topic, 0)  # earlier tests' messages are consumed first
    assert start.total == 0 and start.error is None, start
    tag = f"lag_{uuid.uuid4().hex[:8]}"
    make = product_event if topic == "product_events" else span_request
    with clickhouse.client() as ch:
        ch.command(f"DETACH TABLE {table}")  # the consumer stops: its committed offsets stay put
    try:
        before = {p.partition: p.lag for p in lag_of(kafka, clickhouse, topic).partitions}
        delivered, largest_batch = produce_batched(kafka, topic, [make(tag) for _ in range(count)])
        assert largest_batch > 1, "the producer sent one record per batch: batching is not exercised"
        waiting = lag_of(kafka, clickhouse, topic)
    finally:
        attach(clickhouse, table)
    assert set(delivered) == set(before) and len(before) > 1  # every partition got messages
    assert {p.partition: p.lag - before[p.partition] for p in waiting.partitions} == dict(delivered)
    assert waiting.total == count
    assert waiting.error == "no ClickHouse consumer for this topic"

    drained = wait_lag(kafka, clickhouse, topic, 0)
    assert drained.total == 0 and drained.error is None, drained
    assert all(p.committed == p.high_watermark for p in drained.partitions)
    with clickhouse.client() as ch:
        assert ch.query(landed_sql.format(tag=tag)).result_rows[0][0] == count


def test_each_kafka_table_has_one_consumer_per_partition(schema, kafka, clickhouse):
    """kafka_num_consumers = the topic's partitions, every partition assigned once, and with a
    thread for each consumer in the server's broker pool (the stack's config sets 32), each
    consumer holds exactly one partition."""
    meta = kafka.admin().list_topics(timeout=10).topics
    names = ("agent_events", "product_events", "otlp_spans", "otlp_logs", "otlp_metrics", "collector_stats")
    want = {t: len(meta[t].partitions) for t in names}
    assert want == {"agent_events": 3, "product_events": 3, "otlp_spans": 6, "otlp_logs": 3, "otlp_metrics": 3,
                    "collector_stats": 1}  # fmt: skip
    with clickhouse.client() as ch:
        pool = int(
            ch.query(
                "SELECT value FROM system.server_settings WHERE name = 'background_message_broker_schedule_pool_size'"
            ).result_rows[0][0]
        )
    deadline = time.monotonic() + 60
    while True:
        with clickhouse.client() as ch:
            rows = ch.query(
                "SELECT table, count(), arrayFlatten(groupArray(assignments.partition_id)), "
                "countIf(length(assignments.partition_id) > 0), max(length(assignments.partition_id)) "
                "FROM system.kafka_consumers WHERE database = 'kafka_queue' GROUP BY table"
            ).result_rows
        got = {table: (n, sorted(assigned)) for table, n, assigned, _, _ in rows}
        spread = {table: (running, most) for table, _, _, running, most in rows}
        settled = got == {t: (n, list(range(n))) for t, n in want.items()}  # each partition once
        settled = settled and all(spread[t] == (n, 1) for t, n in want.items())
        if settled or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert pool == 32, f"background_message_broker_schedule_pool_size is {pool}, the stack's config sets 32"
    # Where a table is off, the broker's view of its group and ClickHouse's of its consumers say why.
    off = [t for t, n in want.items() if got.get(t) != (n, list(range(n))) or spread.get(t) != (n, 1)]
    why = {t: {"broker": group_members(kafka, t), "clickhouse": consumer_rows(clickhouse, t)} for t in off}
    assert got == {t: (n, list(range(n))) for t, n in want.items()}, why
    assert spread == {t: (n, 1) for t, n in want.items()}, why  # one partition per consumer


def test_restarted_consumers_take_their_partitions_back_and_lose_nothing(schema, kafka, clickhouse):
    """What the consumer-lag sensor does to a topic whose consumers hold no partition
    (ingest/heal.py): the Kafka table re-attached, new consumers hold every partition again, and
    every message produced before and after the restart lands."""
    topic = "product_events"
    assert wait_lag(kafka, clickhouse, topic, 0).total == 0
    tag = f"restart_{uuid.uuid4().hex[:8]}"
    before, _ = produce_batched(kafka, topic, [product_event(tag) for _ in range(1500)])
    assert restart_consumers(clickhouse, topic) == 1
    after, _ = produce_batched(kafka, topic, [product_event(tag) for _ in range(1500)])
    drained = wait_lag(kafka, clickhouse, topic, 0)
    assert drained.total == 0 and drained.error is None, drained
    held = sorted(p for row in consumer_rows(clickhouse, topic) for p in row["assignments.partition_id"])
    assert held == sorted(p.partition for p in drained.partitions), consumer_rows(clickhouse, topic)
    with clickhouse.client() as ch:
        distinct, rows = ch.query(
            f"SELECT uniqExact(event_id), count() FROM raw.product_events WHERE workspace_id = '{tag}'"
        ).result_rows[0]
    # At-least-once: rows read but not yet committed when the table was detached may land twice.
    assert distinct == sum(before.values()) + sum(after.values()) == 3000 and rows >= distinct


def test_restart_refuses_a_table_that_is_not_a_kafka_consumer(clickhouse):
    with pytest.raises(ValueError, match=r"'raw\.spans' is not a Kafka table"):
        restart_consumers(clickhouse, "raw.spans")
