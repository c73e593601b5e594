"""kill -9 of the Kafka broker while signed batches and OTLP traces flow through the collector.

While the broker is down the collector answers 503 with Retry-After, never 202; after `up` the
clients' resends are accepted, and every event and span acknowledged lands in ClickHouse
exactly once after the staging dedup (distinct event_id, distinct (trace_id, span_id)).
"""

from __future__ import annotations

import os
import time
import uuid

import pytest
from dagster import build_sensor_context

from platform_assets.ingest.resources import IngestResource
from platform_assets.ingest.sensors import ingest_consumer_lag_sensor

pytestmark = [pytest.mark.faults, pytest.mark.integration]

# Over the collector's 10 s acknowledgement deadline: every sender is answered at least once
# while the broker is dead (then waits the 5 s of Retry-After before resending). Longer outages:
# FAULTS_BROKER_OUTAGE_S=45 (past the producer's 30 s message timeout) runs the same checks.
OUTAGE_S = float(os.environ.get("FAULTS_BROKER_OUTAGE_S", "15"))


def test_broker_kill_9_answers_503_and_loses_nothing_acknowledged(healed, start_collector, load_client):
    fs = healed
    ws = f"ws_fault_broker_{uuid.uuid4().hex[:8]}"
    collector = start_collector()
    client = load_client(collector.url, fs.env, ws, retry=True)
    client.start(batch_threads=6, trace_threads=2)
    time.sleep(4)
    before_kill = len(client.rec.acked_events)
    fs.kill("kafka")
    dead_at = time.monotonic()
    time.sleep(OUTAGE_S)
    restart_at = time.monotonic()
    restart_s = fs.restart("kafka")
    time.sleep(6)  # traffic goes on against the restarted broker
    client.finish(timeout=90)
    rec = client.rec

    # Answered while the broker process was dead (a margin after the kill: a request the broker
    # acknowledged just before it died may still be answered 202 in the next instant).
    outage = [a for a in rec.attempts if dead_at + 2.0 < a.answered <= restart_at]
    outage_statuses = {s: sum(1 for a in outage if a.status == s) for s in sorted({a.status for a in outage})}
    figures = (
        f"requests {len(rec.attempts):,} (statuses {rec.statuses()}), during the {OUTAGE_S:.0f}s outage "
        f"{len(outage)} answered {outage_statuses}; broker back in {restart_s:.1f}s; "
        f"events acknowledged before the kill {before_kill:,}; "
        f"no answer: {sorted({a.error for a in outage if a.status == 0})}"
    )
    assert outage and set(outage_statuses) == {503}, f"while the broker was down: {figures}"
    assert all(a.retry_after == "5" for a in outage), f"503 without Retry-After: 5: {figures}"
    assert rec.unfinished == 0, f"{rec.unfinished} requests never acknowledged after the restart: {figures}"
    assert set(rec.statuses()) <= {0, 200, 202, 503}, figures

    events_sql = (
        "SELECT uniqExact(event_id), count() FROM (SELECT event_id FROM raw.agent_events WHERE workspace_id = "
        f"'{ws}' UNION ALL SELECT event_id FROM raw.product_events WHERE workspace_id = '{ws}')"
    )
    spans_sql = f"SELECT uniqExact(trace_id, span_id), count() FROM raw.spans WHERE tenant = '{ws}'"
    acked, acked_spans = len(rec.acked_events), len(rec.acked_spans)
    # The consumer-lag sensor ticks meanwhile, as the deployed platform runs it (every 30 s there,
    # every 5 s here): a topic whose consumers lost their assignment is restarted by it.
    restarts: list[str] = []
    wait_with_sensor(fs, events_sql, lambda r: r[0] >= acked, 150, restarts)
    wait_with_sensor(fs, spans_sql, lambda r: r[0] >= acked_spans, 150, restarts)
    time.sleep(2)  # late copies of refused-then-delivered messages, if any, land too
    distinct, rows = fs.rows(events_sql)[0]
    span_distinct, span_rows = fs.rows(spans_sql)[0]
    # Where the copies come from: the same Kafka message read twice (ClickHouse's consumer
    # re-read past its last commit) or the same event in two messages (a refused request whose
    # message was delivered late, then resent by the client).
    reread, resent = fs.rows(
        "SELECT count() - uniqExact(t, kafka_partition, kafka_offset, event_id), "
        "uniqExact(t, kafka_partition, kafka_offset, event_id) - uniqExact(event_id) FROM ("
        f"SELECT 'a' AS t, kafka_partition, kafka_offset, event_id FROM raw.agent_events WHERE workspace_id = '{ws}' "
        f"UNION ALL SELECT 'p', kafka_partition, kafka_offset, event_id FROM raw.product_events "
        f"WHERE workspace_id = '{ws}')"
    )[0]
    landed = {
        str(r[0])
        for r in fs.rows(
            f"SELECT DISTINCT event_id FROM raw.agent_events WHERE workspace_id = '{ws}' UNION DISTINCT "
            f"SELECT DISTINCT event_id FROM raw.product_events WHERE workspace_id = '{ws}'"
        )
    }
    landed_spans = set(fs.rows(f"SELECT DISTINCT trace_id, span_id FROM raw.spans WHERE tenant = '{ws}'"))
    message = (
        f"accepted {acked:,} events, landed {distinct:,} distinct in {rows:,} raw rows "
        f"(duplicates removed by dedup {rows - distinct:,}: {reread:,} re-read by the consumer, {resent:,} resent), "
        f"lost {len(rec.acked_events - landed):,}; "
        f"spans accepted {acked_spans:,}, landed {span_distinct:,} distinct in {span_rows:,} rows "
        f"(duplicates {span_rows - span_distinct:,}), lost {len(rec.acked_spans - landed_spans):,}; "
        f"consumers restarted by the lag sensor: {restarts or 'none'}; {figures}"
    )
    print(message)
    lost_spans = rec.acked_spans - landed_spans
    if lost_spans:
        message += f"; {fs.locate_spans(lost_spans)}"
    assert rec.acked_events <= landed and not lost_spans, message
    assert landed <= rec.sent_events and landed_spans <= rec.sent_spans, message
    assert distinct == acked and span_distinct == acked_spans, message


def wait_with_sensor(fs, sql: str, done, timeout: float, restarts: list[str], tick_s: float = 5.0) -> tuple:
    """Polls ``sql`` until ``done(row)`` or ``timeout``, running the ingest consumer-lag sensor every
    ``tick_s`` seconds; what the sensor restarted is appended to ``restarts``."""
    res = {"clickhouse": fs.res["clickhouse"], "kafka": fs.res["kafka"], "ingest": IngestResource()}
    deadline, cursor = time.monotonic() + timeout, None
    while True:
        row = fs.wait_rows(sql, done, timeout=tick_s)
        if (row and done(row)) or time.monotonic() > deadline:
            return row
        try:
            context = build_sensor_context(resources=res, instance=fs.instance, cursor=cursor)
            result = ingest_consumer_lag_sensor(context)
        except Exception:  # noqa: BLE001 - a server still coming back: the next tick reads again
            continue
        cursor = result.cursor
        reason = getattr(result.skip_reason, "skip_message", result.skip_reason) or ""
        restarts += [part for part in reason.split(" | ") if "restarted its consumers" in part]
