"""Ingestion figures for the demo summary: simulated agents and product events through a real
collector (OpenTelemetry SDK + signed batches), a few poison messages straight onto the
topics, then rows landed per raw table, dead letters and consumer lag."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

from platform_assets.core.resources import ClickHouseResource, KafkaResource
from platform_assets.ingest.collector.config import CollectorConfig
from platform_assets.ingest.collector.serve import CollectorThread
from platform_assets.ingest.monitor import read_lag
from platform_assets.ingest.topics import CONSUMED
from platform_assets.synthetic.agents import AgentSimulator

# Under 1% of the demo's traffic: the dead-letter check warns, it does not fail the demo.
POISON = {"agent_events": 2, "product_events": 2, "otlp_spans": 1}


class RunningCollector(CollectorThread):
    """The collector (OTLP/gRPC and OTLP/HTTP) in a thread on free loopback ports."""


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
        programs = [run_otel_program(collector, protocol, style) for protocol, style in OTEL_PROGRAMS]
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
    otel = otel_rows(clickhouse, programs)  # landed before the lag is read: every topic is then drained
    lags = read_lag(kafka, clickhouse, [t.name for t in CONSUMED])
    with clickhouse.client() as ch:  # the Kafka table of a topic is kafka_queue.<topic>
        consumers = {
            table: sorted(assigned)
            for table, assigned in ch.query(
                "SELECT table, groupArray(length(assignments.partition_id)) FROM system.kafka_consumers "
                "WHERE database = 'kafka_queue' GROUP BY table"
            ).result_rows
        }
    rollups = rollup_counts(clickhouse)
    return {
        "simulated": record.to_json(),
        # Rows of today in each raw table and what its streaming rollup counted (equal unless Kafka
        # redelivered a message: the rollups count every landed row, the marts dedupe).
        "rollups_today": rollups,
        # OpenTelemetry SDK programs sending traces, metrics and logs over both protocols.
        "otel_programs": otel,
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
        "all_landed": landed == expected
        and dead == sum(POISON.values())
        and all(p["rows_landed"] == p["rows_sent"] for p in otel),
    }


ROLLUP_COUNTS = {  # raw table and time column: rollup table and count column
    ("raw.spans", "start_time"): ("rollups.spans_1m", "spans"),
    ("raw.agent_events", "occurred_at"): ("rollups.agent_events_1m", "events"),
    ("raw.product_events", "occurred_at"): ("rollups.product_events_1m", "events"),
    ("raw.otel_logs", "Timestamp"): ("rollups.logs_1m", "records"),
}


def rollup_counts(clickhouse: ClickHouseResource) -> dict[str, dict[str, int]]:
    """Today's rows per raw table against the sum its rollup holds for today (UTC)."""
    out = {}
    with clickhouse.client() as ch:
        for (raw, column), (rollup, count) in ROLLUP_COUNTS.items():
            raw_rows = ch.query(f"SELECT count() FROM {raw} WHERE {column} >= toStartOfDay(now('UTC'))")
            rolled = ch.query(f"SELECT sum({count}) FROM {rollup} WHERE minute >= toStartOfDay(now('UTC'))")
            out[raw] = {"raw_rows": int(raw_rows.result_rows[0][0]), "rollup_count": int(rolled.result_rows[0][0])}
    return out


# (protocol, attribute style): gRPC with the semantic-convention names, HTTP with the common others.
OTEL_PROGRAMS = (("grpc", "semconv"), ("http", "common"))


def run_otel_program(collector: CollectorThread, protocol: str, style: str) -> dict[str, Any]:
    """``platform_assets.synthetic.otel_program`` as its own process, pointed at the collector
    only by ``OTEL_EXPORTER_OTLP_ENDPOINT`` as an instrumented service would be."""
    endpoint = f"http://{collector.grpc_endpoint}" if protocol == "grpc" else collector.url
    done = subprocess.run(
        [sys.executable, "-m", "platform_assets.synthetic.otel_program", protocol, style, "--marker", uuid.uuid4().hex],
        env={**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SERVICE_NAME": f"support-api-{protocol}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)


def otel_rows(clickhouse: ClickHouseResource, programs: list[dict[str, Any]], timeout_s: float = 120) -> list[dict]:
    """Rows per raw table of each program (by its marker), waited for until all landed."""
    out = []
    with clickhouse.client() as ch:
        for rec in programs:
            sent = {
                "raw.spans": 7,  # per run an agent span and an LLM call span (3 runs), one failing tool call
                "raw.otel_logs": rec["logs"],
                "raw.otel_metrics_histogram": 7,  # durations (2 routes x 2 statuses), tokens (2 types), LLM calls
                "raw.otel_metrics_sum": 2,  # requests per route
                "raw.otel_metrics_gauge": 1,
            }
            column = {"raw.spans": "resource_attributes"}
            started = time.monotonic()
            landed: dict[str, int] = {}
            while time.monotonic() - started < timeout_s:
                landed = {
                    table: int(
                        ch.query(
                            f"SELECT count() FROM {table} WHERE {column.get(table, 'ResourceAttributes')}"
                            "['test.marker'] = {m:String}",
                            parameters={"m": rec["marker"]},
                        ).result_rows[0][0]
                    )
                    for table in sent
                }
                if landed == sent:
                    break
                time.sleep(0.5)
            out.append(
                {"protocol": rec["protocol"], "style": rec["style"], "rows_sent": sent, "rows_landed": landed,
                 "landed_within_s": round(time.monotonic() - started, 2)}
            )  # fmt: skip
    return out
