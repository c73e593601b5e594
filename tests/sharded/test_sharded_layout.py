"""Ingest, transform and correctness once against two shards (see conftest.py).

- The schema asset applies every DDL file on both nodes in its cluster form, and a second run
  applies nothing.
- Traffic from clients we did not write (the agent simulator: the OpenTelemetry SDK over
  OTLP/HTTP, and signed event batches) goes through the collector and Kafka; both nodes consume
  in one group, each writes what it consumed into its own local tables, and the Distributed
  tables hold every row exactly once; the streaming rollups, read through their Distributed
  tables, count the same spans.
- A deterministic history inserted through the Distributed tables (rows spread over the shards,
  its ~3% redelivered duplicates often on the other shard than the original) gives, through dbt
  on the first node, the marts the history's own arithmetic gives, and the rollup-against-mart
  check finds only the differences the duplicates explain.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from dagster import materialize

from platform_assets.ops.assets import clickhouse_schema
from platform_assets.synthetic import history_agents as ha
from platform_assets.transform.rollup_check import compare, explained

pytestmark = [pytest.mark.integration, pytest.mark.sharded]

SEED = 20263
HISTORY_END = datetime.now(UTC).date() - timedelta(days=2)
HISTORY_DAYS = 4
HISTORY_START = HISTORY_END - timedelta(days=HISTORY_DAYS - 1)
MODELS = ["mart_llm_daily", "mart_agent_metrics_1h", "mart_cost_daily", "mart_trace_errors_daily"]
# mart -> (key columns, value columns), as the history's record keys and values them
SHAPES: dict[str, tuple[list[str], list[str]]] = {
    "mart_llm_daily": (
        ["day", "workspace_id", "model", "provider"],
        ["calls", "p50_latency_ms", "p90_latency_ms", "input_tokens", "output_tokens", "cost_usd", "success_rate"],
    ),
    "mart_agent_metrics_1h": (
        ["hour", "workspace_id", "service", "agent_name", "model"],
        [
            "calls",
            "errors",
            "error_rate",
            "p50_latency_ms",
            "p95_latency_ms",
            "p99_latency_ms",
            "input_tokens",
            "output_tokens",
            "cost_usd",
        ],
    ),
    "mart_cost_daily": (
        ["day", "workspace_id", "model", "user_hash"],
        ["calls", "input_tokens", "output_tokens", "cost_usd"],
    ),
    "mart_trace_errors_daily": (
        ["day", "workspace_id", "service"],
        ["spans", "error_spans", "call_error_rate", "traces", "error_traces", "trace_error_rate"],
    ),
}
BIN = Path(sys.executable).parent  # the venv's console scripts


def local_counts(sharded, table: str, where: str = "1", **params: Any) -> list[int]:
    """Rows of ``table``'s local twin on each node."""
    sql = f"SELECT count() FROM {table}_local WHERE {where}"
    return [sharded.rows(sql, node=i, **params)[0][0] for i in range(len(sharded.nodes))]


def test_schema_is_applied_on_each_node_in_its_cluster_form(sharded, sharded_schema):
    per_node = sharded_schema["applied_per_node"].value
    assert len(per_node) == 2 and sharded_schema["cluster"].value == "platform_shards"
    files = sharded_schema["files"].value
    for node, applied in per_node.items():
        assert len(applied) == files, f"{node}: {len(applied)} of {files} files applied"
    for i in range(2):
        engines = dict(
            sharded.rows(
                "SELECT concat(database, '.', name), engine FROM system.tables "
                "WHERE database IN ('raw', 'rollups', 'kafka_queue', 'platform_meta')",
                node=i,
            )
        )
        assert engines["raw.spans"] == "Distributed" and engines["raw.spans_local"] == "MergeTree"
        assert engines["rollups.llm_calls_1m"] == "Distributed"
        assert engines["rollups.llm_calls_1m_local"] == "AggregatingMergeTree"
        assert engines["kafka_queue.otlp_spans"] == "Kafka"
        assert engines["platform_meta.schema_migrations"] == "ReplacingMergeTree"  # per node, not replicated
        # One group over both nodes: each node opens half of the topic's consumers.
        create = sharded.rows("SHOW CREATE TABLE kafka_queue.otlp_spans", node=i)[0][0]
        partitions = sharded_schema["kafka_consumers_applied"].value["otlp_spans"]
        assert f"kafka_num_consumers = {partitions}" in create
    assert sharded_schema["kafka_consumers_applied"].value["otlp_spans"] == 3  # 6 partitions / 2 nodes

    again = materialize(
        [clickhouse_schema],
        resources={"clickhouse": sharded.res["clickhouse"], "kafka": sharded.res["kafka"]},
        instance=sharded.instance,
    )
    metadata = again.asset_materializations_for_node(clickhouse_schema.op.name)[0].metadata
    assert metadata["applied_per_node"].value == {node: [] for node in per_node}


class Collector:
    """``platform-collector`` with the stack's settings, as an operator runs it."""

    def __init__(self, env: dict[str, str], log_path) -> None:
        from platform_assets.stack.process import free_port

        self.port, self.grpc_port = free_port(), free_port()
        self.log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(BIN / "platform-collector"), "--port", str(self.port), "--grpc-port", str(self.grpc_port)],
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not self.healthy():
            assert self.proc.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.url}/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(45)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


def wait_counts(sharded, expected: dict[str, int], since: datetime, timeout: float = 120.0) -> dict[str, int]:
    """Polls the Distributed tables until each holds ``expected`` rows landed since ``since``."""
    sql = {
        "raw.spans": "SELECT count() FROM raw.spans WHERE start_time >= {t:DateTime64(3)}",
        "raw.agent_events": "SELECT count() FROM raw.agent_events WHERE occurred_at >= {t:DateTime64(3)}",
        "raw.product_events": "SELECT count() FROM raw.product_events WHERE occurred_at >= {t:DateTime64(3)}",
    }
    deadline = time.monotonic() + timeout
    while True:
        got = {table: sharded.rows(sql[table], t=since.replace(tzinfo=None))[0][0] for table in expected}
        if got == expected or time.monotonic() > deadline:
            return got
        time.sleep(1)


def test_collector_traffic_is_consumed_by_both_shards_exactly_once(sharded, sharded_schema, tmp_path):
    since = datetime.now(UTC) - timedelta(minutes=5)  # the simulator dates its runs in the last minute
    collector = Collector(sharded.env, tmp_path / "collector.log")
    try:
        record_path = tmp_path / "record.json"
        proc = subprocess.run(
            [str(BIN / "platform-simulate-agents"), "--collector", collector.url, "--runs", "60",
             "--product-events", "400", "--seed", "7", "--record", str(record_path)],
            env={**os.environ, **sharded.env}, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        record = json.loads(record_path.read_text())
    finally:
        collector.stop()
    expected = {
        "raw.spans": record["spans"],
        "raw.agent_events": record["agent_events"],
        "raw.product_events": record["product_events"],
    }
    got = wait_counts(sharded, expected, since)
    consumers = [
        sharded.rows("SELECT table, assignments.partition_id, exceptions.text FROM system.kafka_consumers", node=i)
        for i in range(2)
    ]
    dead = sharded.rows("SELECT topic, error, count() FROM dead_letter.kafka_messages GROUP BY ALL")
    assert got == expected, f"Distributed tables {got}, sent {expected}; dead letters {dead}; consumers {consumers}"
    columns = {"raw.spans": "start_time", "raw.agent_events": "occurred_at", "raw.product_events": "occurred_at"}
    for table, column in columns.items():
        per_node = local_counts(sharded, table, f"{column} >= {{t:DateTime64(3)}}", t=since.replace(tzinfo=None))
        # Each node stored what its consumers read: together every row once.
        assert sum(per_node) == expected[table], f"{table}: per node {per_node}, sent {expected[table]}"
        if table == "raw.spans":
            # Keyed by trace id over 6 partitions, 3 per node: 60 traces reach both nodes. (Event
            # batches are few messages, keyed by their first event: they may all meet one node.)
            assert all(n > 0 for n in per_node), f"{table}: per node {per_node}: a node consumed nothing"
    # The rollup's views fired on each node's local inserts; through the Distributed table the
    # partial states of both shards merge to the raw count.
    rollup = sharded.rows(
        "SELECT sum(spans) FROM rollups.spans_1m WHERE minute >= toStartOfMinute({t:DateTime})",
        t=since.replace(tzinfo=None),
    )[0][0]
    assert rollup == record["spans"]


def read_mart(sharded, model: str, history: ha.AgentHistory) -> dict[tuple, dict]:
    keys, values = SHAPES[model]
    day = "toDate(hour)" if model.endswith("_1h") else "day"
    sql = (
        f"SELECT {', '.join(keys + values)} FROM marts.{model} WHERE {day} BETWEEN {{lo:Date}} AND {{hi:Date}} "
        f"AND workspace_id IN {{ws:Array(String)}} ORDER BY {', '.join(keys)}"
    )
    rows = sharded.rows(sql, lo=history.start, hi=history.end, ws=history.workspaces)
    out: dict[tuple, dict] = {}
    for row in rows:
        key = tuple(_naive(v) for v in row[: len(keys)])
        assert key not in out, f"{model}: duplicate key {key}"
        out[key] = dict(zip(values, row[len(keys) :], strict=True))
    return out


def _naive(v: Any) -> Any:
    if isinstance(v, datetime) and v.tzinfo is not None:
        return v.astimezone(UTC).replace(tzinfo=None)
    return v


@pytest.fixture(scope="module")
def sharded_history(sharded, sharded_schema, sharded_dbt) -> ha.AgentHistory:
    """The history through the Distributed tables, the CDC replica on the first node, and every
    model dbt has built for the history's days."""
    from platform_assets.cdc.assets import app_schema, build_replica_asset, source_replication
    from platform_assets.cdc.resources import CdcResource, configured_tables

    res = {
        **sharded.res,
        "cdc": CdcResource(replication_password=sharded.env["CDC_REPLICATION_PASSWORD"]),
    }
    cdc = [app_schema, source_replication, build_replica_asset(configured_tables())]
    assert materialize(cdc, resources=res, instance=sharded.instance).success
    history = ha.load_agent_history(
        sharded.res["clickhouse"], HISTORY_START, HISTORY_DAYS, SEED, sharded.env["USER_HASH_KEY"]
    )
    window = {"min_date": HISTORY_START.isoformat(), "max_date": (HISTORY_END + timedelta(days=1)).isoformat()}
    sharded_dbt("seed")
    sharded_dbt("build", "--exclude", "resource_type:seed", vars=window)
    return history


@pytest.mark.parametrize("model", MODELS)
def test_marts_from_sharded_raw_equal_the_history(sharded, sharded_history, model):
    expected_by_model = {
        "mart_llm_daily": sharded_history.llm_daily,
        "mart_agent_metrics_1h": sharded_history.metrics_1h,
        "mart_cost_daily": sharded_history.cost_daily,
        "mart_trace_errors_daily": sharded_history.trace_errors_daily,
    }
    expected = {tuple(_naive(k) for k in key): v for key, v in expected_by_model[model]().items()}
    actual = read_mart(sharded, model, sharded_history)
    missing, extra = sorted(set(expected) - set(actual))[:5], sorted(set(actual) - set(expected))[:5]
    assert not missing and not extra, f"{model}: missing keys {missing}, unexpected keys {extra}"
    for key, want in expected.items():
        for column, value in want.items():
            have = actual[key][column]
            if isinstance(value, int) and not isinstance(value, bool):
                assert have == value, f"{model} {key} {column}: {have} != {value}"
            else:
                assert have == pytest.approx(value, rel=1e-9, abs=1e-12), f"{model} {key} {column}: {have} != {value}"


def test_history_rows_and_duplicates_are_spread_over_both_shards(sharded, sharded_history):
    window = "toDate(start_time) BETWEEN {lo:Date} AND {hi:Date}"
    per_node = local_counts(sharded, "raw.spans", window, lo=HISTORY_START, hi=HISTORY_END)
    assert sum(per_node) == len(sharded_history.spans) + sharded_history.duplicate_spans
    assert min(per_node) > 0.4 * sum(per_node), f"rand() sharding split {per_node}"
    # Some redelivered spans sit on the other shard than their first copy: the staging dedup
    # (and so the mart equality above) worked across shards, not only within one.
    ids = [
        {tuple(r) for r in sharded.rows(f"SELECT trace_id, span_id FROM raw.spans_local WHERE {window}", node=i,
                                         lo=HISTORY_START, hi=HISTORY_END)}
        for i in range(2)
    ]  # fmt: skip
    assert ids[0] & ids[1], "no span id on both shards"


def test_rollups_match_the_marts_across_shards(sharded, sharded_history):
    with sharded.res["clickhouse"].client() as client:
        info, rows = compare(client)
    assert info["hours"] > 0, info
    unexplained = [r for r in rows if not explained(r)]
    assert not unexplained, unexplained[:5]
    # The history's redelivered LLM-call spans (on either shard) are counted by the rollup only,
    # and named as the explained difference.
    assert rows, "the history's duplicates should show as explained differences"
    assert all((r["rollup_calls"] or 0) >= (r["mart_calls"] or 0) for r in rows)


def grafana_reader(sharded):
    from platform_assets.publish.resources import GrafanaResource

    grafana = GrafanaResource(
        clickhouse_user=sharded.env["GRAFANA_CLICKHOUSE_USER"],
        clickhouse_password=sharded.env["GRAFANA_CLICKHOUSE_PASSWORD"],
    )
    return grafana.reader(sharded.res["clickhouse"])


def test_every_panel_and_alert_rule_runs_on_the_distributed_tables(sharded, sharded_history):
    """As Grafana's read-only user on the first node: every dashboard's variables and panels over
    the history's days (the marts half) and over the last hour (the rollups half), and every alert
    rule's query. A query that joins a Distributed table with a table only the first node has, or
    nests Distributed subqueries, fails here and not on one server."""
    from platform_assets.publish.alerts import ALERTS
    from platform_assets.publish.checks import run_dashboard_queries
    from platform_assets.publish.dashboards import DASHBOARDS
    from platform_assets.publish.evaluate import evaluate
    from platform_assets.publish.macros import TimeRange

    history = TimeRange(
        datetime.combine(HISTORY_START, datetime.min.time(), tzinfo=UTC),
        datetime.combine(HISTORY_END, datetime.max.time(), tzinfo=UTC).replace(microsecond=0),
    )
    recent = TimeRange.last(1)
    with grafana_reader(sharded).client() as ch:
        problems, with_rows = {}, set()
        for spec in DASHBOARDS:
            for name, time_range in (("history", history), ("recent", recent)):
                for result in run_dashboard_queries(ch, spec, time_range):
                    if not result.ok:
                        problems[f"{spec.uid}/{result.key} ({name})"] = result.problem
                    elif result.rows:
                        with_rows.add(f"{spec.uid}/{result.key} ({name})")
        for spec in ALERTS:
            try:
                evaluate(spec, ch)
            except Exception as exc:  # noqa: BLE001 - every failing rule named at once
                problems[f"alert {spec.uid}"] = str(exc).splitlines()[0][:300]
    print(json.dumps(problems, indent=1))  # whole, in the captured output of a failure
    assert not problems, problems
    # The agent panels found the history's rows through the Distributed tables of both shards.
    assert {"platform-agent-telemetry/latency_p95 (history)", "platform-agent-telemetry/cost_by_model (history)"} <= (
        with_rows
    )


def test_exports_read_every_shard(sharded, sharded_history, tmp_path):
    """The raw and mart exports of one history day, to S3: the manifest's rows and the Parquet
    objects read back hold what the Distributed table holds for the day (both shards' rows)."""
    import io

    import pyarrow.parquet as pq

    from platform_assets.export.assets import EXPORT_ASSETS
    from platform_assets.export.checks import EXPORT_CHECKS
    from platform_assets.export.manifest import Manifest
    from platform_assets.export.resources import ExportResource
    from platform_assets.export.tables import table
    from platform_assets.export.target import MANIFEST_NAME

    day = HISTORY_START + timedelta(days=1)
    export = ExportResource(target="s3", prefix="exports-sharded", local_dir=str(tmp_path), rows_per_object=500)
    tables = [table("raw.spans"), table("raw.agent_events"), table("marts.mart_llm_daily")]
    assets = [next(a for a in EXPORT_ASSETS if a.key == t.asset_key) for t in tables]
    checks = [c for c in EXPORT_CHECKS if next(iter(c.check_keys)).asset_key in {t.asset_key for t in tables}]
    result = materialize(
        [*assets, *checks],
        partition_key=day.isoformat(),
        resources={"clickhouse": sharded.res["clickhouse"], "s3": sharded.res["s3"], "export": export},
        instance=sharded.instance,
    )
    assert result.success
    assert all(c.passed for c in result.get_asset_check_evaluations())
    target = export.make_target(sharded.res["s3"])
    for t in tables:
        expected = sharded.rows(f"SELECT count() FROM {t.qualified} WHERE {t.day_expr} = {{d:Date}}", d=day)[0][0]
        prefix = export.day_prefix(t, day)
        manifest = Manifest.from_json(target.read(prefix + MANIFEST_NAME))
        read_back = sum(pq.read_table(io.BytesIO(target.read(prefix + o.name))).num_rows for o in manifest.objects)
        assert expected > 0 and manifest.rows == read_back == expected, (t.qualified, expected, manifest.rows)
    per_node = local_counts(sharded, "raw.spans", "toDate(start_time) = {d:Date}", d=day)
    assert all(n > 0 for n in per_node), per_node
    # The TTL guard reads the TTL where it is declared: on the local tables (Distributed has none).
    from platform_assets.export.exporter import ttl_days

    with sharded.res["clickhouse"].client() as ch:
        assert ttl_days(ch, table("raw.spans")) == 90
