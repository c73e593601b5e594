"""The ops domain in the code location: the ClickHouse schema asset and its check, the daily
backup to S3 with its schedule, and the restore job."""

from dagster import Definitions

from platform_assets.ops.assets import clickhouse_schema
from platform_assets.ops.backup_assets import (
    clickhouse_backup,
    clickhouse_backup_daily,
    clickhouse_backup_job,
    restore_backup_job,
)
from platform_assets.ops.checks import clickhouse_schema_in_sync
from platform_assets.ops.resources import build_backup_resource


def definitions() -> Definitions:
    return Definitions(
        assets=[clickhouse_schema, clickhouse_backup],
        asset_checks=[clickhouse_schema_in_sync],
        jobs=[clickhouse_backup_job, restore_backup_job],
        schedules=[clickhouse_backup_daily],
        resources={"backup": build_backup_resource()},
    )
