"""Fault suite: a scratch stack of its own (servers are killed here, never the session's), the
ClickHouse schema and topics on it, collectors as subprocesses, and clients that record every
answer they get.

Every helper reaches the servers through the stack's server objects (``stack.servers[name]``:
pid file, health, ``up``), so a kill here is exactly what an operator's ``kill -9`` does and a
restart is ``platform-stack up <name>``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from clickhouse_connect.driver.exceptions import DatabaseError
from dagster import DagsterInstance, materialize

from platform_assets.cdc.resources import CdcResource
from platform_assets.core.resources import resources_from_env
from platform_assets.ingest.assets import kafka_topics
from platform_assets.ingest.collector.events import sign
from platform_assets.ops.assets import clickhouse_schema
from platform_assets.stack.cli import migrate_app_schema
from platform_assets.stack.config import StackError
from platform_assets.stack.process import free_port, pid_alive, tail
from platform_assets.stack.scratch import started_scratch_stack
from platform_assets.stack.servers import Stack

# Rows older than the raw tables' 90-day TTL are dropped on insert: stamp events with today.
TODAY = datetime.now(UTC).strftime("%Y-%m-%d")
COLLECTOR = Path(sys.executable).with_name("platform-collector")


@dataclass
class FaultStack:
    """The suite's own stack, its settings and resources, and the kill / restart moves."""

    stack: Stack
    env: dict[str, str]
    res: dict[str, Any]
    instance: DagsterInstance
    log: list[str] = field(default_factory=list)

    @property
    def cdc(self) -> CdcResource:
        return CdcResource(replication_password=self.env["CDC_REPLICATION_PASSWORD"])

    def kill(self, name: str, sig: int = signal.SIGKILL, timeout: float = 30.0) -> int:
        """``kill -<sig>`` the server's process (its pid from the server object); returns once it is gone."""
        server = self.stack.servers[name]
        pid = server.pid()
        assert pid is not None, f"{name} is not running"
        os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while pid_alive(pid):  # also reaps it: the stack's servers are children of this process
            assert time.monotonic() < deadline, f"{name} (pid {pid}) still alive {timeout:.0f}s after signal {sig}"
            time.sleep(0.05)
        self.log.append(f"{name}: pid {pid} killed with signal {sig}")
        return pid

    def restart(self, name: str) -> float:
        """``platform-stack up <name>``; returns the seconds it took to be healthy again."""
        started = time.monotonic()
        while True:
            try:
                outcome = self.stack.up([name])
                break
            except StackError as exc:
                # While it was down its port may have served as some connection's source port.
                if "already in use" not in str(exc) or time.monotonic() - started > 30:
                    raise
                time.sleep(1)
        seconds = time.monotonic() - started
        self.log.append(f"{name}: up -> {outcome[name]} in {seconds:.1f}s")
        return seconds

    def heal(self) -> None:
        """Whatever a test did, every server is up afterwards (idempotent)."""
        self.stack.up()

    def rows(self, sql: str, **params: Any) -> list[tuple]:
        with self.res["clickhouse"].client() as ch:
            return ch.query(sql, parameters=params or None).result_rows

    def command(self, sql: str) -> None:
        with self.res["clickhouse"].client() as ch:
            ch.command(sql)

    def wait_rows(self, sql: str, done: Callable[[tuple], bool], timeout: float, poll: float = 0.5) -> tuple:
        """Polls ``sql`` (one row) until ``done(row)`` or ``timeout``; returns the last row read."""
        deadline = time.monotonic() + timeout
        row: tuple = ()
        while True:
            try:
                row = self.rows(sql)[0]
            except Exception:  # noqa: BLE001 - a server coming back up; keep polling
                row = ()
            if (row and done(row)) or time.monotonic() > deadline:
                return row
            time.sleep(poll)

    def locate_spans(self, missing: set[tuple[str, str]], group: str = "clickhouse_otlp_spans") -> str:
        """Where spans missing from raw.spans are: in which message of the ``otlp_spans`` topic
        (partition, offset), against the ClickHouse group's committed offset there, the partitions'
        end offsets and the consumers' last exceptions, so a shortfall names its cause (never on
        the broker: the collector; on it below the commit: skipped by the consumer; above: not
        consumed yet)."""
        from confluent_kafka import Consumer, TopicPartition

        if not missing:
            return "nothing missing"
        topic = "otlp_spans"
        bootstrap = self.env["KAFKA_BOOTSTRAP_SERVERS"]
        reader = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"diag-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        committed_reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
        try:
            parts = sorted(reader.list_topics(topic, timeout=10).topics[topic].partitions)
            ends = {p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
            committed = {
                tp.partition: tp.offset
                for tp in committed_reader.committed([TopicPartition(topic, p) for p in parts], timeout=10)
            }
            reader.assign([TopicPartition(topic, p, 0) for p in parts])
            found: dict[tuple[str, str], tuple[int, int]] = {}
            seen = dict.fromkeys(parts, -1)
            deadline = time.monotonic() + 60
            while any(seen[p] < ends[p] - 1 for p in parts) and time.monotonic() < deadline:
                msg = reader.poll(1.0)
                if msg is None or msg.error():
                    continue
                seen[msg.partition()] = msg.offset()
                for rs in json.loads(msg.value()).get("resourceSpans", []):
                    for ss in rs.get("scopeSpans", []):
                        for span in ss.get("spans", []):
                            key = (span.get("traceId", ""), span.get("spanId", ""))
                            if key in missing:
                                found[key] = (msg.partition(), msg.offset())
        finally:
            reader.close()
            committed_reader.close()
        offsets = sorted(set(found.values()))
        below = [o for o in offsets if o[1] < committed.get(o[0], -1)]
        consumers = self.rows(
            "SELECT consumer_id, assignments.partition_id, assignments.current_offset, num_rebalance_revocations, "
            "exceptions.text FROM system.kafka_consumers WHERE database = 'kafka_queue' AND table = 'otlp_spans'"
        )
        return (
            f"{len(missing)} missing spans: {len(found)} found on the broker in {len(offsets)} messages "
            f"{offsets[:20]}, {len(below)} of those below the group's committed offset; "
            f"not on the broker: {len(missing) - len(found)}; end offsets {ends}; committed {committed}; "
            f"consumers {[(c[0][-8:], c[1], c[2], c[3], [t[:160] for t in c[4][-3:]]) for c in consumers]}"
        )

    def detach_kafka_table(self, table: str) -> None:
        """Stops ClickHouse's consumer of one topic: messages wait on the broker."""
        self.command(f"DETACH TABLE kafka_queue.{table}")

    def attach_kafka_table(self, table: str) -> None:
        """ATTACH again; this build answers `Code: 49 ... Shutdown was called` (LOGICAL_ERROR) for a
        Kafka table although it is attached and consumes (ARCHITECTURE.md): success once visible."""
        try:
            self.command(f"ATTACH TABLE kafka_queue.{table}")
        except DatabaseError as exc:
            if "Shutdown was called" not in str(exc):
                raise
        visible = self.rows(
            "SELECT engine FROM system.tables WHERE database = 'kafka_queue' AND name = {t:String}", t=table
        )
        assert visible == [("Kafka",)], f"kafka_queue.{table} not attached: {visible}"

    def pg(self) -> psycopg.Connection:
        return self.res["postgres"].connect(autocommit=True)


@pytest.fixture(scope="package")
def fault_stack() -> Iterator[FaultStack]:
    # The process environment is pointed at this stack per test (fault_env), never for the
    # fixture's life, so no later test can run against it. The folder's __init__.py makes it a
    # package: the stack stops after the suite's last test (without it, at the session's end,
    # its servers idling beside the session stack's for every later test).
    with started_scratch_stack("platform-faults-") as stack, DagsterInstance.ephemeral() as instance:
        env = stack.env()
        migrate_app_schema(stack)  # the app schema, as `platform-stack up` applies it
        yield FaultStack(stack, env, resources_from_env(env), instance)


@pytest.fixture(autouse=True)
def fault_env(fault_stack: FaultStack) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in fault_stack.env.items():
            env.setenv(name, value)
        yield


@pytest.fixture(scope="package")
def schema(fault_stack: FaultStack) -> FaultStack:
    """Topics and the ClickHouse schema (Kafka tables, views, raw tables) on the suite's stack."""
    res = fault_stack.res
    result = materialize(
        [kafka_topics, clickhouse_schema],
        resources={"clickhouse": res["clickhouse"], "kafka": res["kafka"]},
        instance=fault_stack.instance,
    )
    assert result.success
    return fault_stack


@pytest.fixture
def healed(schema: FaultStack) -> Iterator[FaultStack]:
    """The stack for one fault test; every server is brought back up after it, pass or fail."""
    yield schema
    schema.heal()


# ---------------------------------------------------------------- the collector as a process


class CollectorProcess:
    """``platform-collector --port P --grpc-port G`` with the stack's settings, as an operator runs
    it (its default worker count: one per usable CPU)."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.port = free_port()
        self.grpc_port = free_port()
        self.log_path = log_dir / f"collector-{self.port}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(COLLECTOR), "--port", str(self.port), "--grpc-port", str(self.grpc_port)],
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{self.url}/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"collector did not start (exit {self.proc.poll()}):\n{tail(self.log_path)}")
            time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        return tail(self.log_path, lines)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 45.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def start_collector(schema: FaultStack, tmp_path: Path) -> Iterator[Callable[[], CollectorProcess]]:
    started: list[CollectorProcess] = []

    def start() -> CollectorProcess:
        started.append(CollectorProcess(schema.env, tmp_path))
        return started[-1]

    yield start
    for proc in started:
        proc.stop()


# ---------------------------------------------------------------- events, traces and clients


def agent_event(ws: str) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "llm_call",
        "occurred_at": f"{TODAY}T12:00:00.500Z",
        "workspace_id": ws,
        "session_id": "sess-1",
        "actor_id": "user-42",
        "source": "sdk",
        "context": {"env": "faults"},
        "model": "gpt-4o-mini",
        "provider": "openai",
        "input_tokens": 1000,
        "output_tokens": 200,
        "latency_ms": 350.5,
        "success": True,
        "unit_cost_input": 0.15e-6,
        "unit_cost_output": 0.6e-6,
    }


def product_event(ws: str) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "page_view",
        "occurred_at": f"{TODAY}T12:00:01Z",
        "workspace_id": ws,
        "session_id": "s-1",
        "actor_id": "user-7",
        "source": "web",
        "properties": {"path": "/pricing"},
    }


def trace_body(ws: str, spans: int) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """An OTLP/JSON export of one trace of ``spans`` spans for tenant ``ws``, and its (trace, span) ids."""
    trace_id = uuid.uuid4().hex
    now = time.time_ns()
    ids = [(trace_id, uuid.uuid4().hex[:16]) for _ in range(spans)]
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": "fault-sim"}},
                        {"key": "tenant.id", "value": {"stringValue": ws}},
                    ]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "faults"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": f"tool_call {i}",
                                "kind": 1,
                                "startTimeUnixNano": str(now),
                                "endTimeUnixNano": str(now + 5_000_000),
                            }
                            for i, (_, span_id) in enumerate(ids)
                        ],
                    }
                ],
            }
        ]
    }
    return body, ids


@dataclass
class Attempt:
    kind: str  # "batch" or "trace"
    sent: float  # monotonic
    answered: float
    status: int  # 0: no HTTP answer (connection refused, reset, timeout)
    retry_after: str | None
    items: int  # events or spans in the request
    error: str = ""  # the client's exception when there was no HTTP answer


@dataclass
class Recorder:
    """Every attempt and what was acknowledged, shared by the client threads."""

    attempts: list[Attempt] = field(default_factory=list)
    acked_events: set[str] = field(default_factory=set)
    acked_spans: set[tuple[str, str]] = field(default_factory=set)
    sent_events: set[str] = field(default_factory=set)
    sent_spans: set[tuple[str, str]] = field(default_factory=set)
    unfinished: int = 0  # requests whose retries ran out without a 2xx
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, attempt: Attempt) -> None:
        with self.lock:
            self.attempts.append(attempt)

    def statuses(self, kind: str | None = None) -> dict[int, int]:
        out: dict[int, int] = {}
        for a in self.attempts:
            if kind is None or a.kind == kind:
                out[a.status] = out.get(a.status, 0) + 1
        return dict(sorted(out.items()))


class LoadClient:
    """Signed batches and OTLP traces from several threads, each in a bounded loop.

    ``retry=True``: a refused request (503, or no answer) is resent with the same ids after
    Retry-After (at most ``retry_after_cap`` s) until it is acknowledged or ``retry_until``
    passes, as a real client does; the ids make resends harmless downstream."""

    def __init__(self, url: str, env: dict[str, str], ws: str, *, retry: bool, batch_events: int = 20) -> None:
        key_id, _, secret = env["COLLECTOR_HMAC_KEYS"].split(",")[0].partition(":")
        self.url, self.key_id, self.secret = url, key_id, secret.encode()
        self.ws, self.retry, self.batch_events = ws, retry, batch_events
        self.rec = Recorder()
        self.stop = threading.Event()
        self.retry_until = float("inf")
        self.retry_after_cap = 5.0
        self.threads: list[threading.Thread] = []

    def _post_batch(self, session: requests.Session, events: list[dict]) -> requests.Response:
        body = json.dumps({"events": events}).encode()
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Key-Id": self.key_id,
            "X-Timestamp": ts,
            "X-Signature": sign(self.secret, ts, body),
        }
        return session.post(f"{self.url}/ingest", data=body, headers=headers, timeout=30)

    def _deliver(self, session: requests.Session, kind: str, send: Callable[[], requests.Response], n: int) -> bool:
        while True:
            sent = time.monotonic()
            try:
                resp = send()
                status, retry_after = resp.status_code, resp.headers.get("Retry-After")
            except requests.RequestException as exc:
                status, retry_after, error = 0, None, f"{type(exc).__name__}: {exc}"
                session.close()  # a broken connection is not reused
            else:
                error = ""
            self.rec.add(Attempt(kind, sent, time.monotonic(), status, retry_after, n, error))
            if 200 <= status < 300:
                return True
            if status not in (0, 503):  # recorded; the test asserts on the statuses seen
                return False
            if not self.retry or time.monotonic() > self.retry_until:
                return False
            time.sleep(min(float(retry_after or 1), self.retry_after_cap))

    def _batches(self) -> None:
        session = requests.Session()
        i = 0
        while not self.stop.is_set():
            i += 1
            make = agent_event if i % 2 else product_event
            events = [make(self.ws) for _ in range(self.batch_events)]
            ids = {e["event_id"] for e in events}
            with self.rec.lock:
                self.rec.sent_events |= ids
            if self._deliver(session, "batch", lambda ev=events: self._post_batch(session, ev), len(events)):
                with self.rec.lock:
                    self.rec.acked_events |= ids
            else:
                with self.rec.lock:
                    self.rec.unfinished += 1

    def _traces(self) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            body, ids = trace_body(self.ws, 5)
            with self.rec.lock:
                self.rec.sent_spans |= set(ids)
            send = lambda b=body: session.post(f"{self.url}/v1/traces", json=b, timeout=30)  # noqa: E731
            if self._deliver(session, "trace", send, len(ids)):
                with self.rec.lock:
                    self.rec.acked_spans |= set(ids)
            else:
                with self.rec.lock:
                    self.rec.unfinished += 1

    def start(self, batch_threads: int, trace_threads: int = 0) -> None:
        for target, n in ((self._batches, batch_threads), (self._traces, trace_threads)):
            for _ in range(n):
                thread = threading.Thread(target=target, daemon=True)
                thread.start()
                self.threads.append(thread)

    def finish(self, timeout: float) -> None:
        """Stops starting new requests; waits (bounded) for the ones in progress and their retries."""
        self.stop.set()
        self.retry_until = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(timeout + 35)
        assert not any(t.is_alive() for t in self.threads), "client threads still running"


@pytest.fixture
def load_client() -> Callable[..., LoadClient]:
    return LoadClient
