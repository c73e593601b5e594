"""Ingestion figures for the demo summary: simulated agents and product events through a real
collector (OpenTelemetry SDK + signed batches), a few poison messages straight onto the
topics, then rows landed per raw table, dead letters and consumer lag."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import uvicorn

from platform_assets.core.resources import ClickHouseResource, KafkaResource
from platform_assets.ingest.collector.app import CollectorConfig, build_app
from platform_assets.ingest.monitor import read_lag
from platform_assets.ingest.topics import CONSUMED
from platform_assets.stack.process import free_port
from platform_assets.synthetic.agents import AgentSimulator

# Under 1% of the demo's traffic: the dead-letter check warns, it does not fail the demo.
POISON = {"agent_events": 2, "product_events": 2, "otlp_spans": 1}


class RunningCollector:
    """The collector app served by uvicorn in a thread on a free loopback port."""

    def __init__(self, cfg: CollectorConfig) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(build_app(cfg), host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RunningCollector:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("collector did not start within 30 s")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def ingest_summary(
    kafka: KafkaResource,
    clickhouse: ClickHouseResource,
    runs: int = 60,
    product_events: int = 300,
    seed: int | None = None,
) -> dict[str, Any]:
    cfg = CollectorConfig.from_env()
    key_id, secret = next(iter(cfg.hmac_keys.items()))
    with RunningCollector(cfg) as collector:
        sim = AgentSimulator(collector.url, key_id, secret, seed if seed is not None else int(time.time()))
        record = sim.run(runs, product_events)
    marker = record.marker
    poison_tag = f"poison-{uuid.uuid4().hex[:8]}"
    producer = kafka.producer()
    for topic, count in POISON.items():
        for i in range(count):
            producer.produce(topic, value=f"{{{poison_tag} {i}".encode())
    producer.flush(30)
    expected = {
        "spans": sum(record.spans.values()),
        "agent_events": sum(record.agent_events.values()),
        "product_events": record.product_events,
    }
    queries = {
        "spans": f"SELECT count() FROM raw.spans WHERE attributes['marker'] = '{marker}' OR trace_id IN "
        f"(SELECT trace_id FROM raw.spans WHERE attributes['marker'] = '{marker}')",
        "agent_events": f"SELECT count() FROM raw.agent_events WHERE position(context, '{marker}') > 0",
        "product_events": f"SELECT count() FROM raw.product_events WHERE position(context, '{marker}') > 0",
    }
    landed: dict[str, int] = {}
    dead = 0
    started = time.monotonic()
    with clickhouse.client() as ch:
        while time.monotonic() - started < 120:
            landed = {t: int(ch.query(q).result_rows[0][0]) for t, q in queries.items()}
            dead = int(
                ch.query(
                    f"SELECT count() FROM dead_letter.kafka_messages WHERE position(raw_message, '{poison_tag}') > 0"
                ).result_rows[0][0]
            )
            if landed == expected and dead == sum(POISON.values()):
                break
            time.sleep(0.5)
    seconds = round(time.monotonic() - started, 2)
    lags = read_lag(kafka, clickhouse, [t.name for t in CONSUMED])
    with clickhouse.client() as ch:  # the Kafka table of a topic is kafka_queue.<topic>
        consumers = {
            table: sorted(assigned)
            for table, assigned in ch.query(
                "SELECT table, groupArray(length(assignments.partition_id)) FROM system.kafka_consumers "
                "WHERE database = 'kafka_queue' GROUP BY table"
            ).result_rows
        }
    return {
        "simulated": record.to_json(),
        "messages_sent": expected,
        "rows_landed": landed,
        "poison_messages_produced": sum(POISON.values()),
        "dead_letters": dead,
        "landed_within_s": seconds,
        "consumer_lag": {lag.topic: {"messages": lag.total, "error": lag.error} for lag in lags},
        # Per topic: partitions on the broker, and the partitions each ClickHouse consumer holds.
        "kafka_layout": {
            lag.topic: {"partitions": len(lag.partitions), "partitions_per_consumer": consumers.get(lag.topic, [])}
            for lag in lags
        },
        "all_landed": landed == expected and dead == sum(POISON.values()),
    }
