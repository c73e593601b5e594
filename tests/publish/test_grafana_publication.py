"""Publication through Grafana's API: the in-repo fake by default; the same tests run on a real
Grafana with `pytest -m grafana_real` and GRAFANA_URL (+ GRAFANA_API_TOKEN) set."""

from __future__ import annotations

import uuid

import pytest
from dagster import DagsterInstance, materialize

from platform_assets.core.resources import ClickHouseResource
from platform_assets.publish import alerts
from platform_assets.publish.assets import build_publish_assets
from platform_assets.publish.clickhouse_query import DATASOURCE_UID
from platform_assets.publish.client import GrafanaClient, GrafanaError
from platform_assets.publish.dashboards import build_dashboard, spec_by_uid
from platform_assets.publish.datasource import ClickHouseConnection, datasource_body
from platform_assets.publish.resources import GrafanaResource

pytestmark = pytest.mark.unit

CLICKHOUSE = ClickHouseResource(host="clickhouse", http_port=8123, tcp_port=9000, username="platform", password="x")


def resources(target, tmp_path, **extra: str) -> dict:
    grafana = GrafanaResource(
        url=target["url"], token=target["token"], clickhouse_user="grafana", clickhouse_password="pw",
        files_dir=str(tmp_path), **extra,
    )  # fmt: skip
    return {"grafana": grafana, "clickhouse": CLICKHOUSE}


def run(res: dict):
    return materialize(build_publish_assets(), resources=res, instance=DagsterInstance.ephemeral())


def meta(result, key: str) -> dict:
    (mat,) = [m for m in result.asset_materializations_for_node(key)]
    return {k: v.value for k, v in mat.metadata.items()}


def test_publishes_everything_then_updates_with_new_versions(grafana_target, grafana_client, tmp_path) -> None:
    res = resources(grafana_target, tmp_path)
    first = run(res)
    assert first.success
    health = meta(first, "grafana__dashboards__platform_health")
    assert health["published"] is True and health["url"].endswith("/d/platform-health/platform-health")
    v1 = health["version"]
    assert meta(first, "grafana__folder")["folder_uid"] == alerts.FOLDER_UID
    assert meta(first, "grafana__datasource")["uid"] == DATASOURCE_UID

    second = run(res)
    assert second.success
    assert meta(second, "grafana__dashboards__platform_health")["version"] == v1 + 1
    assert meta(second, "grafana__datasource")["action"] == "updated"
    assert meta(second, "grafana__folder")["action"] == "unchanged"
    assert set(meta(second, "grafana__alert_rules")["actions"].values()) == {"updated"}

    board = grafana_client.get_dashboard("platform-health")
    assert board["dashboard"]["version"] == v1 + 1 and board["meta"]["folderUid"] == alerts.FOLDER_UID
    assert len(board["dashboard"]["panels"]) == len(spec_by_uid("platform-health").panels)
    rule = grafana_client.get_alert_rule("platform-agent-error-rate")
    assert rule["title"] == "Agent error rate above 2%" and rule["folderUID"] == alerts.FOLDER_UID
    ds = grafana_client.get_datasource(DATASOURCE_UID)
    assert ds["jsonData"]["username"] == "grafana" and ds["jsonData"]["host"] == "clickhouse"
    assert "password" not in str(ds.get("jsonData")), "the password goes to secureJsonData only"
    assert sorted(p.name for p in (tmp_path / "dashboards").glob("*.json")) == [
        "platform-agent-health.json", "platform-agent-telemetry.json", "platform-health.json",
        "platform-product-analytics.json", "platform-product-insights.json", "platform-service-telemetry.json",
    ]  # fmt: skip


def test_without_grafana_url_the_assets_generate_only(tmp_path) -> None:
    res = {"grafana": GrafanaResource(files_dir=str(tmp_path)), "clickhouse": CLICKHOUSE}
    result = run(res)
    assert result.success
    for node in (
        "grafana__folder",
        "grafana__datasource",
        "grafana__dashboards__platform_health",
        "grafana__alert_rules",
    ):
        m = meta(result, node)
        assert m["published"] is False and "GRAFANA_URL is not set" in m["reason"]
    assert (tmp_path / "provisioning/alerting/platform.yaml").is_file()


def test_overwrite_false_on_an_existing_uid_is_412_version_mismatch(grafana_client) -> None:
    grafana_client.ensure_folder(alerts.FOLDER_UID, alerts.FOLDER_TITLE)
    model = build_dashboard(spec_by_uid("platform-health"))
    saved = grafana_client.post_dashboard(model, alerts.FOLDER_UID)
    with pytest.raises(GrafanaError) as err:
        grafana_client.post_dashboard({**model, "version": saved["version"] - 1}, alerts.FOLDER_UID, overwrite=False)
    assert err.value.status == 412 and err.value.body["status"] == "version-mismatch"
    assert "dashboard 'platform-health'" in str(err.value) and "412" in str(err.value)
    # The current version saves without overwrite and bumps it.
    again = grafana_client.post_dashboard({**model, "version": saved["version"]}, alerts.FOLDER_UID, overwrite=False)
    assert again["version"] == saved["version"] + 1


def test_same_title_under_another_uid_is_412_name_exists(grafana_client) -> None:
    grafana_client.ensure_folder(alerts.FOLDER_UID, alerts.FOLDER_TITLE)
    model = build_dashboard(spec_by_uid("platform-health"))
    grafana_client.post_dashboard(model, alerts.FOLDER_UID)
    clash = {**model, "uid": f"other-{uuid.uuid4().hex[:8]}", "version": None}
    with pytest.raises(GrafanaError) as err:
        grafana_client.post_dashboard(clash, alerts.FOLDER_UID, overwrite=False)
    assert err.value.status == 412 and err.value.body["status"] == "name-exists"


def test_folder_create_twice_is_409_and_ensure_folder_is_idempotent(grafana_target, grafana_client) -> None:
    uid = f"t-{uuid.uuid4().hex[:8]}"
    assert grafana_client.ensure_folder(uid, "Publish test " + uid)["action"] == "created"
    assert grafana_client.ensure_folder(uid, "Publish test " + uid)["action"] == "unchanged"
    with pytest.raises(GrafanaError) as err:
        grafana_client.request("POST", "/api/folders", "folder", json={"uid": uid, "title": "x " + uid})
    assert err.value.status == 409
    assert grafana_client.ensure_folder(uid, "Renamed " + uid)["action"] == "updated"


def test_datasource_by_uid_and_409_on_a_name_taken_by_another_uid(grafana_client) -> None:
    body = datasource_body(ClickHouseConnection("clickhouse", 9000, "grafana", "pw"))
    grafana_client.upsert_datasource(body)
    assert grafana_client.upsert_datasource({**body, "jsonData": {**body["jsonData"], "port": 9440}})["action"] == (
        "updated"
    )
    assert grafana_client.get_datasource(DATASOURCE_UID)["jsonData"]["port"] == 9440
    with pytest.raises(GrafanaError) as err:
        grafana_client.upsert_datasource({**body, "uid": f"ds-{uuid.uuid4().hex[:8]}"})
    assert err.value.status == 409 and "already named 'ClickHouse'" in str(err.value)


def test_alert_rule_create_then_update_by_uid(grafana_client) -> None:
    grafana_client.ensure_folder(alerts.FOLDER_UID, alerts.FOLDER_TITLE)
    rule = alerts.alert_rules()[0]
    first = grafana_client.upsert_alert_rule(rule)
    assert first["action"] in ("created", "updated")
    second = grafana_client.upsert_alert_rule({**rule, "title": rule["title"] + " (edited)"})
    assert second["action"] == "updated"
    assert grafana_client.get_alert_rule(rule["uid"])["title"].endswith("(edited)")
    grafana_client.upsert_alert_rule(rule)  # leave it as the code defines it


def test_a_wrong_token_fails_naming_the_step_and_the_token(grafana_target, tmp_path) -> None:
    with GrafanaClient(grafana_target["url"], "wrong-token") as client, pytest.raises(GrafanaError) as err:
        client.ensure_folder(alerts.FOLDER_UID, alerts.FOLDER_TITLE)
    assert err.value.status == 401
    assert "folder 'platform'" in str(err.value) and "GRAFANA_API_TOKEN" in str(err.value)
    res = resources({**grafana_target, "token": "wrong-token"}, tmp_path)
    result = materialize(
        build_publish_assets()[:1], resources=res, instance=DagsterInstance.ephemeral(), raise_on_error=False
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "HTTP 401" in str(failure.event_specific_data.error)


def test_unreachable_grafana_fails_fast_with_its_url() -> None:
    with GrafanaClient("http://127.0.0.1:9", "t", timeout=(1.0, 1.0)) as client, pytest.raises(GrafanaError) as e:
        client.ensure_folder("x", "x")
    assert "unreachable" in str(e.value) and "127.0.0.1:9" in str(e.value)


def test_contact_point_and_policy_route_published_keeping_other_routes(grafana_target, grafana_client, tmp_path):
    """With ALERT_WEBHOOK_URL set, the webhook contact point exists with that URL and the policy
    tree routes team=data-platform to it; a route someone else added stays, and a re-run does not
    add the route twice."""
    other_route = {"receiver": "grafana-default-email", "object_matchers": [["team", "=", "billing"]]}
    tree = grafana_client.get_policy_tree()
    grafana_client.put_policy_tree({**tree, "routes": [*(tree.get("routes") or []), other_route]})
    url = f"https://hooks.example.test/platform/{uuid.uuid4().hex[:8]}"
    res = resources(grafana_target, tmp_path, alert_webhook_url=url)
    for attempt in ("created", "updated"):
        result = run(res)
        assert result.success
        assert meta(result, "grafana__alert_rules")["contact_point"] == f"platform-webhook ({attempt})"
    points = grafana_client.request("GET", "/api/v1/provisioning/contact-points", "list").json()
    (point,) = [p for p in points if p["uid"] == "platform-webhook"]
    assert point["type"] == "webhook" and point["settings"]["url"] == url
    routes = grafana_client.get_policy_tree()["routes"]
    ours = [r for r in routes if r.get("object_matchers") == [["team", "=", "data-platform"]]]
    assert len(ours) == 1 and ours[0]["receiver"] == "platform-webhook"
    assert other_route in routes
    assert all(r["labels"]["team"] == "data-platform" for r in alerts.alert_rules()), "every rule is routed"


def test_without_webhook_url_no_contact_point_is_published(grafana_target, tmp_path) -> None:
    result = run(resources(grafana_target, tmp_path))
    assert result.success
    assert "ALERT_WEBHOOK_URL is not set" in meta(result, "grafana__alert_rules")["contact_point"]
