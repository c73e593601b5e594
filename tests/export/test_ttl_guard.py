"""The guard that no raw day expires unexported, on the session stack's ClickHouse: a day with rows
within a week of the 90-day TTL and no export fails the raw table's `exported_before_ttl` check
(severity ERROR) naming the table and the day; once that day is exported, the check no longer
names it. The check also runs in the export's own (partitioned) run.

A day of its own, 86 days ago (the export tests use 80..77, the transform tests later days)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from dagster import AssetCheckSeverity, DagsterInstance, Definitions, materialize

from platform_assets.export.assets import EXPORT_ASSETS
from platform_assets.export.automation import TTL_CHECK_NAME, TTL_CHECKS, export_ttl_guard_job
from platform_assets.export.resources import ExportResource
from platform_assets.export.tables import RAW_TABLES, table
from platform_assets.ingest.assets import kafka_topics
from platform_assets.ops.assets import clickhouse_schema

pytestmark = pytest.mark.e2e

AT_RISK = datetime.now(UTC).date() - timedelta(days=86)
AGENT = table("raw.agent_events")
WORKSPACE = f"ws_ttl_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def seeded(stack, clickhouse, kafka):
    result = materialize(
        [kafka_topics, clickhouse_schema],
        resources={"clickhouse": clickhouse, "kafka": kafka},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    with clickhouse.client() as ch:
        ch.command(
            "INSERT INTO raw.agent_events (event_id, event_type, occurred_at, workspace_id, session_id, actor_id, "
            "context) SELECT generateUUIDv4(), 'run_started', toDateTime64({day:Date}, 3, 'UTC') + number * 60, "
            "{ws:String}, 's', 'u', '{}' FROM numbers(50)",
            parameters={"day": AT_RISK, "ws": WORKSPACE},
        )
    yield clickhouse
    with clickhouse.client() as ch:  # other modules' export runs carry the guard too: leave no unexported day
        ch.command(
            "ALTER TABLE raw.agent_events DELETE WHERE workspace_id = {ws:String} SETTINGS mutations_sync = 2",
            parameters={"ws": WORKSPACE},
        )


@pytest.fixture(scope="module")
def resources(seeded, s3, tmp_path_factory):
    export = ExportResource(
        target="local", prefix=f"ttl-{uuid.uuid4().hex[:8]}", local_dir=str(tmp_path_factory.mktemp("ttl"))
    )
    return {"clickhouse": seeded, "s3": s3, "export": export}


@dataclass(frozen=True)
class Verdict:
    passed: bool
    severity: AssetCheckSeverity
    description: str
    not_exported: list[str]


def guard(resources) -> Verdict:
    """Runs export_ttl_guard_job as the daily schedule does; the agent_events check's evaluation."""
    raw_assets = [a for a in EXPORT_ASSETS if a.key in {t.asset_key for t in RAW_TABLES}]
    defs = Definitions(assets=raw_assets, asset_checks=TTL_CHECKS, jobs=[export_ttl_guard_job], resources=resources)
    result = defs.resolve_job_def(export_ttl_guard_job.name).execute_in_process(
        instance=DagsterInstance.ephemeral(), raise_on_error=False
    )
    (evaluation,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_key == AGENT.asset_key and e.check_name == TTL_CHECK_NAME
    ]
    assert not result.get_asset_materialization_events(), "the guard exports nothing itself"
    return Verdict(
        passed=evaluation.passed,
        severity=evaluation.severity,
        description=evaluation.description or "",
        not_exported=list(evaluation.metadata["not_exported"].value),  # type: ignore[arg-type]
    )


def test_an_unexported_day_near_its_ttl_fails_naming_table_and_day_until_exported(resources):
    before = guard(resources)
    assert before.passed is False and before.severity == AssetCheckSeverity.ERROR
    assert "raw.agent_events" in before.description and AT_RISK.isoformat() in before.description
    assert f"{AT_RISK} (rows expire in 4 day(s))" in before.description
    assert AT_RISK.isoformat() in before.not_exported

    # The export of that day, with the guard in the same (partitioned) run, as the UI starts it.
    agent_asset = next(a for a in EXPORT_ASSETS if a.key == AGENT.asset_key)
    agent_check = next(c for c in TTL_CHECKS if next(iter(c.check_keys)).asset_key == AGENT.asset_key)
    run = materialize(
        [agent_asset, agent_check],
        partition_key=AT_RISK.isoformat(),
        resources=resources,
        instance=DagsterInstance.ephemeral(),
    )
    assert run.success
    (in_run,) = run.get_asset_check_evaluations()
    assert AT_RISK.isoformat() not in list(in_run.metadata["not_exported"].value)  # type: ignore[arg-type]

    after = guard(resources)
    assert AT_RISK.isoformat() not in after.not_exported
    assert after.passed is (not after.not_exported)
