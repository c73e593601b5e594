"""Export figures for the demo summary: objects and rows per table and day, from the manifests."""

from __future__ import annotations

from datetime import date
from typing import Any

from platform_assets.export.manifest import Manifest
from platform_assets.export.resources import ExportResource
from platform_assets.export.tables import EXPORT_TABLES
from platform_assets.export.target import MANIFEST_NAME
from platform_assets.resources import ObjectStoreResource


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
            except Exception:  # noqa: BLE001,S112 - not exported: nothing to report
                continue
            per_day[day.isoformat()] = {"objects": len(m.objects), "rows": m.rows, "bytes": m.bytes}
        if per_day:
            tables[f"{table.database}.{table.name}"] = per_day
    return {"target": target.kind, "location": target.location(export.prefix.strip("/") + "/"), "tables": tables}
