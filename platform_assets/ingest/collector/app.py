"""The collector: OTLP/HTTP traces and HMAC-signed JSON event batches into Kafka.

A request is answered 2xx only after Kafka acknowledged every message it produced, so
nothing accepted is lost; when the broker is down or slow the bounded producer queue fills or
the acknowledgement deadline passes and the answer is 503 with Retry-After (the client resends;
``event_id`` makes resends harmless downstream).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import orjson  # several times faster than json for the per-event encode and decode
from confluent_kafka import KafkaException, Producer
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from platform_assets.ingest.collector import events as ev
from platform_assets.ingest.collector import otlp

SPANS_TOPIC = "otlp_spans"


@dataclass
class CollectorConfig:
    bootstrap_servers: str
    hmac_keys: dict[str, bytes]
    hash_key: bytes
    drop_keys: frozenset[str] = frozenset({"email", "phone", "ip", "ip_address"})
    max_body_bytes: int = 5 * 1024 * 1024
    max_batch_events: int = 1000
    replay_window_s: float = 300.0
    ack_timeout_s: float = 10.0
    retry_after_s: int = 5
    queue_max_messages: int = 100_000
    # Messages now carry many events each, so the buffer is bounded in bytes as well.
    queue_max_kbytes: int = 64 * 1024
    # Events travel as newline-delimited JSON rows, several per Kafka message (ClickHouse's
    # JSONEachRow reads them all); well under librdkafka's 1,000,000-byte message.max.bytes.
    # A trace export over it is split into several OTLP documents; one event or span over it is 413.
    max_message_bytes: int = 512 * 1024

    @classmethod
    def from_env(cls) -> CollectorConfig:
        """``COLLECTOR_HMAC_KEYS`` = ``id1:secret1,id2:secret2`` (several ids allow rotation);
        ``USER_HASH_KEY`` keys the user-id hash (shared with dbt); both required."""
        raw_keys = os.environ.get("COLLECTOR_HMAC_KEYS", "")
        keys = {}
        for item in filter(None, (p.strip() for p in raw_keys.split(","))):
            key_id, sep, secret = item.partition(":")
            if not sep or not key_id or len(secret) < 16:
                raise ValueError(f"COLLECTOR_HMAC_KEYS entry {key_id!r}: expected id:secret with a 16+ char secret")
            keys[key_id] = secret.encode()
        if not keys:
            raise ValueError("COLLECTOR_HMAC_KEYS is empty: set at least one id:secret")
        hash_key = os.environ.get("USER_HASH_KEY", "")
        if len(hash_key) < 16:
            raise ValueError("USER_HASH_KEY must be set (16+ chars): it keys the user-id hash")
        drop = os.environ.get("COLLECTOR_PII_DROP_KEYS")
        return cls(
            bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"],
            hmac_keys=keys,
            hash_key=hash_key.encode(),
            drop_keys=frozenset(k.strip() for k in drop.split(",") if k.strip()) if drop else cls.drop_keys,
        )


@dataclass
class Metrics:
    counters: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def inc(self, name: str, value: int = 1) -> None:
        with self.lock:
            self.counters[name] += value

    def render(self) -> str:
        with self.lock:
            return "".join(f"collector_{k}_total {v}\n" for k, v in sorted(self.counters.items()))


class Unavailable(Exception):
    """Kafka did not take or acknowledge the messages in time."""


_TIMED_OUT = "timed out"


def _settle(done: asyncio.Future[str | None], error: str | None) -> None:
    if not done.done():  # a timed-out or cancelled request ignores its late acknowledgement
        done.set_result(error)


class KafkaSink:
    """Produces from the event loop (``produce`` never waits for the broker) and resolves each
    request's future when Kafka acknowledged its last message; one background thread serves
    the producer's delivery callbacks (one per message: a request is one message per topic)."""

    def __init__(self, cfg: CollectorConfig) -> None:
        self.cfg = cfg
        self.producer = Producer(
            {
                "bootstrap.servers": cfg.bootstrap_servers,
                "enable.idempotence": True,  # broker-side dedupe of producer retries
                "acks": "all",
                "linger.ms": 5,  # small batches: latency stays low, throughput high
                "queue.buffering.max.messages": cfg.queue_max_messages,  # the bounded buffer
                "queue.buffering.max.kbytes": cfg.queue_max_kbytes,  # ... also in bytes (default 1 GiB)
                "message.timeout.ms": int(cfg.ack_timeout_s * 1000) + 20_000,
                "socket.timeout.ms": 10_000,
                "log_level": 3,
            }
        )
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kafka-delivery", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.05)

    async def send(self, messages: Sequence[tuple[str, bytes | None, bytes]]) -> None:
        """Produce and wait for every acknowledgement (or raise Unavailable)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[str | None] = loop.create_future()
        pending = [len(messages)]
        errors: list[str] = []

        def delivered(err, _msg) -> None:  # runs on the delivery thread, the only writer of pending
            if err is not None:
                errors.append(str(err))
            pending[0] -= 1
            if pending[0] == 0:
                loop.call_soon_threadsafe(_settle, done, errors[0] if errors else None)

        try:
            for topic, key, value in messages:
                self.producer.produce(topic, value=value, key=key, on_delivery=delivered)
        except BufferError as exc:
            raise Unavailable("producer queue full") from exc
        except KafkaException as exc:
            raise Unavailable(str(exc)) from exc
        # One future and one timer: each extra hop (wait_for, shield) costs a loop iteration.
        timer = loop.call_later(self.cfg.ack_timeout_s, _settle, done, _TIMED_OUT)
        try:
            error = await done
        finally:
            timer.cancel()
        if error is _TIMED_OUT:
            raise Unavailable(f"{pending[0]} messages not acknowledged in {self.cfg.ack_timeout_s:.0f} s")
        if error:
            raise Unavailable(error)

    def close(self) -> None:
        self._stop.set()
        self._poller.join(5)
        self.producer.flush(30)


def build_app(cfg: CollectorConfig) -> Starlette:
    metrics = Metrics()
    sink = KafkaSink(cfg)
    hasher = ev.actor_hasher(cfg.hash_key)

    def unavailable(reason: str) -> Response:
        metrics.inc("unavailable_responses")
        return JSONResponse(
            {"error": f"kafka unavailable: {reason}"}, status_code=503, headers={"Retry-After": str(cfg.retry_after_s)}
        )

    async def read_body(request: Request) -> bytes | Response:
        length = request.headers.get("content-length")
        if length and int(length) > cfg.max_body_bytes:
            return JSONResponse({"error": f"body over {cfg.max_body_bytes} bytes"}, status_code=413)
        body = await request.body()
        if len(body) > cfg.max_body_bytes:
            return JSONResponse({"error": f"body over {cfg.max_body_bytes} bytes"}, status_code=413)
        return body

    async def traces(request: Request) -> Response:
        body = await read_body(request)
        if isinstance(body, Response):
            return body
        ctype = request.headers.get("content-type", "").split(";")[0].strip()
        try:
            if ctype == "application/x-protobuf":
                payload = otlp.from_protobuf(body)
            elif ctype == "application/json":
                payload = otlp.from_json(body)
            else:
                return JSONResponse({"error": f"unsupported content type {ctype!r}"}, status_code=415)
        except otlp.OtlpError as exc:
            metrics.inc("rejected_requests")
            return JSONResponse({"error": str(exc)}, status_code=400)
        spans = otlp.span_count(payload)
        if spans:
            try:
                messages = otlp.to_messages(payload, cfg.max_message_bytes)
            except otlp.SpanTooLarge as exc:
                metrics.inc("rejected_requests")
                return JSONResponse({"error": str(exc)}, status_code=413)
            try:
                await sink.send([(SPANS_TOPIC, key, value) for key, value in messages])
            except Unavailable as exc:
                return unavailable(str(exc))
        metrics.inc("spans_accepted", spans)
        # OTLP/HTTP success: an ExportTraceServiceResponse in the request's encoding.
        if ctype == "application/x-protobuf":
            return Response(b"", media_type="application/x-protobuf")
        return JSONResponse({})

    async def ingest(request: Request) -> Response:
        body = await read_body(request)
        if isinstance(body, Response):
            return body
        reason = ev.verify(
            cfg.hmac_keys,
            request.headers.get("x-key-id"),
            request.headers.get("x-timestamp"),
            request.headers.get("x-signature"),
            body,
            time.time(),
            cfg.replay_window_s,
        )
        if reason:
            metrics.inc("unauthorized_requests")
            return JSONResponse({"error": reason}, status_code=401)
        try:
            batch = ev.validate(orjson.loads(body))
        except ValueError as exc:
            metrics.inc("rejected_requests")
            errors = exc.errors if isinstance(exc, ev.BatchError) else [f"body: not JSON ({exc})"]
            return JSONResponse({"errors": errors}, status_code=422)
        if len(batch) > cfg.max_batch_events:
            return JSONResponse({"error": f"batch of {len(batch)} events over {cfg.max_batch_events}"}, status_code=413)
        rows = ev.encode_rows(batch, cfg.drop_keys, hasher)
        too_big = ev.oversized(batch, rows, cfg.max_message_bytes)
        if too_big:
            metrics.inc("rejected_requests")
            return JSONResponse({"errors": too_big}, status_code=413)
        messages = [
            (topic, key, value)
            for topic, topic_rows in rows.items()
            for key, value in ev.pack(topic_rows, cfg.max_message_bytes)
        ]
        try:
            await sink.send(messages)
        except Unavailable as exc:
            return unavailable(str(exc))
        metrics.inc("events_accepted", len(batch))
        return JSONResponse({"accepted": len(batch)}, status_code=202)

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def metrics_endpoint(_request: Request) -> Response:
        return PlainTextResponse(metrics.render())

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(sink.close)  # graceful shutdown flushes what is queued

    app = Starlette(
        lifespan=lifespan,
        routes=[
            Route("/v1/traces", traces, methods=["POST"]),
            Route("/ingest", ingest, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ],
    )
    app.state.metrics = metrics
    return app


def main() -> None:
    import argparse

    import uvicorn

    from platform_assets import environment

    parser = argparse.ArgumentParser(prog="platform-collector", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4318)  # the OTLP/HTTP default port
    args = parser.parse_args()
    environment.prepare()
    uvicorn.run(
        build_app(CollectorConfig.from_env()),
        host=args.host,
        port=args.port,
        timeout_graceful_shutdown=30,
        loop="uvloop",  # explicit: the C event loop and HTTP parser, not the pure-Python fallbacks
        http="httptools",
        access_log=False,  # one log line per request cost ~3% of the CPU; /metrics counts requests
        proxy_headers=False,  # no client address is used, so skip the per-request header rewrite
    )
