"""The publish domain in the code location: Grafana folder, datasource, dashboards, alert rules."""

from dagster import Definitions

from platform_assets.publish.assets import build_publish_assets
from platform_assets.publish.checks import build_panel_checks
from platform_assets.publish.resources import build_grafana_resource


def definitions() -> Definitions:
    return Definitions(
        assets=build_publish_assets(),
        asset_checks=build_panel_checks(),
        resources={"grafana": build_grafana_resource()},
    )
