"""The export domain in the code location: daily Parquet exports and their read-back checks."""

from dagster import Definitions

from platform_assets.export.assets import EXPORT_ASSETS
from platform_assets.export.checks import EXPORT_CHECKS
from platform_assets.export.resources import build_export_resource


def definitions() -> Definitions:
    return Definitions(assets=EXPORT_ASSETS, asset_checks=EXPORT_CHECKS, resources={"export": build_export_resource()})
