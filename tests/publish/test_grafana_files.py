"""Generated Grafana files: the committed files equal the generation, UIDs are stable, every
panel has the ClickHouse datasource and SQL, the macros expand as the plugin does."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import yaml

from platform_assets.publish import alerts
from platform_assets.publish.clickhouse_query import DATASOURCE_TYPE, DATASOURCE_UID
from platform_assets.publish.dashboards import DASHBOARDS, all_dashboards
from platform_assets.publish.generate import (
    ALERTING_FILE,
    GRAFANA_DIR,
    NOTIFICATIONS_FILE,
    generated_files,
    stale_files,
    write_files,
)
from platform_assets.publish.macros import Expansion, MacroError, TimeRange, expand

pytestmark = pytest.mark.unit

EXPECTED_DASHBOARD_UIDS = {
    "platform-product-analytics",
    "platform-agent-telemetry",
    "platform-health",
    "platform-service-telemetry",
    "platform-product-insights",
    "platform-agent-health",
}
EXPECTED_RULE_UIDS = {
    "platform-agent-error-rate",
    "platform-agent-p95-latency",
    "platform-dau-drop",
    "platform-signal-no-data",
    "platform-cost-spike",
    "platform-spend-guardrail",
    "platform-health-mutations-backlog",
    "platform-health-stuck-merge",
    "platform-health-inactive-parts",
    "platform-health-disk-use",
    "platform-health-slow-queries",
    "platform-health-kafka-consumer-exceptions",
    "platform-health-collector-refusals",
    "platform-health-consumer-lag",
}
LIVE_PANELS = {"active_users_live"}  # today (UTC) whatever the dashboard's range: no time macro


def test_committed_files_equal_the_generation() -> None:
    stale = stale_files()
    assert not stale, f"regenerate with `python -m platform_assets.publish.generate`: {stale}"


def test_generation_is_deterministic_and_write_files_writes_it(tmp_path) -> None:
    assert generated_files() == generated_files()
    written = write_files(tmp_path)
    assert {p.relative_to(tmp_path).as_posix() for p in written} == set(generated_files())
    assert write_files(tmp_path) == []  # nothing changes the second time
    assert stale_files(tmp_path) == []
    (tmp_path / "dashboards" / "platform-health.json").write_text("{}")
    (tmp_path / "dashboards" / "old.json").write_text("{}")
    assert stale_files(tmp_path) == ["dashboards/platform-health.json", "dashboards/old.json"]


def test_dashboard_and_rule_uids_are_stable() -> None:
    assert set(all_dashboards()) == EXPECTED_DASHBOARD_UIDS
    files = {p.stem for p in (GRAFANA_DIR / "dashboards").glob("*.json")}
    assert files == EXPECTED_DASHBOARD_UIDS
    assert {r["uid"] for r in alerts.alert_rules()} == EXPECTED_RULE_UIDS
    for model in all_dashboards().values():
        ids = [p["id"] for p in model["panels"]]
        assert ids == list(range(1, len(ids) + 1)), "panel ids follow the spec order"


@pytest.mark.parametrize("uid", sorted(EXPECTED_DASHBOARD_UIDS))
def test_every_panel_has_the_datasource_and_sql(uid: str) -> None:
    model = json.loads((GRAFANA_DIR / "dashboards" / f"{uid}.json").read_text())
    assert model["uid"] == uid and model["panels"]
    for panel in model["panels"]:
        assert panel["datasource"] == {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}, panel["title"]
        (target,) = panel["targets"]
        assert target["datasource"]["uid"] == DATASOURCE_UID
        assert target["editorType"] == "sql" and target["format"] in (0, 1)
        assert target["rawSql"].lstrip().upper().startswith("SELECT"), panel["title"]
        assert panel["gridPos"]["x"] >= 0 and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
    for var in model["templating"]["list"]:
        assert var["datasource"]["uid"] == DATASOURCE_UID and var["query"].startswith("SELECT")
        assert var["includeAll"] and var["allValue"] == "__all__"


def test_product_and_agent_dashboards_have_the_workspace_variable_and_read_marts_or_rollups() -> None:
    for spec in DASHBOARDS:
        if spec.uid == "platform-health":
            continue
        expected = ["workspace", "token_attribute"] if spec.uid == "platform-service-telemetry" else ["workspace"]
        assert [v.name for v in spec.variables] == expected
        for panel in spec.panels:
            assert panel.source.startswith(("marts.", "rollups.")), panel.key
            assert panel.source in panel.sql, panel.key
            if panel.recent_source:  # the recent window from a rollup, the days before from a mart
                assert panel.recent_source.startswith("rollups.") and panel.source.startswith("marts."), panel.key
                assert panel.recent_source in panel.sql, panel.key
            assert "$__" in panel.sql or panel.key in LIVE_PANELS, f"{panel.key} ignores the dashboard time range"


def test_alert_rule_file_is_grafana_provisioning_format() -> None:
    raw = (GRAFANA_DIR / ALERTING_FILE).read_text()
    doc = yaml.safe_load(raw.replace("$$", "$"))  # what Grafana sees after its $VAR expansion
    (group,) = doc["groups"]
    assert doc["apiVersion"] == 1 and group["folder"] == alerts.FOLDER_TITLE and group["interval"] == "1m"
    by_uid = {r["uid"]: r for r in group["rules"]}
    assert set(by_uid) == EXPECTED_RULE_UIDS
    for rule in by_uid.values():
        assert rule["condition"] == "C" and [q["refId"] for q in rule["data"]] == ["A", "B", "C"]
        assert rule["data"][0]["datasourceUid"] == DATASOURCE_UID
    assert "{{ $labels.service }}" in by_uid["platform-agent-error-rate"]["annotations"]["summary"]
    thresholds = {u: r["data"][2]["model"]["conditions"][0]["evaluator"] for u, r in by_uid.items()}
    assert thresholds["platform-agent-error-rate"] == {"params": [0.02], "type": "gt"}
    assert thresholds["platform-dau-drop"] == {"params": [0.2], "type": "gt"}
    assert thresholds["platform-cost-spike"] == {"params": [3], "type": "gt"}
    assert by_uid["platform-agent-error-rate"]["for"] == "5m"
    assert by_uid["platform-agent-p95-latency"]["for"] == "10m"
    assert by_uid["platform-signal-no-data"]["noDataState"] == "Alerting"
    assert all(r["labels"]["team"] == "data-platform" for r in by_uid.values()), "the policy routes on it"


def test_notifications_file_provisions_the_webhook_and_its_route() -> None:
    doc = yaml.safe_load((GRAFANA_DIR / NOTIFICATIONS_FILE).read_text())
    (point,) = doc["contactPoints"]
    (receiver,) = point["receivers"]
    assert receiver["type"] == "webhook" and receiver["settings"]["url"] == "${ALERT_WEBHOOK_URL}"
    (tree,) = doc["policies"]
    assert tree["receiver"] == point["name"]
    assert tree["routes"] == [{**tree["routes"][0], "receiver": point["name"],
                               "object_matchers": [["team", "=", "data-platform"]]}]  # fmt: skip


def test_macros_expand_like_the_clickhouse_plugin() -> None:
    tr = TimeRange(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 31, tzinfo=UTC))
    exp = Expansion(tr, {"workspace": "it's"})
    sql = "SELECT $__timeInterval(t) WHERE $__timeFilter(t) AND $__dateFilter(d) AND w = ${workspace:sqlstring}"
    out = expand(sql + " AND $__fromTime < $__toTime", exp)
    assert "t >= toDateTime(1767225600) AND t <= toDateTime(1769817600)" in out
    assert "d >= toDate('2026-01-01') AND d <= toDate('2026-01-31')" in out
    assert "toStartOfInterval(toDateTime(t), INTERVAL 2592 second)" in out
    assert "w = 'it\\'s'" in out
    with pytest.raises(MacroError):
        expand("SELECT $nope", exp)
