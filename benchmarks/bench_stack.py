"""Benchmark: embedded stack start-up and ClickHouse ingest. Prints one JSON document.

    .venv/bin/python benchmarks/bench_stack.py [--rows N]

- ``up_cold_s``: fresh directory (includes Postgres initdb) until all four servers are healthy;
  ``up_warm_s``: the same after ``down`` (data kept). Target: under 10 s on 2 cores.
- ``kafka``: the Apache Kafka broker alone (KRaft, one JVM): seconds from ``up`` to healthy (a
  metadata answer) cold (includes formatting the log dir) and warm (after ``down``), and the
  broker's resident memory (``VmRSS`` of its pid in /proc) idle after start, and after 100k
  1 KB messages (``--kafka-messages``) produced with default batching and read back.
- ClickHouse ingest through clickhouse-connect (columnar Arrow inserts, 500k-row batches) beside
  ``INSERT ... SELECT FROM numbers()`` into the same table shape, in the same run: the ratio is
  the share of the server's own insert speed that the client path reaches.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from platform_assets.core.resources import ClickHouseResource, resources_from_env
from platform_assets.stack.scratch import scratch_stack
from platform_assets.stack.servers import Stack, kafka_version

TABLE_DDL = (
    "CREATE TABLE {name} (id UInt64, at DateTime64(3, 'UTC'), tenant LowCardinality(String), "
    "value Float64) ENGINE = MergeTree ORDER BY (tenant, at, id)"
)


def timed_up(stack: Stack) -> float:
    started = time.monotonic()
    stack.up()
    assert all(h.healthy for h in stack.status().values()), stack.status()
    return round(time.monotonic() - started, 3)


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def kafka_alone(messages: int) -> dict[str, object]:
    """The broker by itself in its own scratch stack, so the other servers' start does not count."""
    with scratch_stack("platform-bench-kafka-") as stack:
        (server,) = stack.select(["kafka"])
        started = time.monotonic()
        stack.up(["kafka"])
        cold = round(time.monotonic() - started, 3)
        stack.down(["kafka"])
        started = time.monotonic()
        stack.up(["kafka"])
        warm = round(time.monotonic() - started, 3)
        assert server.health().healthy
        time.sleep(2)  # let start-up work settle before reading the idle footprint
        idle = rss_mb(server.pid())
        broker = server.env()["KAFKA_BOOTSTRAP_SERVERS"]
        admin = AdminClient({"bootstrap.servers": broker})
        admin.create_topics([NewTopic("bench", num_partitions=3, replication_factor=1)])["bench"].result(timeout=30)
        producer = Producer({"bootstrap.servers": broker})
        payload = b"x" * 1000
        t0 = time.monotonic()
        for _ in range(messages):
            while True:
                try:
                    producer.produce("bench", value=payload)
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
        assert producer.flush(120) == 0
        produce_s = time.monotonic() - t0
        consumer = Consumer({"bootstrap.servers": broker, "group.id": "bench", "auto.offset.reset": "earliest"})
        consumer.subscribe(["bench"])
        got, t0 = 0, time.monotonic()
        while got < messages and time.monotonic() - t0 < 120:
            got += sum(1 for m in consumer.consume(10_000, timeout=1.0) if not m.error())
        consume_s = time.monotonic() - t0
        consumer.close()
        assert got == messages, (got, messages)
        return {
            "version": kafka_version(),
            "up_cold_s": cold,
            "up_warm_s": warm,
            "rss_idle_mb": idle,
            "messages": messages,
            "produce_msgs_per_s": round(messages / produce_s),
            "consume_msgs_per_s": round(messages / consume_s),
            "rss_after_load_mb": rss_mb(server.pid()),
        }


def ingest(ch: ClickHouseResource, rows: int, batch: int) -> dict[str, float]:
    tenants = np.array([f"tenant_{i}" for i in range(20)], dtype=object)
    with ch.client() as client:
        client.command("CREATE DATABASE IF NOT EXISTS bench")
        for name in ("bench.client_insert", "bench.server_insert"):
            client.command(f"DROP TABLE IF EXISTS {name}")
            client.command(TABLE_DDL.format(name=name))
        rng = np.random.default_rng(7)
        columns_time = 0.0
        insert_time = 0.0
        for start in range(0, rows, batch):
            t0 = time.monotonic()
            n = min(batch, rows - start)
            ids = np.arange(start, start + n, dtype=np.uint64)
            batch_table = pa.table(
                {
                    "id": ids,
                    "at": pa.array(1_767_225_600_000 + ids.astype(np.int64), pa.timestamp("ms", tz="UTC")),
                    "tenant": pa.array(tenants[ids % 20]).dictionary_encode(),
                    "value": rng.random(n),
                }
            )
            t1 = time.monotonic()
            client.insert_arrow("bench.client_insert", batch_table)
            insert_time += time.monotonic() - t1
            columns_time += t1 - t0
        t0 = time.monotonic()
        client.command(
            "INSERT INTO bench.server_insert SELECT number, "
            "toDateTime64(1767225600 + number / 1000, 3, 'UTC'), "
            f"concat('tenant_', toString(number % 20)), randCanonical() FROM numbers({rows})"
        )
        server_time = time.monotonic() - t0
        counts = client.query(
            "SELECT (SELECT count() FROM bench.client_insert), (SELECT count() FROM bench.server_insert)"
        ).result_rows[0]
        client.command("DROP DATABASE bench")
    assert counts == (rows, rows), counts
    client_rps = rows / insert_time
    server_rps = rows / server_time
    return {
        "rows": rows,
        "batch_rows": batch,
        "client_columnar_rows_per_s": round(client_rps),
        "client_seconds": round(insert_time, 3),
        "client_column_build_seconds": round(columns_time, 3),
        "server_insert_select_rows_per_s": round(server_rps),
        "server_seconds": round(server_time, 3),
        "ratio_client_to_server": round(client_rps / server_rps, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--batch", type=int, default=500_000)
    parser.add_argument("--kafka-messages", type=int, default=100_000)
    args = parser.parse_args()

    kafka = kafka_alone(args.kafka_messages)
    with scratch_stack("platform-bench-") as stack:
        cold = timed_up(stack)
        stack.down()
        warm = timed_up(stack)
        ch = resources_from_env(stack.env())["clickhouse"]
        result = {
            "benchmark": "stack",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "up_cold_s": cold,
            "up_warm_s": warm,
            "up_target_s": 10,
            "up_within_target": cold < 10 and warm < 10,
            "kafka": kafka,
            "kafka_rss_in_stack_mb": rss_mb(stack.servers["kafka"].pid()),
            "clickhouse_ingest": ingest(ch, args.rows, args.batch),
        }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
