"""The report domain in the code location: the daily HTML report page."""

from dagster import Definitions

from platform_assets.report.assets import daily_report


def definitions() -> Definitions:
    return Definitions(assets=[daily_report])
