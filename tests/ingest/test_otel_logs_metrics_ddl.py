"""OTLP logs and metrics from Kafka into the exporter-shaped raw tables (clickhouse_ddl/007, 008),
and raw.spans' route and service_version (009), on the real broker and server.

Messages are built as an OpenTelemetry pipeline builds them: the OpenTelemetry SDK's providers
with in-memory readers, the OTLP exporters' protobuf encoders, then protobuf's JSON mapping with
integer enums and hex ids, which is the OpenTelemetry Collector Kafka exporter's ``otlp_json``."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._internal._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from platform_assets.ops.ddl import DDL_DIR, discover

pytestmark = pytest.mark.integration

IDS = frozenset({"traceId", "spanId", "parentSpanId"})


def otlp_json(request: Message) -> bytes:
    """An export request as the Collector's Kafka exporter writes it with encoding otlp_json:
    protobuf's JSON mapping (camelCase, int64 as strings, defaults left out), integer enums, ids
    as lowercase hex instead of base64."""

    def hex_ids(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: base64.b64decode(v).hex() if k in IDS and isinstance(v, str) else hex_ids(v) for k, v in node.items()
            }
        if isinstance(node, list):
            return [hex_ids(v) for v in node]
        return node

    return json.dumps(hex_ids(MessageToDict(request, use_integers_for_enums=True))).encode()


def produce(kafka, topic: str, values: list[bytes]) -> None:
    producer = kafka.producer()  # the collector's idempotent acks=all producer
    for value in values:
        producer.produce(topic, value=value)
        producer.poll(0)
    assert producer.flush(30) == 0


def wait_rows(clickhouse, sql: str, expected: tuple, timeout: float = 90.0) -> tuple:
    deadline = time.monotonic() + timeout
    got: tuple = ()
    with clickhouse.client() as ch:
        while time.monotonic() < deadline:
            got = tuple(ch.query(sql).result_rows[0])
            if got == expected:
                break
            time.sleep(0.5)
    return got


def rows(clickhouse, sql: str) -> list[tuple]:
    with clickhouse.client() as ch:
        return [tuple(r) for r in ch.query(sql).result_rows]


def resource(service: str) -> Resource:
    return Resource.create({"service.name": service, "service.version": "1.4.2", "tenant.id": "ws_otel"})


def sdk_logs(service: str) -> tuple[bytes, dict[str, Any]]:
    """Three records through the SDK's logger, the first inside a span: a string body with
    attributes, a map body, an int body without its own timestamp."""
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=resource(service))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("checkout.worker", "2.0.1")
    tracer = TracerProvider(resource=resource(service)).get_tracer("checkout.worker")
    with tracer.start_as_current_span("charge") as span:
        logger.emit(
            timestamp=time.time_ns(),
            severity_number=SeverityNumber.ERROR,
            severity_text="ERROR",
            body="card declined",
            attributes={"http.route": "/pay", "attempt": 3, "retry": True, "ratio": 0.5},
        )
        ctx = span.get_span_context()
    logger.emit(timestamp=time.time_ns(), severity_number=SeverityNumber.INFO, body={"order": "o-1", "items": 2})
    logger.emit(severity_number=SeverityNumber.WARN, body=42)
    provider.force_flush()
    records = exporter.get_finished_logs()
    assert len(records) == 3
    request = encode_logs(records)
    sent = {
        "otlp_proto": request.SerializeToString(),  # the Kafka exporter's other (default) encoding
        "trace_id": format(ctx.trace_id, "032x"),
        "span_id": format(ctx.span_id, "016x"),
        "flags": int(ctx.trace_flags),  # sampled (and the W3C random bit this SDK sets)
        "times": [r.log_record.timestamp or r.log_record.observed_timestamp for r in records],
    }
    return otlp_json(request), sent


def test_sdk_logs_land_in_otel_logs_with_their_values(schema, kafka, clickhouse):
    service = f"svc-logs-{uuid.uuid4().hex[:8]}"
    message, sent = sdk_logs(service)
    produce(kafka, "otlp_logs", [message])
    where = f"FROM raw.otel_logs WHERE ServiceName = '{service}'"
    assert wait_rows(clickhouse, f"SELECT count() {where}", (3,)) == (3,)
    got = rows(
        clickhouse,
        "SELECT toUnixTimestamp64Nano(Timestamp), toString(TimestampTime), TraceId, SpanId, TraceFlags, "
        "SeverityText, SeverityNumber, Body, LogAttributes, ResourceAttributes['service.version'], "
        f"ResourceAttributes['tenant.id'], ScopeName, ScopeVersion, kafka_offset >= 0 {where} "
        "ORDER BY SeverityNumber DESC",
    )
    error, warn, info = got
    # The record inside the span: its trace and span ids, flags, the attributes as text.
    assert error[:8] == (
        sent["times"][0],
        time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(sent["times"][0] // 10**9)),
        sent["trace_id"],
        sent["span_id"],
        sent["flags"],
        "ERROR",
        17,
        "card declined",
    )
    assert error[8] == {"http.route": "/pay", "attempt": "3", "retry": "1", "ratio": "0.5"}
    assert error[9:] == ("1.4.2", "ws_otel", "checkout.worker", "2.0.1", True)
    # A map body is its AnyValue as JSON; an int body the number; no span: no ids.
    assert info[6] == 9 and info[2:4] == ("", "")
    assert json.loads(info[7]) == {
        "kvlistValue": {
            "values": [
                {"key": "order", "value": {"stringValue": "o-1"}},
                {"key": "items", "value": {"intValue": "2"}},
            ]
        }
    }
    assert warn[6] == 13 and warn[7] == "42"
    # Without its own time the record takes its observed time, in nanoseconds.
    assert warn[0] == sent["times"][2] and info[0] == sent["times"][1]


def sdk_metrics(service: str) -> tuple[bytes, dict[str, Any]]:
    """A counter, a histogram recorded inside a span (exemplars), a gauge and an exponential
    histogram, read once by the SDK's in-memory reader (cumulative)."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        resource=resource(service),
        metric_readers=[reader],
        views=[View(instrument_name="queue.wait", aggregation=ExponentialBucketHistogramAggregation())],
    )
    meter = provider.get_meter("checkout.metrics", "0.9.0")
    tracer = TracerProvider(resource=resource(service)).get_tracer("checkout.worker")
    requests = meter.create_counter("http.server.requests", unit="1", description="requests served")
    duration = meter.create_histogram("http.server.request.duration", unit="s")
    temperature = meter.create_gauge("machine.temperature", unit="Cel")
    wait = meter.create_histogram("queue.wait", unit="ms")
    route: dict[str, str | int] = {"http.route": "/pay", "http.response.status_code": 200}
    requests.add(5, route)
    requests.add(7, route)
    with tracer.start_as_current_span("charge") as span:
        for seconds in (0.004, 0.2, 3.0):
            duration.record(seconds, route)
        trace_id = format(span.get_span_context().trace_id, "032x")
    temperature.set(21.5, {"machine": "m-1"})
    for ms in (1, 2, 4, 8, 1000):
        wait.record(ms)
    data = reader.get_metrics_data()
    assert data is not None
    points = {
        m.name: m.data.data_points[0] for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }
    return otlp_json(encode_metrics(data)), {"trace_id": trace_id, "points": points}


def test_sdk_metrics_land_in_their_point_type_tables(schema, kafka, clickhouse):
    service = f"svc-metrics-{uuid.uuid4().hex[:8]}"
    message, sent = sdk_metrics(service)
    produce(kafka, "otlp_metrics", [message])
    where = f"WHERE ServiceName = '{service}'"
    tables = ("sum", "gauge", "histogram", "exponential_histogram", "summary")
    counts = "SELECT " + ", ".join(f"(SELECT count() FROM raw.otel_metrics_{t} {where})" for t in tables)
    assert wait_rows(clickhouse, counts, (1, 1, 1, 1, 0)) == (1, 1, 1, 1, 0)
    points = sent["points"]

    ((name, unit, description, value, temporality, monotonic, attrs, time_ns, start_ns, scope),) = rows(
        clickhouse,
        "SELECT MetricName, MetricUnit, MetricDescription, Value, AggregationTemporality, IsMonotonic, Attributes, "
        "toUnixTimestamp64Nano(TimeUnix), toUnixTimestamp64Nano(StartTimeUnix), ScopeName "
        f"FROM raw.otel_metrics_sum {where}",
    )
    assert (name, unit, description, value, temporality, monotonic) == (
        "http.server.requests",
        "1",
        "requests served",
        12.0,
        2,  # cumulative, the SDK's default
        True,
    )
    assert attrs == {"http.route": "/pay", "http.response.status_code": "200"} and scope == "checkout.metrics"
    counter = points["http.server.requests"]
    assert (time_ns, start_ns) == (counter.time_unix_nano, counter.start_time_unix_nano)

    ((count, total, buckets, bounds, low, high, exemplar_traces, exemplar_values),) = rows(
        clickhouse,
        "SELECT Count, Sum, BucketCounts, ExplicitBounds, Min, Max, Exemplars.TraceId, Exemplars.Value "
        f"FROM raw.otel_metrics_histogram {where}",
    )
    histogram = points["http.server.request.duration"]
    assert (count, total, low, high) == (3, pytest.approx(3.204), 0.004, 3.0)
    assert buckets == list(histogram.bucket_counts) and bounds == list(histogram.explicit_bounds)
    assert sum(buckets) == 3 and len(buckets) == len(bounds) + 1
    # Recorded inside a sampled span: exemplars carry its trace id (hex), values as recorded.
    assert exemplar_traces and set(exemplar_traces) == {sent["trace_id"]}
    assert set(exemplar_values) <= {0.004, 0.2, 3.0}

    assert rows(clickhouse, f"SELECT MetricName, Value, Attributes FROM raw.otel_metrics_gauge {where}") == [
        ("machine.temperature", 21.5, {"machine": "m-1"})
    ]
    ((count, total, scale, zero, offset, positive, negative, high),) = rows(
        clickhouse,
        "SELECT Count, Sum, Scale, ZeroCount, PositiveOffset, PositiveBucketCounts, NegativeBucketCounts, Max "
        f"FROM raw.otel_metrics_exponential_histogram {where}",
    )
    exponential = points["queue.wait"]
    assert (count, total, zero, high) == (5, 1015.0, 0, 1000.0)
    assert (scale, offset, negative) == (
        exponential.scale,
        exponential.positive.offset,
        exponential.negative.bucket_counts,
    )
    assert positive == list(exponential.positive.bucket_counts) and sum(positive) == 5


def test_a_poison_message_is_one_dead_letter_and_the_good_ones_land(schema, kafka, clickhouse):
    """On each topic a message ClickHouse cannot parse between two good ones: on otlp_logs the
    same request in otlp_proto (protobuf, which the Kafka tables do not read), on otlp_metrics
    broken JSON."""
    tag = uuid.uuid4().hex[:8]
    logs, sent = sdk_logs(f"svc-poison-{tag}")
    metrics, _ = sdk_metrics(f"svc-poison-{tag}")
    assert tag.encode() in sent["otlp_proto"]
    produce(kafka, "otlp_logs", [logs, sent["otlp_proto"], logs])
    produce(kafka, "otlp_metrics", [metrics, f'{{"resourceMetrics": [poison {tag}'.encode(), metrics])
    landed = (
        f"SELECT (SELECT count() FROM raw.otel_logs WHERE ServiceName = 'svc-poison-{tag}'), "
        f"(SELECT count() FROM raw.otel_metrics_sum WHERE ServiceName = 'svc-poison-{tag}')"
    )
    assert wait_rows(clickhouse, landed, (6, 2)) == (6, 2)  # both good copies (at-least-once: no dedupe here)
    dead = (
        "SELECT countIf(topic = 'otlp_logs'), countIf(topic = 'otlp_metrics'), countIf(error != '') "
        f"FROM dead_letter.kafka_messages WHERE position(raw_message, '{tag}') > 0"
    )
    assert wait_rows(clickhouse, dead, (1, 1, 2)) == (1, 1, 2)


def test_hand_written_requests_with_numbers_and_omitted_defaults_land(schema, kafka, clickhouse):
    """int64 fields as JSON numbers instead of strings, fields at their default left out, enum
    names instead of numbers, a summary and a metric of a point type no table has."""
    service = f"svc-hand-{uuid.uuid4().hex[:8]}"
    now = time.time_ns()
    res = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    logs = {
        "resourceLogs": [
            {
                "resource": res,
                "scopeLogs": [
                    {
                        "logRecords": [
                            {"timeUnixNano": now, "body": {"stringValue": "plain"}},
                            {"observedTimeUnixNano": now + 1, "severityNumber": "SEVERITY_NUMBER_WARN"},
                        ]
                    }
                ],
            }
        ]
    }
    metrics = {
        "resourceMetrics": [
            {
                "resource": res,
                "scopeMetrics": [
                    {
                        "metrics": [
                            {"name": "jobs", "sum": {"dataPoints": [{"timeUnixNano": now, "asInt": 9}]}},
                            {
                                "name": "latency",
                                "histogram": {
                                    "aggregationTemporality": "AGGREGATION_TEMPORALITY_CUMULATIVE",
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": now,
                                            "count": 4,
                                            "sum": 10.5,
                                            "bucketCounts": [1, 3],
                                            "explicitBounds": [1],
                                        }
                                    ],
                                },
                            },
                            {
                                "name": "rpc.latency",
                                "summary": {
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": str(now),
                                            "count": "10",
                                            "sum": 55,
                                            "quantileValues": [
                                                {"quantile": 0.5, "value": 4},
                                                {"quantile": 1, "value": 9},
                                            ],
                                        }
                                    ]
                                },
                            },
                            {
                                "name": "sizes",
                                "exponentialHistogram": {
                                    "dataPoints": [{"timeUnixNano": now, "count": 2, "zeroCount": 2}]
                                },
                            },
                            {"name": "future.kind", "description": "a point type from a later OTLP version"},
                        ]
                    }
                ],
            }
        ]
    }
    produce(kafka, "otlp_logs", [json.dumps(logs).encode()])
    produce(kafka, "otlp_metrics", [json.dumps(metrics).encode()])
    where = f"WHERE ServiceName = '{service}'"
    assert wait_rows(clickhouse, f"SELECT count() FROM raw.otel_logs {where}", (2,)) == (2,)
    assert rows(
        clickhouse,
        "SELECT toUnixTimestamp64Nano(Timestamp), SeverityNumber, SeverityText, Body, TraceId, TraceFlags, ScopeName, "
        f"LogAttributes FROM raw.otel_logs {where} ORDER BY Timestamp",
    ) == [(now, 0, "", "plain", "", 0, "", {}), (now + 1, 13, "", "", "", 0, "", {})]

    tables = ("sum", "histogram", "summary", "exponential_histogram", "gauge")
    counts = "SELECT " + ", ".join(f"(SELECT count() FROM raw.otel_metrics_{t} {where})" for t in tables)
    assert wait_rows(clickhouse, counts, (1, 1, 1, 1, 0)) == (1, 1, 1, 1, 0)
    assert rows(
        clickhouse,
        "SELECT Value, AggregationTemporality, IsMonotonic, toUnixTimestamp64Nano(StartTimeUnix), "
        f"toUnixTimestamp64Nano(TimeUnix) FROM raw.otel_metrics_sum {where}",
    ) == [(9.0, 0, False, 0, now)]
    assert rows(
        clickhouse,
        "SELECT Count, Sum, BucketCounts, ExplicitBounds, AggregationTemporality, Min "
        f"FROM raw.otel_metrics_histogram {where}",
    ) == [(4, 10.5, [1, 3], [1.0], 2, 0.0)]
    assert rows(
        clickhouse,
        "SELECT Count, Sum, ValueAtQuantiles.Quantile, ValueAtQuantiles.Value, toUnixTimestamp64Nano(TimeUnix) "
        f"FROM raw.otel_metrics_summary {where}",
    ) == [(10, 55.0, [0.5, 1.0], [4.0, 9.0], now)]
    assert rows(
        clickhouse,
        "SELECT Count, ZeroCount, Scale, PositiveOffset, PositiveBucketCounts FROM "
        f"raw.otel_metrics_exponential_histogram {where}",
    ) == [(2, 2, 0, 0, [])]
    # The metric of no known point type: not stored, one dead letter naming it.
    dead = f"FROM dead_letter.kafka_messages WHERE position(raw_message, '{service}') > 0"
    assert wait_rows(clickhouse, f"SELECT count(), any(topic) {dead}", (1, "otlp_metrics")) == (1, "otlp_metrics")
    ((error,),) = rows(clickhouse, f"SELECT error {dead}")
    assert error == (
        "1 metric(s) with none of gauge, sum, histogram, exponentialHistogram, summary, not stored: future.kind"
    )


def span_request(service: str, trace_id: str, attributes: dict[str, str], resource_extra: dict[str, str]) -> bytes:
    now = time.time_ns()
    span = {
        "traceId": trace_id,
        "spanId": uuid.uuid4().hex[:16],
        "name": "GET /orders/{id}",
        "kind": 2,
        "startTimeUnixNano": str(now),
        "endTimeUnixNano": str(now + 1_234_567),
        "status": {"code": 2, "message": "boom"},
        "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attributes.items()],
    }
    res = {"service.name": service, **resource_extra}
    resource_json = {"attributes": [{"key": k, "value": {"stringValue": v}} for k, v in res.items()]}
    return json.dumps({"resourceSpans": [{"resource": resource_json, "scopeSpans": [{"spans": [span]}]}]}).encode()


def test_spans_read_route_and_service_version_on_new_and_old_rows(schema, kafka, clickhouse):
    service = f"svc-route-{uuid.uuid4().hex[:8]}"
    traces = [uuid.uuid4().hex for _ in range(3)]
    produce(
        kafka,
        "otlp_spans",
        [
            span_request(
                service, traces[0], {"http.route": "/orders/{id}", "route": "other"}, {"service.version": "3.1"}
            ),
            span_request(service, traces[1], {"route": "/legacy"}, {}),
            span_request(service, traces[2], {}, {"http.route": "/from-resource"}),
        ],
    )
    where = f"FROM raw.spans WHERE service = '{service}'"
    assert wait_rows(clickhouse, f"SELECT count() {where}", (3,)) == (3,)
    got = dict((t, (r, v)) for t, r, v in rows(clickhouse, f"SELECT trace_id, route, service_version {where}"))
    assert got == {traces[0]: ("/orders/{id}", "3.1"), traces[1]: ("/legacy", ""), traces[2]: ("/from-resource", "")}

    # A row written before 009: a part of a table as 005 created it, then 009's ALTERs applied.
    old = f"raw.spans_before_009_{uuid.uuid4().hex[:8]}"
    (create, *_) = next(f for f in discover(DDL_DIR) if f.name == "005_spans.sql").statements
    alters = [
        s for s in next(f for f in discover(DDL_DIR) if f.name.startswith("009_")).statements if s.startswith("ALTER")
    ]
    with clickhouse.client() as ch:
        ch.command(create.replace("raw.spans", old, 1))
        try:
            ch.command(
                f"INSERT INTO {old} (trace_id, span_id, service, operation, start_time, end_time, attributes, "
                "resource_attributes) VALUES ('t-old', 's-old', 'svc-old', 'op', now64(3), now64(3), "
                "{'http.route': '/old/{id}'}, {'service.version': '0.9'})"
            )
            for alter in alters:
                ch.command(alter.replace("raw.spans", old, 1))
            on_disk = ch.query(
                "SELECT groupUniqArray(column) FROM system.parts_columns WHERE active AND database = 'raw' "
                "AND table = {t:String}",
                parameters={"t": old.split(".")[1]},
            ).result_rows[0][0]
            read = ch.query(f"SELECT route, service_version FROM {old}").result_rows
        finally:
            ch.command(f"DROP TABLE IF EXISTS {old} SYNC")
    assert "route" not in on_disk and "service_version" not in on_disk  # computed when read
    assert read == [("/old/{id}", "0.9")]


def test_otel_traces_view_answers_the_grafana_plugins_trace_queries(schema, kafka, clickhouse):
    service = f"svc-grafana-{uuid.uuid4().hex[:8]}"
    trace_id = uuid.uuid4().hex
    produce(kafka, "otlp_spans", [span_request(service, trace_id, {"http.route": "/x"}, {})])
    assert wait_rows(clickhouse, f"SELECT count() FROM raw.otel_traces WHERE ServiceName = '{service}'", (1,)) == (1,)
    # The shape of the plugin's trace-id query in OpenTelemetry mode: the time range from
    # <table>_trace_id_ts, nested Events and Links columns, the status and kind as text.
    query = f"""
        WITH '{trace_id}' AS trace_id,
            (SELECT min(Start) FROM raw.otel_traces_trace_id_ts WHERE TraceId = trace_id) AS trace_start,
            (SELECT max(End) + 1 FROM raw.otel_traces_trace_id_ts WHERE TraceId = trace_id) AS trace_end
        SELECT TraceId AS traceID, SpanId AS spanID, ParentSpanId AS parentSpanID, ServiceName AS serviceName,
            SpanName AS operationName, multiply(toUnixTimestamp64Nano(Timestamp), 0.000001) AS startTime,
            multiply(Duration, 0.000001) AS duration,
            arrayMap(key -> map('key', key, 'value', SpanAttributes[key]), mapKeys(SpanAttributes)) AS tags,
            if(StatusCode IN ('Error', 'STATUS_CODE_ERROR'), 2, 0) AS statusCode,
            arrayMap((name, timestamp, attributes) -> tuple(name, toString(toUnixTimestamp64Milli(timestamp)),
                arrayMap(key -> map('key', key, 'value', attributes[key]), mapKeys(attributes)))::Tuple(
                name String, timestamp String, fields Array(Map(String, String))),
                Events.Name, Events.Timestamp, Events.Attributes) AS logs,
            arrayMap((traceID, spanID, attributes) -> tuple(traceID, spanID, arrayMap(key -> map('key', key,
                'value', attributes[key]), mapKeys(attributes)))::Tuple(
                traceID String, spanID String, tags Array(Map(String, String))),
                Links.TraceId, Links.SpanId, Links.Attributes) AS references,
            SpanKind AS kind, StatusMessage AS statusMessage, TraceState AS traceState
        FROM raw.otel_traces
        WHERE traceID = trace_id AND Timestamp >= trace_start AND Timestamp <= trace_end
    """
    (
        (
            traced,
            span,
            parent,
            service_name,
            operation,
            start,
            duration,
            tags,
            status,
            logs,
            references,
            kind,
            message,
            state,
        ),
    ) = rows(clickhouse, query)
    assert (traced, parent, service_name, operation, kind, status, message, state) == (
        trace_id,
        "",
        service,
        "GET /orders/{id}",
        "Server",
        2,
        "boom",
        "",
    )
    assert len(span) == 16 and start == pytest.approx(time.time() * 1000, abs=120_000)
    assert duration == pytest.approx(1.234567) and tags == [{"key": "http.route", "value": "/x"}]
    assert logs == [] and references == []
    assert rows(clickhouse, f"SELECT Duration FROM raw.otel_traces WHERE TraceId = '{trace_id}'") == [(1_234_567,)]


def test_wrongly_typed_fields_read_as_defaults_and_the_consumer_goes_on(schema, kafka, clickhouse):
    """Valid JSON with fields of the wrong type or out of range: the rows land with defaults
    instead of failing the view (which would stop the topic's consumer), and a good request
    produced after them lands too."""
    since = rows(clickhouse, "SELECT now()")[0][0]  # exceptions before this test (a paused broker) are not its
    service = f"svc-odd-{uuid.uuid4().hex[:8]}"
    res = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    odd_record = {
        "timeUnixNano": "soon",
        "observedTimeUnixNano": -5,
        "severityNumber": 999,
        "flags": -1,
        "body": "not an AnyValue",
        "attributes": [{"key": "k"}, {"value": {"stringValue": "no key"}}],
    }
    odd_point = {"asInt": "99999999999999999999", "timeUnixNano": "x", "bucketCounts": ["a", -1], "exemplars": [5]}
    logs = {"resourceLogs": [{"resource": res, "scopeLogs": [{"logRecords": [odd_record]}]}]}
    metrics = {
        "resourceMetrics": [
            {
                "resource": res,
                "scopeMetrics": [
                    {
                        "metrics": [
                            {"name": "odd.sum", "sum": {"dataPoints": [odd_point], "aggregationTemporality": "X"}},
                            {"name": "odd.histogram", "histogram": {"dataPoints": [odd_point]}},
                        ]
                    }
                ],
            }
        ]
    }
    good_logs, _ = sdk_logs(service)
    good_metrics, _ = sdk_metrics(service)
    produce(kafka, "otlp_logs", [b'{"resourceLogs": 5}', json.dumps(logs).encode(), good_logs])
    produce(kafka, "otlp_metrics", [b'{"resourceMetrics": [7]}', json.dumps(metrics).encode(), good_metrics])
    where = f"WHERE ServiceName = '{service}'"
    landed = (
        f"SELECT (SELECT count() FROM raw.otel_logs {where}), (SELECT count() FROM raw.otel_metrics_sum {where}), "
        f"(SELECT count() FROM raw.otel_metrics_histogram {where})"
    )
    assert wait_rows(clickhouse, landed, (4, 2, 2)) == (4, 2, 2)
    ((severity, flags, attributes, recent),) = rows(
        clickhouse,
        "SELECT SeverityNumber, TraceFlags, LogAttributes, Timestamp > now() - INTERVAL 1 HOUR "
        f"FROM raw.otel_logs {where} AND Body = '\"not an AnyValue\"'",
    )
    # no usable time: the Kafka message's; the out-of-range numbers: 0
    assert (severity, flags, attributes, recent) == (0, 0, {"k": "", "": "no key"}, True)
    assert rows(
        clickhouse,
        "SELECT Value, AggregationTemporality, TimeUnix > now() - INTERVAL 1 HOUR "
        f"FROM raw.otel_metrics_sum {where} AND MetricName = 'odd.sum'",
    ) == [(0.0, 0, True)]
    assert rows(
        clickhouse,
        "SELECT BucketCounts, Exemplars.Value "
        f"FROM raw.otel_metrics_histogram {where} AND MetricName = 'odd.histogram'",
    ) == [([0, 0], [0.0])]
    with clickhouse.client() as ch:
        failing = ch.query(
            "SELECT table, arrayFilter((x, t) -> t >= {since:DateTime}, exceptions.text, exceptions.time) AS recent "
            "FROM system.kafka_consumers WHERE database = 'kafka_queue' "
            "AND table IN ('otlp_logs', 'otlp_metrics') AND length(recent) > 0",
            parameters={"since": since},
        ).result_rows
    assert failing == []
