"""Benchmark: ingestion through Kafka into ClickHouse, and the collector. Prints one JSON document.

    .venv/bin/python benchmarks/bench_ingest.py [--backlogs 1000000,5000000] [--rates 20000,50000]
        [--seconds 20] [--events-per-message 100] [--collector-seconds 15] [--collector-clients 16]
        [--collector-client process|inprocess] [--collector-client-processes 1] [--only collector|kafka]

``--backlog N`` / ``--rate R`` (one value) still work and override the lists. One fresh embedded
stack (Apache Kafka, ClickHouse, ...). Messages are what the collector writes to ``agent_events``:
newline-delimited JSON rows, ``--events-per-message`` (100: one signed batch) per message, keyed
by the first event's id, produced through the collector's own ``KafkaSink`` producer (idempotent,
acks=all, linger.ms=5, its buffer bounds), one delivery callback per message. Figures:
- ``broker``: seconds of ``stack.up(["kafka"])`` on the fresh directory until healthy (includes
  formatting the log dir), the broker's ``VmRSS``/``VmHWM`` (/proc/<pid>/status) at the end of
  the run, and the bytes the ``agent_events`` partition logs take per million events produced by
  the backlog and latency sections (read before the collector section), with the topic's
  ``compression.type`` and the codec found in the first record batch of the logs.
- ``kafka_to_clickhouse``: per ``--backlogs`` value, that many events produced while the
  ClickHouse consumer is detached, then attached: ``rows_per_s`` from ``ATTACH`` until the last
  row is queryable in raw.agent_events (``count()``, polled every 50 ms). Two baselines of the
  same rows in the same run, each into a fresh table of raw.agent_events' shape:
  ``jsoneachrow_insert``, the very same message bytes concatenated into 64k-row chunks (the Kafka
  tables' ``kafka_max_block_size``) and POSTed as ``INSERT ... FORMAT JSONEachRow`` with the
  Kafka tables' input settings (clickhouse-connect ``raw_insert``): the parse cost without the
  queue; ``jsoneachrow_insert_kafka_rows_per_insert``, the same again in chunks as large as the
  Kafka path's own inserts (counted from raw.agent_events' block numbers: ``kafka_max_block_size``
  counts messages, not rows); and ``direct_insert``, the rows parsed beforehand and inserted
  column-oriented with clickhouse-connect in 64k-row blocks. Only the insert calls are timed;
  before each the benchmark waits (up to 120 s) for ClickHouse's background merges to finish.
  ``kafka_to_jsoneachrow`` and ``kafka_to_columnar`` are the ratios of the rows/s.
- ``latency``: per ``--rates`` value, events produced at that rate for ``--seconds``, each
  message's rows stamped with its send time (``occurred_at``); latency = ``ingested_at`` (set when
  the row is inserted, i.e. queryable) minus send time, p50/p95/max over every row.
- ``collector``: the collector as its own process (one uvicorn worker) receiving signed batches
  of 100 events over ``--collector-clients`` keep-alive connections for ``--collector-seconds``;
  accepted events/s (each batch acknowledged by Kafka before 202), cross-checked with the
  collector's own counter. The clients run in ``--collector-client-processes`` separate processes
  (``process``, the default: http.client, one thread per connection) or, as in earlier runs, as
  threads inside this process with requests (``inprocess``); the output names the setup and the
  CPU the collector and the clients used (share of one core) and the load average.
Targets (``target_met`` in each section): Kafka >= 150,000 rows/s and >= 0.8 of the JSONEachRow
baseline; p95 latency < 1 s; collector >= 20,000 events/s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from functools import cache
from pathlib import Path

import orjson
import requests
from clickhouse_connect.driver.exceptions import DatabaseError
from confluent_kafka.admin import ConfigResource, ResourceType
from dagster import DagsterInstance, materialize

from platform_assets.core.resources import resources_from_env
from platform_assets.ingest.assets import kafka_topics
from platform_assets.ingest.collector.config import CollectorConfig
from platform_assets.ingest.collector.events import sign
from platform_assets.ingest.collector.sink import KafkaSink
from platform_assets.ops.assets import clickhouse_schema
from platform_assets.stack.process import free_port
from platform_assets.stack.scratch import scratch_stack
from platform_assets.stack.servers import kafka_version

TEMPLATE = (
    '{{"event_id":"{id}","event_type":"llm_call","occurred_at":"{at}","workspace_id":"ws_{ws}",'
    '"session_id":"s","actor_id":"a","source":"{src}","model":"gpt-4o-mini","provider":"openai",'
    '"input_tokens":{tin},"output_tokens":{tout},"latency_ms":123.4,"success":1,'
    '"unit_cost_input":1.5e-7,"unit_cost_output":6e-7}}'
)
TOPIC = "agent_events"
BLOCK_ROWS = 65_536  # kafka_max_block_size of the Kafka tables (004_kafka_ingest.sql)
# The Kafka table's input settings, for the JSONEachRow baseline.
JSON_SETTINGS = {"date_time_input_format": "best_effort", "input_format_skip_unknown_fields": 1}
TARGETS = {
    "kafka_rows_per_s": 150_000,
    "kafka_to_jsoneachrow": 0.8,
    "p95_latency_s": 1.0,
    "collector_events_per_s_batches_of_100_one_worker": 20_000,
}
CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}

Message = tuple[bytes, bytes, int]  # (key, value, events in it)


def iso_now() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns / 1e9)) + f".{(ns // 1_000_000) % 1000:03d}Z"


def load_1m() -> float:
    return round(os.getloadavg()[0], 2)


def event(i: int, at: str, src: str = "bench") -> bytes:
    return TEMPLATE.format(id=uuid.uuid4(), at=at, src=src, ws=i % 20, tin=100 + i % 900, tout=10 + i % 90).encode()


@cache
def row_parts(src: str) -> tuple[bytes, bytes, tuple[bytes, ...]]:
    """``TEMPLATE`` cut around the id and the time: the rest repeats every 900 events."""
    tails = []
    for i in range(900):
        text = TEMPLATE.format(id="\0", at="\1", src=src, ws=i % 20, tin=100 + i % 900, tout=10 + i % 90)
        head, rest = text.split("\0")
        mid, tail = rest.split("\1")
        tails.append(tail.encode())
    return head.encode(), mid.encode(), tuple(tails)


def event_ids(n: int) -> list[bytes]:
    """``n`` random version-4 UUIDs as text (one urandom call: far cheaper than ``uuid4()``)."""
    h = os.urandom(16 * n).hex()
    return [
        f"{h[j : j + 8]}-{h[j + 8 : j + 12]}-4{h[j + 13 : j + 16]}-a{h[j + 17 : j + 20]}-{h[j + 20 : j + 32]}".encode()
        for j in range(0, 32 * n, 32)
    ]


def message(start: int, n: int, at: str, src: str) -> Message:
    """What the collector writes for one batch: ``n`` JSON rows (``TEMPLATE``) joined by newlines,
    keyed by the first event's id (``events.pack``)."""
    head, mid, tails = row_parts(src)
    ids = event_ids(n)
    stamp = at.encode()
    value = b"\n".join(b"".join((head, ids[k], mid, stamp, tails[(start + k) % 900])) for k in range(n))
    return ids[0], value, n


def collector_sink(bootstrap: str) -> KafkaSink:
    """The collector's own sink: its producer settings and delivery thread (hash key and signing
    keys are not used by the sink)."""
    return KafkaSink(CollectorConfig(bootstrap_servers=bootstrap, hmac_keys={}, hash_key=b""))


def produce(bootstrap: str, messages: Iterable[Message], rate: float | None = None) -> dict:
    """Through the collector's producer, one delivery callback per message like the collector;
    ``rate`` in events/s paces the sends. Returns the events, messages, seconds and failures."""
    sink = collector_sink(bootstrap)
    failed: list[str] = []

    def delivered(err, _msg) -> None:
        if err is not None:
            failed.append(str(err))

    events = sent = 0
    started = time.monotonic()
    try:
        for key, value, n in messages:
            while True:
                try:
                    sink.producer.produce(TOPIC, value=value, key=key, on_delivery=delivered)
                    break
                except BufferError:  # the sink's bounded buffer: its delivery thread drains it
                    time.sleep(0.002)
            events += n
            sent += 1
            if rate:
                ahead = events / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        unflushed = sink.producer.flush(300)
    finally:
        sink.close()
    seconds = time.monotonic() - started
    return {
        "events": events,
        "messages": sent,
        "seconds": round(seconds, 2),
        "events_per_s": round(events / seconds),
        "failed_messages": len(failed) + unflushed,
    }


def rows_in(ch, table: str = "raw.agent_events", where: str | None = None) -> int:
    """``count()``; without ``where`` it is read from the parts' metadata (cheap to poll)."""
    sql = f"SELECT count() FROM {table}" + (f" WHERE {where}" if where else "")
    return int(ch.query(sql).result_rows[0][0])


def settle_merges(ch, timeout_s: float = 120) -> float:
    """Wait until ClickHouse runs no background merge (earlier sections' parts), up to ``timeout_s``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if rows_in(ch, "system.merges") == 0:
            break
        time.sleep(0.5)
    return round(time.monotonic() - started, 2)


def attach(ch) -> None:
    try:
        ch.command("ATTACH TABLE kafka_queue.agent_events")
    except DatabaseError as exc:  # this build's LOGICAL_ERROR on Kafka tables (docs/architecture.md)
        if "Shutdown was called" not in str(exc):
            raise


def last_block(ch) -> int:
    """The table's last block number: one per insert (per partition of the table) in a MergeTree."""
    return int(
        ch.query(
            "SELECT max(max_block_number) FROM system.parts WHERE database = 'raw' AND table = 'agent_events'"
        ).result_rows[0][0]
    )


def kafka_consumers(ch) -> dict:
    """The Kafka table's consumers after the drain: how many, partitions each, rebalances."""
    try:
        rows = ch.query(
            "SELECT length(assignments.partition_id), num_messages_read, num_rebalance_assignments "
            "FROM system.kafka_consumers WHERE database = 'kafka_queue' AND table = 'agent_events'"
        ).result_rows
    except DatabaseError as exc:
        return {"error": str(exc).splitlines()[0][:200]}
    return {
        "count": len(rows),
        "partitions_assigned": [int(r[0]) for r in rows],
        "messages_read": [int(r[1]) for r in rows],
        "rebalance_assignments": [int(r[2]) for r in rows],
    }


def kafka_backlog(res, bootstrap: str, events: int, per_message: int) -> tuple[dict, list[Message]]:
    """``events`` produced with the consumer detached; rows/s from ATTACH until all are queryable."""
    with res["clickhouse"].client() as ch:
        ch.command("DETACH TABLE kafka_queue.agent_events")
        at = iso_now()
        t0 = time.monotonic()
        messages = [message(i, min(per_message, events - i), at, "bench") for i in range(0, events, per_message)]
        build_s = time.monotonic() - t0
        produced = produce(bootstrap, messages)
        merges_wait = settle_merges(ch)
        before = rows_in(ch)
        blocks_before = last_block(ch)
        dead_before = rows_in(ch, "dead_letter.kafka_messages")
        load_start = load_1m()
        started = time.monotonic()
        attach(ch)
        first = None
        consumers_at_first_row: dict = {}
        deadline = started + max(600, events / 10_000)
        while True:
            landed = rows_in(ch) - before
            now = time.monotonic()
            if first is None and landed > 0:
                first = now
                consumers_at_first_row = kafka_consumers(ch)
            if landed >= events or now > deadline:
                break
            time.sleep(0.05)
        done = now
        seconds = done - started
        dead = rows_in(ch, "dead_letter.kafka_messages") - dead_before
        consumers = kafka_consumers(ch)
        inserts = last_block(ch) - blocks_before
        first = first or done
        # Undefined when every row arrived between two polls.
        after_first = round(landed / (done - first)) if done > first else None
    return {
        "events": events,
        "messages": len(messages),
        "landed": landed,
        "all_landed": landed >= events,
        "dead_letters": dead,
        "message_bytes": sum(len(v) for _, v, _ in messages),
        "build_messages_s": round(build_s, 2),
        "produce": produced,
        "waited_for_merges_s": merges_wait,
        "seconds": round(seconds, 2),
        "rows_per_s": round(landed / seconds),
        "first_row_after_s": round(first - started, 2),
        "inserts_into_raw": inserts,
        "rows_per_insert": round(landed / inserts) if inserts else None,
        "rows_per_s_after_first_row": after_first,
        "load_average_1m_start_end": [load_start, load_1m()],
        "consumers_at_first_row": consumers_at_first_row,
        "consumers_at_end": consumers,
    }, messages


def blocks(messages: list[Message], rows: int = BLOCK_ROWS) -> Iterator[tuple[bytes, int]]:
    """The message bodies concatenated (newline between) into chunks of at most ``rows`` rows."""
    chunk: list[bytes] = []
    n = 0
    for _, value, count in messages:
        if chunk and n + count > rows:
            yield b"\n".join(chunk), n
            chunk, n = [], 0
        chunk.append(value)
        n += count
    if chunk:
        yield b"\n".join(chunk), n


def scratch_table(ch, name: str) -> None:
    ch.command(f"DROP TABLE IF EXISTS {name}")
    ch.command(f"CREATE TABLE {name} AS raw.agent_events")


def jsoneachrow_insert(res, messages: list[Message], rows_per_chunk: int = BLOCK_ROWS) -> dict:
    """The very same message bytes over HTTP, ``INSERT INTO ... FORMAT JSONEachRow``, in chunks of
    at most ``rows_per_chunk`` rows (whole messages)."""
    table = "raw.bench_jsoneachrow"
    with res["clickhouse"].client() as ch:
        scratch_table(ch, table)
        merges_wait = settle_merges(ch)
        load_start = load_1m()
        seconds, rows, chunks, size = 0.0, 0, 0, 0
        for body, n in blocks(messages, rows_per_chunk):
            started = time.monotonic()
            ch.raw_insert(table, insert_block=body, settings=JSON_SETTINGS, fmt="JSONEachRow")
            seconds += time.monotonic() - started
            rows, chunks, size = rows + n, chunks + 1, size + len(body)
        landed = rows_in(ch, table)
        ch.command(f"DROP TABLE {table}")
    return {
        "events": rows,
        "landed": landed,
        "rows_per_chunk_max": rows_per_chunk,
        "inserts": chunks,
        "bytes": size,
        "waited_for_merges_s": merges_wait,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "load_average_1m_start_end": [load_start, load_1m()],
    }


def direct_insert(res, messages: list[Message]) -> dict:
    """The same rows parsed beforehand (per block, outside the clock) and inserted column-oriented
    with clickhouse-connect, one insert per 64k-row block."""
    table = "raw.bench_direct"
    cols = list(orjson.loads(messages[0][1].split(b"\n", 1)[0]))
    at, uid = cols.index("occurred_at"), cols.index("event_id")
    with res["clickhouse"].client() as ch:
        scratch_table(ch, table)
        merges_wait = settle_merges(ch)
        load_start = load_1m()
        seconds, rows, chunks = 0.0, 0, 0
        for body, n in blocks(messages):
            parsed = [orjson.loads(line) for line in body.split(b"\n")]
            columns = [[r[c] for r in parsed] for c in cols]
            columns[at] = [datetime.fromisoformat(parsed[0]["occurred_at"].replace("Z", "+00:00"))] * n
            columns[uid] = [uuid.UUID(v) for v in columns[uid]]
            del parsed
            started = time.monotonic()
            ch.insert(table, columns, column_names=cols, column_oriented=True)
            seconds += time.monotonic() - started
            rows, chunks = rows + n, chunks + 1
        landed = rows_in(ch, table)
        ch.command(f"DROP TABLE {table}")
    return {
        "events": rows,
        "landed": landed,
        "inserts": chunks,
        "waited_for_merges_s": merges_wait,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "load_average_1m_start_end": [load_start, load_1m()],
    }


def backlog_section(res, bootstrap: str, events: int, per_message: int) -> dict:
    queue, messages = kafka_backlog(res, bootstrap, events, per_message)
    as_json = jsoneachrow_insert(res, messages)
    # kafka_max_block_size counts messages, not rows: the Kafka path's inserts can be far larger
    # than 64k rows. The same bytes again in chunks of the rows per insert it actually made.
    kafka_rows = max(per_message, queue["rows_per_insert"] or BLOCK_ROWS)
    as_json_kafka_size = jsoneachrow_insert(res, messages, kafka_rows)
    columnar = direct_insert(res, messages)
    del messages
    to_json = round(queue["rows_per_s"] / as_json["rows_per_s"], 3)
    after_first = queue["rows_per_s_after_first_row"]
    return {
        "events": events,
        "kafka": queue,
        "jsoneachrow_insert": as_json,
        "jsoneachrow_insert_kafka_rows_per_insert": as_json_kafka_size,
        "direct_insert": columnar,
        "kafka_to_jsoneachrow": to_json,
        "kafka_to_columnar": round(queue["rows_per_s"] / columnar["rows_per_s"], 3),
        "kafka_to_jsoneachrow_kafka_rows_per_insert": round(queue["rows_per_s"] / as_json_kafka_size["rows_per_s"], 3),
        "kafka_after_first_row_to_jsoneachrow": round(after_first / as_json["rows_per_s"], 3) if after_first else None,
        "target_met": {
            "kafka_rows_per_s_at_least_150000": queue["all_landed"]
            and queue["rows_per_s"] >= TARGETS["kafka_rows_per_s"],
            "kafka_to_jsoneachrow_at_least_0.8": queue["all_landed"] and to_json >= TARGETS["kafka_to_jsoneachrow"],
        },
    }


def latency(res, bootstrap: str, rate: float, seconds: float, per_message: int) -> dict:
    tag = f"lat-{uuid.uuid4().hex[:6]}"
    total = int(rate * seconds)

    def messages() -> Iterator[Message]:  # stamped when built, just before the send
        for i in range(0, total, per_message):
            yield message(i, min(per_message, total - i), iso_now(), tag)

    load_start = load_1m()
    produced = produce(bootstrap, messages(), rate=rate)
    with res["clickhouse"].client() as ch:
        deadline = time.monotonic() + 120
        while rows_in(ch, where=f"source = '{tag}'") < total and time.monotonic() < deadline:
            time.sleep(0.5)
        p50, p95, mx, n = ch.query(
            "SELECT quantileExact(0.5)(d), quantileExact(0.95)(d), max(d), count() FROM "
            f"(SELECT dateDiff('millisecond', occurred_at, ingested_at) / 1000 AS d FROM raw.agent_events "
            f"WHERE source = '{tag}')"
        ).result_rows[0]
    return {
        "target_events_per_s": rate,
        "achieved_events_per_s": round(total / produced["seconds"]),
        "events": total,
        "messages": produced["messages"],
        "failed_messages": produced["failed_messages"],
        "landed": int(n),
        "p50_s": round(p50, 3),
        "p95_s": round(p95, 3),
        "max_s": round(mx, 3),
        "load_average_1m_start_end": [load_start, load_1m()],
        "target_met": {"p95_under_1_s": int(n) >= total and p95 < TARGETS["p95_latency_s"]},
    }


def status_kb(pid: int | None, field: str) -> int | None:
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return None


def first_batch_codec(log: Path) -> str | None:
    """Compression codec of the first record batch of a segment (attributes bits 0-2; v2 format:
    baseOffset 8, length 4, leaderEpoch 4, magic 1, crc 4, attributes 2)."""
    with log.open("rb") as f:
        head = f.read(23)
    if len(head) < 23:
        return None
    return CODECS.get(int.from_bytes(head[21:23], "big") & 0x7, "unknown")


def topic_disk(server, admin, events: int) -> dict:
    """The topic's partition logs under the broker's data dir, per million events produced."""
    dirs = sorted(p for p in server.data_dir.glob(f"{TOPIC}-*") if p.is_dir())
    logs = [f for d in dirs for f in d.glob("*.log")]
    log_bytes = sum(f.stat().st_size for f in logs)
    allocated = sum(f.stat().st_blocks * 512 for d in dirs for f in d.iterdir() if f.is_file())
    codecs = sorted({c for f in logs if f.stat().st_size and (c := first_batch_codec(f))})
    (conf,) = admin.describe_configs([ConfigResource(ResourceType.TOPIC, TOPIC)]).values()
    compression_type = conf.result(timeout=30)["compression.type"].value
    return {
        "topic": TOPIC,
        "partitions": len(dirs),
        "events_produced": events,
        "log_bytes": log_bytes,
        "allocated_bytes_incl_indexes": allocated,
        "log_bytes_per_million_events": round(log_bytes / events * 1e6),
        # A partition whose first segment is not offset 0 lost segments to retention: then the
        # bytes above undercount.
        "segments_deleted_by_retention": any(not (d / f"{0:020d}.log").exists() for d in dirs),
        "topic_compression_type": compression_type,
        "record_batch_codecs_found": codecs,
        "compressed": compression_type not in ("producer", "uncompressed") or any(c != "none" for c in codecs),
    }


def ingest_layout(res) -> dict:
    """What the consumer side looks like in this run (it is being changed in parallel)."""
    with res["clickhouse"].client() as ch:
        version = ch.query("SELECT version()").result_rows[0][0]
        (engine,) = ch.query(
            "SELECT engine_full FROM system.tables WHERE database = 'kafka_queue' AND name = 'agent_events'"
        ).result_rows[0]
    names = ("kafka_num_consumers", "kafka_thread_per_consumer", "kafka_max_block_size", "kafka_flush_interval_ms")
    setting = {k: re.search(rf"{k} = (\d+)", engine) for k in names}
    meta = res["kafka"].admin().list_topics(timeout=30).topics
    return {
        "clickhouse_version": version,
        "kafka_version": kafka_version(),
        "topic_partitions": {name: len(t.partitions) for name, t in sorted(meta.items()) if not name.startswith("__")},
        **{k: int(m.group(1)) if m else None for k, m in setting.items()},
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
        [
            os.path.join(os.path.dirname(sys.executable), "platform-collector"),
            *("--port", str(port), "--grpc-port", str(free_port()), "--workers", "1"),
        ],
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


def numbers(text: str) -> list[int]:
    return [int(float(v)) for v in text.split(",") if v.strip()]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backlogs", type=numbers, default=[1_000_000, 5_000_000], help="comma-separated")
    parser.add_argument("--backlog", type=int, help="one backlog (overrides --backlogs)")
    parser.add_argument("--rates", type=numbers, default=[20_000, 50_000], help="events/s, comma-separated")
    parser.add_argument("--rate", type=float, help="one rate (overrides --rates)")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--events-per-message", type=int, default=100)
    parser.add_argument("--collector-seconds", type=float, default=15)
    parser.add_argument("--collector-clients", type=int, default=16)
    parser.add_argument("--collector-client", choices=["process", "inprocess"], default="process")
    parser.add_argument("--collector-client-processes", type=int, default=1)
    parser.add_argument(
        "--only", choices=["collector", "kafka"], help="run one part: the collector, or everything but it"
    )
    args = parser.parse_args()
    backlogs = [args.backlog] if args.backlog else args.backlogs
    rates = [args.rate] if args.rate else args.rates

    out: dict = {"benchmark": "ingest", "load_average_1m_start": load_1m()}
    with scratch_stack("platform-bench-ingest-") as stack:
        kafka_server = stack.servers["kafka"]
        started = time.monotonic()
        stack.up(["kafka"])  # fresh directory: includes formatting the log dir
        broker_up_s = round(time.monotonic() - started, 3)
        assert kafka_server.health().healthy
        stack.up()
        env = stack.env()
        os.environ.update(env)
        res = resources_from_env(env)
        bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
        assert materialize(
            [kafka_topics, clickhouse_schema], resources=res, instance=DagsterInstance.ephemeral()
        ).success
        time.sleep(8)  # let the new consumers join their groups
        out["layout"] = {**ingest_layout(res), "events_per_message": args.events_per_message}
        broker: dict = {"version": kafka_version(), "up_fresh_dir_s": broker_up_s}
        if args.only != "collector":
            produced = 0
            out["kafka_to_clickhouse"] = []
            for events in backlogs:
                out["kafka_to_clickhouse"].append(backlog_section(res, bootstrap, events, args.events_per_message))
                produced += events
            out["latency"] = []
            for rate in rates:
                out["latency"].append(latency(res, bootstrap, rate, args.seconds, args.events_per_message))
                produced += int(rate * args.seconds)
            broker["disk"] = topic_disk(kafka_server, res["kafka"].admin(), produced)
        if args.only != "kafka":
            out["collector"] = collector(
                env,
                args.collector_seconds,
                args.collector_clients,
                args.collector_client,
                args.collector_client_processes,
            )
            out["collector"]["target_met"] = {
                "at_least_20000_events_per_s": out["collector"]["accepted_events_per_s"]
                >= TARGETS["collector_events_per_s_batches_of_100_one_worker"]
            }
        pid = kafka_server.pid()
        broker["rss_end_mb"] = round((status_kb(pid, "VmRSS") or 0) / 1024, 1)
        broker["rss_peak_mb"] = round((status_kb(pid, "VmHWM") or 0) / 1024, 1)
        out["broker"] = broker
    out["load_average_1m_end"] = load_1m()
    out["targets"] = TARGETS
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
