"""Benchmark: OTLP items accepted per collector core, per signal and protocol, and the time from
send to queryable in ClickHouse. Prints one JSON document.

    .venv/bin/python benchmarks/bench_otlp.py [--seconds 10] [--items 512] [--clients 8]
        [--client-processes 1] [--latency-samples 20] [--signals traces,metrics,logs]
        [--otelcol PATH | --no-otelcol] [--otelcol-gomaxprocs 1]

One fresh embedded stack (Apache Kafka, ClickHouse). The collector runs as its own process,
``platform-collector --workers 1`` (one worker: one core at most), on the real broker; every
request is acknowledged by Kafka before its answer. Requests of ``--items`` items each (spans
of an LLM call with 9 attributes; log records with a body and 3 attributes; histogram data
points with 3 attributes and 15 buckets), built and serialized before the clock starts, are
sent for ``--seconds`` per case by ``--client-processes`` separate processes with ``--clients``
connections in all: OTLP/HTTP protobuf (http.client keep-alive) and OTLP/gRPC (one channel per
thread, the bytes sent as they are). Figures per case:
- ``items_per_s`` accepted (answered 200 / OK, cross-checked with the collector's counters),
  ``collector_cpu_s`` (user + system of the collector process, /proc), ``items_per_core_s`` =
  items / collector CPU seconds: the per-core rate whether or not the clients saturate it.
- ``target_100k_ratio``: items_per_core_s / 100,000 (the target).
Baseline in the same run (``conversion``): the same requests converted in this process by
protobuf's ``MessageToDict`` (what the collector used before) and by the collector's converter
(``otlp_proto``), items/s each and their ratio (best of 3, the cyclic GC off while timing: a collection
set off by earlier garbage otherwise lands on either; the collector raises its GC threshold).
``latency``: ``--latency-samples`` requests of one item per signal, each with its own marker
attribute, sent every 250 ms over OTLP/HTTP; latency = first time ClickHouse answers the row
(polled every 20 ms) minus the send time; p50, p95, max per signal.
``otelcol``: then the same load, case by case, against an OpenTelemetry Collector (otlp receiver,
batch processor, Kafka exporter writing otlp_json to the same topics; binary from
benchmarks/otelcol/build.sh, config benchmarks/otelcol/config.yaml.tmpl) on the same stack, with
``GOMAXPROCS=--otelcol-gomaxprocs`` (default 1: one core at most, like ``--workers 1``). It
answers once the batch processor has the items, before Kafka has them, so its CPU is read after
its exporter is done with every accepted item (``drain_s``; ``items_per_s_incl_drain`` counts
that time too): ``exporter_sent``, ``exporter_send_failed``, ``exporter_enqueue_failed`` (dropped
at a full queue; the config blocks instead); its counters are its own Prometheus metrics. Each
of its cases has its own marker, and ``rows_in_clickhouse`` counts that marker's rows in
raw.spans / raw.otel_logs / raw.otel_metrics_histogram once all cases ran.
Each throughput case gets ``otelcol_items_per_core_s`` and ``ours_to_otelcol`` (ours / theirs).
Without a binary (none built, no ``--otelcol``) or with ``--no-otelcol`` the section says why.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc
import requests
from dagster import DagsterInstance, materialize
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from platform_assets.core.resources import resources_from_env
from platform_assets.ingest.assets import kafka_topics
from platform_assets.ingest.collector import otlp
from platform_assets.ops.assets import clickhouse_schema
from platform_assets.stack.process import free_port
from platform_assets.stack.scratch import scratch_stack

TARGET_ITEMS_PER_CORE_S = 100_000
COUNTER = {"traces": "spans", "metrics": "data_points", "logs": "log_records"}
OTELCOL_DIR = Path(__file__).resolve().parent / "otelcol"
OTELCOL_COUNTER = {"traces": "spans", "metrics": "metric_points", "logs": "log_records"}  # its metric names


def kv(key: str, value: str | int | float) -> KeyValue:
    if isinstance(value, bool | int):
        return KeyValue(key=key, value=AnyValue(int_value=int(value)))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def resource_attrs(marker: str) -> list[KeyValue]:
    return [kv("service.name", "bench-agent"), kv("service.version", "1.0.0"), kv("bench.marker", marker)]


def traces(n: int, marker: str, rnd: random.Random):
    req = otlp.SIGNALS["traces"].request_type()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(resource_attrs(marker))
    ss = rs.scope_spans.add()
    ss.scope.name = "bench"
    now = time.time_ns()
    for i in range(n):
        span = ss.spans.add(
            trace_id=rnd.randbytes(16), span_id=rnd.randbytes(8), parent_span_id=rnd.randbytes(8),
            name="chat gpt-4o-mini", kind=3, start_time_unix_nano=now + i, end_time_unix_nano=now + i + 350_000_000,
        )  # fmt: skip
        span.attributes.extend(
            [
                kv("gen_ai.operation.name", "chat"), kv("gen_ai.request.model", "gpt-4o-mini"),
                kv("gen_ai.provider.name", "openai"), kv("gen_ai.usage.input_tokens", 1000 + i),
                kv("gen_ai.usage.output_tokens", 200), kv("gen_ai.agent.name", "support-bot"),
                kv("http.route", "/api/chat"), kv("enduser.id", f"user-{i % 50}"), kv("bench.marker", marker),
            ]
        )  # fmt: skip
    return req


def logs(n: int, marker: str, rnd: random.Random):
    req = otlp.SIGNALS["logs"].request_type()
    rl = req.resource_logs.add()
    rl.resource.attributes.extend(resource_attrs(marker))
    sl = rl.scope_logs.add()
    sl.scope.name = "bench"
    now = time.time_ns()
    for i in range(n):
        rec = sl.log_records.add(
            time_unix_nano=now + i, observed_time_unix_nano=now + i, severity_number=9 if i % 10 else 17,
            severity_text="INFO" if i % 10 else "ERROR", trace_id=rnd.randbytes(16), span_id=rnd.randbytes(8),
        )  # fmt: skip
        rec.body.string_value = f"request {i} handled in {rnd.randint(5, 900)} ms for order A-{i}"
        rec.attributes.extend(
            [kv("http.route", "/api/chat"), kv("code.function", "handle"), kv("bench.marker", marker)]
        )
    return req


def metrics(n: int, marker: str, rnd: random.Random):
    req = otlp.SIGNALS["metrics"].request_type()
    rm = req.resource_metrics.add()
    rm.resource.attributes.extend(resource_attrs(marker))
    sm = rm.scope_metrics.add()
    sm.scope.name = "bench"
    metric = sm.metrics.add(name="http.server.request.duration", unit="s")
    metric.histogram.aggregation_temporality = 2
    bounds = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
    now = time.time_ns()
    for i in range(n):
        counts = [rnd.randint(0, 50) for _ in range(len(bounds) + 1)]
        point = metric.histogram.data_points.add(
            start_time_unix_nano=now - 60_000_000_000, time_unix_nano=now, count=sum(counts),
            sum=sum(counts) * 0.2, bucket_counts=counts, explicit_bounds=bounds, min=0.001, max=9.0,
        )  # fmt: skip
        point.attributes.extend([kv("http.route", f"/api/r{i}"), kv("http.request.method", "POST"),
                                 kv("http.response.status_code", 200)])  # fmt: skip
    return req


BUILDERS = {"traces": traces, "metrics": metrics, "logs": logs}


def bodies(signal: str, items: int, count: int = 8, marker: str = "throughput") -> list[bytes]:
    rnd = random.Random(signal)
    return [BUILDERS[signal](items, marker, rnd).SerializeToString() for _ in range(count)]


# ---------------------------------------------------------------- clients (separate processes)


def http_sender(port: int, path: str):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def send(body: bytes) -> bool:
        nonlocal conn
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": "application/x-protobuf"})
            resp = conn.getresponse()
            resp.read()
            return resp.status == 200
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            return False

    return send


def grpc_sender(port: int, method: str):
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    call = channel.unary_unary(method)

    def send(body: bytes) -> bool:
        try:
            call(body, timeout=30)
            return True
        except grpc.RpcError:
            return False

    return send


def client_process(protocol, port, signal, items, threads, start_at, seconds, results, marker) -> None:
    sig = otlp.SIGNALS[signal]
    payloads = bodies(signal, items, marker=marker)
    tally = [0] * threads
    failed = [0] * threads

    def run(t: int) -> None:
        send = http_sender(port, sig.path) if protocol == "http" else grpc_sender(port, f"/{sig.grpc_service}/Export")
        while time.time() < start_at:
            time.sleep(0.001)
        stop_at = start_at + seconds
        i = t
        while time.time() < stop_at:
            if send(payloads[i % len(payloads)]):
                tally[t] += items
            else:
                failed[t] += 1
            i += 1

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    results.put({"items": sum(tally), "failed_requests": sum(failed)})


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def counter(url: str, name: str) -> int:
    for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(f"collector_{name}_total "):
            return int(line.split()[1])
    return 0


def throughput_case(
    args,
    ports,
    pid,
    signal,
    protocol,
    accepted: Callable[[], int] | None = None,
    drain: Callable[[], float] | None = None,
    marker: str = "throughput",
) -> dict:
    """One case: the load for ``args.seconds``, the collector's CPU from /proc. ``accepted`` reads
    the collector's own count of accepted items (default: platform-collector's /metrics);
    ``drain``, for a collector that answers before Kafka acknowledged, waits until it exported
    all it accepted (returns the seconds waited) before the CPU is read."""
    http_port, grpc_port = ports
    url = f"http://127.0.0.1:{http_port}"
    count = accepted or (lambda: counter(url, f"{COUNTER[signal]}_accepted"))
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    start_at = time.time() + 4.0  # every client has built its requests and connected
    per_process = max(1, args.clients // args.client_processes)
    procs = [
        ctx.Process(
            target=client_process,
            args=(
                protocol,
                http_port if protocol == "http" else grpc_port,
                signal,
                args.items,
                per_process,
                start_at,
                args.seconds,
                results,
                marker,
            ),
        )
        for _ in range(args.client_processes)
    ]
    for p in procs:
        p.start()
    while time.time() < start_at - 0.1:
        time.sleep(0.001)
    # Read just before the clients start (the first requests land within milliseconds of it),
    # the clock taken from the start itself.
    cpu0, counted0 = cpu_seconds(pid), count()
    wall0 = time.monotonic() + max(0.0, start_at - time.time())
    parts = [results.get(timeout=args.seconds + 120) for _ in procs]
    wall = time.monotonic() - wall0
    drained = drain() if drain else None
    cpu, counted = cpu_seconds(pid) - cpu0, count() - counted0
    for p in procs:
        p.join(30)
    items = sum(p["items"] for p in parts)
    per_core = items / cpu if cpu else 0.0
    return {
        "signal": signal,
        "protocol": f"{protocol} protobuf",
        **({"marker": marker, "drain_s": round(drained, 2)} if drained is not None else {}),
        "items_per_request": args.items,
        "items_accepted": items,
        "collector_counter_delta": counted,
        "failed_requests": sum(p["failed_requests"] for p in parts),
        "seconds": round(wall, 2),
        "items_per_s": round(items / wall),
        **({"items_per_s_incl_drain": round(items / (wall + drained))} if drained is not None else {}),
        "collector_cpu_s": round(cpu, 2),
        "collector_core_share": round(cpu / wall, 2),
        "items_per_core_s": round(per_core),
        "target_100k_ratio": round(per_core / TARGET_ITEMS_PER_CORE_S, 2),
    }


def conversion_baseline(signal: str, items: int) -> dict:
    sig = otlp.SIGNALS[signal]
    req = sig.request_type.FromString(bodies(signal, items, 1)[0])
    rounds = 5

    def rate(fn) -> float:
        """Best of 3 timings of ``rounds`` conversions, the cyclic GC off while timing (both
        converters alike: otherwise a collection triggered by earlier garbage lands on either)."""
        best = float("inf")
        for _ in range(3):
            gc.collect()
            gc.disable()
            try:
                started = time.perf_counter()
                for _ in range(rounds):
                    fn(req)
                best = min(best, time.perf_counter() - started)
            finally:
                gc.enable()
        return rounds * items / best

    old = rate(lambda r: MessageToDict(r, use_integers_for_enums=True))
    new = rate(sig.to_json)
    return {"signal": signal, "message_to_dict_items_per_s": round(old), "converter_items_per_s": round(new),
            "converter_to_message_to_dict": round(new / old, 2)}  # fmt: skip


# ---------------------------------------------------------------- send to queryable

LATENCY_SQL = {
    "traces": "SELECT count() FROM raw.spans WHERE attributes['bench.marker'] = {m:String}",
    "logs": "SELECT count() FROM raw.otel_logs WHERE LogAttributes['bench.marker'] = {m:String}",
    "metrics": "SELECT count() FROM raw.otel_metrics_histogram WHERE ResourceAttributes['bench.marker'] = {m:String}",
}


def latency(res, http_port: int, signal: str, samples: int) -> dict:
    sig = otlp.SIGNALS[signal]
    rnd = random.Random(1)
    found: list[float] = []
    with res["clickhouse"].client() as ch:
        for _ in range(samples):
            marker = uuid.uuid4().hex
            body = BUILDERS[signal](1, marker, rnd).SerializeToString()
            sent = time.monotonic()
            answer = requests.post(f"http://127.0.0.1:{http_port}{sig.path}", data=body, timeout=30,
                                   headers={"Content-Type": "application/x-protobuf"})  # fmt: skip
            assert answer.status_code == 200, answer.text
            while time.monotonic() - sent < 30:
                if ch.query(LATENCY_SQL[signal], parameters={"m": marker}).result_rows[0][0]:
                    found.append(time.monotonic() - sent)
                    break
                time.sleep(0.02)
            time.sleep(0.25)
    found.sort()
    return {
        "signal": signal,
        "samples": samples,
        "queryable": len(found),
        "p50_s": round(statistics.median(found), 3) if found else None,
        "p95_s": round(found[int(0.95 * (len(found) - 1))], 3) if found else None,
        "max_s": round(found[-1], 3) if found else None,
    }


def start_collector(env: dict[str, str], workers: int = 1) -> tuple[subprocess.Popen, int, int]:
    """``platform-collector`` on free ports with ``workers`` worker processes; (process, HTTP port, gRPC port)."""
    http_port, grpc_port = free_port(), free_port()
    proc = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "platform-collector"),
         *("--port", str(http_port), "--grpc-port", str(grpc_port), "--workers", str(workers))],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{http_port}/health", timeout=1).ok:
                return proc, http_port, grpc_port
        except requests.RequestException:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("collector did not start in 60 s")


# ---------------------------------------------------------------- the OpenTelemetry Collector


def built_otelcol() -> str | None:
    """The binary benchmarks/otelcol/build.sh made from the current manifest, if it made one."""
    done = subprocess.run(
        ["bash", str(OTELCOL_DIR / "build.sh"), "--print-path"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def otelcol_counter(port: int, name: str) -> int:
    """The collector's Prometheus series ``name`` (with or without ``_total``), summed over its labels."""
    total = 0.0
    for line in requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text.splitlines():
        if line.split("{", 1)[0].split(" ", 1)[0] in (name, f"{name}_total"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


class OtelCol:
    """The OpenTelemetry Collector in its own process, on free ports, writing to the stack's Kafka."""

    def __init__(self, binary: str, brokers: str, gomaxprocs: int) -> None:
        self.binary = binary
        self.http_port, self.grpc_port, self.metrics_port = free_port(), free_port(), free_port()
        self.log = Path(tempfile.mkdtemp(prefix="platform-bench-otelcol-")) / "otelcol.log"
        env = {
            "OTELCOL_HTTP_ENDPOINT": f"127.0.0.1:{self.http_port}",
            "OTELCOL_GRPC_ENDPOINT": f"127.0.0.1:{self.grpc_port}",
            "OTELCOL_KAFKA_BROKERS": brokers,
            "OTELCOL_METRICS_PORT": str(self.metrics_port),
            "GOMAXPROCS": str(gomaxprocs),
        }
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [binary, "--config", str(OTELCOL_DIR / "config.yaml.tmpl")],
                env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        empty = otlp.SIGNALS["traces"].request_type().SerializeToString()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:  # ready: an empty export is answered and the counters are served
                answer = requests.post(f"http://127.0.0.1:{self.http_port}/v1/traces", data=empty, timeout=1,
                                       headers={"Content-Type": "application/x-protobuf"})  # fmt: skip
                if answer.ok and requests.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the OpenTelemetry Collector did not start in 60 s:\n{self.log.read_text()[-3000:]}")

    def count(self, what: str, signal: str) -> int:
        return otelcol_counter(self.metrics_port, f"otelcol_{what}_{OTELCOL_COUNTER[signal]}")

    def settled(self, signal: str) -> int:
        """Items the exporter is done with: sent, failed to send, or refused by its full queue."""
        return sum(self.count(f"exporter_{what}", signal) for what in ("sent", "send_failed", "enqueue_failed"))

    def drain(self, signal: str, timeout_s: float = 120.0) -> float:
        """Waits until the exporter is done with every item the receiver accepted; the seconds waited."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.settled(signal) >= self.count("receiver_accepted", signal):
                break
            time.sleep(0.1)
        return time.monotonic() - started

    def case(self, args, signal: str, protocol: str) -> dict:
        before = {what: self.count(f"exporter_{what}", signal) for what in ("sent", "send_failed", "enqueue_failed")}
        result = throughput_case(
            args, (self.http_port, self.grpc_port), self.proc.pid, signal, protocol,
            accepted=lambda: self.count("receiver_accepted", signal), drain=lambda: self.drain(signal),
            marker=f"otelcol-{signal}-{protocol}",
        )  # fmt: skip
        for what, then in before.items():
            result[f"exporter_{what}"] = self.count(f"exporter_{what}", signal) - then
        return result

    def error_lines(self) -> int:
        return sum("\terror\t" in line for line in self.log.read_text(errors="replace").splitlines())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def rows_in_clickhouse(res, cases: list[dict], quiet_s: float = 180.0) -> None:
    """Sets each case's ``rows_in_clickhouse``: its marker's rows, polled until they reach the
    items the exporter sent, or stop growing for ``quiet_s`` (the metrics views insert in bursts
    with a minute or more between them under this load); ``rows_wait_s``: the time polled."""
    with res["clickhouse"].client() as ch:
        for case in cases:
            want, seen, started = case["exporter_sent"], -1, time.monotonic()
            changed = started
            while True:
                rows = ch.query(LATENCY_SQL[case["signal"]], parameters={"m": case["marker"]}).result_rows[0][0]
                if rows != seen:
                    seen, changed = rows, time.monotonic()
                if rows >= want or time.monotonic() - changed > quiet_s:
                    break
                time.sleep(0.5)
            case["rows_in_clickhouse"] = rows
            case["rows_match_exported"] = rows == want
            case["rows_wait_s"] = round(time.monotonic() - started, 1)


def otelcol_section(args, signals: list[str], binary: str, env: dict[str, str], res) -> dict:
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    load = os.getloadavg()[0]
    oc = OtelCol(binary, env["KAFKA_BOOTSTRAP_SERVERS"], args.otelcol_gomaxprocs)
    try:
        cases = [oc.case(args, s, p) for s in signals for p in ("grpc", "http")]
    finally:
        oc.stop()
    rows_in_clickhouse(res, cases)
    return {
        "binary": binary,
        "version": version,
        "gomaxprocs": args.otelcol_gomaxprocs,
        "load_average_1m_start": load,
        "log_error_lines": oc.error_lines(),
        "log": str(oc.log),
        "throughput": cases,
    }


def compare(ours: list[dict], theirs: list[dict]) -> None:
    """Adds ``otelcol_items_per_core_s`` and ``ours_to_otelcol`` to each of our cases."""
    by_case = {(c["signal"], c["protocol"]): c for c in theirs}
    for case in ours:
        other = by_case.get((case["signal"], case["protocol"]))
        if other:
            case["otelcol_items_per_core_s"] = other["items_per_core_s"]
            ratio = case["items_per_core_s"] / other["items_per_core_s"] if other["items_per_core_s"] else None
            case["ours_to_otelcol"] = round(ratio, 2) if ratio is not None else None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--items", type=int, default=512)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--client-processes", type=int, default=1)
    parser.add_argument("--latency-samples", type=int, default=20)
    parser.add_argument("--signals", default="traces,metrics,logs")
    parser.add_argument("--otelcol", help="OpenTelemetry Collector binary (default: benchmarks/otelcol/build.sh's)")
    parser.add_argument("--no-otelcol", action="store_true", help="skip the OpenTelemetry Collector cases")
    parser.add_argument("--otelcol-gomaxprocs", type=int, default=1, help="its GOMAXPROCS (1: one core at most)")
    args = parser.parse_args()
    signals = [s for s in args.signals.split(",") if s]
    otelcol = None if args.no_otelcol else (args.otelcol or built_otelcol())
    if otelcol and not os.access(otelcol, os.X_OK):
        parser.error(f"--otelcol {otelcol}: not an executable file")
    out: dict = {"benchmark": "otlp", "cpus": len(os.sched_getaffinity(0)), "load_average_1m_start": os.getloadavg()[0]}
    out["conversion"] = [conversion_baseline(s, args.items) for s in signals]
    with scratch_stack("platform-bench-otlp-") as stack:
        stack.up(["kafka", "clickhouse"])
        env = stack.env()
        os.environ.update(env)
        res = resources_from_env(env)
        assert materialize(
            [kafka_topics, clickhouse_schema], resources=res, instance=DagsterInstance.ephemeral()
        ).success
        time.sleep(8)  # the new Kafka consumers join their groups
        proc, http_port, grpc_port = start_collector(env)
        try:
            out["throughput"] = [
                throughput_case(args, (http_port, grpc_port), proc.pid, s, p) for s in signals for p in ("grpc", "http")
            ]
            out["latency"] = [latency(res, http_port, s, args.latency_samples) for s in signals]
        finally:
            proc.terminate()
            proc.wait(60)
        if otelcol:
            out["otelcol"] = otelcol_section(args, signals, otelcol, env, res)
            compare(out["throughput"], out["otelcol"]["throughput"])
        else:
            why = "--no-otelcol" if args.no_otelcol else "no binary: run benchmarks/otelcol/build.sh or pass --otelcol"
            out["otelcol"] = {"skipped": why}
    out["load_average_1m_end"] = os.getloadavg()[0]
    out["target_items_per_core_s"] = TARGET_ITEMS_PER_CORE_S
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
