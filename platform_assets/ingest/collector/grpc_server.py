"""OTLP/gRPC: the TraceService, MetricsService and LogsService ``Export`` methods on the same
``Collector`` core as OTLP/HTTP (``app.Collector.export``), served by grpc.aio in the event loop
that also runs the HTTP server.

Requests arrive as bytes and are decoded here, so a payload that is not valid protobuf is
INVALID_ARGUMENT naming the problem (grpc's own deserializer would answer INTERNAL). Kafka down:
UNAVAILABLE with a RetryInfo (as the ``google.rpc.retryinfo-bin`` trailer the OpenTelemetry SDK
exporters read, and inside ``grpc-status-details-bin`` as other gRPC clients read it). Over the
message limit: RESOURCE_EXHAUSTED from grpc itself. gzip request compression is grpc's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from platform_assets.ingest.collector import otlp
from platform_assets.ingest.collector.app import Collector
from platform_assets.ingest.collector.sink import Unavailable


def retry_trailers(message: str, delay_s: int) -> tuple[tuple[str, bytes], ...]:
    retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=delay_s))
    detail = any_pb2.Any()
    detail.Pack(retry)
    st = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=message, details=[detail])
    return (
        ("google.rpc.retryinfo-bin", retry.SerializeToString()),
        ("grpc-status-details-bin", st.SerializeToString()),
    )


def _export_method(
    collector: Collector, signal: otlp.Signal
) -> Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]:
    async def export(body: bytes, context: grpc.aio.ServicerContext) -> bytes:
        try:
            payload = otlp.from_protobuf(signal, body)
        except otlp.OtlpError as exc:
            collector.metrics.inc("rejected_requests")
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            split = await collector.export(signal, payload)
        except Unavailable as exc:
            collector.metrics.inc("unavailable_responses")
            message = f"kafka unavailable: {exc}"
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                message,
                trailing_metadata=retry_trailers(message, collector.cfg.retry_after_s),
            )
        return otlp.response(signal, split.rejected, split.error).SerializeToString()

    return export


def handlers(collector: Collector) -> list[grpc.GenericRpcHandler]:
    return [
        grpc.method_handlers_generic_handler(
            signal.grpc_service,
            {"Export": grpc.unary_unary_rpc_method_handler(_export_method(collector, signal))},
        )
        for signal in otlp.SIGNALS.values()
    ]


async def start(collector: Collector, host: str, port: int) -> tuple[grpc.aio.Server, int]:
    """A started grpc.aio server on ``host:port`` (0: a free port); returns it and its port."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", collector.cfg.max_decoded_bytes),  # over it: RESOURCE_EXHAUSTED
            ("grpc.so_reuseport", 1),  # several collector processes share the port (the kernel spreads connections)
        ]
    )
    server.add_generic_rpc_handlers(handlers(collector))
    cfg = collector.cfg
    if cfg.tls:
        with open(cfg.tls_key_file, "rb") as key, open(cfg.tls_cert_file, "rb") as cert:
            credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
        bound = server.add_secure_port(f"{host}:{port}", credentials)
    else:
        bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise OSError(f"cannot listen for OTLP/gRPC on {host}:{port}")
    await server.start()
    return server, bound
