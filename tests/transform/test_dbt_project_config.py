"""The dbt project's shared configuration and the freshness results, from the parsed manifest (no server)."""

import json
import re
from typing import Any

import pytest
from dagster import AssetCheckSeverity, AssetKey

from platform_assets.core.keys import raw_key, table_key
from platform_assets.transform.checks import SOURCES, FreshSource, evaluate
from platform_assets.transform.project import ensure_manifest

pytestmark = pytest.mark.unit

MANIFEST = json.loads(ensure_manifest().read_text())
MODELS = {n["name"]: n for n in MANIFEST["nodes"].values() if n["resource_type"] == "model"}
CONFIG_CALL = re.compile(r"\{\{\s*config\((.*?)\)\s*\}\}", re.S)


def test_daily_models_take_the_shared_config_from_their_folder():
    daily = {name for name, n in MODELS.items() if n["fqn"][-2] == "daily"}
    assert daily == {name for name, n in MODELS.items() if n["config"]["materialized"] == "incremental"}
    assert "fct_product_events" in daily and "stg_kafka__spans" in daily
    for name in daily:
        config = MODELS[name]["config"]
        assert config["tags"] == ["daily"], name
        assert [h["sql"] for h in config["pre-hook"]] == ["{{ check_window_contract() }}"], name
        assert config["incremental_strategy"] == "insert_overwrite", name  # macros/replace_window.sql
        assert config["partition_by"] and config["order_by"], name
    for name, node in MODELS.items():
        call = CONFIG_CALL.search(node["raw_code"])
        own = call[1] if call else ""
        assert not re.search(r"\b(materialized|pre_hook|tags|incremental_strategy)\s*=", own), f"{name}: {own}"
    retention = MODELS["mart_retention_weekly"]["config"]
    assert retention["materialized"] == "table" and not retention["tags"] and not retention["pre-hook"]


def test_every_mart_has_an_enforced_contract():
    marts = [n for n in MODELS.values() if n["schema"] == "marts"]
    assert len(marts) >= 15
    for node in marts:
        config = node["config"]
        assert config["contract"]["enforced"], node["name"]
        assert node["columns"], node["name"]
        untyped = [c for c, col in node["columns"].items() if not col.get("data_type")]
        assert not untyped, f"{node['name']}: no data_type for {untyped}"
        if config["materialized"] == "incremental":
            assert config["on_schema_change"] == "fail", node["name"]


def test_fct_product_events_is_documented_and_tested():
    node = MODELS["fct_product_events"]
    assert node["description"].startswith("Grain: one row per product event (event_id)")
    assert all(col["description"] for col in node["columns"].values())
    tests = {
        (t["test_metadata"]["name"], t.get("column_name"))
        for t in MANIFEST["nodes"].values()
        if t["resource_type"] == "test" and node["unique_id"] in t["depends_on"]["nodes"]
    }
    assert {("unique", "event_id"), ("not_null", "event_id"), ("accepted_values", "source_system")} <= tests
    assert ("accepted_values", "event_type") in tests


def test_freshness_sources_are_the_raw_and_replica_tables():
    keys = {s.key: s for s in SOURCES}
    kafka = {raw_key(t) for t in ("agent_events", "product_events", "spans", "otel_logs", "otel_metrics_histogram")}
    cdc = {table_key(t) for t in ("users", "orders", "subscriptions", "events")}
    assert set(keys) == kafka | cdc
    for key in kafka:
        assert keys[key].loaded_at == "toDateTime(ingested_at)"
        assert (keys[key].warn_after, keys[key].error_after) == ("1 hour", "1 day")
    assert keys[table_key("users")].loaded_at == "toDateTime(updated_at)"
    assert keys[table_key("events")].loaded_at == "toDateTime(occurred_at)"
    for uid, props in MANIFEST["sources"].items():  # the current syntax: under config
        assert props["config"]["freshness"]["warn_after"]["count"], uid
        assert props["config"].get("loaded_at_field") or props["loaded_at_field"], uid


SOURCE = FreshSource("source.platform.kafka.spans", "kafka.spans", AssetKey(["raw", "spans"]), "x", "1 hour", "1 day")


def result(status: str, age: float = 0.0, newest: str = "2026-01-01T00:00:00+00:00", **extra: Any) -> dict[str, Any]:
    return {"status": status, "max_loaded_at": newest, "max_loaded_at_time_ago_in_s": age, **extra}


def test_evaluate_maps_statuses_to_check_results():
    ok = evaluate(SOURCE, result("pass", 30.0))
    assert ok.passed and ok.metadata["max_loaded_at_age_s"].value == 30.0
    assert ok.description == "kafka.spans: pass: newest row loaded 30 s ago (2026-01-01T00:00:00+00:00); " + (
        "warn after 1 hour, error after 1 day"
    )
    warn = evaluate(SOURCE, result("warn", 2 * 3600 + 5 * 60))
    assert not warn.passed and warn.severity == AssetCheckSeverity.WARN and "2 h 5 min ago" in (warn.description or "")
    error = evaluate(SOURCE, result("error", 3 * 86400 + 3600))
    assert (
        not error.passed
        and error.severity == AssetCheckSeverity.ERROR
        and "3 days 1 h ago" in (error.description or "")
    )
    empty = evaluate(SOURCE, result("error", 1.8e9, "1970-01-01T00:00:00+00:00"))
    assert "no rows yet" in (empty.description or "")
    assert not empty.passed and empty.severity == AssetCheckSeverity.WARN  # never fed, not stalled
    broken = evaluate(SOURCE, {"status": "runtime error", "error": "Table raw.spans does not exist"})
    assert not broken.passed and broken.severity == AssetCheckSeverity.ERROR
    assert "does not exist" in (broken.description or "") and broken.metadata["status"].value == "runtime error"
    missing = evaluate(SOURCE, None)
    assert not missing.passed and missing.metadata["status"].value == "missing"
    for r in (ok, warn, error, empty, broken, missing):
        assert r.asset_key == SOURCE.key and r.check_name == "dbt_source_freshness"
