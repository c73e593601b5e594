"""``platform-collector``: OTLP/gRPC (4317) and OTLP/HTTP plus signed batches (4318) in one process
group.

Each worker process runs one event loop (uvloop) serving both protocols over one ``Collector``
and one Kafka producer; ``--workers N`` (default: the CPUs this process may use) starts N of them
on the same ports (``SO_REUSEPORT``: the kernel spreads connections over the workers), so the
collector uses every core. SIGTERM or SIGINT stops taking new requests on both ports, lets the
ones in flight finish (their Kafka acknowledgements included), flushes the producer and exits 0.
A worker that dies otherwise stops the group with exit 1, so a supervisor restarts it whole.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from multiprocessing.connection import wait as wait_sentinels

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool

from platform_assets.ingest.collector import grpc_server
from platform_assets.ingest.collector.app import Collector, Metrics
from platform_assets.ingest.collector.config import CollectorConfig
from platform_assets.ingest.collector.sink import KafkaSink, Sink
from platform_assets.ingest.collector.stats import StatsPublisher

log = logging.getLogger("platform.collector")
GRACE_S = 30.0  # in-flight requests wait up to their Kafka acknowledgement deadline and more
KEEP_ALIVE_S = 75  # idle keep-alive connections are closed after this many seconds


class _HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling: ``serve`` stops both servers, then flushes Kafka."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listen_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # the other workers bind it too
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def serve(
    cfg: CollectorConfig,
    host: str,
    http_port: int,
    grpc_port: int,
    *,
    sink: Sink | None = None,
    stop: asyncio.Event | None = None,
    on_started: Callable[[int, int, Collector], None] | None = None,
    watch_parent: int | None = None,
) -> None:
    """Both servers over one collector until ``stop`` is set (or SIGTERM/SIGINT in the main
    thread, or the parent process ``watch_parent`` is gone); ``on_started(http_port, grpc_port,
    collector)`` once both listen."""
    collector = Collector(cfg, KafkaSink(cfg) if sink is None else sink, Metrics())
    app = Starlette(routes=collector.routes())
    app.state.collector = collector
    app.state.metrics = collector.metrics
    sock = listen_socket(host, http_port)
    http = _HttpServer(
        uvicorn.Config(
            app,
            lifespan="off",  # the producer is closed here, after both servers stopped
            http="httptools",  # the C HTTP parser, not the pure-Python fallback
            access_log=False,  # one log line per request cost ~3% of the CPU; /metrics counts requests
            proxy_headers=False,  # no client address is used, so skip the per-request header rewrite
            timeout_graceful_shutdown=int(GRACE_S),
            # uvicorn closes idle keep-alive connections after 5 s by default: exactly the
            # Retry-After we send, so a client resending on its pooled connection raced the close
            # and got a reset. Longer than any client backoff and than load balancers' 60 s idle.
            timeout_keep_alive=KEEP_ALIVE_S,
            log_level="warning",
            # HTTPS when the certificate is set (COLLECTOR_TLS_*): uvicorn wraps the socket.
            ssl_certfile=cfg.tls_cert_file or None,
            ssl_keyfile=cfg.tls_key_file or None,
        )
    )
    grpc, grpc_bound = await grpc_server.start(collector, host, grpc_port)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    http_task = asyncio.create_task(http.serve(sockets=[sock]))
    watcher = asyncio.create_task(_watch_parent(watch_parent, stop)) if watch_parent else None
    # Counter reports to topic collector_stats (stats.py), through this worker's Kafka producer.
    stats = (
        StatsPublisher(collector.metrics, collector.sink.producer, cfg.stats_interval_s).start()
        if cfg.stats_interval_s > 0 and isinstance(collector.sink, KafkaSink)
        else None
    )
    try:
        while not http.started:
            if http_task.done():
                await http_task  # raises what stopped it
                raise RuntimeError("the OTLP/HTTP server stopped during start-up")
            await asyncio.sleep(0.01)
        if on_started:
            on_started(sock.getsockname()[1], grpc_bound, collector)
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({http_task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
    finally:
        http.should_exit = True
        await asyncio.gather(grpc.stop(GRACE_S), http_task, return_exceptions=True)
        if watcher:
            watcher.cancel()
        if stats:
            await stats.close()  # the last report, flushed with the rest just below
        await run_in_threadpool(collector.sink.close)  # flushes what is still queued
        sock.close()


async def _watch_parent(pid: int, stop: asyncio.Event) -> None:
    while os.getppid() == pid:
        await asyncio.sleep(1.0)
    log.warning("collector group gone (parent %s): stopping", pid)
    stop.set()


def run_worker(cfg: CollectorConfig, host: str, http_port: int, grpc_port: int, parent: int | None = None) -> None:
    import uvloop

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(process)d %(name)s %(message)s")
    # A request allocates tens of thousands of short-lived dicts (its OTLP JSON): at the default
    # gen-0 threshold (700) the cyclic GC ran many times per request, 10-20% of the conversion.
    gc.set_threshold(50_000, 20, 20)
    uvloop.run(serve(cfg, host, http_port, grpc_port, watch_parent=parent))
    for sig in (signal.SIGTERM, signal.SIGINT):  # stopped and flushed: a late signal must not make it exit -15
        signal.signal(sig, signal.SIG_IGN)
    print(
        f"platform-collector worker {os.getpid()}: stopped, requests in flight answered, Kafka producer flushed",
        flush=True,
    )


def default_workers() -> int:
    raw = os.environ.get("COLLECTOR_WORKERS", "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise SystemExit(f"COLLECTOR_WORKERS={raw!r} must be a whole number >= 1")
        return int(raw)
    return len(os.sched_getaffinity(0))


def supervise(cfg: CollectorConfig, host: str, http_port: int, grpc_port: int, workers: int) -> int:
    """``workers`` worker processes; returns the group's exit code."""
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=run_worker, args=(cfg, host, http_port, grpc_port, os.getpid()), name=f"collector-{i}")
        for i in range(workers)
    ]
    stopping = threading.Event()

    def forward(sig: int, _frame: object) -> None:
        if stopping.is_set():  # a repeated signal while the workers shut down changes nothing
            return
        stopping.set()
        for p in procs:
            if p.pid and p.is_alive():
                os.kill(p.pid, signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    for p in procs:
        p.start()
    print(
        f"platform-collector: {workers} workers, OTLP/gRPC {host}:{grpc_port}, OTLP/HTTP {host}:{http_port}", flush=True
    )
    alive = list(procs)
    code = 0
    while alive:
        for sentinel in wait_sentinels([p.sentinel for p in alive]):
            p = next(p for p in alive if p.sentinel == sentinel)
            p.join()
            alive.remove(p)
            if p.exitcode != 0 and not stopping.is_set():
                print(f"platform-collector: worker {p.name} exited {p.exitcode}: stopping the group", file=sys.stderr)
                code = 1
                forward(signal.SIGTERM, None)
            elif p.exitcode != 0:
                code = code or 1
    # Stopped and flushed: a late SIGTERM (a supervisor repeating it) must not turn exit 0 into -15
    # while the interpreter shuts down (seen once in tests/faults/test_fault_collector.py).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    print(f"platform-collector: stopped (exit {code})", flush=True)
    return code


def _endpoints(host: str, http_port: int, grpc_port: int) -> str:
    return f"OTLP/gRPC {host}:{grpc_port}, OTLP/HTTP and signed batches {host}:{http_port}"


def main() -> None:
    from platform_assets import environment

    parser = argparse.ArgumentParser(prog="platform-collector", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4318, help="OTLP/HTTP and signed batches (the OTLP/HTTP port)")
    parser.add_argument("--grpc-port", type=int, default=4317, help="OTLP/gRPC (the OTLP/gRPC port)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: usable CPUs)")
    args = parser.parse_args()
    environment.prepare([CollectorConfig])  # locally fills them from the embedded stack; checks they are set
    cfg = CollectorConfig.from_env()
    workers = args.workers or default_workers()
    if workers == 1:
        print(
            f"platform-collector: OTLP/gRPC {args.host}:{args.grpc_port}, OTLP/HTTP {args.host}:{args.port}", flush=True
        )
        run_worker(cfg, args.host, args.port, args.grpc_port)
        return
    raise SystemExit(supervise(cfg, args.host, args.port, args.grpc_port, workers))


class CollectorThread:
    """Both servers in a background thread on free loopback ports (the demo and tests)."""

    def __init__(self, cfg: CollectorConfig, sink: Sink | None = None) -> None:
        self.cfg = cfg
        self.sink = sink
        self.http_port = 0
        self.grpc_port = 0
        self.collector: Collector | None = None
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="collector", daemon=True)

    @property
    def url(self) -> str:
        return f"{'https' if self.cfg.tls else 'http'}://127.0.0.1:{self.http_port}"

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await serve(self.cfg, "127.0.0.1", 0, 0, sink=self.sink, stop=self._stop, on_started=self._on_started)

        try:
            asyncio.run(main())
        except Exception as exc:  # noqa: BLE001 - start() reports it to the caller
            self._error = exc
            self._started.set()

    def _on_started(self, http_port: int, grpc_port: int, collector: Collector) -> None:
        self.http_port, self.grpc_port, self.collector = http_port, grpc_port, collector
        self._started.set()

    def start(self) -> CollectorThread:
        self._thread.start()
        if not self._started.wait(30) or self._error:
            raise RuntimeError(f"collector did not start within 30 s: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(GRACE_S + 10)

    def __enter__(self) -> CollectorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
