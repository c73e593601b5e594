"""Benchmark: does a noisy tenant's dashboard slow ingestion? Tenant limits against none.

    .venv/bin/python benchmarks/bench_tenants.py [--events 300000] [--readers 4] [--rounds 2]

One fresh embedded stack with one tenant, ``noisy`` (``PLATFORM_TENANTS``: 60 queries a minute,
1 thread, 10 s per query). Each scenario produces ``--events`` product events with default
batching (as the collector does) and times how long ClickHouse takes to land them all in
``raw.product_events`` (from the first produce to the last row, polled every 100 ms), while:

- ``quiet``: nothing else runs (the baseline);
- ``tenant``: ``--readers`` threads query the rollups in a loop as ``tenant_noisy``, each query
  CPU-heavy (every rollup row repeated 2 M times, what a bad dashboard panel does); past its quota
  the tenant is refused (``QUOTA_EXCEEDED``) and its threads keep trying;
- ``unbounded``: the same threads and queries as the admin user: no quota, no thread limit.

Scenarios are interleaved over ``--rounds``. Figures, printed as one JSON document: events/s
landed per scenario and round, the median, the readers' answered and refused queries, and
``ratio_tenant_to_quiet`` / ``ratio_unbounded_to_quiet`` (1.0 = ingestion unaffected).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

from clickhouse_connect.driver.exceptions import DatabaseError
from dagster import DagsterInstance, materialize

from platform_assets.core.resources import ClickHouseResource, resources_from_env
from platform_assets.ingest.assets import kafka_topics
from platform_assets.ops.assets import clickhouse_schema
from platform_assets.stack.scratch import scratch_stack

TENANTS = json.dumps(
    [
        {
            "name": "noisy",
            "workspaces": ["bench_ws"],
            "queries_per_minute": 60,
            "max_threads": 1,
            "max_execution_time": 10,
        }
    ]
)
# Each rollup row repeated 2 M times and summed: CPU-bound in proportion to the rows the reader sees.
HEAVY = (
    "SELECT workspace_id, sum(events * n) FROM rollups.product_events_1m "
    "ARRAY JOIN range(2000000) AS n GROUP BY workspace_id"
)


def produce(kafka, n: int, tag: str) -> None:
    producer = kafka.producer()
    day = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for _ in range(n):
        row = {"event_id": str(uuid.uuid4()), "event_type": tag, "occurred_at": day, "workspace_id": "bench_ws"}
        while True:
            try:
                producer.produce("product_events", value=json.dumps(row).encode(), key=uuid.uuid4().bytes)
                break
            except BufferError:  # the producer's queue is full: wait for deliveries, as a client would
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(60) == 0


def landed(clickhouse: ClickHouseResource, tag: str) -> int:
    with clickhouse.client() as ch:
        sql = "SELECT count() FROM raw.product_events WHERE event_type = {t:String}"
        return ch.query(sql, parameters={"t": tag}).result_rows[0][0]


def hammer(reader: ClickHouseResource, stop: threading.Event, counts: Counter) -> None:
    client = None
    while not stop.is_set():
        try:
            client = client or reader.get_client()  # connecting runs a query: the quota counts it too
            client.query(HEAVY)
            counts["answered"] += 1
        except DatabaseError as exc:
            counts["refused_quota" if "QUOTA_EXCEEDED" in str(exc) else "refused_other"] += 1
            time.sleep(0.05)
    if client is not None:
        client.close()


def scenario(clickhouse, kafka, reader: ClickHouseResource | None, readers: int, events: int) -> dict:
    tag = f"bench_{uuid.uuid4().hex[:8]}"
    stop, counts = threading.Event(), Counter()
    threads = [threading.Thread(target=hammer, args=(reader, stop, counts), daemon=True) for _ in range(readers)]
    if reader is not None:
        for t in threads:
            t.start()
        time.sleep(2)  # the readers are busy before the events arrive
    started = time.monotonic()
    produce(kafka, events, tag)
    while landed(clickhouse, tag) < events:
        time.sleep(0.1)
    seconds = time.monotonic() - started
    stop.set()
    for t in threads:
        if t.is_alive():
            t.join(30)
    return {"events": events, "seconds": round(seconds, 2), "events_per_s": round(events / seconds), **counts}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    out: dict = {"events": args.events, "readers": args.readers, "cores": len(os.sched_getaffinity(0)), "runs": []}
    with scratch_stack("platform-bench-tenants-", tenants=TENANTS) as stack:
        stack.up()
        env = stack.env()
        res = resources_from_env(env)
        clickhouse, kafka = res["clickhouse"], res["kafka"]
        assert materialize(
            [kafka_topics, clickhouse_schema],
            resources={"clickhouse": clickhouse, "kafka": kafka},
            instance=DagsterInstance.ephemeral(),
        ).success
        tenant = clickhouse.replaced(username="tenant_noisy", password=env["TENANT_NOISY_PASSWORD"])
        produce(kafka, 1000, "warmup")
        for rnd in range(args.rounds):
            for name, reader in (("quiet", None), ("tenant", tenant), ("unbounded", clickhouse)):
                run = scenario(clickhouse, kafka, reader, args.readers, args.events)
                out["runs"].append({"round": rnd, "scenario": name, **run})
                print(json.dumps(out["runs"][-1]), flush=True)
    median = {
        name: statistics.median(r["events_per_s"] for r in out["runs"] if r["scenario"] == name)
        for name in ("quiet", "tenant", "unbounded")
    }
    out["median_events_per_s"] = median
    out["ratio_tenant_to_quiet"] = round(median["tenant"] / median["quiet"], 2)
    out["ratio_unbounded_to_quiet"] = round(median["unbounded"] / median["quiet"], 2)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
