"""Export figures for the demo summary: objects and rows per table and day, from the manifests."""

from __future__ import annotations

from datetime import date
from typing import Any

from platform_assets.core.resources import ObjectStoreResource
from platform_assets.export.manifest import Manifest
from platform_assets.export.resources import ExportResource
from platform_assets.export.tables import EXPORT_TABLES
from platform_assets.export.target import MANIFEST_NAME


def export_summary(export: ExportResource, s3: ObjectStoreResource, days: list[date]) -> dict[str, Any]:
    """``{"target", "location", "tables": {"raw.agent_events": {"2026-01-01": {"objects", "rows", "bytes"}}}}``;
    a day without a manifest (not exported, or an export in progress) is left out."""
    target = export.make_target(s3)
    tables: dict[str, dict[str, dict[str, int]]] = {}
    for table in EXPORT_TABLES:
        per_day = {}
        for day in days:
            key = export.day_prefix(table, day) + MANIFEST_NAME
            try:
                m = Manifest.from_json(target.read(key))
            except Exception:  # noqa: BLE001 - not exported: nothing to report
                continue
            per_day[day.isoformat()] = {"objects": len(m.objects), "rows": m.rows, "bytes": m.bytes}
        if per_day:
            tables[f"{table.database}.{table.name}"] = per_day
    return {"target": target.kind, "location": target.location(export.prefix.strip("/") + "/"), "tables": tables}


def run_exports(
    defs: Any, days: list[date], instance: Any, tags: dict[str, str] | None = None, tables: list[str] | None = None
) -> dict[str, Any]:
    """Materializes the export assets (and runs their checks) for each day, one run per day as
    the UI's partition runs do. ``tables`` limits it (``["raw.agent_events"]``); default all."""
    from platform_assets.export.tables import table as export_table

    chosen = [export_table(t) for t in tables] if tables else list(EXPORT_TABLES)
    keys = {t.asset_key for t in chosen}
    graph = defs.resolve_asset_graph()
    checks = {k for k in graph.asset_check_keys if k.asset_key in keys}
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection=keys, asset_check_selection=checks)
    runs = {}
    for day in days:
        result = job.execute_in_process(
            partition_key=day.isoformat(), instance=instance, raise_on_error=False, tags=tags or {}
        )
        runs[day.isoformat()] = {
            "run_id": result.run_id,
            "success": result.success,
            "exported": len(result.get_asset_materialization_events()),
            "failed_checks": sorted(
                f"{c.asset_key.to_user_string()}:{c.check_name} ({c.severity.value})"
                for c in result.get_asset_check_evaluations()
                if not c.passed
            ),
        }
    return {"runs": runs, "success": all(r["success"] and not r["failed_checks"] for r in runs.values())}
