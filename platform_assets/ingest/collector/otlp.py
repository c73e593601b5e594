"""OTLP/HTTP trace payloads (protobuf or JSON) to the OTLP JSON encoding the OpenTelemetry
Collector's Kafka exporter writes (``otlp_json``): camelCase fields, hex trace/span ids,
integer enums."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

ID_FIELDS = ("traceId", "spanId", "parentSpanId")


class OtlpError(ValueError):
    """The payload is not a valid OTLP ExportTraceServiceRequest."""


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
