"""PII handling of random OTLP JSON requests of each kind (traces, logs, metrics): after ``scrub``
no key to delete is left in any attribute list at any depth, every key to hash holds the pseudonym
of its original text, every other attribute and the rest of the request are unchanged, and no
e-mail address written into a log body is left in it (pure, property-based)."""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from platform_assets.core.identity import user_hash
from platform_assets.ingest.collector.attributes import (
    DEFAULT_DELETE,
    DEFAULT_HASH,
    DEFAULT_LOG_BODY_REDACT,
    REDACTED,
    AttributePolicy,
    scalar_text,
    scrub,
)

pytestmark = pytest.mark.unit

KEY = b"0123456789abcdef"
HOLDER_FIELDS = ("attributes", "filteredAttributes", "metadata")  # every attribute list of OTLP
# Keys drawn for attributes: the default lists, prefixes whose dotted paths hit them
# ("user" + "id" = user.id), and near misses that must survive.
PARTS = ("user", "client", "enduser", "http", "id", "address", "email", "client_ip")
KEYS = sorted(DEFAULT_DELETE | DEFAULT_HASH) + list(PARTS) + ["service.name", "emails", "user_id_x", "note", "", "ip."]
WORDS = ("hello", "user", "a.b", "sent to", "x@y", "@", "", "ünï ✓", "mail:", "1.5")

# ------------------------------------------------------------------------- strategies


def spellings(key: str) -> list[str]:
    """``key`` as written in several cases: keys match case-insensitively."""
    mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(key))
    return list(dict.fromkeys([key, key.upper(), key.title(), mixed]))


def case(key: str) -> st.SearchStrategy[str]:
    return st.sampled_from(spellings(key))


keys = st.sampled_from([spelled for key in KEYS for spelled in spellings(key)])
scalars = st.one_of(
    st.builds(lambda s: {"stringValue": s}, st.sampled_from(WORDS) | st.text(max_size=8)),
    st.builds(lambda i: {"intValue": str(i)}, st.integers(-(2**63), 2**63 - 1)),
    st.builds(lambda i: {"intValue": i}, st.integers(-1000, 1000)),  # a number, as some clients write it
    st.builds(lambda b: {"boolValue": b}, st.booleans()),
    st.builds(lambda d: {"doubleValue": d}, st.floats(allow_nan=False, allow_infinity=False)),
    st.just({}).map(dict),  # a value without a kind
)


def any_values(leaves: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """OTLP AnyValues: ``leaves``, and arrays and maps of AnyValues, three levels deep at most."""

    def extend(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        kvs = st.lists(st.builds(lambda k, v: {"key": k, "value": v}, keys, inner), max_size=4)
        return st.one_of(
            st.builds(
                lambda vs: {"arrayValue": {"values": vs}} if vs else {"arrayValue": {}}, st.lists(inner, max_size=3)
            ),
            st.builds(lambda vs: {"kvlistValue": {"values": vs}} if vs else {"kvlistValue": {}}, kvs),
        )

    return st.recursive(leaves, extend, max_leaves=8)


values = any_values(scalars)
DOTTED = [*sorted(k for k in DEFAULT_DELETE | DEFAULT_HASH if "." in k), "service.name", "user.plan"]


@st.composite
def nested_paths(draw: st.DrawFn) -> dict[str, Any]:
    """A dotted key written as a map: ``client.address`` as ``client = {address: ..., ...}`` (or
    as ``client = [..., {address: ..., ...}]``)."""
    dotted = draw(st.sampled_from(DOTTED))
    cut = draw(st.sampled_from([i for i, c in enumerate(dotted) if c == "."]))
    inner = {"key": draw(case(dotted[cut + 1 :])), "value": draw(st.one_of(scalars, values))}
    others = draw(st.lists(st.builds(lambda k, v: {"key": k, "value": v}, keys, scalars), max_size=2))
    value: dict[str, Any] = {"kvlistValue": {"values": [*others, inner]}}
    if draw(st.booleans()):  # maps in an array: the array adds nothing to the path
        value = {"arrayValue": {"values": [{"stringValue": "x"}, value]}}
    return {"key": draw(case(dotted[:cut])), "value": value}


attribute = st.one_of(
    st.builds(lambda k, v: {"key": k, "value": v}, keys, values),
    st.builds(lambda k: {"key": k}, keys),  # no value at all
    nested_paths(),
)
attribute_lists = st.lists(attribute, max_size=4)


def with_attributes(base: dict[str, Any], field: str = "attributes") -> st.SearchStrategy[dict[str, Any]]:
    """``base`` with an attribute list under ``field`` (or none)."""
    return st.one_of(st.just(base).map(dict), attribute_lists.map(lambda a: {**base, field: a}))


def fixed(required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(required, optional=optional)


resources = with_attributes({"droppedAttributesCount": 1})
scopes = st.builds(lambda name, a: {"name": name, **a}, st.sampled_from(["lib", ""]), with_attributes({}))


def request_of(
    resource_key: str, scope_key: str, items_key: str, items: st.SearchStrategy[Any]
) -> st.SearchStrategy[dict[str, Any]]:
    scope_items = fixed({items_key: st.lists(items, max_size=3)}, {"scope": scopes, "schemaUrl": st.just("s")})
    resource_items = fixed({scope_key: st.lists(scope_items, max_size=2)}, {"resource": resources})
    return fixed({resource_key: st.lists(resource_items, max_size=2)}, {})


span_events = fixed({"name": st.just("e")}, {"attributes": attribute_lists})
links = fixed({"traceId": st.just("ab" * 16), "spanId": st.just("cd" * 8)}, {"attributes": attribute_lists})
spans = fixed(
    {"traceId": st.just("ab" * 16), "spanId": st.just("ce" * 8), "name": st.sampled_from(["chat", "user.id"])},
    {"attributes": attribute_lists, "events": st.lists(span_events, max_size=2), "links": st.lists(links, max_size=2)},
)
traces = request_of("resourceSpans", "scopeSpans", "spans", spans)

# Log bodies: text with e-mail addresses written into it, at any depth of a map or array body.
emails = st.builds(
    lambda local, domain, tld: f"{local}@{domain}.{tld}",
    st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9.+_-]{0,6}", fullmatch=True),
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,5}[a-z0-9])?(\.[a-z]{1,4}){0,2}", fullmatch=True),
    st.from_regex(r"[a-zA-Z]{2,4}", fullmatch=True),
)
body_text = st.lists(st.one_of(st.sampled_from(WORDS), emails), max_size=6).map(" ".join)
bodies = any_values(st.one_of(st.builds(lambda s: {"stringValue": s}, body_text), scalars))
log_records = fixed(
    {"timeUnixNano": st.just("1700000000000000000")},
    {"body": bodies, "attributes": attribute_lists, "severityText": st.just("INFO"), "traceId": st.just("ab" * 16)},
)
logs = request_of("resourceLogs", "scopeLogs", "logRecords", log_records)

exemplars = fixed({"asDouble": st.just(1.5), "filteredAttributes": attribute_lists}, {"spanId": st.just("cd" * 8)})
points = fixed(
    {"timeUnixNano": st.just("2"), "attributes": attribute_lists},
    {"exemplars": st.lists(exemplars, max_size=2), "asInt": st.just("7")},
)
metric_data = st.sampled_from(["gauge", "sum", "histogram", "exponentialHistogram", "summary"]).flatmap(
    lambda kind: st.builds(
        lambda ps: {kind: {"dataPoints": ps, "aggregationTemporality": 2} if kind != "gauge" else {"dataPoints": ps}},
        st.lists(points, max_size=3),
    )
)
metrics_items = st.builds(
    lambda name, data, meta: {"name": name, **data, **meta},
    st.sampled_from(["m", "user.id"]),
    metric_data,
    st.one_of(st.just({}).map(dict), attribute_lists.map(lambda a: {"metadata": a})),
)
metrics = request_of("resourceMetrics", "scopeMetrics", "metrics", metrics_items)


def disjoint_policies() -> st.SearchStrategy[AttributePolicy]:
    """The default policy, or lists drawn from the same keys (one key in one list at most)."""
    drawn = st.lists(st.sampled_from([k for k in KEYS if k]), unique=True, max_size=10).flatmap(
        lambda ks: st.integers(0, len(ks)).map(lambda cut: AttributePolicy(frozenset(ks[:cut]), frozenset(ks[cut:])))
    )
    redact = st.sampled_from([DEFAULT_LOG_BODY_REDACT, None])
    return st.one_of(
        redact.map(lambda r: AttributePolicy(redact=r)),
        st.builds(lambda p, r: AttributePolicy(p.delete, p.hash, r), drawn, redact),
    )


# ------------------------------------------------------------------------- the expected result


def pseudonym(text: str) -> str:
    return user_hash(KEY, text)


def expected_attributes(attributes: list[Any], policy: AttributePolicy, prefix: str, tally: Counter[str]) -> list[Any]:
    out = []
    for a in attributes:
        key = str(a.get("key", "")).lower()
        path = prefix + key
        if key in policy.delete or path in policy.delete:
            tally["deleted"] += 1
        elif key in policy.hash or path in policy.hash:
            tally["hashed"] += 1
            out.append({**a, "value": {"stringValue": pseudonym(scalar_text(a.get("value") or {}))}})
        elif "value" in a:
            out.append({**a, "value": expected_value(a["value"], policy, path + ".", tally)})
        else:
            out.append(a)
    return out


def expected_value(value: dict[str, Any], policy: AttributePolicy, prefix: str, tally: Counter[str]) -> dict[str, Any]:
    if value.get("kvlistValue", {}).get("values"):
        return {"kvlistValue": {"values": expected_attributes(value["kvlistValue"]["values"], policy, prefix, tally)}}
    if value.get("arrayValue", {}).get("values"):
        return {
            "arrayValue": {"values": [expected_value(v, policy, prefix, tally) for v in value["arrayValue"]["values"]]}
        }
    return value


def expected_body(value: dict[str, Any], redact: re.Pattern[str]) -> dict[str, Any]:
    if "stringValue" in value:
        return {"stringValue": redact.sub(REDACTED, value["stringValue"])}
    if value.get("kvlistValue", {}).get("values"):
        return {
            "kvlistValue": {
                "values": [{**a, "value": expected_body(a["value"], redact)} for a in value["kvlistValue"]["values"]]
            }
        }
    if value.get("arrayValue", {}).get("values"):
        return {"arrayValue": {"values": [expected_body(v, redact) for v in value["arrayValue"]["values"]]}}
    return value


def expected(node: Any, policy: AttributePolicy, tally: Counter[str]) -> Any:
    """The request as scrubbed, found without knowing its kind: every attribute list wherever it
    is, every log body; ``tally`` counts what changed."""
    if isinstance(node, list):
        return [expected(v, policy, tally) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k in HOLDER_FIELDS and isinstance(v, list):
            out[k] = expected_attributes(v, policy, "", tally)
        elif k == "body" and policy.redact is not None:
            tally["redacted"] += sum(len(policy.redact.findall(text)) for text in strings_of(v))
            out[k] = expected_body(v, policy.redact)
        else:
            out[k] = expected(v, policy, tally)
    return out


# ------------------------------------------------------------------------- invariants


def attributes_in(node: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(dotted path prefix, attribute) for every attribute at any depth (not in log bodies)."""
    if isinstance(node, list):
        for v in node:
            yield from attributes_in(v)
    elif isinstance(node, dict):
        for k, v in node.items():
            if k in HOLDER_FIELDS and isinstance(v, list):
                yield from nested_attributes(v, "")
            elif k != "body":
                yield from attributes_in(v)


def nested_attributes(attributes: list[Any], prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for a in attributes:
        yield prefix, a
        path = prefix + str(a.get("key", "")).lower() + "."
        stack = [a.get("value") or {}]
        while stack:
            value = stack.pop()
            if value.get("kvlistValue", {}).get("values"):
                yield from nested_attributes(value["kvlistValue"]["values"], path)
            stack.extend(value.get("arrayValue", {}).get("values") or [])


def body_strings(node: Any) -> Iterator[str]:
    if isinstance(node, list):
        for v in node:
            yield from body_strings(v)
    elif isinstance(node, dict):
        for k, v in node.items():
            if k == "body":
                yield from strings_of(v)
            else:
                yield from body_strings(v)


def strings_of(value: dict[str, Any]) -> Iterator[str]:
    if isinstance(value.get("stringValue"), str):
        yield value["stringValue"]
    for a in value.get("kvlistValue", {}).get("values") or []:
        yield from strings_of(a.get("value") or {})
    for v in value.get("arrayValue", {}).get("values") or []:
        yield from strings_of(v)


def check(request: dict[str, Any], policy: AttributePolicy) -> None:
    original = copy.deepcopy(request)
    counts = scrub(request, policy, pseudonym)

    tally: Counter[str] = Counter()
    assert request == expected(original, policy, tally)
    assert (counts.deleted, counts.hashed, counts.redacted) == (tally["deleted"], tally["hashed"], tally["redacted"])
    # The same, said directly: no key to delete anywhere; a key to hash holds only a pseudonym.
    for prefix, a in attributes_in(request):
        key = str(a.get("key", "")).lower()
        assert key not in policy.delete and prefix + key not in policy.delete, (prefix, a)
        if key in policy.hash or prefix + key in policy.hash:
            assert set(a["value"]) == {"stringValue"} and re.fullmatch("|[0-9a-f]{32}", a["value"]["stringValue"])
    if policy.redact is None:
        assert list(body_strings(request)) == list(body_strings(original))


PROPERTY = settings(max_examples=60, deadline=1000, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(traces, disjoint_policies())
def test_trace_exports(request: dict[str, Any], policy: AttributePolicy) -> None:
    check(request, policy)


@PROPERTY
@given(logs, disjoint_policies())
def test_log_exports(request: dict[str, Any], policy: AttributePolicy) -> None:
    check(request, policy)


@PROPERTY
@given(metrics, disjoint_policies())
def test_metric_exports(request: dict[str, Any], policy: AttributePolicy) -> None:
    check(request, policy)


@settings(max_examples=50, deadline=1000)
@given(st.lists(st.tuples(st.sampled_from(WORDS), emails), min_size=1, max_size=5))
def test_no_address_written_into_a_log_body_is_left(parts: list[tuple[str, str]]) -> None:
    text = " ".join(f"{word} {email}" for word, email in parts)
    request = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": text}}]}]}]}
    counts = scrub(request, AttributePolicy(), pseudonym)
    body = request["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["body"]["stringValue"]
    for _, email in parts:
        assert email not in body
    assert counts.redacted == len(parts) and body.count(REDACTED) == len(parts)
