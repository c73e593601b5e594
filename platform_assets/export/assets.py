"""Daily Parquet exports as Dagster assets: one per exported table, one partition per UTC day."""

from datetime import date, timedelta

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from platform_assets.core.access import EXPORT
from platform_assets.core.automation import SERVER_RETRY
from platform_assets.core.partitions import daily_partitions
from platform_assets.core.resources import ClickHouseResource, ObjectStoreResource
from platform_assets.export.exporter import export_day
from platform_assets.export.resources import ExportResource
from platform_assets.export.tables import EXPORT_TABLES, ExportTable

OWNERS = ["team:data-platform"]
GROUP = "export"
# ClickHouse and S3 calls: a server restart or a throttled bucket is retried (a re-run replaces the day).
RETRY = SERVER_RETRY
# Each day is exported after it closes: the last export is under 26 h old (WARN past it, FAIL past 48 h).
FRESHNESS = FreshnessPolicy.time_window(fail_window=timedelta(hours=48), warn_window=timedelta(hours=26))


def describe(table: ExportTable) -> str:
    return (
        f"{table.database}.{table.name} as Parquet. Grain: one Parquet object set (part-NNNNN.parquet plus "
        f"_manifest.json) per table and UTC day ({table.day_expr}), under "
        f"<prefix>/{table.path}/dt=YYYY-MM-DD/ on the export target (S3 or a local directory). Written by "
        "ClickHouse (INSERT INTO FUNCTION s3()/file()); a re-run replaces exactly that day's objects."
    )


def build_export_asset(table: ExportTable) -> AssetsDefinition:
    @asset(
        key=table.asset_key,
        deps=[table.upstream_key],
        partitions_def=daily_partitions,
        group_name=GROUP,
        owners=OWNERS,
        kinds={"clickhouse", "parquet", "s3"},
        description=describe(table),
        retry_policy=RETRY,
        freshness_policy=FRESHNESS,
    )
    def _export(
        context: AssetExecutionContext,
        clickhouse: ClickHouseResource,
        s3: ObjectStoreResource,
        export: ExportResource,
    ) -> MaterializeResult:
        day = date.fromisoformat(context.partition_key)
        target = export.make_target(s3)
        prefix = export.day_prefix(table, day)
        with clickhouse.as_role(EXPORT).client(context) as client:
            result = export_day(client, target, table, day, prefix, export.rows_per_object)
        m = result.manifest
        context.log.info(f"{m.table} {m.day}: {m.rows} rows in {len(m.objects)} object(s) at {m.location}")
        location = MetadataValue.url(m.location) if target.kind == "s3" else MetadataValue.path(m.location)
        return MaterializeResult(
            metadata={
                "rows": MetadataValue.int(m.rows),
                "bytes": MetadataValue.int(m.bytes),
                "objects": MetadataValue.int(len(m.objects)),
                "location": location,
                "manifest": MetadataValue.text(target.location(result.manifest_key)),
                "seconds": MetadataValue.float(result.seconds),
                "query_id": MetadataValue.text(m.query_id),
                "target": MetadataValue.text(m.target),
                "replaced_objects": MetadataValue.int(result.deleted_before),
            }
        )

    return _export


EXPORT_ASSETS = [build_export_asset(t) for t in EXPORT_TABLES]
