"""What runs by itself, and what it needs: the export, report and publication sensors (what they
request, with which run key, and why they skip), the retry and freshness policies, the dbt events
streamed as dbt reports them, and the manifest read (not parsed) at load. No server needed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    DefaultSensorStatus,
    Output,
    SensorResult,
    SkipReason,
    build_sensor_context,
    instance_for_test,
)
from dagster._core.definitions.freshness import TimeWindowFreshnessPolicy

pytestmark = pytest.mark.unit

YESTERDAY = (datetime.now(UTC) - timedelta(days=1)).date()
SERVER_RESOURCES = {"clickhouse", "postgres", "s3", "grafana", "kafka", "dbt", "cdc"}


def built(instance, key: AssetKey, day=YESTERDAY) -> None:
    """A materialization of ``key``'s partition ``day``, recorded now (after the day closed)."""
    instance.report_runless_asset_event(AssetMaterialization(asset_key=key, partition=day.isoformat()))


@pytest.fixture
def instance():
    with instance_for_test() as inst:
        yield inst


# --- exports -------------------------------------------------------------------------------


def test_exports_of_a_closed_day_are_requested_once_its_marts_are_built(instance):
    from platform_assets.export.automation import export_finished_days
    from platform_assets.export.tables import MART_TABLES, RAW_TABLES

    first = export_finished_days(build_sensor_context(instance=instance))
    assert isinstance(first, SensorResult)
    day_runs = [r for r in first.run_requests or [] if r.partition_key == YESTERDAY.isoformat()]
    assert len(day_runs) == 1
    # Nothing built yet: only the raw tables (complete once the day closed) are exported.
    assert set(day_runs[0].asset_selection or []) == {t.asset_key for t in RAW_TABLES}

    for t in RAW_TABLES:  # those exports ran
        for n in range(1, 8):
            built(instance, t.asset_key, YESTERDAY - timedelta(days=n - 1))
    waiting = export_finished_days(build_sensor_context(instance=instance))
    assert isinstance(waiting, SkipReason)
    assert f"{YESTERDAY} waits for" in (waiting.skip_message or "")
    assert "marts/mart_llm_daily" in (waiting.skip_message or "")

    llm = next(t for t in MART_TABLES if t.name == "mart_llm_daily")
    built(instance, llm.upstream_key)
    result = export_finished_days(build_sensor_context(instance=instance))
    assert isinstance(result, SensorResult)
    (request,) = result.run_requests or []
    assert request.partition_key == YESTERDAY.isoformat()
    assert request.asset_selection == [llm.asset_key]
    assert request.run_key and request.run_key.startswith(f"export:{YESTERDAY}:")
    # Asked again before the export ran: the same run key (Dagster launches a run key once).
    again = export_finished_days(build_sensor_context(instance=instance))
    assert isinstance(again, SensorResult)
    assert [r.run_key for r in again.run_requests or []] == [request.run_key]

    built(instance, llm.asset_key)  # the export ran: nothing to do for that mart
    done = export_finished_days(build_sensor_context(instance=instance))
    assert isinstance(done, SkipReason)

    built(instance, llm.upstream_key)  # the day of the mart was rebuilt (a backfill): export again
    rebuilt = export_finished_days(build_sensor_context(instance=instance))
    assert isinstance(rebuilt, SensorResult)
    (second,) = rebuilt.run_requests or []
    assert second.asset_selection == [llm.asset_key] and second.run_key != request.run_key


def test_todays_partition_is_never_exported(instance):
    from platform_assets.export.automation import export_finished_days
    from platform_assets.export.tables import EXPORT_TABLES

    today = datetime.now(UTC).date()
    for t in EXPORT_TABLES:
        built(instance, t.upstream_key, today)
    result = export_finished_days(build_sensor_context(instance=instance))
    partitions = {r.partition_key for r in getattr(result, "run_requests", None) or []}
    assert today.isoformat() not in partitions


# --- report --------------------------------------------------------------------------------


def test_report_of_a_day_waits_for_its_marts_then_is_requested(instance):
    from platform_assets.report.automation import MART_KEYS, report_after_marts

    skip = report_after_marts(build_sensor_context(instance=instance))
    assert isinstance(skip, SkipReason) and f"{YESTERDAY} waits for" in (skip.skip_message or "")
    for key in MART_KEYS:
        built(instance, key)
    result = report_after_marts(build_sensor_context(instance=instance))
    assert isinstance(result, SensorResult)
    (request,) = [r for r in result.run_requests or [] if r.partition_key == YESTERDAY.isoformat()]
    assert request.run_key and request.run_key.startswith(f"report:{YESTERDAY}:")
    built(instance, AssetKey(["report", "daily"]))
    after = report_after_marts(build_sensor_context(instance=instance))
    assert YESTERDAY.isoformat() not in {r.partition_key for r in getattr(after, "run_requests", None) or []}


# --- publication ---------------------------------------------------------------------------


def test_publication_is_requested_when_the_generated_files_change(instance, monkeypatch):
    from platform_assets.publish import sensors

    first = sensors.publish_on_change(build_sensor_context(instance=instance))
    assert isinstance(first, SensorResult)
    digest = sensors.generated_hash()
    (request,) = first.run_requests or []
    assert request.run_key == f"publish:{digest}" and first.cursor == digest

    same = sensors.publish_on_change(build_sensor_context(instance=instance, cursor=digest))
    assert isinstance(same, SkipReason) and digest in (same.skip_message or "")

    files = sensors.generated_files()
    changed = {**files, "dashboards/platform-health.json": files["dashboards/platform-health.json"] + " "}
    monkeypatch.setattr(sensors, "generated_files", lambda: changed)
    moved = sensors.publish_on_change(build_sensor_context(instance=instance, cursor=digest))
    assert isinstance(moved, SensorResult)
    (again,) = moved.run_requests or []
    assert again.run_key == f"publish:{moved.cursor}" and moved.cursor != digest


def test_publish_job_holds_every_publication_asset():
    from platform_assets.definitions import defs

    repo = defs.get_repository_def()
    job = repo.get_job("publish_job")
    groups = {repo.asset_graph.get(k).group_name for k in job.asset_layer.selected_asset_keys}
    assert groups == {"publish"}
    assert AssetKey(["grafana", "alert_rules"]) in job.asset_layer.selected_asset_keys


# --- on or off -----------------------------------------------------------------------------


def test_automation_is_off_on_the_embedded_stack_and_on_elsewhere():
    from platform_assets.core.automation import automation_on
    from platform_assets.definitions import defs

    assert not automation_on({"PLATFORM_ENV": "local"})
    assert automation_on({"PLATFORM_ENV": "docker"}) and automation_on({"PLATFORM_ENV": "prod"})
    assert automation_on({"PLATFORM_ENV": "local", "PLATFORM_AUTOMATION": "on"})
    assert not automation_on({"PLATFORM_ENV": "prod", "PLATFORM_AUTOMATION": "off"})
    with pytest.raises(ValueError, match="PLATFORM_AUTOMATION='maybe'"):
        automation_on({"PLATFORM_AUTOMATION": "maybe"})
    repo = defs.get_repository_def()
    status = {s.name: s.default_status for s in repo.sensor_defs}
    expected = DefaultSensorStatus.RUNNING if automation_on() else DefaultSensorStatus.STOPPED
    for name in ("export_finished_days", "report_after_marts", "publish_on_change"):
        assert status[name] == expected, name
    schedules = {s.name: s.default_status.value for s in repo.schedule_defs}
    assert schedules["clickhouse_backup_daily"] == expected.value  # the backup is gated like the sensors


# --- retries and freshness -----------------------------------------------------------------


def test_every_asset_that_calls_a_server_has_a_retry_policy():
    from platform_assets.definitions import defs

    repo = defs.get_repository_def()
    missing = []
    for assets_def in repo.assets_defs_by_key.values():
        if not assets_def.is_executable or not (assets_def.required_resource_keys & SERVER_RESOURCES):
            continue
        if assets_def.op.retry_policy is not None:
            continue
        missing += [k.to_user_string() for k in assets_def.keys]
    assert not missing, f"no retry policy: {sorted(missing)}"
    dbt = next(a for a in repo.assets_defs_by_key.values() if AssetKey(["marts", "mart_llm_daily"]) in a.keys)
    policy = dbt.op.retry_policy
    assert policy is not None and policy.max_retries == 3 and policy.delay == 10


def windows(policy: Any) -> tuple[timedelta, timedelta]:
    """(warn, fail) of a time-window freshness policy."""
    assert isinstance(policy, TimeWindowFreshnessPolicy), policy
    assert policy.warn_window is not None
    return policy.warn_window.to_timedelta(), policy.fail_window.to_timedelta()


def test_marts_and_exports_carry_their_freshness_windows():
    from platform_assets.definitions import defs

    repo = defs.get_repository_def()
    graph = repo.asset_graph
    intraday = repo.get_job("transform_intraday_job").asset_layer.selected_asset_keys
    marts = [k for k in graph.get_all_asset_keys() if k.path[0] == "marts"]
    assert marts
    for key in marts:
        warn, fail = windows(graph.get(key).freshness_policy)
        if key in intraday:
            assert (warn, fail) == (timedelta(minutes=15), timedelta(hours=1)), key
        else:
            assert (warn, fail) == (timedelta(hours=26), timedelta(hours=30)), key
    exports = [k for k in graph.get_all_asset_keys() if k.path[0] == "export"]
    for key in exports:
        assert windows(graph.get(key).freshness_policy) == (timedelta(hours=26), timedelta(hours=48)), key
    assert graph.get(AssetKey(["staging", "stg_kafka__product_events"])).freshness_policy is None


# --- dbt events streamed -------------------------------------------------------------------


class FakeInvocation:
    def __init__(self, log: list[str], results: dict[str, Any], ok: bool = True) -> None:
        self.log, self.results, self.ok = log, results, ok

    def stream(self) -> Iterator[Any]:
        for name in ("stg_a", "mart_b"):
            self.log.append(f"dbt reported {name}")
            yield Output(None, output_name=name, metadata={"unique_id": f"model.platform.{name}"})
        self.log.append("dbt exited")

    def get_artifact(self, name: str) -> dict[str, Any]:
        return self.results

    def is_successful(self) -> bool:
        return self.ok

    def get_error(self) -> Exception:
        return RuntimeError("boom")


class FakeClickHouse:
    def as_role(self, role):
        assert role == "monitor"  # the costs come from system.query_log, read as the monitor user
        return self

    def client(self, context):
        from contextlib import nullcontext

        return nullcontext(object())


def fake_context(log: list[str]) -> Any:
    return SimpleNamespace(
        run=SimpleNamespace(run_id="abcdef0123456789"),
        asset_key_for_output=lambda name: AssetKey(["marts" if name.startswith("mart") else "staging", name]),
        has_partition_key=True,
        partition_key="2026-11-20",
        log=SimpleNamespace(warning=lambda msg: log.append(f"warning {msg}")),
    )


def test_dbt_materializations_are_yielded_as_dbt_reports_them_and_costs_follow(monkeypatch):
    from platform_assets.transform import assets

    log: list[str] = []
    results = {"metadata": {"invocation_id": "inv-1"}, "results": [{"status": "success"}]}
    dbt = SimpleNamespace(cli=lambda *a, **k: FakeInvocation(log, results))
    cost = {
        "read_rows": 10,
        "read_bytes": 100,
        "written_rows": 5,
        "duration_ms": 7,
        "peak_memory_bytes": 1,
        "queries": 2,
    }
    monkeypatch.setattr(
        assets, "model_costs", lambda client, inv: {"model.platform.stg_a": cost, "model.platform.mart_b": cost}
    )
    events = assets.run_dbt(fake_context(log), dbt, FakeClickHouse(), {"min_date": "2026-11-20"})  # type: ignore[arg-type]
    first = next(events)
    assert isinstance(first, Output) and first.output_name == "stg_a"
    assert log == ["dbt reported stg_a"], "the first model was held back until dbt reported more"
    rest = list(events)
    outputs = [e for e in rest if isinstance(e, Output)]
    observations = [e for e in rest if isinstance(e, AssetObservation)]
    assert [o.output_name for o in outputs] == ["mart_b"]
    assert first.metadata["dbt/min_date"].value == "2026-11-20"
    assert {o.asset_key for o in observations} == {AssetKey(["staging", "stg_a"]), AssetKey(["marts", "mart_b"])}
    obs = observations[0]
    assert obs.partition == "2026-11-20" and obs.metadata["clickhouse/read_rows"].value == 10


def test_a_failed_dbt_test_is_not_retried_but_a_lost_connection_is():
    from dagster import Failure

    from platform_assets.transform import assets

    test_failed = {"results": [{"status": "fail", "message": "Got 1 result"}]}
    connection = {"results": [{"status": "error", "message": "HTTPConnectionPool: Connection refused"}]}
    sql_error = {"results": [{"status": "error", "message": "Code: 47. Unknown identifier x"}]}
    assert not assets.is_transient(test_failed)
    assert assets.is_transient(connection)
    assert not assets.is_transient(sql_error)
    assert assets.is_transient(None)  # dbt wrote no results: it never got going

    log: list[str] = []
    dbt = SimpleNamespace(cli=lambda *a, **k: FakeInvocation(log, {**test_failed, "metadata": {}}, ok=False))
    with pytest.raises(Failure) as failure:
        list(assets.run_dbt(fake_context(log), dbt, FakeClickHouse(), {}))  # type: ignore[arg-type]
    assert failure.value.allow_retries is False


# --- the dbt manifest at load --------------------------------------------------------------


def test_the_manifest_is_read_at_load_and_parsed_only_when_missing(monkeypatch, tmp_path: Path):
    from platform_assets.transform import project

    manifest = tmp_path / "manifest.json"
    monkeypatch.setattr(project, "dbt_project", SimpleNamespace(manifest_path=manifest, target_path=tmp_path))
    parses: list[str] = []

    def fake_parse() -> Path:
        parses.append("parse")
        manifest.write_text(json.dumps({}))
        return manifest

    monkeypatch.setattr(project, "parse", fake_parse)
    monkeypatch.delenv("DAGSTER_IS_DEV_CLI", raising=False)
    assert project.load_manifest() == manifest and parses == ["parse"]  # missing: parsed

    old = 1_000_000_000  # older than every project file: stale
    import os

    os.utime(manifest, (old, old))
    assert project.load_manifest() == manifest and parses == ["parse"]  # stale but present: read as is
    monkeypatch.setenv("DAGSTER_IS_DEV_CLI", "1")
    project.load_manifest()
    assert parses == ["parse", "parse"]  # `dagster dev`: re-parsed, as prepare_if_dev does
