"""Publication assets: the Grafana folder, the ClickHouse datasource, one asset per dashboard and
the alert rules, downstream of the marts they read.

Without GRAFANA_URL each asset still renders its part, writes the generated files (dashboards)
and says in its metadata that nothing was published; it does not fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster import AssetKey, AssetsDefinition, MaterializeResult, MetadataValue, asset

from platform_assets.core.automation import SERVER_RETRY, final
from platform_assets.core.keys import SCHEMA_KEY
from platform_assets.core.resources import ClickHouseResource
from platform_assets.publish import alerts, notifications
from platform_assets.publish.checks import dashboard_key
from platform_assets.publish.client import GrafanaClient, GrafanaError
from platform_assets.publish.dashboards import DASHBOARDS, build_dashboard
from platform_assets.publish.datasource import datasource_body
from platform_assets.publish.generate import GRAFANA_DIR, write_files
from platform_assets.publish.panels import DashboardSpec
from platform_assets.publish.resources import GrafanaResource

GROUP = "publish"
OWNERS = ["team:data-platform"]
KINDS = {"grafana"}
FOLDER_KEY = AssetKey(["grafana", "folder"])
DATASOURCE_KEY = AssetKey(["grafana", "datasource"])
ALERTS_KEY = AssetKey(["grafana", "alert_rules"])
NOT_PUBLISHED = "GRAFANA_URL is not set: generated only, nothing published"
NO_FILES = "(none: published through the API, or no checkout; GRAFANA_FILES_DIR sets one)"
# Every call is an upsert (folder, datasource, dashboard with overwrite, rules, contact point, merged
# policy tree): a restarting Grafana or ClickHouse is retried, also outside publish_job.
RETRY = SERVER_RETRY


# Answers that a retry would get again: the request or the token is wrong (not 408 / 429).
FINAL_STATUSES = frozenset(range(400, 500)) - {408, 429}


@contextmanager
def published(grafana: GrafanaResource) -> Iterator[GrafanaClient]:
    """The API client; a refusal in FINAL_STATUSES fails the step without the retry policy."""
    with grafana.client() as client:
        try:
            yield client
        except GrafanaError as exc:
            if exc.status in FINAL_STATUSES:
                raise final(exc) from exc
            raise


def mart_deps(sqls: list[str]) -> list[AssetKey]:
    """What the SQL reads, as assets: marts.<model> and staging.model_prices (dbt), and the
    clickhouse/schema asset for the rollups.* tables (its DDL creates them and the views that fill them)."""
    import re

    names = sorted({m for sql in sqls for m in re.findall(r"\bmarts\.(\w+)", sql)})
    keys = [AssetKey(["marts", name]) for name in names]
    if any("staging.model_prices" in sql for sql in sqls):
        keys.append(AssetKey(["staging", "model_prices"]))
    if any(re.search(r"\brollups\.", sql) for sql in sqls):
        keys.append(SCHEMA_KEY)
    return keys


def _unpublished(extra: dict[str, Any] | None = None) -> MaterializeResult:
    return MaterializeResult(metadata={"published": False, "reason": NOT_PUBLISHED, **(extra or {})})


@asset(
    key=FOLDER_KEY,
    group_name=GROUP,
    owners=OWNERS,
    kinds=KINDS,
    description="The Grafana folder of the platform.",
    retry_policy=RETRY,
)
def grafana_folder(grafana: GrafanaResource) -> MaterializeResult:
    if not grafana.enabled:
        return _unpublished({"folder_uid": alerts.FOLDER_UID})
    with published(grafana) as client:
        folder = client.ensure_folder(alerts.FOLDER_UID, alerts.FOLDER_TITLE)
    return MaterializeResult(
        metadata={"published": True, "folder_uid": folder["uid"], "action": folder["action"], "url": folder.get("url")}
    )


@asset(
    key=DATASOURCE_KEY,
    group_name=GROUP,
    owners=OWNERS,
    kinds=KINDS,
    description="The ClickHouse datasource (by uid), logged in as the read-only Grafana user.",
    retry_policy=RETRY,
)
def grafana_datasource(grafana: GrafanaResource, clickhouse: ClickHouseResource) -> MaterializeResult:
    conn = grafana.connection(clickhouse)
    body = datasource_body(conn)
    meta = {"uid": body["uid"], "host": f"{conn.host}:{conn.port}", "user": conn.username}
    if not grafana.enabled:
        return _unpublished(meta)
    with published(grafana) as client:
        result = client.upsert_datasource(body)
    return MaterializeResult(metadata={"published": True, "action": result["action"], **meta})


def files_root(grafana: GrafanaResource) -> Path | None:
    """Where the assets write the generated files: GRAFANA_FILES_DIR when set; else nowhere when
    they publish through the API (Grafana reads the API, not the files: in docker/ the checkout
    inside the image is no Grafana's source); else the checkout's docker/grafana (None in a wheel)."""
    if grafana.files_dir:
        return Path(grafana.files_dir)
    if grafana.enabled:
        return None
    return GRAFANA_DIR


def build_dashboard_asset(spec: DashboardSpec) -> AssetsDefinition:
    sqls = [p.sql for p in spec.panels] + [v.sql for v in spec.variables]

    @asset(
        key=dashboard_key(spec.uid),
        group_name=GROUP,
        owners=OWNERS,
        kinds=KINDS,
        deps=[*mart_deps(sqls), FOLDER_KEY, DATASOURCE_KEY],
        description=f"Grafana dashboard '{spec.title}' (uid {spec.uid}): {spec.description}",
        retry_policy=RETRY,
    )
    def _dashboard(context, grafana: GrafanaResource) -> MaterializeResult:
        model = build_dashboard(spec)
        root = files_root(grafana)
        written = [str(p) for p in write_files(root)] if root else []
        meta: dict[str, Any] = {
            "uid": spec.uid,
            "panels": len(model["panels"]),
            "files_dir": str(root) if root else NO_FILES,
            "files_written": MetadataValue.json(written),
        }
        if not grafana.enabled:
            return _unpublished(meta)
        with published(grafana) as client:
            message = f"dagster run {context.run_id}"
            saved = client.post_dashboard(model, alerts.FOLDER_UID, overwrite=True, message=message)
        url = grafana.url.rstrip("/") + saved["url"] if grafana.url and saved.get("url") else saved.get("url")
        return MaterializeResult(
            metadata={**meta, "published": True, "version": saved.get("version"), "url": MetadataValue.url(url or "")}
        )

    return _dashboard


@asset(
    key=ALERTS_KEY,
    group_name=GROUP,
    owners=OWNERS,
    kinds=KINDS,
    deps=[*mart_deps([a.sql for a in alerts.ALERTS]), FOLDER_KEY, DATASOURCE_KEY],
    description=f"Alert rules (group {alerts.RULE_GROUP}, folder {alerts.FOLDER_TITLE}) through the provisioning API.",
    retry_policy=RETRY,
)
def grafana_alert_rules(grafana: GrafanaResource) -> MaterializeResult:
    rules = alerts.alert_rules()
    root = files_root(grafana)
    written = [str(p) for p in write_files(root)] if root else []
    meta: dict[str, Any] = {"rules": MetadataValue.json([r["uid"] for r in rules]), "files_written": written}
    if not grafana.enabled:
        return _unpublished(meta)
    with published(grafana) as client:
        actions = {r["uid"]: client.upsert_alert_rule(r)["action"] for r in rules}
        client.set_rule_group_interval(alerts.FOLDER_UID, alerts.RULE_GROUP, 60)  # rules evaluate every minute
        meta.update(_publish_notifications(client, grafana.alert_webhook_url))
    return MaterializeResult(metadata={**meta, "published": True, "actions": MetadataValue.json(actions)})


def _publish_notifications(client: Any, webhook_url: str | None) -> dict[str, Any]:
    """The webhook contact point and its route in the policy tree, when ALERT_WEBHOOK_URL is set."""
    if not webhook_url:
        return {"contact_point": f"not published: {notifications.WEBHOOK_URL_ENV} is not set"}
    point = client.upsert_contact_point(notifications.contact_point(webhook_url))
    client.put_policy_tree(notifications.merged_policy_tree(client.get_policy_tree()))
    return {"contact_point": f"{point['uid']} ({point['action']})", "policy_route": "team=data-platform"}


def build_publish_assets() -> list[AssetsDefinition]:
    return [grafana_folder, grafana_datasource, *(build_dashboard_asset(s) for s in DASHBOARDS), grafana_alert_rules]
