"""The publish domain in the code location: Grafana folder, datasource, dashboards, alert rules,
and the sensor that publishes them when the generated files change."""

from dagster import Definitions

from platform_assets.publish.assets import build_publish_assets
from platform_assets.publish.checks import build_panel_checks
from platform_assets.publish.resources import build_grafana_resource
from platform_assets.publish.sensors import publish_job, publish_on_change


def definitions() -> Definitions:
    return Definitions(
        assets=build_publish_assets(),
        asset_checks=build_panel_checks(),
        jobs=[publish_job],
        sensors=[publish_on_change],
        resources={"grafana": build_grafana_resource()},
    )
