"""The collector's fast protobuf-to-OTLP/JSON conversion equals protobuf's own MessageToDict (with
hex ids, as the OTLP/JSON encoding writes them) on random requests that set every field kind."""

from __future__ import annotations

import base64
import random
from typing import Any

import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from platform_assets.ingest.collector import otlp_proto

pytestmark = pytest.mark.unit

ID_KEYS = {"traceId", "spanId", "parentSpanId"}
MAX_DEPTH = 9  # down to the values of exemplar and data point attributes


def fill(msg: Any, rnd: random.Random, depth: int = 0) -> None:
    """Sets a random subset of ``msg``'s fields (one member of each oneof), recursively."""
    chosen_oneofs = {o.name: rnd.choice(o.fields).name for o in msg.DESCRIPTOR.oneofs}
    for field in msg.DESCRIPTOR.fields:
        oneof = field.containing_oneof
        if oneof is not None and chosen_oneofs[oneof.name] != field.name:
            continue
        if rnd.random() < 0.35:
            continue
        repeated = field.label == FieldDescriptor.LABEL_REPEATED
        if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            if depth >= MAX_DEPTH:
                continue
            if repeated:
                for _ in range(rnd.randint(0, 3)):
                    fill(getattr(msg, field.name).add(), rnd, depth + 1)
            else:
                sub = getattr(msg, field.name)
                sub.SetInParent()
                fill(sub, rnd, depth + 1)
        elif repeated:
            getattr(msg, field.name).extend(scalar(field, rnd) for _ in range(rnd.randint(0, 4)))
        else:
            setattr(msg, field.name, scalar(field, rnd))


def scalar(field: FieldDescriptor, rnd: random.Random) -> Any:
    t = field.cpp_type
    if t == FieldDescriptor.CPPTYPE_STRING:
        if field.type == FieldDescriptor.TYPE_BYTES:
            return rnd.randbytes(rnd.choice([0, 8, 16, 3]))
        return rnd.choice(["", "x", "chat gpt-4o", "ünïcode ✓", "a" * 40])
    if t == FieldDescriptor.CPPTYPE_BOOL:
        return rnd.random() < 0.5
    if t == FieldDescriptor.CPPTYPE_DOUBLE:
        return rnd.choice([0.0, 1.5, -2.25, 1e300, float("nan"), float("inf"), float("-inf"), rnd.random()])
    if t == FieldDescriptor.CPPTYPE_ENUM:
        return rnd.choice([v.number for v in field.enum_type.values])
    if t in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64):
        bits = 31 if t == FieldDescriptor.CPPTYPE_INT32 else 63
        return rnd.choice([0, 1, -1, 2**bits - 1, -(2**bits), rnd.randint(-1000, 1000)])
    bits = 32 if t == FieldDescriptor.CPPTYPE_UINT32 else 64
    return rnd.choice([0, 1, 2**bits - 1, rnd.randint(0, 10**6)])


def hex_ids(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: base64.b64decode(v).hex() if k in ID_KEYS and isinstance(v, str) else hex_ids(v) for k, v in node.items()
        }
    if isinstance(node, list):
        return [hex_ids(v) for v in node]
    return node


CASES = [
    (ExportTraceServiceRequest, otlp_proto.traces_request),
    (ExportLogsServiceRequest, otlp_proto.logs_request),
    (ExportMetricsServiceRequest, otlp_proto.metrics_request),
]


@pytest.mark.parametrize(("cls", "convert"), CASES, ids=["traces", "logs", "metrics"])
def test_conversion_equals_message_to_dict_with_hex_ids(cls, convert):
    rnd = random.Random(20261202)
    for _ in range(300):
        msg = cls()
        fill(msg, rnd)
        # Through the wire format, as the collector receives it.
        received = cls.FromString(msg.SerializeToString())
        assert convert(received) == hex_ids(MessageToDict(received, use_integers_for_enums=True))


def test_ids_are_lowercase_hex_and_64_bit_numbers_are_strings():
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
    span.span_id = bytes.fromhex("b7ad6b7169203331")
    span.start_time_unix_nano = 1_764_633_600_123_456_789
    span.attributes.add(key="n").value.int_value = 2**62
    out = otlp_proto.traces_request(req)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert out["traceId"] == "0af7651916cd43dd8448eb211c80319c"
    assert out["spanId"] == "b7ad6b7169203331"
    assert out["startTimeUnixNano"] == "1764633600123456789"
    assert out["attributes"] == [{"key": "n", "value": {"intValue": str(2**62)}}]
