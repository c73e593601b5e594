"""Everything the Dagster UI and daemon load: assets, checks, sensors, schedules, resources."""

from dagster import Definitions

from platform_assets import environment
from platform_assets.ops import assets as ops_assets
from platform_assets.ops import checks as ops_checks
from platform_assets.resources import build_resources

environment.prepare()  # a missing or unknown setting fails here, at load time

defs = Definitions(
    assets=[ops_assets.clickhouse_schema],
    asset_checks=[ops_checks.clickhouse_schema_in_sync],
    resources=build_resources(),
)
