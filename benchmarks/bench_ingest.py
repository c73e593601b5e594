"""Benchmark: ingestion through Kafka into ClickHouse, and the collector. Prints one JSON document.

    .venv/bin/python benchmarks/bench_ingest.py [--backlog 1000000] [--rate 20000] [--seconds 20]
        [--collector-seconds 15] [--collector-clients 16]

One fresh embedded stack. Figures:
- ``kafka_to_clickhouse``: ``--backlog`` agent events produced while the ClickHouse consumer is
  detached, then attached: rows/s from Kafka into raw.agent_events until all are queryable.
- ``latency``: events produced at ``--rate`` for ``--seconds``, each stamped with its send time
  (``occurred_at``); latency = ``ingested_at`` (set when the row is inserted, i.e. queryable)
  minus send time, p50/p95/max over every row.
- ``direct_insert``: the same backlog inserted straight into a table of the same shape with
  clickhouse-connect (10k-row inserts), in the same run; ``ratio_queue_to_direct`` is the share
  of direct-insert speed that the Kafka path reaches.
- ``collector``: the collector as its own process (one uvicorn worker) receiving signed batches
  of 100 events from ``--collector-clients`` client threads in this process for
  ``--collector-seconds``; accepted events/s (each batch acknowledged by Kafka before 202).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import requests
from clickhouse_connect.driver.exceptions import DatabaseError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dagster import DagsterInstance, materialize  # noqa: E402

from platform_assets.ingest.assets import kafka_topics  # noqa: E402
from platform_assets.ingest.collector.events import sign  # noqa: E402
from platform_assets.ops.assets import clickhouse_schema  # noqa: E402
from platform_assets.resources import resources_from_env  # noqa: E402
from platform_assets.stack.process import free_port  # noqa: E402
from platform_assets.stack.scratch import scratch_stack  # noqa: E402

TEMPLATE = (
    '{{"event_id":"{id}","event_type":"llm_call","occurred_at":"{at}","workspace_id":"ws_{ws}",'
    '"session_id":"s","actor_id":"a","source":"bench","model":"gpt-4o-mini","provider":"openai",'
    '"input_tokens":{tin},"output_tokens":{tout},"latency_ms":123.4,"success":1,'
    '"unit_cost_input":1.5e-7,"unit_cost_output":6e-7}}'
)


def iso_now() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns / 1e9)) + f".{(ns // 1_000_000) % 1000:03d}Z"


def event(i: int, at: str) -> bytes:
    return TEMPLATE.format(id=uuid.uuid4(), at=at, ws=i % 20, tin=100 + i % 900, tout=10 + i % 90).encode()


def produce(kafka, values, rate: float | None = None) -> float:
    producer = kafka.producer(
        **{
            "linger.ms": 20,
            "batch.num.messages": 10000,
            "enable.idempotence": False,
            "acks": "1",
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    started = time.monotonic()
    for n, value in enumerate(values):
        while True:
            try:
                producer.produce("agent_events", value=value)
                break
            except BufferError:
                producer.poll(0.05)
        if rate and n % 1000 == 0:
            ahead = n / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        if n % 10000 == 0:
            producer.poll(0)
    producer.flush(120)
    return time.monotonic() - started


def count(ch, where: str) -> int:
    return int(ch.query(f"SELECT count() FROM raw.agent_events WHERE {where}").result_rows[0][0])


def attach(ch) -> None:
    try:
        ch.command("ATTACH TABLE kafka_queue.agent_events")
    except DatabaseError as exc:  # this build's LOGICAL_ERROR on Kafka tables (ARCHITECTURE.md)
        if "Shutdown was called" not in str(exc):
            raise


def kafka_to_clickhouse(res, backlog: int) -> dict:
    kafka, ch_res = res["kafka"], res["clickhouse"]
    with ch_res.client() as ch:
        ch.command("DETACH TABLE kafka_queue.agent_events")
        at = iso_now()
        values = [event(i, at) for i in range(backlog)]
        produce_s = produce(kafka, values)
        before = count(ch, "source = 'bench'")
        started = time.monotonic()
        attach(ch)
        first = None
        while (landed := count(ch, "source = 'bench'") - before) < backlog:
            if first is None and landed > 0:
                first = time.monotonic()
            if time.monotonic() - started > 600:
                break
            time.sleep(0.1)
        done = time.monotonic()
        first = first or done
        seconds = done - started
    return {
        "events": backlog,
        "landed": landed,
        "produce_events_per_s": round(backlog / produce_s),
        "seconds_incl_group_join": round(seconds, 2),
        "group_join_s": round(first - started, 2),
        "rows_per_s_after_first_row": round(landed / max(done - first, 1e-3)),
    }, values


def latency(res, rate: float, seconds: float) -> dict:
    kafka, ch_res = res["kafka"], res["clickhouse"]
    tag = f"lat-{uuid.uuid4().hex[:6]}"
    total = int(rate * seconds)

    def values():
        for i in range(total):
            yield (
                TEMPLATE.format(id=uuid.uuid4(), at=iso_now(), ws=i % 20, tin=1, tout=1)
                .encode()
                .replace(b'"source":"bench"', f'"source":"{tag}"'.encode())
            )

    produce_s = produce(kafka, values(), rate=rate)
    with ch_res.client() as ch:
        deadline = time.monotonic() + 120
        while count(ch, f"source = '{tag}'") < total and time.monotonic() < deadline:
            time.sleep(0.5)
        p50, p95, mx, n = ch.query(
            "SELECT quantileExact(0.5)(d), quantileExact(0.95)(d), max(d), count() FROM "
            f"(SELECT dateDiff('millisecond', occurred_at, ingested_at) / 1000 AS d FROM raw.agent_events "
            f"WHERE source = '{tag}')"
        ).result_rows[0]
    return {
        "target_events_per_s": rate,
        "achieved_events_per_s": round(total / produce_s),
        "events": total,
        "landed": int(n),
        "p50_s": round(p50, 3),
        "p95_s": round(p95, 3),
        "max_s": round(mx, 3),
    }


def direct_insert(res, values: list[bytes]) -> dict:
    rows = [json.loads(v) for v in values]
    cols = list(rows[0].keys())
    data = [[r[c] for c in cols] for r in rows]
    for r in data:
        r[cols.index("event_id")] = uuid.UUID(r[cols.index("event_id")])
    with res["clickhouse"].client() as ch:
        ch.command("DROP TABLE IF EXISTS raw.bench_direct")
        ch.command("CREATE TABLE raw.bench_direct AS raw.agent_events")
        at_index = cols.index("occurred_at")
        from datetime import datetime

        stamp = datetime.fromisoformat(rows[0]["occurred_at"].replace("Z", "+00:00"))
        for r in data:
            r[at_index] = stamp
        started = time.monotonic()
        for i in range(0, len(data), 10000):
            ch.insert("raw.bench_direct", data[i : i + 10000], column_names=cols)
        seconds = time.monotonic() - started
        landed = ch.query("SELECT count() FROM raw.bench_direct").result_rows[0][0]
        ch.command("DROP TABLE raw.bench_direct")
    return {
        "events": len(data),
        "landed": int(landed),
        "seconds": round(seconds, 2),
        "rows_per_s": round(len(data) / seconds),
    }


def collector(env: dict[str, str], seconds: float, clients: int) -> dict:
    port = free_port()
    proc = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "platform-collector"), "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    key_id, _, secret = env["COLLECTOR_HMAC_KEYS"].partition(":")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/health", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("collector did not start")
            time.sleep(0.1)
        accepted = [0] * clients
        refused = [0] * clients
        stop = time.monotonic() + seconds

        # Bodies are built before the clock starts: the figure is the collector's, not the client's.
        bodies = [
            json.dumps({"events": [json.loads(event(i, iso_now())) for i in range(100)]}).encode() for _ in range(50)
        ]

        def client(n: int) -> None:
            session = requests.Session()
            k = 0
            while time.monotonic() < stop:
                body = bodies[k % len(bodies)]
                k += 1
                ts = str(int(time.time()))
                resp = session.post(
                    f"{url}/ingest",
                    data=body,
                    headers={"X-Key-Id": key_id, "X-Timestamp": ts, "X-Signature": sign(secret.encode(), ts, body)},
                    timeout=30,
                )
                if resp.status_code == 202:
                    accepted[n] += 100
                else:
                    refused[n] += 100

        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
    finally:
        proc.terminate()
        proc.wait(30)
    return {
        "batch_events": 100,
        "clients": clients,
        "workers": 1,
        "seconds": round(elapsed, 2),
        "accepted_events": sum(accepted),
        "refused_events": sum(refused),
        "accepted_events_per_s": round(sum(accepted) / elapsed),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backlog", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=20_000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--collector-seconds", type=float, default=15)
    parser.add_argument("--collector-clients", type=int, default=16)
    args = parser.parse_args()

    with scratch_stack("platform-bench-ingest-") as stack:
        stack.up()
        env = stack.env()
        os.environ.update(env)
        res = resources_from_env(env)
        assert materialize(
            [kafka_topics, clickhouse_schema], resources=res, instance=DagsterInstance.ephemeral()
        ).success
        time.sleep(8)  # let the new consumers join their groups
        queue, values = kafka_to_clickhouse(res, args.backlog)
        direct = direct_insert(res, values)
        lat = latency(res, args.rate, args.seconds)
        coll = collector(env, args.collector_seconds, args.collector_clients)
    out = {
        "benchmark": "ingest",
        "kafka_to_clickhouse": queue,
        "direct_insert": direct,
        "ratio_queue_to_direct": round(queue["rows_per_s_after_first_row"] / direct["rows_per_s"], 3),
        "latency": lat,
        "collector": coll,
        "targets": {
            "kafka_to_clickhouse_events_per_s": 50_000,
            "p95_latency_s": 5,
            "collector_events_per_s_batches_of_100_one_worker": 20_000,
        },
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
