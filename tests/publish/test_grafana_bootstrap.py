"""The grafana-bootstrap module against the fake Grafana: a service account and its token, created
once and reused; the publish assets publish with that token read from the file; refusals of
file-provisioned resources name the resource."""

from __future__ import annotations

import json
import stat

import pytest
from dagster import DagsterInstance, materialize
from fake_grafana import FakeGrafana

from platform_assets.core.resources import ClickHouseResource
from platform_assets.publish import alerts, bootstrap
from platform_assets.publish.assets import build_publish_assets
from platform_assets.publish.client import GrafanaClient, GrafanaError
from platform_assets.publish.dashboards import build_dashboard, spec_by_uid
from platform_assets.publish.datasource import ClickHouseConnection, datasource_body
from platform_assets.publish.resources import GrafanaResource, build_grafana_resource

pytestmark = pytest.mark.unit

CLICKHOUSE = ClickHouseResource(host="clickhouse", http_port=8123, tcp_port=9000, username="platform", password="x")


@pytest.fixture
def fake():
    grafana = FakeGrafana().start()
    yield grafana
    grafana.stop()


def run_bootstrap(fake: FakeGrafana, token_file, **kw):
    return bootstrap.bootstrap(fake.url, *fake.admin, token_file, wait_s=5, **kw)


def writes(fake: FakeGrafana) -> list[tuple[str, str]]:
    return [(m, p) for m, p in fake.requests if m != "GET"]


def test_creates_the_account_and_token_once_then_reuses_both(fake, tmp_path) -> None:
    token_file = tmp_path / "token" / "grafana"
    first = run_bootstrap(fake, token_file)
    assert (first.account, first.token, first.role) == ("created", "created", "Admin")
    token = token_file.read_text().strip()
    assert token.startswith("glsa_") and stat.S_IMODE(token_file.stat().st_mode) == 0o600
    (account,) = fake.service_accounts.values()
    assert account["name"] == bootstrap.SERVICE_ACCOUNT and account["role"] == "Admin"
    assert [t["name"] for t in fake.sa_tokens.values()] == [bootstrap.TOKEN_NAME]

    before = len(writes(fake))
    second = run_bootstrap(fake, token_file)
    assert (second.account, second.token, second.account_id) == ("reused", "reused", first.account_id)
    assert token_file.read_text().strip() == token
    assert len(writes(fake)) == before, "a second run writes nothing to Grafana"
    assert len(fake.service_accounts) == 1 and len(fake.sa_tokens) == 1


def test_a_lost_or_revoked_token_is_replaced_not_duplicated(fake, tmp_path) -> None:
    token_file = tmp_path / "token"
    run_bootstrap(fake, token_file)
    old = token_file.read_text().strip()
    token_file.unlink()  # the volume was recreated
    again = run_bootstrap(fake, token_file)
    assert (again.account, again.token) == ("reused", "replaced")
    new = token_file.read_text().strip()
    assert new != old and list(fake.sa_tokens) == [new], "the old token of that name was deleted"
    fake.sa_tokens.clear()  # revoked in the UI: the file's token is refused
    assert run_bootstrap(fake, token_file).token == "replaced"
    assert list(fake.sa_tokens) == [token_file.read_text().strip()]


def test_an_existing_account_with_another_role_is_reused_and_set_back(fake, tmp_path) -> None:
    fake.create_service_account({"name": bootstrap.SERVICE_ACCOUNT, "role": "Viewer"})
    result = run_bootstrap(fake, tmp_path / "token")
    assert result.account == "reused"
    (account,) = fake.service_accounts.values()
    assert account["role"] == "Admin"


def test_a_wrong_admin_password_names_the_settings(fake, tmp_path) -> None:
    with pytest.raises(GrafanaError) as err:
        bootstrap.bootstrap(fake.url, "admin", "wrong", tmp_path / "token", wait_s=5)
    assert err.value.status == 401 and "GRAFANA_ADMIN_PASSWORD" in str(err.value)
    assert not (tmp_path / "token").exists()


def test_main_reads_the_environment_and_prints_no_secret(fake, tmp_path, capsys) -> None:
    env = {
        "GRAFANA_URL": fake.url,
        "GRAFANA_ADMIN_USER": fake.admin[0],
        "GRAFANA_ADMIN_PASSWORD": fake.admin[1],
        "GRAFANA_API_TOKEN_FILE": str(tmp_path / "token"),
    }
    assert bootstrap.main(env) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["token"] == "created"
    assert (tmp_path / "token").read_text().strip() not in out
    with pytest.raises(SystemExit, match="GRAFANA_ADMIN_PASSWORD"):
        bootstrap.main({"GRAFANA_URL": fake.url, "GRAFANA_API_TOKEN_FILE": "x"})


def test_an_unreachable_grafana_fails_after_the_wait(tmp_path) -> None:
    with pytest.raises(GrafanaError, match="unreachable"):
        bootstrap.bootstrap("http://127.0.0.1:9", "admin", "pw", tmp_path / "t", wait_s=0, timeout=(0.5, 0.5))


def test_publish_assets_publish_with_the_token_file(fake, tmp_path, monkeypatch) -> None:
    """As in docker/: GRAFANA_API_TOKEN empty, the token file written by the bootstrap."""
    token_file = tmp_path / "token"
    run_bootstrap(fake, token_file)
    for name, value in {"GRAFANA_URL": fake.url, "GRAFANA_API_TOKEN": "", "GRAFANA_API_TOKEN_FILE": str(token_file),
                        "GRAFANA_FILES_DIR": ""}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    grafana = build_grafana_resource()
    assert grafana.token is None and grafana.token_file == str(token_file)
    result = materialize(
        build_publish_assets(), resources={"grafana": grafana, "clickhouse": CLICKHOUSE},
        instance=DagsterInstance.ephemeral(),
    )  # fmt: skip
    assert result.success
    assert set(fake.dashboards) == {"platform-agent-telemetry", "platform-health", "platform-product-analytics",
                                    "platform-service-telemetry", "platform-product-insights",
                                    "platform-agent-health"}  # fmt: skip
    assert len(fake.rules) == len(alerts.alert_rules()) and "platform-clickhouse" in fake.datasources
    health = next(iter(result.asset_materializations_for_node("grafana__dashboards__platform_health")))
    assert health.metadata["files_written"].value == [], "publishing by API writes no files into the checkout"


def test_an_editor_token_cannot_publish_the_datasource(fake, tmp_path) -> None:
    """Why the bootstrap asks for Admin: datasources:write is not an Editor permission."""
    run_bootstrap(fake, tmp_path / "token", role="Editor")
    grafana = GrafanaResource(url=fake.url, token_file=str(tmp_path / "token"))
    with grafana.client() as client, pytest.raises(GrafanaError) as err:
        client.upsert_datasource(datasource_body(ClickHouseConnection("clickhouse", 9000, "grafana", "pw")))
    assert err.value.status == 403 and "datasources:write" in str(err.value)


def test_a_missing_token_file_fails_naming_the_setting(tmp_path) -> None:
    grafana = GrafanaResource(url="http://127.0.0.1:9", token_file=str(tmp_path / "absent"))
    with pytest.raises(GrafanaError, match=r"GRAFANA_API_TOKEN_FILE.*grafana-bootstrap"):
        grafana.client()


def test_file_provisioned_dashboard_is_refused_naming_the_dashboard(fake) -> None:
    model = build_dashboard(spec_by_uid("platform-health"))
    fake.provision_dashboard(model, alerts.FOLDER_UID)
    with GrafanaClient(fake.url, fake.token) as client, pytest.raises(GrafanaError) as err:
        client.post_dashboard(model, alerts.FOLDER_UID)
    assert err.value.status == 400 and err.value.body == {"message": "Cannot save provisioned dashboard"}
    text = str(err.value)
    assert "dashboard 'platform-health'" in text and "provisioning file" in text
    assert "GRAFANA_API_TOKEN" not in text


def test_file_provisioned_alert_rule_is_refused_naming_the_rule(fake) -> None:
    rule = alerts.alert_rules()[0]
    with GrafanaClient(fake.url, fake.token) as client:
        client.ensure_folder(alerts.FOLDER_UID, alerts.FOLDER_TITLE)
        fake.provision_rule(rule)
        with pytest.raises(GrafanaError) as err:
            client.upsert_alert_rule(rule)
    assert err.value.body == {"message": "cannot change provenance from 'file' to 'api'"}
    assert f"alert rule {rule['uid']!r}" in str(err.value) and "provisioning file" in str(err.value)


def test_file_provisioned_datasource_is_refused_naming_it(fake) -> None:
    body = datasource_body(ClickHouseConnection("clickhouse", 9000, "grafana", "pw"))
    fake.provision_datasource(body)
    with GrafanaClient(fake.url, fake.token) as client, pytest.raises(GrafanaError) as err:
        client.upsert_datasource(body)
    assert err.value.status == 403 and "datasource 'platform-clickhouse'" in str(err.value)
    assert "provisioning file" in str(err.value)


def test_the_publish_run_fails_on_a_provisioned_dashboard_and_says_which(fake, tmp_path) -> None:
    fake.provision_dashboard(build_dashboard(spec_by_uid("platform-health")), alerts.FOLDER_UID)
    grafana = GrafanaResource(url=fake.url, token=fake.token, files_dir=str(tmp_path))
    result = materialize(
        build_publish_assets(), resources={"grafana": grafana, "clickhouse": CLICKHOUSE},
        instance=DagsterInstance.ephemeral(), raise_on_error=False,
    )  # fmt: skip
    assert not result.success
    failures = [str(e.event_specific_data.error) for e in result.all_events if e.is_step_failure]
    assert len(failures) == 1 and "dashboard 'platform-health'" in failures[0]
    assert "Cannot save provisioned dashboard" in failures[0]
