"""One check per export asset: the day's objects read back by ClickHouse and pyarrow match
the manifest (partitioned like the asset: it checks the day that was exported)."""

import warnings
from datetime import date

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    MetadataValue,
    PreviewWarning,
    asset_check,
)

from platform_assets.core.access import EXPORT
from platform_assets.core.partitions import daily_partitions
from platform_assets.core.resources import ClickHouseResource, ObjectStoreResource
from platform_assets.export.assets import RETRY
from platform_assets.export.resources import ExportResource
from platform_assets.export.tables import EXPORT_TABLES, ExportTable
from platform_assets.export.verify import verify_day

CHECK_NAME = "parquet_matches_manifest"


def build_export_check(table: ExportTable) -> AssetChecksDefinition:
    with warnings.catch_warnings():
        # Partitioned checks are a preview feature in Dagster 1.13; used knowingly (docs/export.md):
        # the result belongs to the day that was exported, as the asset's partition does.
        warnings.simplefilter("ignore", PreviewWarning)
        return _build_export_check(table)


def _build_export_check(table: ExportTable) -> AssetChecksDefinition:
    @asset_check(
        asset=table.asset_key,
        name=CHECK_NAME,
        description=f"Every Parquet object of the day, read by ClickHouse ({table.database}.{table.name} export) "
        "and by pyarrow, matches _manifest.json: object set, bytes, SHA-256, rows, schema.",
        partitions_def=daily_partitions,
        retry_policy=RETRY,
    )
    def _check(
        context: AssetCheckExecutionContext,
        clickhouse: ClickHouseResource,
        s3: ObjectStoreResource,
        export: ExportResource,
    ) -> AssetCheckResult:
        day = date.fromisoformat(context.partition_key)
        target = export.make_target(s3)
        prefix = export.day_prefix(table, day)
        with clickhouse.as_role(EXPORT).client(context) as client:
            verdict = verify_day(client, target, prefix)
        m = verdict.manifest
        return AssetCheckResult(
            passed=verdict.passed,
            severity=AssetCheckSeverity.ERROR,
            description="; ".join(verdict.problems)[:2000]
            or f"{verdict.objects_checked} object(s), {m.rows if m else 0} rows match the manifest",
            metadata={
                "day": day.isoformat(),
                "objects_checked": verdict.objects_checked,
                "manifest_rows": m.rows if m else 0,
                "clickhouse_rows": verdict.clickhouse_rows,
                "pyarrow_rows": verdict.pyarrow_rows,
                "problems": MetadataValue.json(verdict.problems),
                "location": MetadataValue.text(target.location(prefix)),
            },
        )

    return _check


EXPORT_CHECKS = [build_export_check(t) for t in EXPORT_TABLES]
