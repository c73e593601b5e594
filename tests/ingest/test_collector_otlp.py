"""OTLP over both protocols into the collector's servers (``serve.CollectorThread``) with an
in-memory sink: real OpenTelemetry SDK programs, gRPC status codes, gzip, partial success, bad
input. No Kafka or ClickHouse (those are in test_collector.py)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence

import grpc
import pytest
import requests
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from platform_assets.core.identity import user_hash
from platform_assets.ingest.collector.config import CollectorConfig
from platform_assets.ingest.collector.serve import CollectorThread
from platform_assets.ingest.collector.sink import Message, Unavailable
from platform_assets.synthetic.otel_program import USER_EMAIL, USER_ID

pytestmark = pytest.mark.unit

KEYS = {"k2026a": b"first-secret-0123456789"}
HASH_KEY = b"hash-key-for-tests-0123"


class MemorySink:
    """The ``Sink`` interface in memory; with ``fail`` set, ``send`` raises ``Unavailable``."""

    def __init__(self) -> None:
        self.sent: list[list[Message]] = []
        self.fail: str | None = None

    async def send(self, messages: Sequence[Message]) -> None:
        if self.fail:
            raise Unavailable(self.fail)
        self.sent.append(list(messages))

    def close(self) -> None:
        pass


TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def collector(sink) -> Iterator[CollectorThread]:
    cfg = CollectorConfig(
        bootstrap_servers="unused:9092",
        hmac_keys=KEYS,
        hash_key=HASH_KEY,
        max_body_bytes=1024 * 1024,
        max_decoded_bytes=2 * 1024 * 1024,
        max_message_bytes=64 * 1024,
    )
    with CollectorThread(cfg, sink=sink) as running:
        yield running


def run_program(collector: CollectorThread, protocol: str, style: str, **env: str) -> dict:
    endpoint = f"http://{collector.grpc_endpoint}" if protocol == "grpc" else collector.url
    out = subprocess.run(
        [sys.executable, "-m", "platform_assets.synthetic.otel_program", protocol, style, "--marker", uuid.uuid4().hex],
        env={**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SERVICE_NAME": "support-api", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "Failed to export" not in out.stderr, out.stderr
    return json.loads(out.stdout)


def documents(sink: MemorySink, topic: str) -> list[dict]:
    return [json.loads(value) for batch in sink.sent for t, _key, value in batch if t == topic]


def walk_attributes(node) -> Iterator[tuple[str, dict]]:
    if isinstance(node, dict):
        for key in ("attributes", "filteredAttributes"):
            for kv in node.get(key) or []:
                yield kv.get("key", ""), kv.get("value", {})
        for v in node.values():
            yield from walk_attributes(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk_attributes(v)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
@pytest.mark.parametrize("style", ["semconv", "common"])
def test_an_sdk_program_sends_all_three_signals_scrubbed(collector, sink, protocol, style):
    record = run_program(collector, protocol, style, OTEL_EXPORTER_OTLP_COMPRESSION="gzip")
    spans = [s for d in documents(sink, "otlp_spans") for rs in d["resourceSpans"] for ss in rs["scopeSpans"]
             for s in ss["spans"]]  # fmt: skip
    assert sorted({s["traceId"] for s in spans}) == sorted(record["traces"])
    assert len(spans) == 3 * 2 + 1  # per run: agent + LLM call; one failing tool call
    metrics = {
        m["name"]: m
        for d in documents(sink, "otlp_metrics")
        for rm in d["resourceMetrics"]
        for sm in rm["scopeMetrics"]
        for m in sm["metrics"]
    }
    hist = metrics["http.server.request.duration"]["histogram"]
    for route, values in record["durations"].items():
        points = [
            p for p in hist["dataPoints"] if {"key": "http.route", "value": {"stringValue": route}} in p["attributes"]
        ]
        assert sum(int(p["count"]) for p in points) == len(values)
        assert sum(p["sum"] for p in points) == pytest.approx(sum(values))
        bounds = points[0]["explicitBounds"]
        counts = [sum(int(p["bucketCounts"][i]) for p in points) for i in range(len(bounds) + 1)]
        expected = [sum(1 for v in values if (i == 0 or v > bounds[i - 1]) and (i == len(bounds) or v <= bounds[i]))
                    for i in range(len(bounds) + 1)]  # fmt: skip
        assert counts == expected
    assert metrics["app.requests"]["sum"]["isMonotonic"] is True
    assert metrics["app.queue.depth"]["gauge"]["dataPoints"][0]["asInt"] == "7"
    logs = [r for d in documents(sink, "otlp_logs") for rl in d["resourceLogs"] for sl in rl["scopeLogs"]
            for r in sl["logRecords"]]  # fmt: skip
    assert len(logs) == record["logs"]
    error = next(r for r in logs if r.get("severityNumber") == 17)
    assert error["traceId"] in record["traces"] and error["body"] == {
        "stringValue": "lookup_order failed for [redacted]"
    }
    # PII: nothing raw anywhere in what reached the sink; user ids became the signed batches' pseudonym.
    raw = b"".join(value for batch in sink.sent for _t, _k, value in batch)
    assert USER_EMAIL.encode() not in raw and f'"{USER_ID}"'.encode() not in raw
    hashed = {k: v["stringValue"] for d in documents(sink, "otlp_spans") + documents(sink, "otlp_logs")
              for k, v in walk_attributes(d) if k in ("user_id", "enduser.id")}  # fmt: skip
    assert hashed and set(hashed.values()) == {user_hash(HASH_KEY, USER_ID)}
    counters = requests.get(f"{collector.url}/metrics", timeout=10).text
    assert "collector_spans_accepted_total 7" in counters and "collector_log_records_accepted_total" in counters


def test_grpc_bad_payload_is_invalid_argument_and_sends_nothing(collector, sink):
    with grpc.insecure_channel(collector.grpc_endpoint) as channel:
        export = channel.unary_unary(TRACE_EXPORT)
        with pytest.raises(grpc.RpcError) as err:
            export(b"\x0a\xff\xff", timeout=10)  # a truncated length-delimited field
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not an OTLP protobuf ExportTraceServiceRequest" in err.value.details()
    assert sink.sent == []


def test_grpc_oversize_is_resource_exhausted(collector, sink):
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
    span.name = "x" * (3 * 1024 * 1024)  # over max_decoded_bytes (2 MiB)
    with grpc.insecure_channel(collector.grpc_endpoint) as channel, pytest.raises(grpc.RpcError) as err:
        channel.unary_unary(TRACE_EXPORT)(req.SerializeToString(), timeout=10)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert sink.sent == []


def test_kafka_down_is_unavailable_with_retry_info_then_accepted(collector, sink):
    req = ExportTraceServiceRequest()
    req.resource_spans.add().scope_spans.add().spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="a")
    sink.fail = "broker down"
    with grpc.insecure_channel(collector.grpc_endpoint) as channel:
        export = channel.unary_unary(TRACE_EXPORT)
        with pytest.raises(grpc.RpcError) as err:
            export(req.SerializeToString(), timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        trailers = dict(err.value.trailing_metadata())
        assert RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"]).retry_delay.seconds == 5
        status = Status.FromString(trailers["grpc-status-details-bin"])
        assert status.code == 14 and status.details[0].Is(RetryInfo.DESCRIPTOR)
        http = requests.post(
            f"{collector.url}/v1/traces",
            data=req.SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"},
            timeout=10,
        )
        assert http.status_code == 503 and http.headers["Retry-After"] == "5"
        assert "kafka unavailable: broker down" in Status.FromString(http.content).message
        assert sink.sent == []
        sink.fail = None
        answer = ExportTraceServiceResponse.FromString(export(req.SerializeToString(), timeout=10))
    assert not answer.HasField("partial_success") and len(sink.sent) == 1


def test_a_span_no_message_can_carry_is_partial_success_and_the_rest_is_sent(collector, sink):
    req = ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add().spans
    for i in range(3):
        spans.add(trace_id=bytes([i + 1]) * 16, span_id=bytes([i + 1]) * 8, name="x" * (100_000 if i == 1 else 10))
    with grpc.insecure_channel(collector.grpc_endpoint) as channel:
        answer = ExportTraceServiceResponse.FromString(
            channel.unary_unary(TRACE_EXPORT)(req.SerializeToString(), timeout=10)
        )
    assert answer.partial_success.rejected_spans == 1
    assert "span 0202020202020202 of trace" in answer.partial_success.error_message
    sent = [s["spanId"] for d in documents(sink, "otlp_spans") for s in d["resourceSpans"][0]["scopeSpans"][0]["spans"]]
    assert sent == ["0101010101010101", "0303030303030303"]
    js = requests.post(f"{collector.url}/v1/traces", data=req.SerializeToString(),
                       headers={"Content-Type": "application/x-protobuf"}, timeout=10)  # fmt: skip
    assert js.status_code == 200
    assert ExportTraceServiceResponse.FromString(js.content).partial_success.rejected_spans == 1


def test_http_bad_input_is_named_and_sends_nothing(collector, sink):
    url = collector.url
    logs = ExportLogsServiceRequest()
    logs.resource_logs.add().scope_logs.add().log_records.add(severity_number=9).body.string_value = "hello"
    body = logs.SerializeToString()
    pb = {"Content-Type": "application/x-protobuf"}

    truncated = requests.post(f"{url}/v1/logs", data=body[:-3], headers=pb, timeout=10)
    assert truncated.status_code == 400
    assert "not an OTLP protobuf ExportLogsServiceRequest" in Status.FromString(truncated.content).message
    wrong_type = requests.post(f"{url}/v1/metrics", data=body, headers={"Content-Type": "text/csv"}, timeout=10)
    assert wrong_type.status_code == 415 and wrong_type.json()["message"] == "unsupported content type 'text/csv'"
    assert requests.post(f"{url}/v1/profiles", data=body, headers=pb, timeout=10).status_code == 404
    bomb = gzip.compress(b"\0" * (8 * 1024 * 1024))  # 8 KiB that inflate to 8 MiB, over the 2 MiB limit
    bombed = requests.post(f"{url}/v1/logs", data=bomb, headers={**pb, "Content-Encoding": "gzip"}, timeout=10)
    assert (
        bombed.status_code == 413 and "decompresses to over 2097152 bytes" in Status.FromString(bombed.content).message
    )
    not_gzip = requests.post(f"{url}/v1/logs", data=body, headers={**pb, "Content-Encoding": "gzip"}, timeout=10)
    assert not_gzip.status_code == 400
    brotli = requests.post(f"{url}/v1/logs", data=body, headers={**pb, "Content-Encoding": "br"}, timeout=10)
    assert brotli.status_code == 415
    oversize = requests.post(f"{url}/v1/logs", data=b"\0" * (1024 * 1024 + 1), headers=pb, timeout=10)
    assert oversize.status_code == 413
    bad_json = requests.post(f"{url}/v1/logs", json={"resourceLogs": [{"scopeLogs": 5}]}, timeout=10)
    assert bad_json.status_code == 400 and "not an OTLP JSON ExportLogsServiceRequest" in bad_json.json()["message"]
    assert sink.sent == []
    ok = requests.post(
        f"{url}/v1/logs", data=gzip.compress(body), headers={**pb, "Content-Encoding": "gzip"}, timeout=10
    )
    assert ok.status_code == 200 and ok.content == b""  # the collector keeps serving; empty response = full success
    (doc,) = documents(sink, "otlp_logs")
    assert doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"] == [
        {"severityNumber": 9, "body": {"stringValue": "hello"}}
    ]
