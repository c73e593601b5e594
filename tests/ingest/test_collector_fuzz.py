"""Hostile input to the collector (unit, property-based): signed batches and OTLP/HTTP requests that
are random, mutated or malformed in body and headers, sent through the app with an in-memory sink,
and the decoding functions called directly.

What holds for every example: no answer is a 5xx (the app is run with ``raise_server_exceptions``,
so a crash fails with its traceback); an invalid request is a 4xx whose JSON (or google.rpc.Status)
body names the problem, and nothing reaches the sink; a valid one lands exactly once; the decoders
raise nothing but their own error types. A signed batch with one bad event is refused whole (422,
every bad field named), as docs/ingest.md says.

Bounded: each property has its own ``max_examples`` (the module runs in well under a minute on two
cores); ``EXAMPLES`` counts the examples each property ran and the last test prints them. Hypothesis
only (docs/ingest.md, "Hostile input", says why not schemathesis or atheris).
"""

from __future__ import annotations

import copy
import gzip
import random
import re
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from google.protobuf.json_format import ParseDict
from google.protobuf.message import DecodeError
from google.rpc.status_pb2 import Status
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

# The fakes and fixtures of the collector's own unit tests (same folder).
from test_collector_app import HASH_KEY, KEYS, OTLP_JSON, OTLP_PROTOBUF, MemorySink, event
from test_otlp_proto import fill

from platform_assets.ingest.collector import events as ev
from platform_assets.ingest.collector import http_codec, otlp
from platform_assets.ingest.collector.app import CollectorConfig, Message, build_app
from platform_assets.ingest.collector.attributes import AttributePolicy, scrub

pytestmark = pytest.mark.unit

EXAMPLES: Counter[str] = Counter()  # examples run per property
STATUSES: dict[str, Counter[int]] = {}  # HTTP statuses seen per property


def ran(name: str, status: int | None = None) -> None:
    EXAMPLES[name] += 1
    if status is not None:
        STATUSES.setdefault(name, Counter())[status] += 1


def fuzz(max_examples: int) -> settings:
    # No deadline (a shared CI core is slow at times), no example database written to the checkout.
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# Small body limits make over-limit bodies and gzip bombs cheap to build; a small message limit
# (``tight``) sends OTLP requests through the splitting and partial-success paths.
BODY_LIMIT = 64 * 1024
DECODED_LIMIT = 256 * 1024
TIGHT_MESSAGE = 1024
WINDOW = 300.0
SIGNALS = list(otlp.SIGNALS.values())
PROTOBUF, JSON = "application/x-protobuf", "application/json"


@dataclass
class Harness:
    client: TestClient
    sink: MemorySink
    cfg: CollectorConfig

    def post(self, path: str, body: bytes, headers: dict[str, Any]) -> tuple[Any, list[Message]]:
        """The answer and the messages the request produced (the sink is emptied after each)."""
        self.sink.sent.clear()
        resp = self.client.post(path, content=body, headers=headers)
        produced = [m for send in self.sink.sent for m in send]
        self.sink.sent.clear()
        assert resp.status_code < 500, (resp.status_code, resp.text[:500])
        return resp, produced


@pytest.fixture(scope="module")
def apps() -> Iterator[dict[str, Harness]]:
    out: dict[str, Harness] = {}
    clients = []
    for name, message_bytes in (("default", 512 * 1024), ("tight", TIGHT_MESSAGE)):
        cfg = CollectorConfig(
            bootstrap_servers="unused:9092",
            hmac_keys=KEYS,
            hash_key=HASH_KEY,
            max_body_bytes=BODY_LIMIT,
            max_decoded_bytes=DECODED_LIMIT,
            max_message_bytes=message_bytes,
        )
        sink = MemorySink()
        client = TestClient(build_app(cfg, sink=sink))
        client.__enter__()
        clients.append(client)
        out[name] = Harness(client, sink, cfg)
    yield out
    for client in clients:
        client.__exit__(None, None, None)


# ---------------------------------------------------------------------------------- strategies

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),  # what orjson reads and writes
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
containers = st.lists(json_values, max_size=3) | st.dictionaries(st.text(max_size=8), json_values, max_size=3)
# Header values as a server hands them on: latin-1, no control characters, no outer whitespace.
header_text = (
    st.text(st.characters(codec="latin-1", exclude_categories=("Cc",)), max_size=40)
    .map(str.strip)
    .map(lambda s: s.encode("latin-1"))
)
MISSING: Any = object()  # a field or header left out


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    """``base`` truncated, with bytes flipped, inserted, deleted or repeated (1 to 4 edits)."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            data.extend(draw(st.binary(min_size=1, max_size=8)))
            continue
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "repeat"]))
        if op == "truncate":
            del data[i:]
        elif op == "flip":
            data[i] ^= draw(st.integers(1, 255))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[i : i + draw(st.integers(1, 8))]
        else:
            data[i:i] = data[i : i + draw(st.integers(1, 16))]
    return bytes(data)


@st.composite
def valid_requests(draw: st.DrawFn, signal: otlp.Signal) -> Any:
    """A random export request of ``signal`` setting every field kind (the generator of
    test_otlp_proto.py), seeded by hypothesis."""
    msg = signal.request_type()
    fill(msg, random.Random(draw(st.integers(0, 2**32))))
    return msg


@st.composite
def protobuf_bodies(draw: st.DrawFn, signal: otlp.Signal) -> bytes:
    kind = draw(st.sampled_from(["random", "mutated", "valid", "length"]))
    if kind == "random":
        return draw(st.binary(max_size=300))
    if kind == "length":  # field 1 (the resource list) declaring more bytes than follow, or a broken varint
        prefix = draw(st.sampled_from([b"\x0a", b"\x12", b"\x0a\x0a\x0a"]))
        length = draw(st.integers(0, 2**64 - 1).map(varint) | st.just(b"\xff" * 11))
        return prefix + length + draw(st.binary(max_size=20))
    valid = draw(valid_requests(signal)).SerializeToString()
    return valid if kind == "valid" else draw(mutated(valid))


def json_paths(node: Any, prefix: tuple = ()) -> Iterator[tuple]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield (*prefix, k)
            yield from json_paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield (*prefix, i)
            yield from json_paths(v, (*prefix, i))


OTLP_ODDITIES = st.sampled_from(
    ["", "zz", "0102", "0" * 33, -1, 2**64 - 1, 1e308, "NaN", "-Infinity", "1e3", [], {}, None, True, [None]]
)


@st.composite
def mutated_json(draw: st.DrawFn, doc: Any) -> Any:
    """``doc`` (OTLP JSON) with 1 to 3 nodes replaced, deleted or renamed (an unknown field)."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(json_paths(doc))
        if not paths:
            return draw(json_values)
        path = draw(st.sampled_from(paths))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        op = draw(st.sampled_from(["replace", "delete", "rename"]))
        if op == "replace":
            parent[last] = draw(OTLP_ODDITIES | json_values)
        elif op == "delete":
            del parent[last]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = parent.pop(last)
    return doc


@st.composite
def json_bodies(draw: st.DrawFn, signal: otlp.Signal) -> bytes:
    kind = draw(st.sampled_from(["random", "bytes", "mutated", "valid", "other_signal"]))
    if kind == "random":
        return orjson.dumps(draw(json_values))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    source = draw(st.sampled_from(SIGNALS)) if kind == "other_signal" else signal
    doc = source.to_json(draw(valid_requests(source)))
    if kind == "mutated":
        doc = draw(mutated_json(doc))
    return orjson.dumps(doc)


# Signed events whose validity is known by construction: each field draws from its valid or its
# invalid values (docs/ingest.md and the 422 messages), so the expected errors are the fields drawn
# invalid, not a second implementation of the validator.
UUID_TEXT = st.uuids().map(str) | st.uuids().map(lambda u: u.hex) | st.uuids().map(lambda u: str(u).upper())
not_text = json_values.filter(lambda v: not isinstance(v, str))
not_text_or_null = not_text.filter(lambda v: v is not None)
iso_times = st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.none() | st.just(UTC)).flatmap(
    lambda dt: st.sampled_from([dt.isoformat(), dt.isoformat().replace("+00:00", "Z")])
)
TYPES = sorted(ev.AGENT_TYPES | ev.PRODUCT_TYPES)
STRING_FIELDS = ("session_id", "actor_id", "source", "model", "provider", "prompt_hash", "error_type", "tool_name")
FIELDS: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    # name: (valid values, invalid values); MISSING leaves the field out
    "event_id": (
        UUID_TEXT,
        st.just(MISSING)
        | not_text
        | st.sampled_from(["", "nope"])
        | UUID_TEXT.map(lambda u: u[:-1])
        | UUID_TEXT.map(lambda u: u + "0")
        | UUID_TEXT.map(lambda u: u + "\n"),
    ),
    "event_type": (
        st.sampled_from(TYPES),
        st.just(MISSING) | not_text | st.text(max_size=12).filter(lambda t: t not in TYPES) | st.just("LLM_CALL"),
    ),
    "occurred_at": (
        iso_times,
        st.just(MISSING)
        | not_text
        | st.sampled_from([20260101, 1.7e9, "", "yesterday", "2026-13-01T00:00:00Z", "2026-01-01T25:00:00"]),
    ),
    "workspace_id": (st.text(min_size=1, max_size=12), st.just(MISSING) | not_text | st.just("")),
    **{name: (st.just(MISSING) | st.none() | st.text(max_size=12), not_text_or_null) for name in STRING_FIELDS},
    "status": (st.just(MISSING) | st.none() | st.text(max_size=12), not_text_or_null),
    **{
        name: (
            st.just(MISSING) | st.integers(0, 2**32 - 1),
            st.integers(-(2**63), -1)
            | st.integers(2**32, 2**64 - 1)
            | st.floats(allow_nan=False, allow_infinity=False)
            | st.booleans()
            | st.text(max_size=4)
            | st.none()
            | containers,
        )
        for name in ("input_tokens", "output_tokens")
    },
    **{
        name: (
            st.just(MISSING) | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False),
            st.booleans() | st.text(max_size=4) | st.none() | containers,
        )
        for name in ("latency_ms", "unit_cost_input", "unit_cost_output")
    },
    # Any integer is taken as success (only 0 and 1 drawn here: raw.*.success is UInt8).
    "success": (
        st.just(MISSING) | st.booleans() | st.sampled_from([0, 1]),
        st.text(max_size=4) | st.none() | containers,
    ),
    **{
        name: (
            st.just(MISSING) | st.dictionaries(st.text(max_size=8), json_values, max_size=4),
            json_scalars | st.lists(json_values, max_size=3),
        )
        for name in ("context", "properties")
    },
}
DROP = ("email", "phone", "ip", "ip_address")  # the default COLLECTOR_PII_DROP_KEYS
extra_keys = st.text(max_size=10).filter(lambda k: k not in FIELDS) | st.sampled_from(DROP)


@st.composite
def labeled_events(draw: st.DrawFn, valid_only: bool = False) -> tuple[Any, set[str]]:
    """An event and the names of its invalid fields (``"*"``: not even an object)."""
    if not valid_only and draw(st.integers(0, 19)) == 0:
        return draw(json_scalars | st.lists(json_values, max_size=2)), {"*"}
    broken = set() if valid_only else draw(st.sets(st.sampled_from(sorted(FIELDS)), max_size=3))
    out: dict[str, Any] = draw(st.dictionaries(extra_keys, json_values, max_size=3))
    for name, (valid, invalid) in FIELDS.items():
        value = draw(invalid if name in broken else valid)
        if value is not MISSING:
            out[name] = value
    return out, broken


batches = st.lists(labeled_events(), min_size=1, max_size=5)
ERROR = re.compile(r"^events\[(\d+)\](?:\.(\w+))?: ")


def errors_named(errors: list[str]) -> set[tuple[int, str]]:
    named = set()
    for error in errors:
        match = ERROR.match(error)
        assert match, error
        named.add((int(match[1]), match[2] or "*"))
    return named


def expected_errors(batch: list[tuple[Any, set[str]]]) -> set[tuple[int, str]]:
    return {(i, name) for i, (_, broken) in enumerate(batch) for name in broken}


def signed_headers(body: bytes, key_id: str = "k2026a", ts: str | None = None) -> dict[str, Any]:
    ts = ts or str(int(time.time()))
    return {"Content-Type": JSON, "X-Key-Id": key_id, "X-Timestamp": ts, "X-Signature": ev.sign(KEYS[key_id], ts, body)}


def rows_of(produced: list[Message]) -> list[tuple[str, dict[str, Any]]]:
    return [(topic, orjson.loads(row)) for topic, _, value in produced for row in value.split(b"\n")]


def assert_refused(resp: Any, produced: list[Message], *statuses: int) -> None:
    """A 4xx in ``statuses`` whose JSON body names the problem, and nothing produced."""
    assert resp.status_code in statuses, (resp.status_code, resp.text[:300])
    assert produced == []
    answer = resp.json()
    problems = answer.get("errors") or [answer.get("error")]
    assert problems and all(isinstance(p, str) and p for p in problems), answer


def otlp_problem(resp: Any) -> str:
    """The message of an OTLP/HTTP error answer: a google.rpc.Status in the request's encoding
    (the 413 of a body over the limit is the shared ``{"error": ...}``)."""
    if resp.headers.get("content-type") == PROTOBUF:
        return Status.FromString(resp.content).message
    answer = resp.json()
    return answer.get("message") or answer.get("error")


def assert_otlp_refused(resp: Any, produced: list[Message], *statuses: int) -> None:
    assert resp.status_code in statuses, (resp.status_code, resp.content[:300])
    assert produced == []
    assert otlp_problem(resp)


def decodes(signal: otlp.Signal, body: bytes) -> Any:
    """``body`` as ``signal``'s request by protobuf itself, or None."""
    try:
        return signal.request_type.FromString(body)
    except DecodeError:
        return None


def assert_landed_once(signal: otlp.Signal, resp: Any, produced: list[Message], items: int, as_proto: bool) -> None:
    """A 200: every item of the request is in exactly one produced message or counted rejected."""
    assert resp.status_code == 200, (resp.status_code, resp.content[:300])
    if as_proto:
        answer = signal.response_type.FromString(resp.content)
    else:
        answer = ParseDict(resp.json(), signal.response_type())
    rejected = getattr(answer.partial_success, signal.rejected_field)
    landed = 0
    for topic, _key, value in produced:
        assert topic == signal.topic
        landed += otlp.item_count(signal, otlp.from_json(signal, value))  # each message is valid OTLP JSON
    assert landed + rejected == items
    assert bool(produced) == (landed > 0)


# ------------------------------------------------------------------------- signed batches


@fuzz(300)
@given(batch=batches, wrapped=st.booleans())
def test_validate_names_exactly_the_invalid_fields(batch, wrapped) -> None:
    events = [e for e, _ in batch]
    ran("validate: labeled batches (direct)")
    expected = expected_errors(batch)
    body = {"events": events} if wrapped else events
    if expected:
        with pytest.raises(ev.BatchError) as refused:
            ev.validate(body)
        assert errors_named(refused.value.errors) == expected
        return
    accepted = ev.validate(body)
    assert accepted is events
    rows = ev.encode_rows(accepted, frozenset(DROP), ev.actor_hasher(HASH_KEY))
    assert sum(len(r) for r in rows.values()) == len(events)


@fuzz(200)
@given(batch=batches, wrapped=st.booleans())
def test_signed_batches_with_bad_events_are_refused_whole_naming_each_field(apps, batch, wrapped) -> None:
    events = [e for e, _ in batch]
    body = orjson.dumps({"events": events} if wrapped else events)
    resp, produced = apps["default"].post("/ingest", body, signed_headers(body))
    ran("/ingest: labeled batches", resp.status_code)
    expected = expected_errors(batch)
    if expected:  # one bad event refuses the batch (docs/ingest.md): 422 naming every bad field
        assert_refused(resp, produced, 422)
        assert errors_named(resp.json()["errors"]) == expected
        return
    assert resp.status_code == 202 and resp.json() == {"accepted": len(events)}
    rows = rows_of(produced)
    assert Counter(r["event_id"] for _, r in rows) == Counter(e["event_id"] for e in events)
    for topic, row in rows:
        assert topic == ev.topic_for(row["event_type"])
        for holder in (row, row.get("context") or {}, row.get("properties") or {}):
            assert not set(DROP) & set(holder)  # PII keys dropped, whatever else the event holds
    hashed = {e["event_id"]: e.get("actor_id") for e in events}
    for _, row in rows:
        sent = hashed[row["event_id"]]
        assert row.get("actor_id") == (ev.actor_hasher(HASH_KEY)(sent) if sent else sent)


@st.composite
def signed_bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "events_json", "mutated", "deep"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "json":
        return orjson.dumps(draw(json_values))
    if kind == "events_json":
        return orjson.dumps({"events": draw(json_values)})
    if kind == "mutated":
        return draw(mutated(orjson.dumps({"events": [event(), event("page_view")]})))
    depth = draw(st.integers(1, 1030))  # orjson reads 1024 levels and writes 254
    where = draw(st.sampled_from(["context", "event_id", "occurred_at", "deep", "body"]))
    return deep_body(depth, where)


def deep_body(depth: int, where: str) -> bytes:
    """A one-event batch with ``depth`` nested arrays (or objects for ``context``) at ``where``."""
    nest = ('{"a":' * depth + "}" * depth) if where == "context" else "[" * depth + "]" * depth
    if where == "body":
        return nest.encode()
    fields = {k: orjson.dumps(v).decode() for k, v in event().items()}
    fields[where] = nest
    return ("[{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}]").encode()


@fuzz(250)
@given(body=signed_bodies())
@example(body=deep_body(1000, "event_id"))  # deeper than repr recurses
@example(body=b'[{"event_type": [], "event_id": {}, "occurred_at": 20260101}]')
def test_validly_signed_garbage_is_4xx_naming_the_problem(apps, body) -> None:
    resp, produced = apps["default"].post("/ingest", body, signed_headers(body))
    ran("/ingest: signed random/mutated/deep bodies", resp.status_code)
    if resp.status_code == 202:
        events = ev.validate(orjson.loads(body))  # only a valid batch is taken, and all of it
        assert len(rows_of(produced)) == len(events) == resp.json()["accepted"]
    else:
        assert_refused(resp, produced, 413, 422)


def test_an_event_nested_deeper_than_a_row_can_be_written_is_422(apps) -> None:
    """orjson reads 1024 levels but writes 254: a row of 254 is taken, one of 255 refused by name."""
    fits, too_deep = deep_body(253, "deep"), deep_body(254, "deep")
    accepted, produced = apps["default"].post("/ingest", fits, signed_headers(fits))
    assert accepted.status_code == 202 and produced, accepted.text
    refused, produced = apps["default"].post("/ingest", too_deep, signed_headers(too_deep))
    assert_refused(refused, produced, 422)
    assert refused.json()["errors"] == ["events[0]: cannot be written as a JSON row (Recursion limit reached)"]
    ran("/ingest: depth boundary", accepted.status_code)
    ran("/ingest: depth boundary", refused.status_code)


@st.composite
def timestamps(draw: st.DrawFn, now: float) -> tuple[Any, bool]:
    """An X-Timestamp and whether it is inside the window (10 s of margin either side)."""
    kind = draw(st.sampled_from(["inside", "inside", "inside", "outside", "text", "odd", "missing"]))
    if kind == "inside":
        offset = draw(st.floats(-WINDOW + 10, WINDOW - 10))
        return draw(st.sampled_from([str(int(now + offset)), repr(now + offset), f"{now + offset:.12e}"])), True
    if kind == "outside":
        offset = draw(st.floats(WINDOW + 10, 1e12)) * draw(st.sampled_from([-1, 1]))
        return str(now + offset), False
    if kind == "odd":
        return draw(st.sampled_from(["nan", "NaN", "inf", "-inf", "1e400", "", "0x10"])), False
    if kind == "missing":
        return MISSING, False
    text = draw(header_text)
    assume(not abs(now - seconds(text)) <= WINDOW + 10)
    return text, False


def seconds(text: str | bytes) -> float:
    """``text`` as the collector reads X-Timestamp; nan when it is no number (never fresh)."""
    try:
        return float(text)
    except ValueError:
        return float("nan")


@st.composite
def signatures(draw: st.DrawFn, right: str) -> tuple[Any, bool]:
    """An X-Signature and whether it is the right one."""
    kind = draw(st.sampled_from(["right", "right", "right", "upper", "one_off", "text", "missing"]))
    if kind == "right":
        return right, True
    if kind == "upper":
        return right.upper(), False
    if kind == "one_off":
        i = draw(st.integers(0, len(right) - 1))
        return right[:i] + ("1" if right[i] == "0" else "0") + right[i + 1 :], False
    return (draw(header_text) if kind == "text" else MISSING), False


def as_text(value: Any) -> Any:
    return value.decode("latin-1") if isinstance(value, bytes) else value


@fuzz(300)
@given(data=st.data())
def test_headers_decide_alone_and_a_refusal_produces_nothing(apps, data) -> None:
    now = time.time()
    body = orjson.dumps({"events": [event(), event("page_view")]})
    key_id = data.draw(st.sampled_from([*KEYS, *KEYS, "nope"]) | header_text | st.just(MISSING), "key id")
    secret = KEYS.get(as_text(key_id), KEYS["k2026a"])
    ts, ts_ok = data.draw(timestamps(now), "timestamp")
    signature, sig_ok = data.draw(signatures(ev.sign(secret, as_text(ts) if ts is not MISSING else "0", body)), "sig")
    headers = {
        "X-Key-Id": key_id,
        "X-Timestamp": ts,
        "X-Signature": signature,
        # /ingest reads neither: they must not change the answer
        "Content-Type": data.draw(st.sampled_from([JSON, PROTOBUF, "text/plain"]) | header_text, "content type"),
        "Content-Encoding": data.draw(st.sampled_from(["gzip", "br"]) | header_text | st.just(MISSING), "encoding"),
    }
    resp, produced = apps["default"].post("/ingest", body, {k: v for k, v in headers.items() if v is not MISSING})
    ran("/ingest: headers", resp.status_code)
    if as_text(key_id) in KEYS and ts_ok and sig_ok:
        assert resp.status_code == 202 and len(rows_of(produced)) == 2
    else:
        assert_refused(resp, produced, 401)


NOW = time.time()


@fuzz(1500)
@given(
    key_id=st.sampled_from([*KEYS, ""]) | st.text(max_size=8) | st.none(),
    timestamp=st.floats().map(repr)
    | st.floats(NOW - 2 * WINDOW, NOW + 2 * WINDOW).map(repr)
    | st.text(max_size=12)
    | st.none(),
    signature=st.text(max_size=70) | st.none(),
    body=st.binary(max_size=50),
)
@example(key_id="k2026a", timestamp="nan", signature=ev.sign(KEYS["k2026a"], "nan", b"[]"), body=b"[]")
@example(key_id="k2026a", timestamp=str(int(NOW)), signature="é" * 64, body=b"[]")
def test_verify_never_raises_and_passes_only_a_fresh_right_signature(key_id, timestamp, signature, body) -> None:
    ran("verify (direct)")
    now = NOW
    reason = ev.verify(KEYS, key_id, timestamp, signature, body, now, WINDOW)
    fresh = bool(timestamp) and abs(now - seconds(timestamp)) <= WINDOW
    right = key_id in KEYS and timestamp and signature == ev.sign(KEYS[key_id], timestamp, body)
    assert (reason is None) == bool(fresh and right), reason
    assert reason is None or (isinstance(reason, str) and reason)


# ------------------------------------------------------------------------------ OTLP/HTTP


@fuzz(300)
@given(data=st.data(), signal=st.sampled_from(SIGNALS), app=st.sampled_from(["default", "tight"]))
def test_otlp_protobuf_random_and_mutated(apps, data, signal, app) -> None:
    body = data.draw(protobuf_bodies(signal), "body")
    gzipped = data.draw(st.booleans(), "gzip")
    headers = {"Content-Type": PROTOBUF, **({"Content-Encoding": "gzip"} if gzipped else {})}
    resp, produced = apps[app].post(signal.path, gzip.compress(body) if gzipped else body, headers)
    ran("/v1/*: protobuf random/mutated/length", resp.status_code)
    request = decodes(signal, body)
    if request is None:
        assert_otlp_refused(resp, produced, 400)
        assert resp.headers["content-type"] == PROTOBUF  # a google.rpc.Status in the request's encoding
        return
    items = otlp.item_count(signal, signal.to_json(request))
    assert_landed_once(signal, resp, produced, items, as_proto=True)


def deep_json(depth: int) -> bytes:
    return ('{"resourceSpans":' + "[" * depth + "]" * depth + "}").encode()


@fuzz(300)
@given(data=st.data(), signal=st.sampled_from(SIGNALS), app=st.sampled_from(["default", "tight"]))
def test_otlp_json_random_and_mutated(apps, data, signal, app) -> None:
    body = data.draw(json_bodies(signal) | st.integers(1, 1030).map(deep_json), "body")
    ctype = data.draw(st.sampled_from([JSON, "application/json; charset=utf-8", "Application/JSON "]), "ctype")
    resp, produced = apps[app].post(signal.path, body, {"Content-Type": ctype})
    ran("/v1/*: JSON random/mutated/deep", resp.status_code)
    check_json_answer(signal, body, resp, produced)


@pytest.mark.parametrize("depth", [99, 100, 500, 1000, 1024])
def test_deeply_nested_otlp_json_is_400(apps, depth) -> None:
    resp, produced = apps["default"].post("/v1/traces", deep_json(depth), {"Content-Type": JSON})
    ran("/v1/traces: deep JSON", resp.status_code)
    assert_otlp_refused(resp, produced, 400)


@pytest.mark.parametrize("signal", SIGNALS, ids=lambda s: s.name)
def test_otlp_json_with_proto_field_names_is_400_naming_the_key(apps, signal) -> None:
    """protobuf's JSON parser reads snake_case field names too, but OTLP/JSON allows only the
    lowerCamelCase ones, which every reader of the request reads: accepted, such a request would
    have been answered 200 and stored empty."""

    def proto_name(name: str) -> str:
        return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)

    snake = {proto_name(signal.resource_key): [{"resource": {}, proto_name(signal.scope_key): [{}]}]}
    resp, produced = apps["default"].post(signal.path, orjson.dumps(snake), {"Content-Type": JSON})
    assert_otlp_refused(resp, produced, 400)
    assert signal.resource_key in resp.json()["message"]


def check_json_answer(signal: otlp.Signal, body: bytes, resp: Any, produced: list[Message]) -> None:
    if resp.status_code == 200:
        doc = orjson.loads(body)
        assert isinstance(doc, dict)
        assert_landed_once(signal, resp, produced, otlp.item_count(signal, doc), as_proto=False)
    else:
        assert_otlp_refused(resp, produced, 400)
        assert resp.json()["code"] == 3  # INVALID_ARGUMENT


CONTENT_TYPES = {PROTOBUF, JSON}


@fuzz(200)
@given(
    signal=st.sampled_from(SIGNALS),
    ctype=st.sampled_from(["text/plain", "application/protobuf", "application/jsonl", "", "json"])
    | header_text.map(lambda b: b.decode("latin-1")),
    encoding=st.sampled_from(["", "identity", "br", "deflate", "gzip, gzip", "x-gzip"]) | header_text,
)
def test_otlp_unknown_content_type_or_encoding_is_415(apps, signal, ctype, encoding) -> None:
    known_type = ctype.split(";")[0].strip().lower() in CONTENT_TYPES
    enc = encoding.decode("latin-1") if isinstance(encoding, bytes) else encoding
    known_encoding = enc.strip().lower() in ("", "identity")  # gzip is tested with gzip bodies
    assume(not (known_type and known_encoding))
    assume(enc.strip().lower() != "gzip")
    body = OTLP_PROTOBUF if signal.name == "traces" else b""
    headers = {"Content-Type": ctype.encode("latin-1"), "Content-Encoding": encoding}
    resp, produced = apps["default"].post(signal.path, body, headers)
    ran("/v1/*: content type and encoding", resp.status_code)
    assert_otlp_refused(resp, produced, 415)


def first_member(body: bytes) -> bytes | None:
    """What the gzip member at the start of ``body`` holds, or None when there is no whole one
    (an empty body included, which Python's ``gzip.decompress`` reads as no members)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body)
    except zlib.error:
        return None
    return out if inflater.eof else None


GZIP_BOMB = gzip.compress(b"\0" * (DECODED_LIMIT + 1))  # about 250 bytes


@st.composite
def gzip_bodies(draw: st.DrawFn, signal: otlp.Signal) -> tuple[bytes, bytes | None]:
    """A Content-Encoding: gzip body and what it decompresses to (None: not valid gzip)."""
    valid = draw(valid_requests(signal)).SerializeToString()
    kind = draw(st.sampled_from(["garbage", "truncated", "mutated", "of_garbage", "trailing", "bomb"]))
    if kind == "garbage":
        return draw(st.binary(max_size=200)), None
    if kind == "truncated":
        whole = gzip.compress(valid)
        return whole[: draw(st.integers(0, len(whole) - 1))], None
    if kind == "mutated":
        body = draw(mutated(gzip.compress(valid)))
        return body, first_member(body)
    if kind == "of_garbage":
        inner = draw(st.binary(max_size=200))
        return gzip.compress(inner), inner
    if kind == "trailing":  # bytes after the gzip member: ignored, as by most gzip readers
        return gzip.compress(valid) + draw(st.binary(min_size=1, max_size=20)), valid
    return GZIP_BOMB, b"\0" * (DECODED_LIMIT + 1)


@fuzz(250)
@given(data=st.data(), signal=st.sampled_from(SIGNALS))
def test_otlp_gzip_garbage_truncation_and_bombs(apps, data, signal) -> None:
    body, inner = data.draw(gzip_bodies(signal), "body")
    resp, produced = apps["default"].post(signal.path, body, {"Content-Type": PROTOBUF, "Content-Encoding": "gzip"})
    ran("/v1/*: gzip", resp.status_code)
    if inner is not None and len(inner) > DECODED_LIMIT:
        assert_otlp_refused(resp, produced, 413)
    elif resp.status_code == 200:
        assert inner is not None  # only what is gzip is read
        request = decodes(signal, inner)
        assert request is not None
        assert_landed_once(signal, resp, produced, otlp.item_count(signal, signal.to_json(request)), as_proto=True)
    else:
        assert_otlp_refused(resp, produced, 400)
        assert inner is None or decodes(signal, inner) is None


@fuzz(150)
@given(
    path=st.sampled_from(["/ingest", *(s.path for s in SIGNALS)]),
    declared=st.integers(BODY_LIMIT + 1, 2**70).map(str)
    | st.sampled_from(["abc", "1e9", "", "0x10", "12 34", "1.5"])
    | header_text.map(lambda b: b.decode("latin-1")),
)
def test_declared_lengths_over_the_limit_or_not_numbers_are_refused_before_reading(apps, path, declared) -> None:
    try:
        number: int | None = int(declared)
    except ValueError:
        number = None
    assume(declared and (number is None or number > BODY_LIMIT))
    body = OTLP_JSON if path == "/v1/traces" else orjson.dumps([event()])
    headers = {**signed_headers(body), "Content-Length": declared.encode("latin-1")}
    resp, produced = apps["default"].post(path, body, headers)
    ran("declared Content-Length", resp.status_code)
    assert_refused(resp, produced, 400 if number is None else 413)


def test_bodies_over_the_limit_are_413_on_every_path(apps) -> None:
    body = b"[" + b" " * BODY_LIMIT + b"]"
    for path in ["/ingest", *(s.path for s in SIGNALS)]:
        resp, produced = apps["default"].post(path, body, signed_headers(body))
        ran("body over the limit", resp.status_code)
        assert_refused(resp, produced, 413)


# ---------------------------------------------------------------------- decoders, directly


POLICY = AttributePolicy()


def through_the_pipeline(signal: otlp.Signal, doc: dict[str, Any]) -> None:
    """What the collector does with a decoded request must not raise either."""
    items = otlp.item_count(signal, doc)
    scrub(doc, POLICY, ev.actor_hasher(HASH_KEY))
    split = otlp.to_messages(signal, doc, TIGHT_MESSAGE)
    landed = sum(otlp.item_count(signal, otlp.from_json(signal, value)) for _, value in split.messages)
    assert landed + split.rejected == items
    otlp.response(signal, split.rejected, split.error).SerializeToString()


@fuzz(700)
@given(data=st.data(), signal=st.sampled_from(SIGNALS))
def test_from_protobuf_raises_only_otlp_error(data, signal) -> None:
    body = data.draw(protobuf_bodies(signal), "body")
    ran("otlp.from_protobuf (direct)")
    try:
        doc = otlp.from_protobuf(signal, body)
    except otlp.OtlpError:
        assert decodes(signal, body) is None
        return
    assert decodes(signal, body) is not None
    through_the_pipeline(signal, doc)


@fuzz(700)
@given(data=st.data(), signal=st.sampled_from(SIGNALS))
def test_from_json_raises_only_otlp_error(data, signal) -> None:
    body = data.draw(json_bodies(signal) | st.integers(1, 1030).map(deep_json), "body")
    ran("otlp.from_json (direct)")
    try:
        doc = otlp.from_json(signal, body)
    except otlp.OtlpError:
        return
    through_the_pipeline(signal, doc)


@fuzz(700)
@given(
    body=st.binary(max_size=300)
    | st.binary(max_size=300).map(gzip.compress)
    | st.binary(max_size=300).map(gzip.compress).flatmap(mutated),
    encoding=st.sampled_from(["gzip", "GZIP ", "", "identity", "br"]) | st.text(max_size=8),
    limit=st.integers(0, 400),
)
def test_http_codec_decode_raises_only_its_own_errors(body, encoding, limit) -> None:
    ran("http_codec.decode (direct)")
    try:
        out = http_codec.decode(body, encoding, limit)
    except (http_codec.TooLarge, http_codec.BadEncoding, http_codec.CorruptBody):
        return
    assert len(out) <= limit or encoding.strip().lower() in ("", "identity")


# ----------------------------------------------------------------------------------- replay


def test_a_replay_inside_the_window_is_accepted_again_as_identical_messages(apps) -> None:
    """The collector keeps no memory of signatures: a signed batch re-sent inside the window (a
    client retry, or a replay by whoever saw it) is accepted each time and produces the same
    messages, same keys, same rows. The copies are removed downstream by ``event_id``: the raw
    tables keep both, the staging models (``stg_kafka__agent_events``/``stg_kafka__product_events``)
    take ``LIMIT 1 BY event_id`` per day (tested on the stack by
    ``test_ingest_kafka.py::test_duplicate_event_ids_are_visible_in_raw_and_removed_by_staging``)."""
    app = apps["default"]
    body = orjson.dumps({"events": [event(), event("page_view"), event()]})
    headers = signed_headers(body, ts=str(int(time.time()) - 60))
    first, produced_first = app.post("/ingest", body, headers)
    again, produced_again = app.post("/ingest", body, headers)
    ran("replay", first.status_code)
    ran("replay", again.status_code)
    assert first.status_code == again.status_code == 202
    assert produced_first == produced_again and len(produced_first) == 2  # one message per topic
    ids = [row["event_id"] for _, row in rows_of(produced_again)]
    assert sorted(ids) == sorted(e["event_id"] for e in orjson.loads(body)["events"])


def test_the_same_request_after_the_window_is_401_and_produces_nothing(apps, monkeypatch) -> None:
    app = apps["default"]
    body = orjson.dumps([event()])
    headers = signed_headers(body)
    resp, produced = app.post("/ingest", body, headers)
    assert resp.status_code == 202 and produced
    later = time.time() + WINDOW + 1
    clock = type("Clock", (), {"time": staticmethod(lambda: later)})
    monkeypatch.setattr("platform_assets.ingest.collector.app.time", clock)
    resp, produced = app.post("/ingest", body, headers)
    ran("replay after the window", resp.status_code)
    assert_refused(resp, produced, 401)
    assert "replay window" in resp.json()["error"]


@fuzz(30)
@given(batch=st.lists(labeled_events(valid_only=True), min_size=1, max_size=4), times=st.integers(2, 4))
def test_any_valid_batch_replayed_lands_as_identical_copies(apps, batch, times) -> None:
    body = orjson.dumps([e for e, _ in batch])
    headers = signed_headers(body)
    answers = [apps["default"].post("/ingest", body, headers) for _ in range(times)]
    ran("replay (property)")
    assert all(resp.status_code == 202 for resp, _ in answers)
    assert all(produced == answers[0][1] for _, produced in answers)


# ------------------------------------------------------------------------------- the counts


def test_zz_example_counts(capsys) -> None:
    """The examples each property ran in this session (and the statuses seen), for the record."""
    with capsys.disabled():
        print("\nhostile-input examples per property:")
        for name, count in sorted(EXAMPLES.items()):
            seen = ", ".join(f"{code}: {n}" for code, n in sorted(STATUSES.get(name, Counter()).items()))
            print(f"  {count:6d}  {name}" + (f"  ({seen})" if seen else ""))
