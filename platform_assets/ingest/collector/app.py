"""The collector's routes: OTLP traces, metrics and logs and HMAC-signed JSON event batches into
Kafka (the gRPC methods in ``grpc_server.py`` call the same ``Collector.export``; both servers
run from ``serve.py``).

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
from platform_assets.ingest.collector import http_codec, otlp
from platform_assets.ingest.collector.attributes import AttributePolicy, scrub
from platform_assets.ingest.collector.config import CollectorConfig
from platform_assets.ingest.collector.sink import KafkaSink, Message, Sink, Unavailable

__all__ = [
    "Collector",
    "CollectorConfig",
    "KafkaSink",
    "Message",
    "Metrics",
    "Sink",
    "Unavailable",
    "build_app",
]


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

    def snapshot(self) -> Counter:
        """A copy of every counter now (the stats publisher reports the increase between two)."""
        with self.lock:
            return Counter(self.counters)


class Collector:
    """The collector's routes over one config, sink and set of counters: checks, signatures and
    PII handling here, delivery and its acknowledgement behind ``sink`` (``sink.py``):
    ``build_app(cfg)`` gives it the ``KafkaSink``, unit tests an in-memory one."""

    def __init__(self, cfg: CollectorConfig, sink: Sink, metrics: Metrics | None = None) -> None:
        self.cfg = cfg
        self.sink = sink
        self.metrics = Metrics() if metrics is None else metrics
        self.hasher = ev.actor_hasher(cfg.hash_key)
        self.attribute_policy = AttributePolicy(cfg.attributes_delete, cfg.attributes_hash, cfg.log_body_redact)

    def routes(self) -> list[Route]:
        return [
            *(self._otlp_route(signal) for signal in otlp.SIGNALS.values()),
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
        try:
            declared = int(length) if length else 0
        except ValueError:
            self.metrics.inc("rejected_requests")
            return JSONResponse({"error": f"Content-Length {length!r} is not a number"}, status_code=400)
        if declared > limit:
            self.metrics.inc("rejected_requests")
            return JSONResponse({"error": f"body over {limit} bytes"}, status_code=413)
        body = await request.body()
        if len(body) > limit:
            self.metrics.inc("rejected_requests")
            return JSONResponse({"error": f"body over {limit} bytes"}, status_code=413)
        return body

    async def export(self, signal: otlp.Signal, payload: dict) -> otlp.Split:
        """One decoded OTLP export request of ``signal`` to Kafka, PII removed first; returns the
        split (its ``rejected`` items are the partial success); raises ``Unavailable``."""
        items = otlp.item_count(signal, payload)
        if not items:
            return otlp.Split([])
        scrubbed = scrub(payload, self.attribute_policy, self.hasher)  # before anything reaches Kafka
        split = otlp.to_messages(signal, payload, self.cfg.max_message_bytes)
        if split.messages:
            await self.sink.send([(signal.topic, key, value) for key, value in split.messages])
        for name, count in (
            ("otlp_attributes_deleted", scrubbed.deleted),
            ("otlp_attributes_hashed", scrubbed.hashed),
            ("otlp_log_bodies_redacted", scrubbed.redacted),
            (f"{signal.items}_rejected", split.rejected),
        ):
            if count:
                self.metrics.inc(name, count)
        self.metrics.inc(f"{signal.items}_accepted", items - split.rejected)
        return split

    def _otlp_route(self, signal: otlp.Signal) -> Route:
        async def handler(request: Request) -> Response:
            return await self._http_export(signal, request)

        return Route(signal.path, handler, methods=["POST"])

    async def _http_export(self, signal: otlp.Signal, request: Request) -> Response:
        """OTLP/HTTP: protobuf or JSON, optionally gzip; answers as the OTLP specification says
        (200 with the export response, partial success included; 400 bad payload, 413 too large,
        415 unknown type or encoding, 503 with Retry-After when Kafka does not take it; error
        bodies a google.rpc.Status in the request's encoding)."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        as_proto = ctype == "application/x-protobuf"
        body = await self._read_body(request)
        if isinstance(body, Response):
            return body
        try:
            body = http_codec.decode(body, request.headers.get("content-encoding", ""), self.cfg.max_decoded_bytes)
            if as_proto:
                payload = otlp.from_protobuf(signal, body)
            elif ctype == "application/json":
                payload = otlp.from_json(signal, body)
            else:
                self.metrics.inc("rejected_requests")
                return http_codec.status(415, f"unsupported content type {ctype!r}", as_proto)
        except http_codec.TooLarge as exc:
            self.metrics.inc("rejected_requests")
            return http_codec.status(413, str(exc), as_proto)
        except http_codec.BadEncoding as exc:
            self.metrics.inc("rejected_requests")
            return http_codec.status(415, str(exc), as_proto)
        except (otlp.OtlpError, http_codec.CorruptBody) as exc:
            self.metrics.inc("rejected_requests")
            return http_codec.status(400, str(exc), as_proto)
        try:
            split = await self.export(signal, payload)
        except Unavailable as exc:
            self.metrics.inc("unavailable_responses")
            return http_codec.status(
                503, f"kafka unavailable: {exc}", as_proto, headers={"Retry-After": str(self.cfg.retry_after_s)}
            )
        return http_codec.export_response(otlp.response(signal, split.rejected, split.error), as_proto)

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
            self.metrics.inc("rejected_requests")
            return JSONResponse({"error": f"batch of {len(batch)} events over {cfg.max_batch_events}"}, status_code=413)
        try:
            rows = ev.encode_rows(batch, cfg.drop_keys, self.hasher)
        except ev.BatchError as exc:
            self.metrics.inc("rejected_requests")
            return JSONResponse({"errors": exc.errors}, status_code=422)
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
