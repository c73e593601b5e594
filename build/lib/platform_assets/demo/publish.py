"""``grafana_summary``: what the demo prints about dashboards and alert rules."""

from __future__ import annotations

from typing import Any

from platform_assets.core.resources import ClickHouseResource
from platform_assets.publish import alerts
from platform_assets.publish.dashboards import DASHBOARDS, build_dashboard
from platform_assets.publish.datasource import datasource_body
from platform_assets.publish.generate import stale_files
from platform_assets.publish.resources import GrafanaResource, grafana_resource_from_env


def grafana_summary(
    grafana: GrafanaResource | None = None, clickhouse: ClickHouseResource | None = None
) -> dict[str, Any]:
    """Dashboards and alert rules generated; published too when GRAFANA_URL is set (the
    datasource only when ``clickhouse`` is given, since Grafana needs its address)."""
    grafana = grafana or grafana_resource_from_env()
    models = {spec.uid: build_dashboard(spec) for spec in DASHBOARDS}
    rules = alerts.alert_rules()
    summary: dict[str, Any] = {
        "dashboards": {uid: {"title": m["title"], "panels": len(m["panels"])} for uid, m in models.items()},
        "alert_rules": [r["uid"] for r in rules],
        "committed_files_stale": stale_files(),
        "published": False,
    }
    if not grafana.enabled:
        summary["reason"] = "GRAFANA_URL is not set: generated only"
        return summary
    with grafana.client() as client:
        client.ensure_folder(alerts.FOLDER_UID, alerts.FOLDER_TITLE)
        if clickhouse is not None:
            client.upsert_datasource(datasource_body(grafana.connection(clickhouse)))
        for uid, model in models.items():
            saved = client.post_dashboard(model, alerts.FOLDER_UID, overwrite=True, message="platform demo")
            summary["dashboards"][uid].update(version=saved.get("version"), url=saved.get("url"))
        for rule in rules:
            client.upsert_alert_rule(rule)
    summary.update(published=True, grafana_url=grafana.url)
    return summary
