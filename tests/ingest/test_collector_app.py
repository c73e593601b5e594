"""The collector's routes through Starlette's TestClient, with an in-memory sink instead of Kafka."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator, Sequence

import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from starlette.testclient import TestClient

from platform_assets.core.identity import user_hash
from platform_assets.ingest.collector.app import CollectorConfig, Message, Unavailable, build_app
from platform_assets.ingest.collector.events import sign

pytestmark = pytest.mark.unit

KEYS = {"k2026a": b"first-secret-0123456789", "k2026b": b"rotated-secret-0123456789"}
HASH_KEY = b"hash-key-for-tests-0123"


class MemorySink:
    """The ``Sink`` interface in memory: every ``send`` call's messages, in order; with ``fail``
    set, ``send`` raises ``Unavailable`` as the Kafka sink does when the broker does not answer."""

    def __init__(self) -> None:
        self.sent: list[list[Message]] = []
        self.fail: str | None = None
        self.closed = False

    async def send(self, messages: Sequence[Message]) -> None:
        if self.fail:
            raise Unavailable(self.fail)
        self.sent.append(list(messages))

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def client(sink: MemorySink) -> Iterator[TestClient]:
    cfg = CollectorConfig(bootstrap_servers="unused:9092", hmac_keys=KEYS, hash_key=HASH_KEY)
    with TestClient(build_app(cfg, sink=sink)) as client:
        yield client
    assert sink.closed  # the app's shutdown closes (flushes) its sink


def post_batch(client: TestClient, events: list, key_id="k2026a", timestamp=None, signature=None):
    body = json.dumps({"events": events}).encode()
    ts = timestamp or str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Key-Id": key_id,
        "X-Timestamp": ts,
        "X-Signature": signature or sign(KEYS.get(key_id, b"x" * 20), ts, body),
    }
    return client.post("/ingest", content=body, headers=headers)


def event(event_type="llm_call", **extra) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "occurred_at": "2026-11-22T12:00:00.500Z",
        "workspace_id": "ws_unit",
        "actor_id": "user-42",
        "email": "someone@example.com",
        "context": {"email": "someone@example.com", "ip": "10.0.0.1", "env": "prod"},
        "properties": {"phone": "+1 555", "path": "/pricing"},
        "success": True,
        **extra,
    }


def counters(client: TestClient) -> dict[str, int]:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    return {name: int(value) for name, value in (line.split() for line in resp.text.splitlines())}


def rows(message: Message) -> list[dict]:
    return [json.loads(row) for row in message[2].split(b"\n")]


def test_a_signed_batch_is_202_and_lands_in_the_sink_with_pii_dropped_and_the_actor_hashed(client, sink):
    batch = [event(), event("page_view"), event(actor_id=""), event(actor_id=None), event("page_view")]
    resp = post_batch(client, batch, key_id="k2026b")  # the rotated key
    assert resp.status_code == 202, resp.text
    assert resp.json() == {"accepted": 5}
    (messages,) = sink.sent  # one send per request, after which the answer is given
    assert [(topic, key) for topic, key, _ in messages] == [
        ("agent_events", batch[0]["event_id"].encode()),  # one message per topic, keyed by its first event
        ("product_events", batch[1]["event_id"].encode()),
    ]
    agent, product = (rows(m) for m in messages)
    assert [r["event_id"] for r in agent] == [batch[i]["event_id"] for i in (0, 2, 3)]
    assert [r["event_id"] for r in product] == [batch[i]["event_id"] for i in (1, 4)]
    for row in agent + product:
        assert "email" not in row
        assert row["context"] == {"env": "prod"} and row["properties"] == {"path": "/pricing"}
        assert row["success"] == 1
    hashed = hmac.new(HASH_KEY, b"user-42", hashlib.sha256).hexdigest()[:32]
    assert hashed == user_hash(HASH_KEY, "user-42")
    assert [r["actor_id"] for r in agent] == [hashed, "", None]  # anonymous stays as sent
    assert [r["actor_id"] for r in product] == [hashed, hashed]
    assert counters(client) == {"collector_events_accepted_total": 5}


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"signature": "00" * 32}, "signature does not match"),
        ({"key_id": "nope"}, "unknown key id 'nope'"),
        ({"timestamp": str(int(time.time()) - 3600)}, "outside the 300 s replay window"),
    ],
)
def test_a_bad_signature_is_401_and_sends_nothing(client, sink, kwargs, reason):
    resp = post_batch(client, [event()], **kwargs)
    assert resp.status_code == 401 and reason in resp.json()["error"]
    missing = client.post("/ingest", content=b"[]")
    assert missing.status_code == 401
    assert missing.json() == {"error": "missing X-Key-Id, X-Timestamp or X-Signature header"}
    assert sink.sent == []
    assert counters(client) == {"collector_unauthorized_requests_total": 2}


def test_invalid_events_are_422_naming_each_field_and_send_nothing(client, sink):
    resp = post_batch(client, [event(), event(event_id="nope", input_tokens=-3)])
    assert resp.status_code == 422
    assert resp.json()["errors"] == [
        "events[1].event_id: expected a UUID, got 'nope'",
        "events[1].input_tokens: expected an integer from 0 to 4294967295",
    ]
    assert sink.sent == [] and counters(client) == {"collector_rejected_requests_total": 1}


def test_sink_unavailable_is_503_with_retry_after(client, sink):
    sink.fail = "producer queue full"
    resp = post_batch(client, [event()])
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "5"
    assert resp.json() == {"error": "kafka unavailable: producer queue full"}
    traces = client.post("/v1/traces", content=OTLP_JSON, headers={"Content-Type": "application/json"})
    assert traces.status_code == 503 and traces.headers["Retry-After"] == "5"
    assert counters(client) == {"collector_unavailable_responses_total": 2}
    sink.fail = None  # the client's resend once the sink is back is accepted
    assert post_batch(client, [event()]).status_code == 202


def _kv(key: str, **value) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(**value))


OTLP_PROTOBUF = ExportTraceServiceRequest(
    resource_spans=[
        trace_pb2.ResourceSpans(
            resource=resource_pb2.Resource(attributes=[_kv("service.name", string_value="agent-sim")]),
            scope_spans=[
                trace_pb2.ScopeSpans(
                    scope=common_pb2.InstrumentationScope(name="test", version="1.0"),
                    spans=[
                        trace_pb2.Span(
                            trace_id=bytes(range(1, 17)),
                            span_id=bytes(range(17, 25)),
                            parent_span_id=bytes(range(33, 41)),
                            name="chat gpt-4o-mini",
                            kind=trace_pb2.Span.SPAN_KIND_CLIENT,
                            start_time_unix_nano=1_700_000_000_000_000_000,
                            end_time_unix_nano=1_700_000_000_250_000_000,
                            attributes=[
                                _kv("gen_ai.request.model", string_value="gpt-4o-mini"),
                                _kv("gen_ai.usage.input_tokens", int_value=120),
                            ],
                            status=trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_ERROR, message="rate limited"),
                        )
                    ],
                )
            ],
        )
    ]
).SerializeToString()
# The same export in OTLP/JSON, which is also the message on otlp_spans (the OpenTelemetry
# Collector's otlp_json: camelCase, hex ids, integer enums, 64-bit integers as strings).
OTLP_JSON = (
    b'{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"agent-sim"}}]},'
    b'"scopeSpans":[{"scope":{"name":"test","version":"1.0"},"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10",'
    b'"spanId":"1112131415161718","parentSpanId":"2122232425262728","name":"chat gpt-4o-mini","kind":3,'
    b'"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000250000000","attributes":['
    b'{"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o-mini"}},'
    b'{"key":"gen_ai.usage.input_tokens","value":{"intValue":"120"}}],'
    b'"status":{"message":"rate limited","code":2}}]}]}]}'
)


def test_otlp_protobuf_and_json_exports_land_as_the_same_otlp_json_message(client, sink):
    pb = client.post("/v1/traces", content=OTLP_PROTOBUF, headers={"Content-Type": "application/x-protobuf"})
    assert pb.status_code == 200 and pb.content == b""  # an empty ExportTraceServiceResponse
    assert pb.headers["content-type"] == "application/x-protobuf"
    js = client.post("/v1/traces", content=OTLP_JSON, headers={"Content-Type": "application/json; charset=utf-8"})
    assert js.status_code == 200 and js.json() == {}
    expected = [("otlp_spans", b"0102030405060708090a0b0c0d0e0f10", OTLP_JSON)]  # keyed by the trace id
    assert sink.sent == [expected, expected]
    assert counters(client) == {"collector_spans_accepted_total": 2}


def test_otlp_errors_send_nothing(client, sink):
    bad = client.post("/v1/traces", json={"resourceSpans": "nope"})
    assert bad.status_code == 400
    garbled = client.post("/v1/traces", content=b"\xff\xff", headers={"Content-Type": "application/x-protobuf"})
    status = Status.FromString(garbled.content)  # OTLP/HTTP: a google.rpc.Status in the request's encoding
    assert garbled.status_code == 400 and status.code == 3 and "not an OTLP protobuf" in status.message
    other = client.post("/v1/traces", content=b"x", headers={"Content-Type": "text/plain"})
    assert other.status_code == 415 and other.json() == {"code": 3, "message": "unsupported content type 'text/plain'"}
    empty = client.post("/v1/traces", json={"resourceSpans": []})
    assert empty.status_code == 200  # nothing to send: accepted without a message
    assert sink.sent == []
    assert counters(client) == {"collector_rejected_requests_total": 3}  # 400, 400 and 415


def test_health(client):
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/metrics").text == ""


def test_main_prepares_only_the_collectors_settings_and_serves_both_protocols(monkeypatch):
    import sys

    from platform_assets import environment
    from platform_assets.ingest.collector import serve

    calls: dict = {}
    monkeypatch.setattr(environment, "prepare", lambda classes: calls.setdefault("prepare", list(classes)))
    monkeypatch.setattr(serve, "run_worker", lambda cfg, *args: calls.setdefault("worker", (cfg, args)))
    monkeypatch.setattr(serve, "supervise", lambda cfg, *args: calls.setdefault("supervise", (cfg, args)) and 0)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    monkeypatch.setenv("COLLECTOR_HMAC_KEYS", "k1:0123456789abcdef")
    monkeypatch.setenv("USER_HASH_KEY", "0123456789abcdef")
    monkeypatch.setattr(sys, "argv", ["platform-collector", "--port", "4999", "--workers", "1"])
    serve.main()
    assert calls["prepare"] == [CollectorConfig]
    cfg, args = calls["worker"]
    assert args == ("127.0.0.1", 4999, 4317) and cfg.hmac_keys == {"k1": b"0123456789abcdef"}
    monkeypatch.setattr(sys, "argv", ["platform-collector", "--grpc-port", "5317", "--workers", "2"])
    with pytest.raises(SystemExit) as done:
        serve.main()
    assert done.value.code == 0 and calls["supervise"][1] == ("127.0.0.1", 4318, 5317, 2)
