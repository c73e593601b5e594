"""The README's first command, as a user runs it: on a brand-new stack, then once more."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.instance.ref import InstanceRef

from platform_assets.ops.ddl import DDL_DIR, discover
from platform_assets.publish.alerts import ALERTS
from platform_assets.publish.dashboards import DASHBOARDS
from platform_assets.stack.config import StackConfig
from platform_assets.stack.scratch import free_ports, new_stack_dir
from platform_assets.stack.servers import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def fresh_stack_dir():
    """An empty stack directory (no schema, no topics), as on a new machine; stopped afterwards."""
    root, ports = new_stack_dir("platform-test-demo-"), free_ports()
    yield root, ports
    Stack(StackConfig(root=root, ports=ports)).down()
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.timeout(2700)  # two whole demo runs (servers, traffic, a week of dbt, exports, report)
def test_demo_materializes_everything_and_writes_summary(fresh_stack_dir, tmp_path):
    root, ports = fresh_stack_dir
    summary_path = tmp_path / "demo-summary.json"
    home = tmp_path / "dagster_home"
    # None of the session stack's settings reach the demo (its Kafka, S3, keys): the demo must
    # run on its own stack only, or its consumers join the session's consumer groups.
    own = set(Stack(StackConfig(root=root, ports=ports)).env())
    env = {
        **{k: v for k, v in os.environ.items() if k not in own and not k.startswith(("PLATFORM_", "CLICKHOUSE_"))},
        "PLATFORM_STACK_DIR": str(root),
        **{f"PLATFORM_{name.upper()}_PORT": str(port) for name, port in ports.items()},
        "PLATFORM_SUMMARY_PATH": str(summary_path),
        "DAGSTER_HOME": str(home),
        "EXPORT_LOCAL_DIR": str(tmp_path / "exports"),
        "REPORT_DIR": str(tmp_path / "reports"),
    }
    first = None
    # Twice, as a user would: the first run starts everything from nothing, the second reuses it.
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-m", "platform_assets.demo"], env=env, capture_output=True, text=True, timeout=1200
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        first = first or json.loads(summary_path.read_text())
    summary = json.loads(summary_path.read_text())
    assert {s["on_up"] for s in first["servers"].values()} == {"started"}
    assert first["clickhouse_schema"]["applied_now"] == [f.name for f in discover(DDL_DIR)]
    # On a new stack every check runs after the schema it reads, and passes; the source freshness
    # of the still empty replica tables is a warning ("no rows yet"), never an error.
    first_checks = first["assets"]["checks"]
    assert {v for k, v in first_checks.items() if not k.endswith(":dbt_source_freshness")} == {"passed"}, first_checks
    assert {v for k, v in first_checks.items() if k.endswith(":dbt_source_freshness")} <= {"passed", "failed (WARN)"}

    assert {n: s["healthy"] for n, s in summary["servers"].items()} == dict.fromkeys(
        ("clickhouse", "postgres", "kafka", "s3"), True
    )
    # The second run reused the servers the first one started.
    assert {s["on_up"] for s in summary["servers"].values()} == {"running"}
    assert "clickhouse/schema" in summary["assets"]["materialized"]
    assert summary["assets"]["failed"] == []
    checks = summary["assets"]["checks"]
    assert checks and not any(v == "failed (ERROR)" for v in checks.values()), checks
    # Every check but the dead-letter warning (the first demo run's own poison messages) passes.
    assert {k for k, v in checks.items() if v != "passed"} <= {"dead_letter/kafka_messages:new_dead_letters"}
    assert {"raw", "marts", "platform_meta"} <= set(summary["clickhouse_schema"]["databases"])

    # CDC: a short workload replicated; both sides counted, lag stated.
    cdc = summary["cdc"]
    assert cdc["workload"]["changes"] == 1000  # 200 changes/s for 5 s
    assert {"users", "orders", "subscriptions", "events", "cdc_heartbeat"} <= set(cdc["tables"])
    for table, figures in cdc["tables"].items():
        assert figures["replica_rows"] == figures["source_rows"], table
    assert cdc["tables"]["events"]["source_rows"] >= cdc["workload"]["live_rows_added"]["events"]
    assert cdc["lag_seconds"] is not None and cdc["lag_bytes"] is not None and cdc["errors"] == []

    # Ingestion: simulated agents (OpenTelemetry SDK) and signed batches through the collector,
    # plus poison messages straight onto the topics: every row lands, every poison is a dead letter.
    ingest = summary["ingest"]
    sim = ingest["simulated"]
    assert sim["runs"] == 60 and sim["product_events"] == 300
    assert ingest["messages_sent"] == {
        "spans": sim["spans"],
        "agent_events": sim["agent_events"],
        "product_events": 300,
    }
    assert ingest["rows_landed"] == ingest["messages_sent"]
    assert ingest["dead_letters"] == ingest["poison_messages_produced"] == 5
    assert {t: lag["messages"] for t, lag in ingest["consumer_lag"].items()} == {
        "agent_events": 0,
        "product_events": 0,
        "otlp_spans": 0,
        "otlp_logs": 0,
        "otlp_metrics": 0,
    }
    # The streaming rollups counted every row of today that landed in raw (no redelivery here).
    assert set(ingest["rollups_today"]) == {"raw.spans", "raw.agent_events", "raw.product_events", "raw.otel_logs"}
    for table, counts in ingest["rollups_today"].items():
        assert counts["raw_rows"] > 0 and counts["rollup_count"] == counts["raw_rows"], (table, counts)
    # One ClickHouse consumer per partition, each holding one (spans 6 partitions, the others 3).
    assert ingest["kafka_layout"] == {
        "agent_events": {"partitions": 3, "partitions_per_consumer": [1, 1, 1]},
        "product_events": {"partitions": 3, "partitions_per_consumer": [1, 1, 1]},
        "otlp_spans": {"partitions": 6, "partitions_per_consumer": [1] * 6},
        "otlp_logs": {"partitions": 3, "partitions_per_consumer": [1, 1, 1]},
        "otlp_metrics": {"partitions": 3, "partitions_per_consumer": [1, 1, 1]},
    }

    # OpenTelemetry SDK programs: traces, metrics and logs over OTLP/gRPC and OTLP/HTTP, every row landed.
    assert [(p["protocol"], p["style"]) for p in ingest["otel_programs"]] == [("grpc", "semconv"), ("http", "common")]
    for program in ingest["otel_programs"]:
        assert program["rows_landed"] == program["rows_sent"], program
        assert program["rows_sent"]["raw.otel_logs"] == 4 and program["rows_sent"]["raw.spans"] == 7

    # Transforms: a week of history plus today's traffic, every dbt model built for those
    # days in one run; every dbt test passed; every mart has rows in the demo's partitions.
    transform = summary["transform"]
    assert transform["success"] and transform["failed_checks"] == [], transform["failed_checks"]
    assert transform["dbt_tests"] > 50
    marts = transform["marts"]
    expected_marts = {
        "fct_product_events", "fct_sessions", "mart_active_users_daily", "mart_signup_funnel_daily",
        "mart_retention_weekly", "mart_orders_daily", "mart_mrr_daily", "mart_agent_metrics_1m",
        "mart_agent_metrics_1h", "mart_llm_daily", "mart_tool_reliability_hourly", "mart_trace_errors_daily",
        "mart_cost_daily", "mart_slo_daily", "mart_llm_cost_per_active_user_daily",
        # from the OpenTelemetry programs' metrics and logs (today)
        "mart_route_latency_1m", "mart_llm_latency_1m", "mart_token_usage_1m", "mart_log_volume_1m",
        "fct_error_logs",
        # product and agent analytics
        "mart_feature_adoption_weekly", "mart_retention_l7_daily", "mart_session_length_daily", "mart_paths_daily",
        "mart_breakdown_daily", "mart_endpoint_latency_daily", "mart_agent_health_daily", "mart_agent_failures_daily",
        "mart_prompt_failures_daily", "mart_model_drift_daily", "mart_workspace_spend_daily",
    }  # fmt: skip
    assert expected_marts <= set(marts)
    assert all(marts[m] > 0 for m in expected_marts), marts

    # Exports: every raw table and daily mart of each finished demo day, read back by the check.
    export = summary["export"]
    assert export["success"] and export["target"] == "local", export["runs"]
    assert str(tmp_path / "exports") in export["location"]
    assert len(export["runs"]) == 7 and export["objects"] > 0
    agent_days = export["tables"]["raw.agent_events"]
    assert len(agent_days) == 7 and all(d["rows"] > 0 for d in agent_days.values())

    # Backup: yesterday's copy of raw and the marts in the stack's S3, every table in it.
    backup = summary["backup"]
    assert backup["success"] and backup["status"] == "BACKUP_CREATED", backup
    assert backup["location"].endswith(f"/backups/{backup['day']}/") and backup["tables"] >= 20 and backup["rows"] > 0

    # Grafana: dashboards and alert rules generated (no GRAFANA_URL here), every panel's SQL ran.
    grafana = summary["grafana"]
    assert grafana["success"] and grafana["published"] is False
    assert len(grafana["dashboards"]) == len(DASHBOARDS) == 6 and len(grafana["alert_rules"]) == len(ALERTS)
    assert grafana["committed_files_stale"] == []
    assert grafana["checks"] and set(grafana["checks"].values()) == {"passed"}, grafana["checks"]

    # The report: yesterday's page with its charts, linked from the asset's metadata.
    report = summary["report"]
    assert report["success"] and report["has_data"] and report["charts"] >= 4
    page = Path(report["path"])
    assert page.is_relative_to(tmp_path / "reports") and page.name == "index.html" and page.stat().st_size > 10_000
    assert report["kpis"]["dau"] > 0

    # The runs landed in the local instance, so the UI shows them.
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    for run_id in (summary["dagster"]["run_id"], transform["run_id"]):
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == DagsterRunStatus.SUCCESS
    instance.dispose()
