"""The code location loads, and bad environment settings fail at load time, by name."""

from __future__ import annotations

import importlib

import pytest
from dagster import AssetKey

from platform_assets import environment, registry
from platform_assets.stack.config import DEFAULT_PORTS

pytestmark = pytest.mark.unit


def test_definitions_load_with_assets_checks_and_resources():
    from platform_assets.definitions import defs

    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert "clickhouse/schema" in keys
    spec = repo.asset_graph.get(AssetKey(["clickhouse", "schema"]))
    assert spec.group_name == "ops"
    assert spec.owners and spec.description and "Grain" in spec.description
    assert {"clickhouse", "postgres", "kafka", "s3"} <= set(defs.resources or {})
    assert repo.asset_graph.asset_check_keys, "no asset checks registered"


def test_docker_env_missing_variables_fail_at_load(monkeypatch):
    monkeypatch.setenv("PLATFORM_ENV", "docker")
    for name in registry.REQUIRED_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLICKHOUSE_HOST", "clickhouse")
    with pytest.raises(environment.ConfigError) as err:
        environment.prepare(registry.RESOURCE_CLASSES.values())
    assert "CLICKHOUSE_PASSWORD" in str(err.value) and "CLICKHOUSE_HOST" not in str(err.value)


def test_unknown_environment_is_rejected(monkeypatch):
    monkeypatch.setenv("PLATFORM_ENV", "staging")
    with pytest.raises(environment.ConfigError, match="'staging' is not one of local, docker, prod"):
        importlib.reload(importlib.import_module("platform_assets.definitions"))


def test_local_env_fills_from_stack_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("PLATFORM_ENV", "local")
    monkeypatch.setenv("PLATFORM_STACK_DIR", str(tmp_path))
    for name in registry.REQUIRED_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    for name in DEFAULT_PORTS:
        monkeypatch.delenv(f"PLATFORM_{name.upper()}_PORT", raising=False)
    assert environment.prepare(registry.RESOURCE_CLASSES.values()) == "local"
    import os

    assert os.environ["CLICKHOUSE_HTTP_PORT"] == "18123"
    assert os.environ["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:19092"


def test_dbt_models_join_one_lineage_graph_with_partitions_and_pool():
    from platform_assets.definitions import defs
    from platform_assets.transform.assets import dbt_models

    graph = defs.get_repository_def().asset_graph
    product = graph.get(AssetKey(["staging", "stg_kafka__product_events"]))
    assert AssetKey(["raw", "product_events"]) in product.parent_keys
    users = graph.get(AssetKey(["staging", "stg_app__users"]))
    assert AssetKey(["pg_repl", "users"]) in users.parent_keys
    fct = graph.get(AssetKey(["marts", "fct_product_events"]))
    assert fct.group_name == "transform_marts" and "Grain" in (fct.description or "")
    assert fct.partitions_def is not None and fct.partitions_def == product.partitions_def
    policy = dbt_models.backfill_policy
    assert policy is not None and policy.max_partitions_per_run is None  # single run
    assert {node.pool for node in dbt_models.node_def.iterate_op_defs()} == {"dbt"}
    # dbt tests are asset checks on the models they test.
    assert any(k.asset_key == product.key for k in graph.asset_check_keys)
    names = {s.name for s in defs.schedules or []}
    assert {"transform_every_5_minutes", "transform_hourly", "transform_previous_day"} <= names


def test_operations_that_run_by_themselves_are_registered():
    from platform_assets.definitions import defs

    repo = defs.get_repository_def()
    sensors = {s.name: s for s in repo.sensor_defs}
    assert {"export_finished_days", "report_after_marts", "publish_on_change"} <= set(sensors)
    assert sensors["publish_on_change"].job_name == "publish_job"
    guard = next(s for s in repo.schedule_defs if s.name == "export_ttl_guard_daily")
    assert guard.job_name == "export_ttl_guard_job" and guard.execution_timezone == "UTC"
    backup = next(s for s in repo.schedule_defs if s.name == "clickhouse_backup_daily")
    assert backup.job_name == "clickhouse_backup_job" and backup.execution_timezone == "UTC"
    assert repo.has_job("restore_backup_job")
    checks = {(k.asset_key.to_user_string(), k.name) for k in repo.asset_graph.asset_check_keys}
    assert ("export/raw/agent_events", "exported_before_ttl") in checks
