"""Benchmark: ingestion through Kafka into ClickHouse, and the collector. Prints one JSON document.

    .venv/bin/python benchmarks/bench_ingest.py [--backlog 1000000] [--rate 20000] [--seconds 20]
        [--collector-seconds 15] [--collector-clients 16] [--collector-client process|inprocess]
        [--collector-client-processes 1] [--only collector]

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
  of 100 events over ``--collector-clients`` keep-alive connections for ``--collector-seconds``;
  accepted events/s (each batch acknowledged by Kafka before 202), cross-checked with the
  collector's own counter. The clients run in ``--collector-client-processes`` separate processes
  (``process``, the default: http.client, one thread per connection) or, as in earlier runs, as
  threads inside this process with requests (``inprocess``); the output names the setup and the
  CPU the collector and the clients used (share of one core) and the load average.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import requests
from clickhouse_connect.driver.exceptions import DatabaseError
from dagster import DagsterInstance, materialize

from platform_assets.core.resources import resources_from_env
from platform_assets.ingest.assets import kafka_topics
from platform_assets.ingest.collector.events import sign
from platform_assets.ops.assets import clickhouse_schema
from platform_assets.stack.process import free_port
from platform_assets.stack.scratch import scratch_stack

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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


CLIENT_SETUPS = {
    "process": "{processes} separate client process(es), {clients} keep-alive connections in total "
    "(one thread each, http.client)",
    "inprocess": "{clients} threads inside the benchmark process, requests.Session each",
}


def collector_bodies() -> list[bytes]:
    """50 different batches of 100 events, built before the clock starts."""
    return [json.dumps({"events": [json.loads(event(i, iso_now())) for i in range(100)]}).encode() for _ in range(50)]


def post_until(send, bodies: list[bytes], key_id: str, secret: bytes, stop_at: float, tally: list[int]) -> None:
    """Signed POSTs (a fresh timestamp and signature each) until ``stop_at`` (wall clock);
    ``tally`` = [accepted events, refused events]."""
    k = 0
    while time.time() < stop_at:
        body = bodies[k % len(bodies)]
        k += 1
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Key-Id": key_id,
            "X-Timestamp": ts,
            "X-Signature": sign(secret, ts, body),
        }
        tally[0 if send(body, headers) == 202 else 1] += 100


def requests_sender(url: str):
    session = requests.Session()
    return lambda body, headers: session.post(f"{url}/ingest", data=body, headers=headers, timeout=30).status_code


def http_client_sender(url: str):
    """One keep-alive connection with the standard library's http.client (far less client CPU
    per request than requests); a broken connection counts as a refusal and reconnects."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)

    def send(body: bytes, headers: dict[str, str]) -> int:
        try:
            conn.request("POST", "/ingest", body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            return resp.status
        except (OSError, http.client.HTTPException):
            conn.close()
            return 0

    return send


def client_threads(make_sender, url, key_id, secret, threads, start_at, seconds) -> dict:
    """``threads`` clients, each with its own connection, from ``start_at`` for ``seconds``."""
    bodies = collector_bodies()
    tallies = [[0, 0] for _ in range(threads)]
    senders = [make_sender(url) for _ in range(threads)]
    workers = [
        threading.Thread(target=post_until, args=(senders[n], bodies, key_id, secret, start_at + seconds, tallies[n]))
        for n in range(threads)
    ]
    time.sleep(max(0.0, start_at - time.time()))
    cpu_before = time.process_time()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return {
        "accepted": sum(t[0] for t in tallies),
        "refused": sum(t[1] for t in tallies),
        "cpu_s": time.process_time() - cpu_before,
        "ended_at": time.time(),
    }


def client_process(url, key_id, secret, threads, start_at, seconds, results) -> None:
    """Entry point of one client process (multiprocessing, spawned)."""
    results.put(client_threads(http_client_sender, url, key_id, secret, threads, start_at, seconds))


def run_clients(mode: str, url: str, key_id: str, secret: bytes, clients: int, processes: int, start_at, seconds):
    """``process``: ``processes`` separate processes sharing ``clients`` connections (http.client);
    ``inprocess``: ``clients`` threads in this process with requests (the original setup)."""
    if mode == "inprocess":
        return [client_threads(requests_sender, url, key_id, secret, clients, start_at, seconds)]
    ctx = multiprocessing.get_context("spawn")  # a clean interpreter: no inherited threads or stack state
    results = ctx.Queue()
    shares = [clients // processes + (1 if n < clients % processes else 0) for n in range(processes)]
    procs = [
        ctx.Process(target=client_process, args=(url, key_id, secret, share, start_at, seconds, results))
        for share in shares
    ]
    for p in procs:
        p.start()
    out = [results.get(timeout=start_at - time.time() + seconds + 120) for _ in procs]
    for p in procs:
        p.join(30)
    return out


def wait_healthy(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if requests.get(f"{url}/health", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("collector did not start")
        time.sleep(0.1)


def accepted_by_collector(url: str) -> int:
    """The collector's own count of acknowledged events (a cross-check of the client's tally)."""
    text = requests.get(f"{url}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith("collector_events_accepted_total "):
            return int(line.split()[1])
    return 0


def collector(env: dict[str, str], seconds: float, clients: int, mode: str = "process", processes: int = 1) -> dict:
    port = free_port()
    proc = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "platform-collector"), "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    key_id, _, secret = env["COLLECTOR_HMAC_KEYS"].partition(":")
    # Spawned client processes re-import this module (dagster): they all start at start_at, later.
    start_at = time.time() + (2 if mode == "inprocess" else 15)
    at_start: dict[str, float] = {}

    def clock_starts() -> None:  # the collector's CPU and the load average, when the clients start
        time.sleep(max(0.0, start_at - time.time()))
        at_start.update(cpu=cpu_seconds(proc.pid), load=os.getloadavg()[0])

    try:
        wait_healthy(url)
        starter = threading.Thread(target=clock_starts)
        starter.start()
        results = run_clients(mode, url, key_id, secret.encode(), clients, processes, start_at, seconds)
        starter.join()
        ended = max(r["ended_at"] for r in results)
        collector_cpu = cpu_seconds(proc.pid) - at_start["cpu"]
        load = [round(at_start["load"], 2), round(os.getloadavg()[0], 2)]
        counted = accepted_by_collector(url)
    finally:
        proc.terminate()
        proc.wait(30)
    elapsed = ended - start_at
    accepted = sum(r["accepted"] for r in results)
    return {
        "batch_events": 100,
        "workers": 1,
        "client": CLIENT_SETUPS[mode].format(clients=clients, processes=processes),
        "clients": clients,
        "seconds": round(elapsed, 2),
        "accepted_events": accepted,
        "accepted_events_counted_by_collector": counted,
        "refused_events": sum(r["refused"] for r in results),
        "accepted_events_per_s": round(accepted / elapsed),
        "collector_cpu_share_of_one_core": round(collector_cpu / elapsed, 2),
        "client_cpu_share_of_one_core": round(sum(r["cpu_s"] for r in results) / elapsed, 2),
        "load_average_1m_start_end": load,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backlog", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=20_000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--collector-seconds", type=float, default=15)
    parser.add_argument("--collector-clients", type=int, default=16)
    parser.add_argument("--collector-client", choices=["process", "inprocess"], default="process")
    parser.add_argument("--collector-client-processes", type=int, default=1)
    parser.add_argument("--only", choices=["collector"], help="run one section (the others are skipped)")
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
        out: dict = {"benchmark": "ingest"}
        if args.only is None:
            queue, values = kafka_to_clickhouse(res, args.backlog)
            direct = direct_insert(res, values)
            out["kafka_to_clickhouse"] = queue
            out["direct_insert"] = direct
            out["ratio_queue_to_direct"] = round(queue["rows_per_s_after_first_row"] / direct["rows_per_s"], 3)
            out["latency"] = latency(res, args.rate, args.seconds)
        out["collector"] = collector(
            env, args.collector_seconds, args.collector_clients, args.collector_client, args.collector_client_processes
        )
    out.update(
        {
            "targets": {
                "kafka_to_clickhouse_events_per_s": 50_000,
                "p95_latency_s": 5,
                "collector_events_per_s_batches_of_100_one_worker": 20_000,
            },
        }
    )
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
