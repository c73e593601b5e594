"""Daily ClickHouse backups to S3 (asset ``clickhouse/backup``, schedule ``clickhouse_backup_daily``)
and the operator's way back (job ``restore_backup_job``). docs/operations.md, "Backups"."""

from datetime import UTC, date, datetime, timedelta

from dagster import (
    AssetExecutionContext,
    AssetKey,
    Config,
    DefaultScheduleStatus,
    MaterializeResult,
    MetadataValue,
    OpExecutionContext,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    asset,
    define_asset_job,
    job,
    op,
    schedule,
)
from pydantic import Field

from platform_assets.core.automation import AUTOMATION_ENV, SERVER_RETRY, automation_on
from platform_assets.core.keys import SCHEMA_KEY
from platform_assets.core.partitions import daily_partitions
from platform_assets.core.resources import ClickHouseResource, ObjectStoreResource
from platform_assets.ops.backup import DATABASES, BackupResult, backup_databases, restore_backup
from platform_assets.ops.resources import BackupResource

BACKUP_KEY = AssetKey(["clickhouse", "backup"])
BACKUP_CRON = "30 1 * * *"  # 01:30 UTC: the day closed, its raw rows landed, its marts rebuilt at 00:30


def backup_metadata(result: BackupResult) -> dict[str, MetadataValue]:
    op_ = result.operation
    tables = {t.qualified: {"engine": t.engine, "rows": t.rows, "bytes": t.bytes} for t in result.tables}
    return {
        "location": MetadataValue.url(result.location.uri),
        "clickhouse_endpoint": MetadataValue.text(result.location.endpoint),
        "databases": MetadataValue.json(result.databases),
        "tables": MetadataValue.json(tables),
        "rows": MetadataValue.int(sum(t.rows or 0 for t in result.tables)),
        "bytes": MetadataValue.int(sum(t.bytes or 0 for t in result.tables)),
        "backup_id": MetadataValue.text(op_.id),
        "status": MetadataValue.text(op_.status),
        "num_files": MetadataValue.int(op_.num_files),
        "num_entries": MetadataValue.int(op_.num_entries),
        "total_size": MetadataValue.int(op_.total_size),
        "uncompressed_size": MetadataValue.int(op_.uncompressed_size),
        "compressed_size": MetadataValue.int(op_.compressed_size),
        "seconds": MetadataValue.float(op_.seconds),
        "replaced_objects": MetadataValue.int(result.replaced_objects),
    }


@asset(
    key=BACKUP_KEY,
    deps=[SCHEMA_KEY],
    partitions_def=daily_partitions,
    group_name="ops",
    owners=["team:data-platform"],
    kinds={"clickhouse", "s3"},
    retry_policy=SERVER_RETRY,  # a restarting server or a throttled bucket; a re-run replaces the day
)
def clickhouse_backup(
    context: AssetExecutionContext, clickhouse: ClickHouseResource, s3: ObjectStoreResource, backup: BackupResource
) -> MaterializeResult:
    """ClickHouse's own BACKUP of the databases raw and marts (every table and view, data and
    definitions) to S3.

    Grain: one backup per UTC day partition at ``s3://<bucket>/backups/<day>/``, a full copy of
    both databases as they stand when the run starts (not only that day's rows). A re-run deletes
    the day's prefix, then writes one new backup there. Restore: job ``restore_backup_job``.
    """
    location = backup.location(s3, date.fromisoformat(context.partition_key))
    with clickhouse.client(context) as client:
        result = backup_databases(client, s3.get_client(), location, DATABASES, backup.wait_seconds)
    context.log.info(
        f"backup {result.operation.id}: {', '.join(result.databases)} ({len(result.tables)} tables, "
        f"{result.operation.num_files} files, {result.operation.total_size} bytes) at {location.uri}"
        + (f"; replaced {result.replaced_objects} objects" if result.replaced_objects else "")
    )
    return MaterializeResult(metadata=backup_metadata(result))


clickhouse_backup_job = define_asset_job(
    "clickhouse_backup_job",
    selection=[BACKUP_KEY],
    partitions_def=daily_partitions,
    tags={"platform/domain": "ops"},
    description="One day's ClickHouse backup (raw and marts) to S3.",
)


def automation_off_reason() -> SkipReason | None:
    if automation_on():
        return None
    return SkipReason(
        f"automation is off ({AUTOMATION_ENV}=off, or unset on the embedded stack): no scheduled backup; "
        "materialize clickhouse/backup by hand or set PLATFORM_AUTOMATION=on"
    )


@schedule(
    name="clickhouse_backup_daily",
    job=clickhouse_backup_job,
    cron_schedule=BACKUP_CRON,
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING if automation_on() else DefaultScheduleStatus.STOPPED,
    description="Backs up the UTC day that closed before the tick (raw and marts to s3://<bucket>/backups/<day>/).",
)
def clickhouse_backup_daily(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
    skip = automation_off_reason()
    if skip is not None:
        return skip
    at = context.scheduled_execution_time or datetime.now(UTC)
    day = (at.astimezone(UTC).date() - timedelta(days=1)).isoformat()
    return RunRequest(run_key=f"clickhouse_backup:{day}", partition_key=day)


class RestoreConfig(Config):
    day: str = Field(description="the backup's UTC day, YYYY-MM-DD (s3://<bucket>/<prefix>/<day>/)")
    allow_non_empty: bool = Field(
        default=False, description="restore into tables that hold rows (the backup's rows are added to theirs)"
    )


@op(retry_policy=None)  # a restore is run and watched by an operator: a failure is theirs to read
def restore_backup_op(
    context: OpExecutionContext,
    config: RestoreConfig,
    clickhouse: ClickHouseResource,
    s3: ObjectStoreResource,
    backup: BackupResource,
) -> None:
    """RESTOREs one day's backup into the ``clickhouse`` server; refuses non-empty tables unless told."""
    location = backup.location(s3, date.fromisoformat(config.day))
    with clickhouse.client(context) as client:
        result = restore_backup(client, s3.get_client(), location, config.allow_non_empty, backup.wait_seconds)
    context.log.info(
        f"restored {result.operation.id}: {', '.join(result.databases)} ({len(result.tables)} tables) "
        f"from {location.uri} in {result.operation.seconds:.1f} s"
    )


@job(tags={"platform/domain": "ops"}, description="Restores one day's ClickHouse backup (config: day).")
def restore_backup_job() -> None:
    restore_backup_op()
