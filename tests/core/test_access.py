"""The component users and the tenants' readers as settings and users.xml (no server)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from platform_assets.core.access import (
    COMPONENTS,
    ROLE_USERS,
    parse_tenants,
    password_var,
    tenant_tables,
)
from platform_assets.core.resources import ClickHouseResource
from platform_assets.stack import access as render
from platform_assets.stack.config import StackConfig, StackError

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def test_docker_components_file_is_the_rendering_of_the_table():
    committed = (REPO / "docker" / "clickhouse" / "users.d" / "components.xml").read_text()
    assert committed == render.docker_components(), (
        "docker/clickhouse/users.d/components.xml is stale: "
        "python -m platform_assets.stack.access > docker/clickhouse/users.d/components.xml"
    )


def test_every_component_password_is_in_the_docker_environment_of_clickhouse():
    compose = (REPO / "docker" / "docker-compose.yml").read_text()
    env = (REPO / "docker" / ".env.example").read_text()
    for c in COMPONENTS:
        assert f"{password_var(c.user)}: ${{{password_var(c.user)}:?set in docker/.env}}" in compose, c.user
        assert f"\n{password_var(c.user)}=change-me" in env, c.user


def test_the_views_definer_cannot_log_in_from_outside_the_server():
    root = ET.fromstring(render.docker_components())
    ingest = root.find("users/ingest/networks")
    assert ingest is not None and sorted(ip.text or "" for ip in ingest) == ["127.0.0.1", "::1"]
    assert "ingest" not in ROLE_USERS


def test_tenants_parse_with_defaults_and_bounds():
    (acme, noisy) = parse_tenants(
        json.dumps(
            [
                {"name": "acme", "workspaces": ["ws_1", "ws_2", "ws_1"]},
                {"name": "noisy", "workspaces": ["ws_3"], "queries_per_minute": 5, "max_threads": 1},
            ]
        )
    )
    assert (acme.user, acme.workspaces, acme.queries_per_minute) == ("tenant_acme", ("ws_1", "ws_2"), 600)
    assert (noisy.queries_per_minute, noisy.max_threads, noisy.password_var) == (5, 1, "TENANT_NOISY_PASSWORD")
    assert parse_tenants("") == [] and parse_tenants(None) == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{", "is not JSON"),
        ('{"name": "a"}', "must be a JSON list"),
        ('[{"name": "Acme", "workspaces": ["w"]}]', r"PLATFORM_TENANTS\[0\]\.name 'Acme'"),
        ('[{"name": "monitor", "workspaces": ["w"]}]', r"\.name 'monitor'"),
        ('[{"name": "a", "workspaces": []}]', r"\[0\]\.workspaces: a non-empty list"),
        ('[{"name": "a", "workspaces": ["__all__"]}]', r"'__all__' is not a workspace id"),
        ('[{"name": "a", "workspaces": ["x\' OR 1"]}]', r"is not a workspace id"),
        ('[{"name": "a", "workspaces": ["w"], "queries_per_minute": 0}]', r"queries_per_minute: 0 is not a positive"),
        ('[{"name": "a", "workspaces": ["w"], "max_threads": true}]', r"max_threads: True is not a positive"),
        ('[{"name": "a", "workspaces": ["w"], "quota": 1}]', r"unknown field\(s\) \['quota'\]"),
        ('[{"name": "a", "workspaces": ["w"]}, {"name": "a", "workspaces": ["v"]}]', r"\['a'\] appear more than once"),
    ],
)
def test_a_bad_tenants_setting_names_the_entry_and_field(raw, message):
    with pytest.raises(ValueError, match=message):
        parse_tenants(raw)


def test_a_bad_tenants_setting_stops_the_stack_config(tmp_path):
    with pytest.raises(StackError, match=r"PLATFORM_TENANTS\[0\]\.workspaces"):
        StackConfig(root=tmp_path, ports={}, tenants_json='[{"name": "a", "workspaces": "w"}]')


def test_tenant_tables_are_the_marts_and_rollups_with_a_workspace():
    tables = tenant_tables()
    assert "marts.fct_product_events" in tables and "rollups.product_events_1m" in tables
    assert "rollups.llm_calls_1h" in tables
    # Tables without workspace_id are not granted at all (a row policy could not apply to them).
    assert "marts.mart_mrr_daily" not in tables and not any(t.startswith(("raw.", "staging.")) for t in tables)


def test_tenant_users_xml_has_a_filter_and_grant_for_each_table_and_its_twin():
    (tenant,) = parse_tenants('[{"name": "acme", "workspaces": ["ws_1", "ws_2"], "queries_per_minute": 7}]')
    xml = (
        f"<clickhouse><profiles>{render.tenants_profiles([tenant])}</profiles>"
        f"<quotas>{render.tenants_quotas([tenant])}</quotas>"
        f"<users>{render.tenants_users([tenant], render.from_env, render.LOOPBACK)}</users></clickhouse>"
    )
    root = ET.fromstring(xml)
    user = root.find("users/tenant_acme")
    assert user is not None
    grants = [q.text for q in user.findall("grants/query")]
    filters = {f"{db.tag}.{t.tag}": t.findtext("filter") for db in user.find("databases") or [] for t in db}
    for table in tenant_tables():
        for name in (table, table + "_local"):
            assert f"GRANT SELECT ON {name}" in grants
            assert filters[name] == "workspace_id IN ('ws_1', 'ws_2')"
    assert len(grants) == len(filters) == 2 * len(tenant_tables())
    assert root.findtext("quotas/tenant_acme/interval/queries") == "7"
    profile = root.find("profiles/tenant_acme")
    assert profile is not None and profile.findtext("readonly") == "2"
    assert profile.findtext("constraints/max_threads/max") == "2"


def test_as_role_logs_in_as_the_component_and_names_a_missing_password():
    ch = ClickHouseResource(host="h", http_port=1, username="platform", password="p", monitor_password="m")
    assert (ch.as_role("monitor").username, ch.as_role("monitor").password) == ("monitor", "m")
    assert ch.as_role("admin") is ch
    with pytest.raises(ValueError, match="CLICKHOUSE_EXPORT_PASSWORD is not set"):
        ch.as_role("export")
    with pytest.raises(ValueError, match="no ClickHouse role 'ingest'"):
        ch.as_role("ingest")


def test_the_stack_keeps_its_tenants_until_the_setting_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("PLATFORM_STACK_DIR", str(tmp_path))
    monkeypatch.setenv("PLATFORM_TENANTS", '[{"name": "acme", "workspaces": ["ws_1"]}]')
    StackConfig.from_env().save_ports()
    monkeypatch.delenv("PLATFORM_TENANTS")
    assert [t.user for t in StackConfig.from_env().tenants()] == ["tenant_acme"]
    monkeypatch.setenv("PLATFORM_TENANTS", "")
    assert StackConfig.from_env().tenants() == []
