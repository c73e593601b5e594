"""Every panel's and variable's SQL on the real ClickHouse of the session stack, with marts built
for this folder's days (conftest.publish_marts), as the read-only grafana user; the check fails
on a broken panel."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from dagster import DagsterInstance, materialize

from platform_assets.core.resources import ClickHouseResource
from platform_assets.publish import alerts
from platform_assets.publish.assets import build_dashboard_asset
from platform_assets.publish.checks import build_panel_check, run_dashboard_queries
from platform_assets.publish.dashboards import DASHBOARDS, spec_by_uid
from platform_assets.publish.resources import GrafanaResource

pytestmark = pytest.mark.e2e

# Panels with rows on this folder's days. The others read data those days do not have: retention,
# orders and MRR come from the app's users/orders/subscriptions (CDC), which these tests leave to
# the product-mart tests; the health panels read live state and dead letters (30-day TTL); the
# spend anomalies need 7 days of spend before a z-score, more than this folder's days.
EXPECTED_ROWS = {
    "platform-product-analytics": {"$workspace", "active_users", "stickiness", "signup_funnel", "sessions"},
    "platform-agent-telemetry": {
        "$workspace", "latency_p50", "latency_p95", "latency_p99", "error_rate_per_call", "error_rate_per_trace",
        "call_error_rate", "tokens_by_model", "cost_by_model", "cost_by_model_workspace", "tool_reliability",
        "slo_burn", "error_budget", "throughput",
    },
    "platform-product-insights": {"$workspace", "session_length", "top_paths", "countries", "devices"},
    "platform-agent-health": {
        "$workspace", "agent_health", "timeouts_trend", "failures_by_error_type", "top_failing_prompts",
        "output_tokens_by_model", "refusal_rate_by_model", "endpoint_latency", "error_rate_by_version",
        "spend_vs_guardrail",
    },
    "platform-service-telemetry": {
        "$workspace", "$token_attribute", "route_p95", "route_success_rate", "route_percentiles", "model_p95",
        "model_percentiles", "tokens_by_attribute", "log_volume", "recent_error_logs",
    },
}  # fmt: skip
OTEL_WORKSPACE = "ws_graf_otel"
OTEL_MODELS = ["mart_route_latency_1m", "mart_llm_latency_1m", "mart_token_usage_1m", "mart_log_volume_1m",
               "fct_error_logs", "fct_error_trace_spans"]  # fmt: skip


@pytest.fixture(scope="module")
def otel_marts(publish_marts, clickhouse, dbt):
    """OpenTelemetry metrics and logs around the midnight after this folder's second day, and the
    marts built from them with what they read (the session fixture built them empty)."""
    from platform_assets.synthetic.otel_signals import load_otel_history

    first, last = publish_marts.start.date(), publish_marts.end.date()
    record = load_otel_history(clickhouse, first + timedelta(days=1), seed=8_501, workspace=OTEL_WORKSPACE)
    window = {"min_date": first.isoformat(), "max_date": (last + timedelta(days=1)).isoformat()}
    dbt("run", "--select", *(f"+{m}" for m in OTEL_MODELS), vars=window)
    return record


@pytest.fixture(scope="module")
def grafana_reader(clickhouse) -> ClickHouseResource:
    """The read-only user Grafana logs in as (generated users.xml of the embedded stack)."""
    grafana = GrafanaResource(
        clickhouse_user=os.environ["GRAFANA_CLICKHOUSE_USER"],
        clickhouse_password=os.environ["GRAFANA_CLICKHOUSE_PASSWORD"],
    )
    return grafana.reader(clickhouse)


@pytest.mark.parametrize("uid", [s.uid for s in DASHBOARDS])
def test_every_panel_runs_as_the_grafana_user(publish_marts, otel_marts, grafana_reader, uid: str) -> None:
    with grafana_reader.client() as ch:
        results = run_dashboard_queries(ch, spec_by_uid(uid), publish_marts)
    problems = {r.key: r.problem for r in results if not r.ok}
    assert not problems, problems
    with_rows = {r.key for r in results if r.rows}
    assert EXPECTED_ROWS.get(uid, set()) <= with_rows, f"no rows: {EXPECTED_ROWS[uid] - with_rows}"


def test_workspace_variable_lists_the_workspaces_and_filters(publish_marts, grafana_reader) -> None:
    spec = spec_by_uid("platform-agent-telemetry")
    from platform_assets.publish.macros import Expansion, expand

    with grafana_reader.client() as ch:
        (var,) = spec.variables
        names = {r[0] for r in ch.query(expand(var.sql, Expansion(publish_marts))).result_rows}
        assert {"ws_1", "ws_2", "ws_3"} <= names
        panel = next(p for p in spec.panels if p.key == "cost_by_model_workspace")
        one = ch.query(expand(panel.sql, Expansion(publish_marts, {"workspace": "ws_2"}))).result_rows
        assert one and {r[0] for r in one} == {"ws_2"}


def test_token_attribute_splits_and_the_trace_link_opens_the_trace(publish_marts, otel_marts, grafana_reader) -> None:
    """The attribute variable lists the token records' attribute keys and the panel splits by the
    chosen one; the trace link's query (as the grafana user) returns the trace's spans."""
    from platform_assets.publish.macros import Expansion, expand

    spec = spec_by_uid("platform-service-telemetry")
    panels = {p.key: p for p in spec.panels}
    variables = {"workspace": OTEL_WORKSPACE, "token_attribute": "app.feature"}
    with grafana_reader.client() as ch:
        keys = {r[0] for r in ch.query(expand(spec.variables[1].sql, Expansion(publish_marts))).result_rows}
        assert {"app.feature", "gen_ai.token.type", "gen_ai.request.model"} <= keys
        by_feature = ch.query(
            expand(panels["tokens_by_attribute"].sql, Expansion(publish_marts, variables))
        ).result_rows
        assert {r[1] for r in by_feature} == {"search", "summarize"}
        by_model = ch.query(
            expand(
                panels["tokens_by_attribute"].sql, Expansion(publish_marts, {**variables, "token_attribute": "__all__"})
            )
        ).result_rows
        assert {r[1] for r in by_model} == {"gpt-4o-mini", "claude-sonnet-4"}
        # Tokens per minute times each bucket's minutes is every token of the record.
        minutes = publish_marts.interval_seconds / 60
        assert sum(r[2] for r in by_model) * minutes == pytest.approx(
            sum(v["tokens"] for v in otel_marts.token_usage_1m().values()), rel=1e-9
        )
        logs = ch.query(expand(panels["recent_error_logs"].sql, Expansion(publish_marts, variables))).result_rows
        assert logs and {r[2] for r in logs if r[5]} <= {"ERROR", "FATAL"}
        trace_id = next(r[5] for r in logs if r[5])
        link = panels["recent_error_logs"].trace_link
        assert link is not None
        spans = ch.query(link.sql.replace("${__value.raw}", trace_id)).result_rows
    want = sorted(s.span_id for s in otel_marts.spans if s.trace_id == trace_id)
    assert sorted(r[1] for r in spans) == want and len(want) == 3


def test_grafana_user_is_read_only_and_sees_no_payloads(publish_marts, grafana_reader) -> None:
    with grafana_reader.client() as ch:
        for sql in (
            "CREATE TABLE marts.grafana_probe (a UInt8) ENGINE = Memory",
            "SELECT raw_message FROM dead_letter.kafka_messages LIMIT 1",
            "SELECT occurred_at FROM raw.agent_events LIMIT 1",  # no raw table at all
            "SELECT * FROM raw.product_events LIMIT 1",
            "SELECT count() FROM raw.spans",
        ):
            with pytest.raises(Exception, match=r"(?i)privileges|readonly|ACCESS_DENIED"):
                ch.query(sql)


def test_check_fails_on_a_broken_panel_and_passes_on_the_real_ones(publish_marts, clickhouse, tmp_path) -> None:
    spec = spec_by_uid("platform-agent-telemetry")
    broken_sql = replace(spec.panels[0], sql=spec.panels[0].sql.replace("p50_latency_ms", "no_such_column"))
    empty_sql = replace(spec.panels[1], sql=spec.panels[1].sql.replace("WHERE ", "WHERE 0 AND "))
    broken = replace(spec, panels=(broken_sql, empty_sql, *spec.panels[2:]))
    with clickhouse.client() as ch:
        results = {r.key: r for r in run_dashboard_queries(ch, broken, publish_marts)}
    assert not results["latency_p50"].ok and "no_such_column" in results["latency_p50"].problem
    assert not results["latency_p95"].ok and "no rows although" in results["latency_p95"].problem
    assert all(r.ok for k, r in results.items() if k not in ("latency_p50", "latency_p95"))

    # Through Dagster: the check on the broken dashboard fails and names the panel.
    grafana = GrafanaResource(files_dir=str(tmp_path))
    result = materialize(
        [build_dashboard_asset(broken), build_panel_check(broken, days=90)],
        resources={"grafana": grafana, "clickhouse": clickhouse},
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert set(evaluation.metadata["failed"].value) == {"latency_p50", "latency_p95"}
    assert evaluation.metadata["rows_per_panel"].value["throughput"] > 0


@pytest.mark.parametrize("uid", [s.uid for s in DASHBOARDS])
def test_dagster_check_passes_over_the_last_30_days(publish_marts, otel_marts, clickhouse, tmp_path, uid: str) -> None:
    spec = spec_by_uid(uid)
    grafana = GrafanaResource(
        clickhouse_user=os.environ["GRAFANA_CLICKHOUSE_USER"],
        clickhouse_password=os.environ["GRAFANA_CLICKHOUSE_PASSWORD"],
        files_dir=str(tmp_path),
    )
    result = materialize(
        [build_dashboard_asset(spec), build_panel_check(spec)],
        resources={"grafana": grafana, "clickhouse": clickhouse},
        instance=DagsterInstance.ephemeral(),
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed, evaluation.metadata["failed"].value
    assert set(evaluation.metadata["rows_per_panel"].value) >= {p.key for p in spec.panels}


@pytest.mark.parametrize("spec", alerts.ALERTS, ids=lambda a: a.uid)
def test_alert_rule_sql_runs_as_the_grafana_user(publish_marts, grafana_reader, spec) -> None:
    with grafana_reader.client() as ch:
        meta = json.loads(ch.raw_query(spec.sql + "\nFORMAT JSON"))["meta"]
    # It runs and ends in the number Grafana reduces; rows depend on what arrived in the last minutes.
    assert meta and meta[-1]["type"].removeprefix("Nullable(").startswith(("Float", "UInt", "Int", "Decimal")), meta


def test_call_panels_read_minutes_up_to_two_days_and_hours_beyond(publish_marts, clickhouse) -> None:
    """The two halves of a call panel: a one-day range is served by the minute mart, the folder's
    four days by the hour mart, each with every call of its range and without scanning the other."""
    from platform_assets.publish.dashboards import ALL_VALUE
    from platform_assets.publish.macros import Expansion, TimeRange, expand

    panel = next(p for p in spec_by_uid("platform-agent-telemetry").panels if p.key == "throughput")
    day = publish_marts.start + timedelta(days=1)
    cases = [
        (TimeRange(day, day + timedelta(days=1)), "mart_agent_metrics_1m", "minute"),
        (publish_marts, "mart_agent_metrics_1h", "hour"),
    ]
    with clickhouse.client() as ch:
        for time_range, mart, column in cases:
            tag = f"panel-test-{uuid.uuid4().hex}"
            sql = expand(panel.sql, Expansion(time_range, {"workspace": ALL_VALUE}))
            rows = ch.query(sql, settings={"log_comment": tag}).result_rows
            bounds = {"lo": time_range.start.replace(tzinfo=None), "hi": time_range.end.replace(tzinfo=None)}
            calls, mart_rows = ch.query(
                f"SELECT sum(calls), count() FROM marts.{mart} "
                f"WHERE {column} BETWEEN {{lo:DateTime}} AND {{hi:DateTime}}",
                parameters=bounds,
            ).result_rows[0]
            assert calls > 0 and sum(r[2] for r in rows) == calls, mart
            partitions = ch.query(
                f"SELECT count() FROM marts.{mart} WHERE toDate({column}) BETWEEN toDate({{lo:DateTime}}) "
                f"AND toDate({{hi:DateTime}})",
                parameters=bounds,
            ).result_rows[0][0]
            ch.command("SYSTEM FLUSH LOGS")
            (read_rows,) = ch.query(
                "SELECT read_rows FROM system.query_log WHERE log_comment = {tag:String} AND type = 'QueryFinish'",
                parameters={"tag": tag},
            ).result_rows[0]
            # At most the partitions of its own mart: the other half read nothing.
            assert mart_rows <= read_rows <= partitions, (mart, read_rows, mart_rows, partitions)
