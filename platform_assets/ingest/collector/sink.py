"""Where the collector's messages go: the ``Sink`` interface and its Kafka implementation.

The handlers (``app.Collector``) only need ``send`` (produce, then wait for every
acknowledgement or raise ``Unavailable``) and ``close`` (flush at shutdown), so unit tests run
them against an in-memory sink, without a broker.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Protocol

from confluent_kafka import KafkaException, Producer

from platform_assets.core.tls import kafka_tls
from platform_assets.ingest.collector.config import CollectorConfig

Message = tuple[str, bytes | None, bytes]  # (topic, key, value)


class Unavailable(Exception):
    """Kafka did not take or acknowledge the messages in time."""


class Sink(Protocol):
    async def send(self, messages: Sequence[Message]) -> None:
        """Produce every message and return once all are acknowledged; raise ``Unavailable``
        when they cannot be taken or are not acknowledged in time (the request is then 503)."""
        ...

    def close(self) -> None:
        """Flush what is queued; called once, when the app shuts down."""
        ...


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
                **kafka_tls(cfg.kafka_security_protocol, cfg.kafka_ssl_ca_file),  # TLS to the brokers
            }
        )
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kafka-delivery", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.05)

    async def send(self, messages: Sequence[Message]) -> None:
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
