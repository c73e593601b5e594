"""Ops domain checks: the live ClickHouse schema matches ``clickhouse_ddl/``."""

from pathlib import Path

from dagster import AssetCheckResult, AssetCheckSeverity, asset_check

from platform_assets.core.access import MONITOR
from platform_assets.core.keys import SCHEMA_KEY
from platform_assets.core.resources import ClickHouseResource
from platform_assets.core.sql import SqlError
from platform_assets.ops.assets import SchemaConfig, applied_checksums
from platform_assets.ops.ddl import discover, plan


@asset_check(asset=SCHEMA_KEY, description="Every DDL file is applied and unchanged since.")
def clickhouse_schema_in_sync(context, config: SchemaConfig, clickhouse: ClickHouseResource) -> AssetCheckResult:
    files = discover(Path(config.ddl_dir))
    with clickhouse.as_role(MONITOR).client(context) as client:
        applied = applied_checksums(client)
    try:
        todo = plan(files, applied)
    except SqlError as exc:  # a DdlError, or a file that cannot be split
        return AssetCheckResult(passed=False, severity=AssetCheckSeverity.ERROR, description=str(exc))
    pending = [f.name for f in todo.to_apply]
    return AssetCheckResult(
        passed=not pending,
        severity=AssetCheckSeverity.WARN,
        description=f"pending: {pending}" if pending else f"{len(todo.unchanged)} files applied, none edited",
        metadata={"pending": pending, "applied": len(todo.unchanged)},
    )
