"""OpenTelemetry SDK programs (``platform_assets.synthetic.otel_program``, run as their own
processes, configured only by the standard OTEL_* variables) through the collector over OTLP/gRPC
and OTLP/HTTP, Kafka and ClickHouse: rows per signal, attribute values, histogram buckets against
the values recorded, and no raw PII in any stored ClickHouse column."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest
from dagster import DagsterInstance, materialize

from platform_assets.core.identity import user_hash
from platform_assets.demo.ingest import RunningCollector
from platform_assets.ingest.assets import kafka_topics
from platform_assets.ingest.collector.config import CollectorConfig
from platform_assets.ops.assets import clickhouse_schema

pytestmark = pytest.mark.integration

HASH_KEY = b"hash-key-for-tests-0123"
CASES = [("grpc", "semconv"), ("http", "common"), ("grpc", "common"), ("http", "semconv")]


@pytest.fixture(scope="module")
def collector(stack, clickhouse, kafka):
    result = materialize(
        [kafka_topics, clickhouse_schema],
        resources={"clickhouse": clickhouse, "kafka": kafka},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    cfg = CollectorConfig(bootstrap_servers=kafka.bootstrap_servers, hmac_keys={"k": b"0123456789abcdef0"},
                          hash_key=HASH_KEY, ack_timeout_s=10.0)  # fmt: skip
    with RunningCollector(cfg) as running:
        yield running


@pytest.fixture(scope="module")
def sent(collector) -> dict[tuple[str, str], dict]:
    """Each program once, with its own marker, user id and e-mail."""
    out = {}
    for protocol, style in CASES:
        endpoint = f"http://{collector.grpc_endpoint}" if protocol == "grpc" else collector.url
        user_id = str(7_000_000_000 + uuid.uuid4().int % 1_000_000_000)
        email = f"pii-{uuid.uuid4().hex[:10]}@example.com"
        run = subprocess.run(
            [sys.executable, "-m", "platform_assets.synthetic.otel_program", protocol, style,
             "--marker", uuid.uuid4().hex, "--user-id", user_id, "--email", email, "--workspace", f"ws_{style}"],
            env={**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SERVICE_NAME": f"shop-{protocol}"},
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        assert "Failed to export" not in run.stderr, run.stderr
        out[(protocol, style)] = {**json.loads(run.stdout), "user_id": user_id, "email": email}
    return out


def scalar(clickhouse, sql: str, **params):
    with clickhouse.client() as ch:
        return ch.query(sql, parameters=params).result_rows[0][0]


def wait_for(clickhouse, sql: str, expected, timeout: float = 60.0, **params):
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = scalar(clickhouse, sql, **params)
        if got == expected:
            return got
        time.sleep(0.5)
    return got


@pytest.mark.parametrize(("protocol", "style"), CASES)
def test_every_signal_lands_with_its_values(sent, clickhouse, protocol, style):
    rec = sent[(protocol, style)]
    m = rec["marker"]
    spans = "SELECT count() FROM raw.spans WHERE resource_attributes['test.marker'] = {m:String}"
    assert wait_for(clickhouse, spans, 7, m=m) == 7
    assert scalar(clickhouse, "SELECT groupUniqArray(service) FROM raw.spans WHERE "
                  "resource_attributes['test.marker'] = {m:String}", m=m) == [f"shop-{protocol}"]  # fmt: skip
    version_route = scalar(
        clickhouse,
        "SELECT (any(service_version), anyIf(route, operation LIKE 'chat%')) FROM raw.spans "
        "WHERE resource_attributes['test.marker'] = {m:String}",
        m=m,
    )
    assert version_route == ("1.4.2", "/api/chat")
    logs = "SELECT count() FROM raw.otel_logs WHERE ResourceAttributes['test.marker'] = {m:String}"
    assert wait_for(clickhouse, logs, rec["logs"], m=m) == rec["logs"]
    error = scalar(
        clickhouse,
        "SELECT (SeverityText, Body, TraceId, LogAttributes['order'], ServiceName) FROM raw.otel_logs "
        "WHERE ResourceAttributes['test.marker'] = {m:String} AND SeverityNumber >= 17",
        m=m,
    )
    assert error[0] == "ERROR" and error[1] == "lookup_order failed for [redacted]"
    assert error[2] in rec["traces"] and error[3:] == ("A-1", f"shop-{protocol}")
    # The log's trace is a trace of raw.spans: the link from a log to its trace works.
    assert scalar(clickhouse, "SELECT count() FROM raw.spans WHERE trace_id = {t:String}", t=error[2]) >= 2

    hist = "SELECT count() FROM raw.otel_metrics_histogram WHERE ResourceAttributes['test.marker'] = {m:String}"
    assert wait_for(clickhouse, hist, 2 * 2 + 2, m=m) == 6  # 2 routes x 2 statuses + token usage x 2 types
    with clickhouse.client() as ch:
        points = ch.query(
            "SELECT Attributes['http.route'], sum(Count), sumForEach(BucketCounts), any(ExplicitBounds), "
            "any(AggregationTemporality), any(MetricUnit) FROM raw.otel_metrics_histogram "
            "WHERE ResourceAttributes['test.marker'] = {m:String} AND MetricName = 'http.server.request.duration' "
            "GROUP BY 1",
            parameters={"m": m},
        ).result_rows
    for route, count, buckets, bounds, temporality, unit in points:
        values = sorted(rec["durations"][route])
        assert count == len(values) and temporality == 2 and unit == "s"  # the Python SDK's default: cumulative
        expected = [sum(1 for v in values if (i == 0 or v > bounds[i - 1]) and (i == len(bounds) or v <= bounds[i]))
                    for i in range(len(bounds) + 1)]  # fmt: skip
        assert list(buckets) == expected
        p95_exact = values[int(0.95 * (len(values) - 1))]
        p95 = bucket_quantile(0.95, list(buckets), list(bounds))
        i = next(i for i, b in enumerate(bounds) if p95_exact <= b)
        assert (bounds[i - 1] if i else 0.0) <= p95 <= bounds[i], (p95, p95_exact)
    tokens = scalar(
        clickhouse,
        "SELECT sumMap(map(Attributes['gen_ai.token.type'], toUInt64(Sum))) FROM raw.otel_metrics_histogram "
        "WHERE ResourceAttributes['test.marker'] = {m:String} AND MetricName = 'gen_ai.client.token.usage'",
        m=m,
    )
    assert tokens == {"input": rec["tokens"]["input"], "output": rec["tokens"]["output"]}
    gauge = "SELECT any(Value) FROM raw.otel_metrics_gauge WHERE ResourceAttributes['test.marker'] = {m:String}"
    assert wait_for(clickhouse, gauge, 7.0, m=m) == 7.0
    counter = (
        "SELECT (sum(Value), any(IsMonotonic)) FROM raw.otel_metrics_sum "
        "WHERE ResourceAttributes['test.marker'] = {m:String} AND MetricName = 'app.requests'"
    )
    assert wait_for(clickhouse, counter, (80.0, True), m=m) == (80.0, True)


def bucket_quantile(q: float, counts: list[int], bounds: list[float]) -> float:
    """Linear interpolation inside the bucket holding the q-th observation (lower edge 0)."""
    rank = q * sum(counts)
    below = 0
    for i, c in enumerate(counts):
        if c and below + c >= rank:
            low = bounds[i - 1] if i else 0.0
            high = bounds[i] if i < len(bounds) else bounds[-1]
            return low + (high - low) * (rank - below) / c
        below += c
    return bounds[-1]


def test_no_raw_pii_is_stored_anywhere(sent, clickhouse):
    for rec in sent.values():  # every signal of every program has landed
        m = rec["marker"]
        assert wait_for(clickhouse, "SELECT count() FROM raw.otel_logs WHERE ResourceAttributes['test.marker'] = "
                        "{m:String}", rec["logs"], m=m) == rec["logs"]  # fmt: skip
    with clickhouse.client() as ch:
        columns = ch.query(
            "SELECT c.database, c.table, c.name FROM system.columns AS c "
            "JOIN system.tables AS t ON t.database = c.database AND t.name = c.table "
            "WHERE c.database NOT IN ('system', 'INFORMATION_SCHEMA', 'information_schema') "
            "AND t.engine LIKE '%MergeTree%' AND match(c.type, 'String|Map|JSON|Nested|Tuple')"
        ).result_rows
        assert len(columns) > 50
        for rec in sent.values():
            for needle in (rec["user_id"], rec["email"]):
                hits = {}
                for db, table, col in columns:
                    sql = f"SELECT count() FROM `{db}`.`{table}` WHERE position(toString(`{col}`), {{v:String}}) > 0"
                    if n := ch.command(sql, parameters={"v": needle}):
                        hits[f"{db}.{table}.{col}"] = n
                assert hits == {}, (needle, hits)
            pseudonym = user_hash(HASH_KEY, rec["user_id"])
            stored = ch.command(
                "SELECT count() FROM raw.otel_logs WHERE LogAttributes['user_id'] = {p:String}",
                parameters={"p": pseudonym},
            )
            assert stored == 3  # one per agent run: the user joins the product events' user
