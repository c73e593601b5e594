"""The Superset counterpart of the Grafana assets: one asset imports every Superset dashboard.

No ``from __future__ import annotations`` here: Dagster reads the resource annotations at runtime.
"""

from typing import Any

from dagster import AssetKey, MaterializeResult, MetadataValue, asset

from platform_assets.core.automation import SERVER_RETRY, final
from platform_assets.core.keys import SCHEMA_KEY
from platform_assets.core.resources import ClickHouseResource
from platform_assets.publish.assets import GROUP, OWNERS
from platform_assets.publish.resources import SupersetResource
from platform_assets.publish.superset_bundle import DATABASE_FILE, bundle_files, bundle_zip
from platform_assets.publish.superset_client import SupersetError
from platform_assets.publish.superset_specs import DASHBOARDS

SUPERSET_DASHBOARDS_KEY = AssetKey(["publish", "superset_dashboards"])
NOT_PUBLISHED = "SUPERSET_URL is not set: bundle rendered only, nothing imported"
# Refusals a retry would get again (wrong login, a bundle Superset rejects), not 408 / 429.
FINAL_STATUSES = frozenset(range(400, 500)) - {408, 429}


def superset_deps() -> list[AssetKey]:
    """The marts the charts read (dbt assets), and the schema asset for the rollups.* tables."""
    tables = sorted({c.dataset for d in DASHBOARDS for c in d.charts})
    keys = [AssetKey(["marts", t.split(".", 1)[1]]) for t in tables if t.startswith("marts.")]
    if any(t.startswith("rollups.") for t in tables):
        keys.append(SCHEMA_KEY)
    return keys


def _counts(files: dict[str, dict]) -> dict[str, int]:
    return {kind: sum(1 for p in files if p.startswith(f"{kind}/")) for kind in ("datasets", "charts", "dashboards")}


@asset(
    key=SUPERSET_DASHBOARDS_KEY,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"superset"},
    deps=superset_deps(),
    retry_policy=SERVER_RETRY,
)
def superset_dashboards(superset: SupersetResource, clickhouse: ClickHouseResource) -> MaterializeResult:
    """The Superset dashboards (Product, Agents) with their charts, the datasets of every mart and
    rollup table and the ClickHouse database (the read-only ``superset`` user), imported as one
    bundle through ``POST /api/v1/dashboard/import/`` with overwrite: a second run replaces the same
    objects (stable uuids). Without SUPERSET_URL the bundle is rendered and nothing is imported."""
    conn = superset.connection(clickhouse)
    files = bundle_files(conn)
    bundle = bundle_zip(files)
    meta: dict[str, Any] = {
        **_counts(files),
        "bundle_bytes": len(bundle),
        "database": f"{conn.host}:{conn.port} as {conn.username}",
    }
    if not superset.enabled:
        return MaterializeResult(metadata={**meta, "published": False, "reason": NOT_PUBLISHED})
    if not superset.clickhouse_password:
        raise final(ValueError("CLICKHOUSE_SUPERSET_PASSWORD is not set: Superset's database needs its password"))
    try:
        with superset.client() as client:
            client.import_dashboards(bundle, {DATABASE_FILE: superset.clickhouse_password}, overwrite=True)
            wanted = {d.slug for d in DASHBOARDS}
            imported = [d for d in client.dashboards() if d.get("slug") in wanted]
    except SupersetError as exc:
        if exc.status in FINAL_STATUSES:
            raise final(exc) from exc
        raise
    base = (superset.url or "").rstrip("/")
    urls = {d["dashboard_title"]: f"{base}{d['url']}" for d in imported}
    return MaterializeResult(
        metadata={
            **meta,
            "published": True,
            "dashboards_imported": len(imported),
            "dashboard_urls": MetadataValue.json(urls),
            **{f"url_{d['slug']}": MetadataValue.url(f"{base}{d['url']}") for d in imported},
        }
    )
