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
             "--marker", uuid.uuid4().hex, "--user-id", user_id, "--email", email,
             "--workspace", f"ws_{protocol}_{style}_{uuid.uuid4().hex[:6]}"],
            env={**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SERVICE_NAME": f"shop-{protocol}"},
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        assert "Failed to export" not in run.stderr, run.stderr
        workspace = run.args[run.args.index("--workspace") + 1]
        out[(protocol, style)] = {**json.loads(run.stdout), "user_id": user_id, "email": email, "workspace": workspace}
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
    # 2 routes x 2 statuses, token usage x 2 types, LLM call durations
    assert wait_for(clickhouse, hist, 2 * 2 + 2 + 1, m=m) == 7
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


def test_an_otlp_proto_message_on_a_topic_is_a_dead_letter_and_json_lands(collector, kafka, clickhouse):
    """The topics take the otlp_json encoding only (docs/ingest.md): a message in the Kafka
    exporter's default otlp_proto encoding is kept as a dead letter, not lost and not half-read."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    from platform_assets.ingest.collector import otlp

    marker = uuid.uuid4().hex
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.add(key="test.marker").value.string_value = marker
    rl.scope_logs.add().log_records.add(severity_number=9, time_unix_nano=time.time_ns()).body.string_value = "hi"
    producer = kafka.producer()
    producer.produce("otlp_logs", value=req.SerializeToString())
    producer.produce("otlp_logs", value=otlp.to_messages(otlp.SIGNALS["logs"], otlp.SIGNALS["logs"].to_json(req),
                                                         1 << 20).messages[0][1])  # fmt: skip
    assert producer.flush(30) == 0
    landed = "SELECT count() FROM raw.otel_logs WHERE ResourceAttributes['test.marker'] = {m:String}"
    assert wait_for(clickhouse, landed, 1, m=marker) == 1
    dead = (
        "SELECT count() FROM dead_letter.kafka_messages "
        "WHERE topic = 'otlp_logs' AND position(raw_message, {m:String}) > 0"
    )
    assert wait_for(clickhouse, dead, 1, m=marker) == 1


def test_broker_paused_is_unavailable_then_the_sdk_retries_and_nothing_is_lost(stack, kafka, clickhouse, collector):
    """The broker stops answering while an SDK program exports over gRPC: the collector answers
    UNAVAILABLE with RetryInfo (its acknowledgement deadline, 2 s here, passes), the SDK exporter
    waits the hinted delay and resends; once the broker is back every span, data point and log
    record is stored (at least once: a resend may repeat what the paused producer still delivered;
    staging removes repeats)."""
    import signal

    cfg = CollectorConfig(bootstrap_servers=kafka.bootstrap_servers, hmac_keys={"k": b"0123456789abcdef0"},
                          hash_key=HASH_KEY, ack_timeout_s=2.0, retry_after_s=3)  # fmt: skip
    marker = uuid.uuid4().hex
    pid = stack.servers["kafka"].pid()
    with RunningCollector(cfg) as running:
        os.kill(pid, signal.SIGSTOP)
        try:
            program = subprocess.Popen(
                [sys.executable, "-m", "platform_assets.synthetic.otel_program", "grpc", "semconv", "--marker", marker],
                env={**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{running.grpc_endpoint}",
                     "OTEL_SERVICE_NAME": "paused", "OTEL_EXPORTER_OTLP_TIMEOUT": "60"},
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            time.sleep(6)
        finally:
            os.kill(pid, signal.SIGCONT)
        out, err = program.communicate(timeout=180)
        refused = scalar_metric(running.url, "unavailable_responses")
    assert program.returncode == 0, err
    assert refused >= 1  # the export was refused while the broker was paused, and retried
    rec = json.loads(out)
    spans = "SELECT uniqExact(span_id) FROM raw.spans WHERE resource_attributes['test.marker'] = {m:String}"
    assert wait_for(clickhouse, spans, 7, timeout=120, m=marker) == 7
    # The program's own records (the SDK's retry warnings also reach its root logging handler).
    logs = (
        "SELECT uniqExactIf(Body, Body LIKE 'agent run % finished' OR Body LIKE 'lookup_order failed%') "
        "FROM raw.otel_logs WHERE ResourceAttributes['test.marker'] = {m:String}"
    )
    assert wait_for(clickhouse, logs, rec["logs"], timeout=120, m=marker) == rec["logs"]
    points = (
        "SELECT uniqExact(MetricName, Attributes) FROM raw.otel_metrics_histogram "
        "WHERE ResourceAttributes['test.marker'] = {m:String}"
    )
    assert wait_for(clickhouse, points, 7, timeout=120, m=marker) == 7


def scalar_metric(url: str, name: str) -> int:
    import requests

    for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(f"collector_{name}_total "):
            return int(line.split()[1])
    return 0


def test_tokens_cost_latency_and_log_volume_reach_the_marts(sent, clickhouse, dbt):
    """dbt for today over what the programs sent: tokens (cached and reasoning too) and cost in the
    call metrics (reported by the common-style program, priced from the seed for the semconv one),
    requests and errors per route from the duration histograms, log records per severity."""
    from datetime import UTC, datetime

    from platform_assets.synthetic.prices import price_on

    for rec in sent.values():
        m = rec["marker"]
        logs = "SELECT count() FROM raw.otel_logs WHERE ResourceAttributes['test.marker'] = {m:String}"
        assert wait_for(clickhouse, logs, rec["logs"], m=m) == rec["logs"]
    today = datetime.now(UTC).date()
    # The minute and the hour call marts together, as the schedules build them: other tests compare the two.
    dbt("build", "--select", "+mart_agent_metrics_1m", "+mart_agent_metrics_1h", "+mart_route_latency_1m",
        "+mart_log_volume_1m",
        vars={"min_date": today.isoformat(), "max_date": "2100-01-01"})  # fmt: skip
    price = price_on("gpt-4o-mini", today)
    assert price is not None
    for (_protocol, style), rec in sent.items():
        ws, tokens = rec["workspace"], rec["tokens"]
        calls = scalar(
            clickhouse,
            "SELECT (sum(calls), sum(input_tokens), sum(output_tokens), sum(cached_input_tokens), "
            "sum(reasoning_tokens), toFloat64(sum(cost_usd)), sum(reported_calls)) "
            "FROM marts.mart_agent_metrics_1m WHERE workspace_id = {ws:String} AND model = 'gpt-4o-mini'",
            ws=ws,
        )
        if style == "semconv":
            cost = sum(
                (t_in - 400) * price.usd_per_input_token + 400 * price.usd_per_cached_input_token
                + t_out * price.usd_per_output_token
                for t_in, t_out in ((1000 + 100 * r, 200 + 10 * r) for r in range(3))
            )  # fmt: skip
            assert calls[:5] == (3, tokens["input"], tokens["output"], tokens["cached"], tokens["reasoning"])
            assert calls[6] == 0
        else:  # tokens_prompt / tokens_completion / cost_usd only: the cost as reported
            cost = sum(round((1000 + 100 * r) * 1.5e-7 + (200 + 10 * r) * 6e-7, 9) for r in range(3))
            assert calls[:5] == (3, tokens["input"], tokens["output"], 0, 0) and calls[6] == 3
        assert calls[5] == pytest.approx(cost, rel=1e-9)
        with clickhouse.client() as ch:
            routes = ch.query(
                "SELECT route, sum(requests), sum(errors) FROM marts.mart_route_latency_1m "
                "WHERE workspace_id = {ws:String} GROUP BY route ORDER BY route",
                parameters={"ws": ws},
            ).result_rows
            severities = dict(
                ch.query(
                    "SELECT severity, sum(records) FROM marts.mart_log_volume_1m WHERE workspace_id = {ws:String} "
                    "GROUP BY severity",
                    parameters={"ws": ws},
                ).result_rows
            )
        n = len(rec["durations"]["/api/chat"])
        assert routes == [("/api/chat", n, n // 10), ("/api/search", n, n // 10)]  # every 10th request is a 500
        assert severities == {"INFO": rec["logs"] - rec["errors"], "ERROR": rec["errors"]}
