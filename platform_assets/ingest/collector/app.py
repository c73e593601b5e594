"""The collector: OTLP/HTTP traces and HMAC-signed JSON event batches into Kafka.

A request is answered 2xx only after Kafka acknowledged every message it produced, so
nothing accepted is lost; when the broker is down or slow the bounded producer queue fills or
the acknowledgement deadline passes and the answer is 503 with Retry-After (the client resends;
``event_id`` makes resends harmless downstream).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import orjson  # several times faster than json for the per-event encode and decode
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from platform_assets.ingest.collector import events as ev
from platform_assets.ingest.collector import otlp
from platform_assets.ingest.collector.attributes import AttributePolicy, scrub
from platform_assets.ingest.collector.config import CollectorConfig
from platform_assets.ingest.collector.sink import KafkaSink, Message, Sink, Unavailable

__all__ = [
    "SPANS_TOPIC",
    "Collector",
    "CollectorConfig",
    "KafkaSink",
    "Message",
    "Metrics",
    "Sink",
    "Unavailable",
    "build_app",
    "main",
]

SPANS_TOPIC = "otlp_spans"


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


class Collector:
    """The collector's routes over one config, sink and set of counters: checks, signatures and
    PII handling here, delivery and its acknowledgement behind ``sink`` (``sink.py``):
    ``build_app(cfg)`` gives it the ``KafkaSink``, unit tests an in-memory one."""

    def __init__(self, cfg: CollectorConfig, sink: Sink, metrics: Metrics | None = None) -> None:
        self.cfg = cfg
        self.sink = sink
        self.metrics = Metrics() if metrics is None else metrics
        self.hasher = ev.actor_hasher(cfg.hash_key)
        self.attribute_policy = AttributePolicy(cfg.attributes_delete, cfg.attributes_hash)

    def routes(self) -> list[Route]:
        return [
            Route("/v1/traces", self.traces, methods=["POST"]),
            Route("/ingest", self.ingest, methods=["POST"]),
            Route("/health", self.health, methods=["GET"]),
            Route("/metrics", self.metrics_text, methods=["GET"]),
        ]

    @asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(self.sink.close)  # graceful shutdown flushes what is queued

    def _unavailable(self, reason: str) -> Response:
        self.metrics.inc("unavailable_responses")
        return JSONResponse(
            {"error": f"kafka unavailable: {reason}"},
            status_code=503,
            headers={"Retry-After": str(self.cfg.retry_after_s)},
        )

    async def _read_body(self, request: Request) -> bytes | Response:
        limit = self.cfg.max_body_bytes
        length = request.headers.get("content-length")
        if length and int(length) > limit:
            return JSONResponse({"error": f"body over {limit} bytes"}, status_code=413)
        body = await request.body()
        if len(body) > limit:
            return JSONResponse({"error": f"body over {limit} bytes"}, status_code=413)
        return body

    async def traces(self, request: Request) -> Response:
        body = await self._read_body(request)
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
            self.metrics.inc("rejected_requests")
            return JSONResponse({"error": str(exc)}, status_code=400)
        spans = otlp.span_count(payload)
        if spans:
            scrubbed = scrub(payload, self.attribute_policy, self.hasher)  # before anything reaches Kafka
            try:
                messages = otlp.to_messages(payload, self.cfg.max_message_bytes)
            except otlp.SpanTooLarge as exc:
                self.metrics.inc("rejected_requests")
                return JSONResponse({"error": str(exc)}, status_code=413)
            try:
                await self.sink.send([(SPANS_TOPIC, key, value) for key, value in messages])
            except Unavailable as exc:
                return self._unavailable(str(exc))
            for name, count in (
                ("otlp_attributes_deleted", scrubbed.deleted),
                ("otlp_attributes_hashed", scrubbed.hashed),
            ):
                if count:
                    self.metrics.inc(name, count)
        self.metrics.inc("spans_accepted", spans)
        # OTLP/HTTP success: an ExportTraceServiceResponse in the request's encoding.
        if ctype == "application/x-protobuf":
            return Response(b"", media_type="application/x-protobuf")
        return JSONResponse({})

    async def ingest(self, request: Request) -> Response:
        cfg = self.cfg
        body = await self._read_body(request)
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
            self.metrics.inc("unauthorized_requests")
            return JSONResponse({"error": reason}, status_code=401)
        try:
            batch = ev.validate(orjson.loads(body))
        except ValueError as exc:
            self.metrics.inc("rejected_requests")
            errors = exc.errors if isinstance(exc, ev.BatchError) else [f"body: not JSON ({exc})"]
            return JSONResponse({"errors": errors}, status_code=422)
        if len(batch) > cfg.max_batch_events:
            return JSONResponse({"error": f"batch of {len(batch)} events over {cfg.max_batch_events}"}, status_code=413)
        rows = ev.encode_rows(batch, cfg.drop_keys, self.hasher)
        too_big = ev.oversized(batch, rows, cfg.max_message_bytes)
        if too_big:
            self.metrics.inc("rejected_requests")
            return JSONResponse({"errors": too_big}, status_code=413)
        messages: list[Message] = [
            (topic, key, value)
            for topic, topic_rows in rows.items()
            for key, value in ev.pack(topic_rows, cfg.max_message_bytes)
        ]
        try:
            await self.sink.send(messages)
        except Unavailable as exc:
            return self._unavailable(str(exc))
        self.metrics.inc("events_accepted", len(batch))
        return JSONResponse({"accepted": len(batch)}, status_code=202)

    async def health(self, _request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def metrics_text(self, _request: Request) -> Response:
        return PlainTextResponse(self.metrics.render())


def build_app(cfg: CollectorConfig, sink: Sink | None = None) -> Starlette:
    """The ASGI app; ``sink`` defaults to a ``KafkaSink`` for ``cfg``. The app closes its sink
    on shutdown (the lifespan's end), which for Kafka flushes what is still queued."""
    collector = Collector(cfg, KafkaSink(cfg) if sink is None else sink)
    app = Starlette(lifespan=collector.lifespan, routes=collector.routes())
    app.state.metrics = collector.metrics
    app.state.collector = collector
    return app


def main() -> None:
    import argparse

    import uvicorn

    from platform_assets import environment

    parser = argparse.ArgumentParser(prog="platform-collector", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4318)  # the OTLP/HTTP default port
    args = parser.parse_args()
    environment.prepare([CollectorConfig])  # locally fills them from the embedded stack; checks they are set
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
