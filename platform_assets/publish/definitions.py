"""The publish domain in the code location: Grafana folder, datasource, dashboards, alert rules,
the sensor that publishes them when the generated files change, and the Superset dashboards."""

from dagster import Definitions

from platform_assets.publish.assets import build_publish_assets
from platform_assets.publish.checks import build_panel_checks
from platform_assets.publish.resources import build_grafana_resource, build_superset_resource
from platform_assets.publish.sensors import publish_job, publish_on_change
from platform_assets.publish.superset_assets import superset_dashboards


def definitions() -> Definitions:
    return Definitions(
        assets=[*build_publish_assets(), superset_dashboards],
        asset_checks=build_panel_checks(),
        jobs=[publish_job],
        sensors=[publish_on_change],
        # Both optional: without GRAFANA_URL / SUPERSET_URL the assets only render their files.
        resources={"grafana": build_grafana_resource(), "superset": build_superset_resource()},
    )
