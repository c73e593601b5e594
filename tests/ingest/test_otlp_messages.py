"""OTLP requests of each signal cut into Kafka-sized OTLP JSON documents, without servers."""

from __future__ import annotations

import json

import pytest

from platform_assets.ingest.collector.otlp import SIGNALS, item_count, to_messages

TRACES, METRICS, LOGS = SIGNALS["traces"], SIGNALS["metrics"], SIGNALS["logs"]

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
    split = to_messages(TRACES, req, max_bytes=1_000_000)
    ((key, value),) = split.messages
    assert json.loads(value) == req and key == req["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"].encode()
    assert split.rejected == 0


def test_a_large_request_is_split_with_every_span_under_its_resource_and_scope():
    req = request(3, 2, 50)  # 300 spans of ~300 bytes: about 90 KB
    messages = to_messages(TRACES, req, max_bytes=8 * 1024).messages
    assert len(messages) >= 12 and all(len(value) <= 8 * 1024 for _, value in messages)
    docs = [json.loads(value) for _, value in messages]
    assert [span for doc in docs for span in flatten(doc)] == flatten(req)
    assert sum(item_count(TRACES, doc) for doc in docs) == 300
    assert [key for key, _ in messages] == [doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"].encode()
                                            for doc in docs]  # fmt: skip


def test_one_span_over_the_limit_is_rejected_by_name_and_the_others_are_kept():
    req = request(1, 1, 3)
    big = req["resourceSpans"][0]["scopeSpans"][0]["spans"][1]
    big["name"] = "x" * 10_000
    split = to_messages(TRACES, req, max_bytes=4096)
    assert split.rejected == 1
    assert split.error.startswith(f"span {big['spanId']} of trace {big['traceId']}: over the")
    kept = [span for _, value in split.messages for span in flatten(json.loads(value))]
    assert kept == [("svc-0", "scope-0", "0000000000000000"), ("svc-0", "scope-0", "0000000000000002")]


def histogram_request(points: int) -> dict:
    return {
        "resourceMetrics": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
                "scopeMetrics": [
                    {
                        "scope": {"name": "meter"},
                        "metrics": [
                            {"name": "requests", "sum": {"dataPoints": [{"asInt": "7"}], "isMonotonic": True}},
                            {
                                "name": "http.server.request.duration",
                                "unit": "s",
                                "histogram": {
                                    "aggregationTemporality": 2,
                                    "dataPoints": [
                                        {
                                            "attributes": [{"key": "http.route", "value": {"stringValue": f"/r/{i}"}}],
                                            "count": "3",
                                            "bucketCounts": ["1", "2", "0"],
                                            "explicitBounds": [0.1, 0.5],
                                        }
                                        for i in range(points)
                                    ],
                                },
                            },
                        ],
                    }
                ],
            }
        ]
    }


def test_a_metric_over_the_limit_is_split_into_its_data_points_none_lost():
    req = histogram_request(400)  # one metric of ~50 KB
    split = to_messages(METRICS, req, max_bytes=4096)
    assert split.rejected == 0 and len(split.messages) > 10
    docs = [json.loads(value) for _, value in split.messages]
    assert sum(item_count(METRICS, doc) for doc in docs) == item_count(METRICS, req) == 401
    routes = [
        p["attributes"][0]["value"]["stringValue"]
        for doc in docs
        for m in doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
        if m["name"] == "http.server.request.duration"
        for p in m["histogram"]["dataPoints"]
    ]
    assert routes == [f"/r/{i}" for i in range(400)]
    for doc in docs:  # every part keeps its metric's name, unit and temporality
        for m in doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]:
            if "histogram" in m:
                assert m["unit"] == "s" and m["histogram"]["aggregationTemporality"] == 2
    assert all(key is None for key, _ in split.messages)


def test_log_records_are_counted_split_and_keyed_by_trace():
    records = [
        {"timeUnixNano": str(i), "body": {"stringValue": "y" * 300}, "traceId": f"{i:032x}"} for i in range(1, 41)
    ]
    req = {"resourceLogs": [{"resource": {}, "scopeLogs": [{"scope": {"name": "app"}, "logRecords": records}]}]}
    assert item_count(LOGS, req) == 40
    split = to_messages(LOGS, req, max_bytes=2048)
    docs = [json.loads(value) for _, value in split.messages]
    assert [r for d in docs for r in d["resourceLogs"][0]["scopeLogs"][0]["logRecords"]] == records
    assert [k for k, _ in split.messages] == [d["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["traceId"].encode()
                                              for d in docs]  # fmt: skip
