"""The export domain in the code location: daily Parquet exports, their read-back checks, the
sensor that exports each closed day, and the guard that no raw day expires unexported."""

from dagster import Definitions

from platform_assets.export.assets import EXPORT_ASSETS
from platform_assets.export.automation import (
    TTL_CHECKS,
    export_finished_days,
    export_ttl_guard_daily,
    export_ttl_guard_job,
)
from platform_assets.export.checks import EXPORT_CHECKS
from platform_assets.export.resources import build_export_resource


def definitions() -> Definitions:
    return Definitions(
        assets=EXPORT_ASSETS,
        asset_checks=[*EXPORT_CHECKS, *TTL_CHECKS],
        jobs=[export_ttl_guard_job],
        schedules=[export_ttl_guard_daily],
        sensors=[export_finished_days],
        resources={"export": build_export_resource()},
    )
