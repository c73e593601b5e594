"""OTLP export requests of the three signals (traces, metrics, logs) to Kafka messages in the OTLP
JSON encoding the OpenTelemetry Collector's Kafka exporter writes (``otlp_json``: camelCase
fields, hex trace/span ids, integer enums, 64-bit integers as strings) (pure).

``SIGNALS`` describes each signal once: its OTLP/HTTP path, gRPC service, Kafka topic, protobuf
request and response types and the names of its nesting levels, so that one code path decodes,
counts, splits and answers for all three.
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf.json_format import ParseDict, ParseError
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb

from platform_assets.ingest.collector import otlp_proto

ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId"})
POINT_KINDS = ("gauge", "sum", "histogram", "exponentialHistogram", "summary")
STRING_LISTS = frozenset({"idKeys", "descriptionKeys"})  # the repeated strings (entity refs)

Json = dict[str, Any]
KafkaMessage = tuple[bytes | None, bytes]  # (key, value)


class OtlpError(ValueError):
    """The payload is not a valid OTLP export request of its signal."""


@dataclass(frozen=True)
class Signal:
    name: str  # traces | metrics | logs
    topic: str
    request_type: type[Message]
    response_type: type[Message]
    grpc_service: str
    resource_key: str  # resourceSpans
    scope_key: str  # scopeSpans
    items_key: str  # spans: what a message is split by
    items: str  # what the counters and errors call one item
    rejected_field: str  # the partial-success field of the response
    to_json: Callable[[Any], Json]

    @property
    def path(self) -> str:
        return f"/v1/{self.name}"


SIGNALS: dict[str, Signal] = {
    s.name: s
    for s in (
        Signal(
            "traces",
            "otlp_spans",
            trace_pb.ExportTraceServiceRequest,
            trace_pb.ExportTraceServiceResponse,
            "opentelemetry.proto.collector.trace.v1.TraceService",
            "resourceSpans",
            "scopeSpans",
            "spans",
            "spans",
            "rejected_spans",
            otlp_proto.traces_request,
        ),
        Signal(
            "metrics",
            "otlp_metrics",
            metrics_pb.ExportMetricsServiceRequest,
            metrics_pb.ExportMetricsServiceResponse,
            "opentelemetry.proto.collector.metrics.v1.MetricsService",
            "resourceMetrics",
            "scopeMetrics",
            "metrics",
            "data_points",
            "rejected_data_points",
            otlp_proto.metrics_request,
        ),
        Signal(
            "logs",
            "otlp_logs",
            logs_pb.ExportLogsServiceRequest,
            logs_pb.ExportLogsServiceResponse,
            "opentelemetry.proto.collector.logs.v1.LogsService",
            "resourceLogs",
            "scopeLogs",
            "logRecords",
            "log_records",
            "rejected_log_records",
            otlp_proto.logs_request,
        ),
    )
}


def from_protobuf(signal: Signal, body: bytes) -> Json:
    request = signal.request_type()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise OtlpError(f"not an OTLP protobuf {signal.request_type.__name__}: {exc}") from exc
    return signal.to_json(request)


def _ids(node: Any, convert: Callable[[str], str], key: str = "") -> None:
    """Converts every trace/span id in an OTLP JSON document in place (attribute keys are values
    of ``key``, never dict keys, so only ids are touched). Raises ValueError for an empty list or
    string in a list of messages: protobuf's ParseDict takes either for an empty message, and
    the collector reads every item of such a list as an object."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ID_FIELDS and isinstance(v, str):
                node[k] = convert(v)
            elif isinstance(v, dict | list):
                _ids(v, convert, k)
    elif isinstance(node, list):
        for v in node:
            if isinstance(v, dict):
                _ids(v, convert)
            elif isinstance(v, list) or (v == "" and key not in STRING_LISTS):  # no OTLP list holds lists
                raise ValueError(f"{key}: {v!r} is not an object")


def _hex_to_base64(value: str) -> str:
    return base64.b64encode(bytes.fromhex(value)).decode()


def from_json(signal: Signal, body: bytes) -> Json:
    try:
        out = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OtlpError(f"body is not JSON: {exc}") from exc
    if not isinstance(out, dict):
        raise OtlpError(f"body must be a JSON object ({signal.request_type.__name__})")
    snake = _snake_case_key(out)
    if snake is not None:
        # ParseDict accepts proto field names too, but the OTLP specification allows only the
        # lowerCamelCase JSON names, and every reader of the request (counts, scrubbing, the
        # ClickHouse views) reads those: accepted, the request would be stored empty.
        camel = re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), snake)
        raise OtlpError(f"OTLP/JSON field names are lowerCamelCase: got {snake!r}, write {camel!r}")
    try:
        probe = copy.deepcopy(out)  # RecursionError for nesting deeper than Python recurses
        _ids(probe, _hex_to_base64)
        ParseDict(probe, signal.request_type())  # validates field names and types
    except (ParseError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise OtlpError(f"not an OTLP JSON {signal.request_type.__name__}: {exc}") from exc
    return out


def _snake_case_key(value: Any) -> str | None:
    """The first JSON object key with an underscore: no OTLP/JSON field name has one (attribute
    names are values of ``key``, not object keys). Iterative: deep nesting cannot recurse."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if "_" in key:
                    return key
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _scopes(signal: Signal, request: Json) -> Iterator[Json]:
    for rs in request.get(signal.resource_key) or []:
        yield from rs.get(signal.scope_key) or []


def metric_points(metric: Json) -> int:
    for kind in POINT_KINDS:
        if kind in metric:
            return len((metric[kind] or {}).get("dataPoints") or [])
    return 0


def item_count(signal: Signal, request: Json) -> int:
    """Spans, metric data points or log records in the request."""
    if signal.name == "metrics":
        return sum(metric_points(m) for sc in _scopes(signal, request) for m in sc.get("metrics") or [])
    return sum(len(sc.get(signal.items_key) or []) for sc in _scopes(signal, request))


@dataclass
class Split:
    messages: list[KafkaMessage]
    rejected: int = 0  # items no message can carry
    error: str = ""  # the first of them, named


def to_messages(signal: Signal, request: Json, max_bytes: int) -> Split:
    """The request as Kafka messages of at most ``max_bytes`` each. A request that fits is one
    message, as the Collector's exporter writes it; a larger one is split into requests of one
    resource and scope each, items in order (a metric over the limit into its data points). An item
    that does not fit even alone is left out and counted (``rejected``, ``error`` naming it): the
    response reports it as OTLP partial success, everything else is delivered."""
    whole = orjson.dumps(request)
    if len(whole) <= max_bytes:
        return Split([(_key(signal, request), whole)])
    split = Split([])
    for rs in request.get(signal.resource_key) or []:
        resource = {k: v for k, v in rs.items() if k != signal.scope_key}
        for sc in rs.get(signal.scope_key) or []:
            scope = {k: v for k, v in sc.items() if k != signal.items_key}
            _split_scope(signal, resource, scope, sc.get(signal.items_key) or [], max_bytes, split)
    return split


def _split_scope(signal: Signal, resource: Json, scope: Json, items: list[Json], max_bytes: int, split: Split) -> None:
    overhead = len(orjson.dumps(_single(signal, resource, scope, [])))
    chunk: list[Json] = []
    size = overhead

    def flush() -> None:
        nonlocal chunk, size
        if chunk:
            doc = _single(signal, resource, scope, chunk)
            split.messages.append((_key(signal, doc), orjson.dumps(doc)))
        chunk, size = [], overhead

    for item in _fitting_items(signal, items, max_bytes - overhead, split):
        item_bytes = len(orjson.dumps(item)) + 1  # the comma between items
        if chunk and size + item_bytes > max_bytes:
            flush()
        chunk.append(item)
        size += item_bytes
    flush()


def _fitting_items(signal: Signal, items: list[Json], room: int, split: Split) -> Iterator[Json]:
    for item in items:
        if len(orjson.dumps(item)) + 1 <= room:
            yield item
        elif signal.name == "metrics":
            yield from _metric_parts(item, room, split)
        else:
            _reject(split, 1, f"{_describe(signal, item)}: over the {room}-byte room of a Kafka message")


def _metric_parts(metric: Json, room: int, split: Split) -> Iterator[Json]:
    """A metric over the limit as copies holding some of its data points each."""
    kind = next((k for k in POINT_KINDS if k in metric), "")
    if not kind:
        _reject(split, 0, f"metric {metric.get('name', '?')!r} without data points: over the {room}-byte room")
        return
    points = (metric[kind] or {}).get("dataPoints") or []
    overhead = len(orjson.dumps({**metric, kind: {**metric[kind], "dataPoints": []}}))

    def part_of(chunk: list[Json]) -> Json:
        return {**metric, kind: {**metric[kind], "dataPoints": chunk}}

    part: list[Json] = []
    size = overhead
    for point in points:
        point_bytes = len(orjson.dumps(point)) + 1
        if overhead + point_bytes > room:
            _reject(split, 1, f"a data point of metric {metric.get('name', '?')!r}: over the {room}-byte room")
            continue
        if part and size + point_bytes > room:
            yield part_of(part)
            part, size = [], overhead
        part.append(point)
        size += point_bytes
    if part:
        yield part_of(part)


def _reject(split: Split, count: int, error: str) -> None:
    split.rejected += count
    split.error = split.error or error


def _describe(signal: Signal, item: Json) -> str:
    if signal.name == "traces":
        return f"span {item.get('spanId', '?')} of trace {item.get('traceId', '?')}"
    return f"log record at {item.get('timeUnixNano', '?')} (trace {item.get('traceId', '') or '-'})"


def _single(signal: Signal, resource: Json, scope: Json, items: list[Json]) -> Json:
    """A request of one resource and one scope holding ``items``."""
    return {signal.resource_key: [{**resource, signal.scope_key: [{**scope, signal.items_key: items}]}]}


def _key(signal: Signal, request: Json) -> bytes | None:
    """Spans and logs are keyed by their first trace id (a trace's spans then share a partition);
    metrics carry none, so the producer spreads them."""
    if signal.name == "metrics":
        return None
    for sc in _scopes(signal, request):
        for item in sc.get(signal.items_key) or []:
            trace_id = item.get("traceId")
            if trace_id:
                return str(trace_id).encode()
    return None


def response(signal: Signal, rejected: int = 0, error: str = "") -> Message:
    """The export response: empty on full success, ``partial_success`` when items were rejected."""
    out = signal.response_type()
    if rejected:
        setattr(out.partial_success, signal.rejected_field, rejected)
        out.partial_success.error_message = error
    return out
