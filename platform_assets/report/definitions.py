"""The report domain in the code location: the daily HTML report page and the sensor that writes it."""

from dagster import Definitions

from platform_assets.report.assets import daily_report
from platform_assets.report.automation import report_after_marts


def definitions() -> Definitions:
    return Definitions(assets=[daily_report], sensors=[report_after_marts])
