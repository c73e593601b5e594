"""SIGTERM of `platform-collector` under load: everything it answered 202 is on Kafka.

Each worker stops accepting on both ports, lets the requests in progress finish (each waits for
its Kafka acknowledgement), then flushes its producer; the group exits 0. Read back from the beginning
of the topics, the distinct event_ids contain every acknowledged one.
"""

from __future__ import annotations

import json
import signal
import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

pytestmark = [pytest.mark.faults, pytest.mark.integration]

TOPICS = ("agent_events", "product_events")


def event_ids_on_topics(kafka, ws: str, timeout: float = 90.0) -> tuple[set[str], int, int]:
    """Distinct event_ids of ``ws`` on the topics, read from offset 0 to the high watermarks;
    also how many rows of ``ws`` were read and how many messages in all."""
    consumer = kafka.consumer(f"faults-readback-{uuid.uuid4().hex[:8]}", **{"enable.partition.eof": True})
    try:
        ends: dict[tuple[str, int], int] = {}
        assignment = []
        for topic in TOPICS:
            for p in sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions):
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
                if high > 0:
                    ends[(topic, p)] = high
                    assignment.append(TopicPartition(topic, p, OFFSET_BEGINNING))
        consumer.assign(assignment)
        ids: set[str] = set()
        rows = messages = 0
        needle = f'"workspace_id":"{ws}"'.encode()
        deadline = time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            for msg in consumer.consume(2000, timeout=1.0):
                if msg.error():
                    continue
                messages += 1
                where = (msg.topic(), msg.partition())
                if msg.offset() + 1 >= ends.get(where, 0):
                    ends.pop(where, None)
                if needle in msg.value():
                    for line in msg.value().splitlines():
                        row = json.loads(line)
                        if row["workspace_id"] == ws:
                            ids.add(row["event_id"])
                            rows += 1
        assert not ends, f"read-back did not reach the end of {sorted(ends)} in {timeout:.0f}s"
        return ids, rows, messages
    finally:
        consumer.close()


def test_collector_sigterm_under_load_keeps_everything_acknowledged(healed, start_collector, load_client):
    fs = healed
    ws = f"ws_fault_term_{uuid.uuid4().hex[:8]}"
    collector = start_collector()
    client = load_client(collector.url, fs.env, ws, retry=False)
    client.start(batch_threads=6)
    time.sleep(4)
    in_flight = len(client.rec.sent_events - client.rec.acked_events)
    acked_before = len(client.rec.acked_events)
    collector.proc.send_signal(signal.SIGTERM)
    term_at = time.monotonic()
    time.sleep(0.5)  # clients keep sending into the shutdown
    client.finish(timeout=35)
    exit_code = collector.stop(timeout=45)
    stopped_s = time.monotonic() - term_at
    rec = client.rec
    after_term = [a for a in rec.attempts if a.answered > term_at]
    on_topic, rows, messages = event_ids_on_topics(fs.res["kafka"], ws)
    lost = rec.acked_events - on_topic
    message = (
        f"acknowledged {len(rec.acked_events):,} events ({acked_before:,} before SIGTERM, "
        f"~{in_flight} in flight at it), on the topics {len(on_topic):,} distinct in {rows:,} rows "
        f"(read back {messages:,} messages from offset 0), acknowledged but missing {len(lost):,}, "
        f"sent without 202 but delivered {len(on_topic - rec.acked_events):,}; requests {len(rec.attempts):,} "
        f"(statuses {rec.statuses()}), after SIGTERM {sum(1 for a in after_term if a.status == 202)} answered 202 "
        f"and {sum(1 for a in after_term if a.status == 0)} refused; exit code {exit_code} after {stopped_s:.1f}s"
    )
    print(message)
    assert rec.acked_events and not lost, message
    assert on_topic <= rec.sent_events, message
    assert set(rec.statuses()) <= {0, 202, 503}, message
    log = collector.log_tail()
    assert exit_code == 0 and "Kafka producer flushed" in log, f"{message}\n{log}"
