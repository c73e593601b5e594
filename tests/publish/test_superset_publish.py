"""Superset dashboards as code against a real Apache Superset (platform_assets/stack/servers/superset.py,
started once for this module in the session stack's directory): the ``publish/superset_dashboards``
asset imports the bundle, Superset's REST API then lists every dashboard, chart, dataset and the
database; a second materialization overwrites the same objects. The read-only ``superset``
ClickHouse user reads the marts and rollups and nothing else. The bundle's shape needs no server."""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Iterator

import pytest
import yaml
from clickhouse_connect.driver.exceptions import DatabaseError
from dagster import DagsterInstance, materialize

from platform_assets.publish.resources import SupersetResource
from platform_assets.publish.superset_assets import superset_dashboards
from platform_assets.publish.superset_bundle import (
    DATABASE_FILE,
    DATABASE_NAME,
    MASK,
    Connection,
    bundle_files,
    bundle_zip,
    datasets,
    object_uuid,
)
from platform_assets.publish.superset_client import SupersetClient
from platform_assets.publish.superset_specs import DASHBOARDS
from platform_assets.stack.servers.superset import SupersetServer, superset_venv

CONN = Connection("127.0.0.1", 18123, "superset")


def superset_installed() -> None:
    if not (superset_venv() / "bin" / "superset").exists():
        pytest.skip(f"Apache Superset is not installed in {superset_venv()}: run scripts/setup.sh")


@pytest.fixture(scope="module")
def superset(stack) -> Iterator[SupersetResource]:
    """Superset in the session stack's directory, stopped after the module; its resource."""
    superset_installed()
    server = SupersetServer(stack.cfg)
    server.up()
    try:
        env = {**stack.env(), **server.env()}
        yield SupersetResource(
            url=env["SUPERSET_URL"],
            username=env["SUPERSET_USERNAME"],
            password=env["SUPERSET_PASSWORD"],
            clickhouse_password=env["CLICKHOUSE_SUPERSET_PASSWORD"],
        )
    finally:
        server.down()


def publish(superset: SupersetResource, clickhouse) -> dict:
    result = materialize(
        [superset_dashboards],
        resources={"superset": superset, "clickhouse": clickhouse},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    (mat,) = result.asset_materializations_for_node("publish__superset_dashboards")
    return {k: v.value for k, v in mat.metadata.items()}


# ------------------------------------------------------------------------------- no server


@pytest.mark.unit
def test_the_bundle_has_the_database_a_dataset_per_mart_and_rollup_and_every_chart():
    files = bundle_files(CONN)
    db = files[DATABASE_FILE]
    assert db["sqlalchemy_uri"] == f"clickhousedb://superset:{MASK}@127.0.0.1:18123/marts"
    assert db["database_name"] == DATABASE_NAME and db["allow_dml"] is False
    tables = {f"{d['schema']}.{d['table_name']}" for p, d in files.items() if p.startswith("datasets/")}
    assert {"marts.mart_orders_daily", "marts.mart_llm_daily", "rollups.llm_calls_1m"} <= tables
    assert tables == {ds.name for ds in datasets()}
    charts = {d["uuid"]: d for p, d in files.items() if p.startswith("charts/")}
    dataset_uuids = {d["uuid"] for p, d in files.items() if p.startswith("datasets/")}
    assert all(c["dataset_uuid"] in dataset_uuids for c in charts.values())
    for dash in DASHBOARDS:
        (doc,) = [d for p, d in files.items() if p.startswith("dashboards/") and d["slug"] == dash.slug]
        placed = {
            v["meta"]["uuid"] for v in doc["position"].values() if isinstance(v, dict) and v.get("type") == "CHART"
        }
        assert placed == {object_uuid("chart", c.key) for c in dash.charts} and placed <= set(charts)
    # Every saved metric a chart names is one of its dataset's metrics.
    by_uuid = {d["uuid"]: d for p, d in files.items() if p.startswith("datasets/")}
    for chart in charts.values():
        names = {m["metric_name"] for m in by_uuid[chart["dataset_uuid"]]["metrics"]}
        params = chart["params"]
        wanted = params.get("metrics") or [params.get("metric")]
        assert set(wanted) <= names, (chart["slice_name"], wanted)


@pytest.mark.unit
def test_the_zip_is_stable_and_under_one_root():
    a, b = bundle_zip(bundle_files(CONN)), bundle_zip(bundle_files(CONN))
    assert a == b
    with zipfile.ZipFile(io.BytesIO(a)) as z:
        names = z.namelist()
        assert {n.split("/", 1)[0] for n in names} == {"platform_superset"}
        assert yaml.safe_load(z.read("platform_superset/metadata.yaml"))["type"] == "Dashboard"


@pytest.mark.unit
def test_without_superset_the_asset_renders_the_bundle_only():
    from platform_assets.core.resources import ClickHouseResource

    ch = ClickHouseResource(host="h", http_port=1, username="u", password="p")
    result = materialize(
        [superset_dashboards], resources={"superset": SupersetResource(), "clickhouse": ch},
        instance=DagsterInstance.ephemeral(),
    )  # fmt: skip
    (mat,) = result.asset_materializations_for_node("publish__superset_dashboards")
    assert mat.metadata["published"].value is False
    assert mat.metadata["dashboards"].value == len(DASHBOARDS)


@pytest.mark.unit
def test_the_superset_user_is_rendered_read_only_with_its_quota_and_its_docker_password():
    import xml.etree.ElementTree as ET
    from pathlib import Path

    from platform_assets.stack import access as render

    root = ET.fromstring(render.docker_components())
    user = root.find("users/superset")
    assert user is not None and user.findtext("profile") == "superset" and user.findtext("quota") == "superset"
    assert [q.text for q in user.findall("grants/query")] == ["GRANT SELECT ON marts.*", "GRANT SELECT ON rollups.*"]
    assert root.findtext("profiles/superset/readonly") == "2"
    assert root.findtext("profiles/superset/constraints/max_threads/max") == "4"
    assert root.findtext("quotas/superset/interval/queries") == "1200"
    docker = Path(__file__).resolve().parents[2] / "docker"
    var = "CLICKHOUSE_SUPERSET_PASSWORD"
    assert f"{var}: ${{{var}:?set in docker/.env}}" in (docker / "docker-compose.yml").read_text()
    assert f"\n{var}=change-me" in (docker / ".env.example").read_text()


# ------------------------------------------------------------------------------ real servers


@pytest.mark.integration
def test_the_superset_user_reads_marts_and_rollups_only(schema, stack, clickhouse):
    reader = clickhouse.replaced(username="superset", password=stack.env()["CLICKHOUSE_SUPERSET_PASSWORD"])
    probe = f"marts.superset_probe_{uuid.uuid4().hex[:8]}"  # any table of the marts database
    with clickhouse.client() as ch:
        ch.command(f"CREATE TABLE {probe} (x UInt8) ENGINE = MergeTree ORDER BY x")
        ch.command(f"INSERT INTO {probe} VALUES (7)")
    try:
        with reader.client() as ch:
            assert ch.query("SELECT currentUser()").result_rows[0][0] == "superset"
            assert ch.query(f"SELECT sum(x) FROM {probe}").result_rows[0][0] == 7
    finally:
        with clickhouse.client() as ch:
            ch.command(f"DROP TABLE {probe} SYNC")
    with reader.client() as ch:
        assert ch.query("SELECT count() >= 0 FROM rollups.llm_calls_1m").result_rows[0][0] == 1
        for table in ("raw.product_events", "dead_letter.kafka_messages", "ops.kafka_consumer_lag"):
            with pytest.raises(DatabaseError, match="ACCESS_DENIED"):
                ch.query(f"SELECT count() FROM {table}")
        with pytest.raises(DatabaseError, match=r"ACCESS_DENIED|READONLY"):
            ch.command("INSERT INTO rollups.product_events_1m (workspace_id) VALUES ('x')")
        with pytest.raises(DatabaseError, match="SETTING_CONSTRAINT_VIOLATION"):
            ch.query("SELECT 1 SETTINGS max_threads = 64")
    with clickhouse.client() as ch:
        quota = ch.query("SELECT name FROM system.quotas WHERE has(apply_to_list, 'superset')").result_rows
    assert quota == [("superset",)]


@pytest.mark.e2e
def test_the_asset_imports_the_bundle_and_the_api_lists_it(schema, superset, clickhouse):
    first = publish(superset, clickhouse)
    assert first["published"] is True and first["dashboards_imported"] == len(DASHBOARDS)
    with superset.client() as api:
        dashboards = {d["slug"]: d for d in api.dashboards()}
        charts = {c["uuid"]: c for c in api.charts()}
        tables = {(d["schema"], d["table_name"]) for d in api.datasets()}
        (database,) = [d for d in api.databases() if d["database_name"] == DATABASE_NAME]
        for dash in DASHBOARDS:
            assert dashboards[dash.slug]["dashboard_title"] == dash.title
            on_dashboard = {c["slice_name"] for c in api.dashboard_charts(dash.slug)}
            assert on_dashboard == {c.title for c in dash.charts}
            for chart in dash.charts:
                assert charts[object_uuid("chart", chart.key)]["slice_name"] == chart.title
        counts = (len(charts), len(tables))
    assert database["backend"] == "clickhousedb"
    assert {(ds.database, ds.table) for ds in datasets()} <= tables
    assert first["url_platform-product"].endswith("/superset/dashboard/platform-product/")

    # Idempotent: the second run overwrites the same objects (stable uuids), it adds none.
    second = publish(superset, clickhouse)
    assert second["dashboards_imported"] == len(DASHBOARDS)
    with superset.client() as api:
        assert (len(api.charts()), len({(d["schema"], d["table_name"]) for d in api.datasets()})) == counts
        assert sorted(d["slug"] for d in api.dashboards()) == sorted(d.slug for d in DASHBOARDS)


@pytest.mark.e2e
def test_a_wrong_password_fails_the_step_without_retries(schema, superset, clickhouse):
    wrong = SupersetResource(
        url=superset.url, username=superset.username, password="not-the-password",
        clickhouse_password=superset.clickhouse_password,
    )  # fmt: skip
    result = materialize(
        [superset_dashboards],
        resources={"superset": wrong, "clickhouse": clickhouse},
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    failure = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure and "login: HTTP 401" in str(failure[0].event_specific_data.error)


@pytest.mark.unit
def test_the_client_names_an_unreachable_superset():
    from platform_assets.publish.superset_client import SupersetError
    from platform_assets.stack.process import free_port

    with (
        SupersetClient(f"http://127.0.0.1:{free_port()}", timeout=(1.0, 1.0)) as client,
        pytest.raises(SupersetError, match=r"login: Superset at .* is unreachable"),
    ):
        client.login("a", "b")
