"""OTLP trace requests cut into Kafka-sized OTLP JSON documents, without servers."""

from __future__ import annotations

import json

import pytest

from platform_assets.ingest.collector.otlp import SpanTooLarge, span_count, to_messages

pytestmark = pytest.mark.unit


def request(resources: int, scopes: int, spans: int, pad: int = 200) -> dict:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": f"svc-{r}"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": f"scope-{s}"},
                        "spans": [
                            {
                                "traceId": f"{r:08x}{s:08x}{i:016x}",
                                "spanId": f"{i:016x}",
                                "name": "x" * pad,
                                "startTimeUnixNano": "1",
                                "endTimeUnixNano": "2",
                            }
                            for i in range(spans)
                        ],
                    }
                    for s in range(scopes)
                ],
            }
            for r in range(resources)
        ]
    }


def flatten(doc: dict) -> list[tuple[str, str, str]]:
    """(service, scope, span id) per span, in order."""
    return [
        (rs["resource"]["attributes"][0]["value"]["stringValue"], ss["scope"]["name"], span["spanId"])
        for rs in doc["resourceSpans"]
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    ]


def test_a_request_that_fits_is_one_message_keyed_by_its_first_trace():
    req = request(2, 2, 3)
    ((key, value),) = to_messages(req, max_bytes=1_000_000)
    assert json.loads(value) == req and key == req["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"].encode()


def test_a_large_request_is_split_with_every_span_under_its_resource_and_scope():
    req = request(3, 2, 50)  # 300 spans of ~300 bytes: about 90 KB
    messages = to_messages(req, max_bytes=8 * 1024)
    assert len(messages) >= 12 and all(len(value) <= 8 * 1024 for _, value in messages)
    docs = [json.loads(value) for _, value in messages]
    assert [span for doc in docs for span in flatten(doc)] == flatten(req)
    assert sum(span_count(doc) for doc in docs) == 300
    assert [key for key, _ in messages] == [doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"].encode()
                                            for doc in docs]  # fmt: skip


def test_one_span_over_the_limit_is_refused_naming_it():
    req = request(1, 1, 2, pad=10_000)
    with pytest.raises(SpanTooLarge, match=r"span 0000000000000000 of trace .* over the 4096-byte message limit"):
        to_messages(req, max_bytes=4096)
