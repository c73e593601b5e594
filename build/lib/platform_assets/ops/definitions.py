"""The ops domain in the code location: the ClickHouse schema asset and its check."""

from dagster import Definitions

from platform_assets.ops.assets import clickhouse_schema
from platform_assets.ops.checks import clickhouse_schema_in_sync


def definitions() -> Definitions:
    return Definitions(assets=[clickhouse_schema], asset_checks=[clickhouse_schema_in_sync])
