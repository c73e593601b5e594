"""OTLP/HTTP trace payloads (protobuf or JSON) to the OTLP JSON encoding the OpenTelemetry
Collector's Kafka exporter writes (``otlp_json``): camelCase fields, hex trace/span ids,
integer enums."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import orjson
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

ID_FIELDS = ("traceId", "spanId", "parentSpanId")


class OtlpError(ValueError):
    """The payload is not a valid OTLP ExportTraceServiceRequest."""


class SpanTooLarge(ValueError):
    """One span (with its resource and scope) is over the Kafka message limit."""


def _spans(request: dict[str, Any]):
    for rs in request.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            yield from ss.get("spans", [])


def _convert_ids(request: dict[str, Any], convert) -> None:
    for span in _spans(request):
        for name in ID_FIELDS:
            if span.get(name):
                span[name] = convert(span[name])
        for link in span.get("links", []):
            for name in ("traceId", "spanId"):
                if link.get(name):
                    link[name] = convert(link[name])


def from_protobuf(body: bytes) -> dict[str, Any]:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise OtlpError(f"not an OTLP protobuf ExportTraceServiceRequest: {exc}") from exc
    out = MessageToDict(request, use_integers_for_enums=True)
    _convert_ids(out, lambda v: base64.b64decode(v).hex())
    return out


def from_json(body: bytes) -> dict[str, Any]:
    try:
        out = json.loads(body)
    except ValueError as exc:
        raise OtlpError(f"body is not JSON: {exc}") from exc
    if not isinstance(out, dict):
        raise OtlpError("body must be a JSON object (ExportTraceServiceRequest)")
    probe = copy.deepcopy(out)
    try:
        _convert_ids(probe, lambda v: base64.b64encode(bytes.fromhex(v)).decode())
        ParseDict(probe, ExportTraceServiceRequest())  # validates field names and types
    except (ParseError, ValueError, TypeError, AttributeError) as exc:
        raise OtlpError(f"not an OTLP JSON ExportTraceServiceRequest: {exc}") from exc
    return out


def span_count(request: dict[str, Any]) -> int:
    return sum(1 for _ in _spans(request))


def first_trace_id(request: dict[str, Any]) -> str | None:
    return next((s.get("traceId") for s in _spans(request)), None)


def to_messages(request: dict[str, Any], max_bytes: int) -> list[tuple[bytes | None, bytes]]:
    """The request as Kafka messages ``[(key, value), ...]`` of at most ``max_bytes`` each, keyed
    by their first trace id. A request that fits is one message, as the Collector's exporter
    writes it; a larger one is split into requests of one resource and scope each, spans in order."""
    whole = orjson.dumps(request)
    if len(whole) <= max_bytes:
        return [(_key(first_trace_id(request)), whole)]
    messages: list[tuple[bytes | None, bytes]] = []
    for rs in request.get("resourceSpans", []):
        resource = {k: v for k, v in rs.items() if k != "scopeSpans"}
        for ss in rs.get("scopeSpans", []):
            scope = {k: v for k, v in ss.items() if k != "spans"}
            overhead = len(orjson.dumps(_single(resource, scope, [])))
            chunk: list[dict[str, Any]] = []
            size = overhead
            for span in ss.get("spans", []):
                span_bytes = len(orjson.dumps(span)) + 1  # the comma between spans
                if overhead + span_bytes > max_bytes:
                    raise SpanTooLarge(
                        f"span {span.get('spanId', '?')} of trace {span.get('traceId', '?')}: "
                        f"{overhead + span_bytes} bytes, over the {max_bytes}-byte message limit"
                    )
                if chunk and size + span_bytes > max_bytes:
                    messages.append((_key(chunk[0].get("traceId")), orjson.dumps(_single(resource, scope, chunk))))
                    chunk, size = [], overhead
                chunk.append(span)
                size += span_bytes
            if chunk:
                messages.append((_key(chunk[0].get("traceId")), orjson.dumps(_single(resource, scope, chunk))))
    return messages


def _single(resource: dict[str, Any], scope: dict[str, Any], spans: list[dict[str, Any]]) -> dict[str, Any]:
    """A request of one resource and one scope holding ``spans``."""
    return {"resourceSpans": [{**resource, "scopeSpans": [{**scope, "spans": spans}]}]}


def _key(trace_id: str | None) -> bytes | None:
    return (trace_id or "").encode() or None
