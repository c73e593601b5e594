"""How dbt nodes appear in the asset graph: one lineage graph from CDC and Kafka to the marts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from dagster import AssetKey, AssetSpec, FreshnessPolicy
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtProject

from platform_assets.core.keys import raw_key, table_key

OWNERS = ["team:data-platform"]

# dbt source name -> the upstream asset that owns those tables.
SOURCE_KEYS = {"app": table_key, "kafka": raw_key}

# The marts the 5-minute schedule rebuilds (transform.jobs.INTRADAY_MODELS): fresh within minutes.
INTRADAY_MARTS = frozenset({"mart_route_latency_1m", "mart_llm_latency_1m", "mart_token_usage_1m", "fct_error_logs"})
# How old a mart's last materialization may be before the UI shows it WARN / FAIL (docs/operations.md).
INTRADAY_FRESHNESS = FreshnessPolicy.time_window(fail_window=timedelta(hours=1), warn_window=timedelta(minutes=15))
DAILY_FRESHNESS = FreshnessPolicy.time_window(fail_window=timedelta(hours=30), warn_window=timedelta(hours=26))


def mart_freshness(name: str) -> FreshnessPolicy:
    return INTRADAY_FRESHNESS if name in INTRADAY_MARTS else DAILY_FRESHNESS


class PlatformDbtTranslator(DagsterDbtTranslator):
    """Sources map to the CDC replica tables (pg_repl/<table>) and the raw Kafka tables
    (raw/<table>); models and seeds are <database>/<name> (staging/..., marts/...)."""

    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            to_key = SOURCE_KEYS.get(dbt_resource_props["source_name"])
            if to_key is None:
                raise ValueError(
                    f"dbt source {dbt_resource_props['source_name']!r} has no upstream asset; "
                    f"add it to SOURCE_KEYS ({', '.join(SOURCE_KEYS)})"
                )
            return to_key(dbt_resource_props["name"])
        return AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> AssetSpec:
        """The translated spec; marts also get their freshness policy (staging, seeds and sources none)."""
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "model" and props.get("schema") == "marts":
            spec = spec.replace_attributes(freshness_policy=mart_freshness(props["name"]))
        return spec

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "transform_marts" if dbt_resource_props.get("schema") == "marts" else "transform_staging"

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str]:
        return OWNERS

    def get_tags(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, str]:
        # dbt tags become Dagster tags (the UI can filter on partitioning and cadence).
        return {f"dbt/{tag}": "" for tag in dbt_resource_props.get("tags", [])}
