"""Export settings and definitions, without servers: targets, validation, keys and metadata."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from dagster import AssetKey, Definitions

from platform_assets.core.resources import ObjectStoreResource
from platform_assets.environment import ConfigError
from platform_assets.export.assets import EXPORT_ASSETS
from platform_assets.export.checks import CHECK_NAME, EXPORT_CHECKS
from platform_assets.export.resources import ExportResource, build_export_resource
from platform_assets.export.tables import EXPORT_TABLES, table
from platform_assets.export.target import LocalTarget, S3Target, sql_str

pytestmark = pytest.mark.unit


def test_target_defaults_follow_the_environment():
    assert build_export_resource({"PLATFORM_ENV": "local"}).target == "local"
    assert build_export_resource({"PLATFORM_ENV": "prod"}).target == "s3"
    assert build_export_resource({"PLATFORM_ENV": "local", "EXPORT_TARGET": "s3"}).target == "s3"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"EXPORT_TARGET": "ftp"}, "EXPORT_TARGET='ftp'"),
        ({"EXPORT_ROWS_PER_OBJECT": "0"}, "EXPORT_ROWS_PER_OBJECT"),
        ({"EXPORT_ROWS_PER_OBJECT": "many"}, "EXPORT_ROWS_PER_OBJECT"),
        ({"EXPORT_PREFIX": "/"}, "EXPORT_PREFIX"),
    ],
)
def test_bad_settings_fail_at_load_naming_the_variable(env, named):
    with pytest.raises(ConfigError, match=named):
        build_export_resource(env)


def test_resource_rejects_an_unknown_target():
    with pytest.raises(Exception, match="EXPORT_TARGET='gcs'"):
        ExportResource(target="gcs")


def test_layout_and_table_functions(tmp_path: Path):
    export = ExportResource(prefix="/exp/", local_dir=str(tmp_path))
    t = table("raw.agent_events")
    assert export.day_prefix(t, date(2026, 3, 4)) == "exp/raw/agent_events/dt=2026-03-04/"
    local = export.make_target(_s3())
    assert isinstance(local, LocalTarget)
    assert local.table_function("a/b.parquet") == f"file('{tmp_path}/a/b.parquet', 'Parquet')"
    with pytest.raises(ValueError, match="leaves the export directory"):
        local.read("../outside")
    s3 = ExportResource(target="s3", clickhouse_s3_endpoint="http://minio:9000/").make_target(_s3())
    assert isinstance(s3, S3Target)
    assert s3.table_function("k") == "s3('http://minio:9000/bkt/k', 'AK', 'S\\'K', 'Parquet')"
    assert sql_str("a\\b") == "'a\\\\b'"


def _s3() -> ObjectStoreResource:
    return ObjectStoreResource(
        endpoint_url="http://127.0.0.1:1", region_name="us-east-1", aws_access_key_id="AK",
        aws_secret_access_key="S'K", bucket="bkt",
    )  # fmt: skip


def test_one_asset_and_one_check_per_table():
    keys = {a.key for a in EXPORT_ASSETS}
    assert AssetKey(["export", "raw", "agent_events"]) in keys
    assert AssetKey(["export", "marts", "mart_llm_daily"]) in keys
    assert len(keys) == len(EXPORT_TABLES)
    for asset_def in EXPORT_ASSETS:
        spec = next(iter(asset_def.specs))
        assert spec.group_name == "export"
        assert spec.owners == ["team:data-platform"]
        assert spec.kinds == {"clickhouse", "parquet", "s3"}
        assert [d.asset_key for d in spec.deps] == [AssetKey(spec.key.path[1:])]
        assert "Grain: one Parquet object set" in (spec.description or "")
        assert asset_def.partitions_def is not None
    checked = {k.asset_key for c in EXPORT_CHECKS for k in c.check_keys}
    assert checked == keys
    assert {k.name for c in EXPORT_CHECKS for k in c.check_keys} == {CHECK_NAME}


def test_definitions_resolve():
    defs = Definitions(
        assets=EXPORT_ASSETS,
        asset_checks=EXPORT_CHECKS,
        resources={"clickhouse": object(), "s3": _s3(), "export": ExportResource()},
    )
    assert defs.resolve_asset_graph().get_all_asset_keys()
