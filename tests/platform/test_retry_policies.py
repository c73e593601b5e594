"""Every asset Dagster runs carries SERVER_RETRY (core/automation.py): its steps talk to ClickHouse,
Kafka, Postgres, S3 or Grafana, and a restarting server is waited for. An asset without the policy
is named here, with its reason, or the test fails. Asset checks are not covered. No server needed."""

from __future__ import annotations

import pytest
from dagster import AssetKey, Definitions, MaterializeResult, asset

from platform_assets.core.automation import SERVER_RETRY

pytestmark = pytest.mark.unit

# Groups whose assets run without SERVER_RETRY, with the reason. None today.
EXEMPT_GROUPS: dict[str, str] = {}

_FILLED_BY_CLICKHOUSE = "no Dagster step to retry: filled continuously by a Kafka-engine consumer in ClickHouse"
# Single assets without SERVER_RETRY, with the reason.
EXEMPT_KEYS: dict[AssetKey, str] = {
    AssetKey(["raw", "agent_events"]): _FILLED_BY_CLICKHOUSE,
    AssetKey(["raw", "product_events"]): _FILLED_BY_CLICKHOUSE,
    AssetKey(["raw", "spans"]): _FILLED_BY_CLICKHOUSE,
    AssetKey(["raw", "otel_logs"]): _FILLED_BY_CLICKHOUSE,
    AssetKey(["raw", "otel_metrics_histogram"]): _FILLED_BY_CLICKHOUSE,
    AssetKey(["dead_letter", "kafka_messages"]): _FILLED_BY_CLICKHOUSE,
}


def without_server_retry(defs: Definitions) -> list[str]:
    """'key (group): policy' for each asset that is not exempt and whose op's retry policy is not
    SERVER_RETRY; an asset Dagster cannot run (no op) counts as having none."""
    graph = defs.get_repository_def().asset_graph
    out = []
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        if node.group_name in EXEMPT_GROUPS or key in EXEMPT_KEYS:
            continue
        policy = node.assets_def.op.retry_policy if node.assets_def.is_executable else None
        if policy != SERVER_RETRY:
            out.append(f"{key.to_user_string()} ({node.group_name}): {policy}")
    return out


def test_every_asset_retries_with_server_retry_unless_exempt():
    from platform_assets.definitions import defs

    missing = without_server_retry(defs)
    assert not missing, (
        "no SERVER_RETRY (add retry_policy=SERVER_RETRY, or exempt it here with a reason): " + ", ".join(missing)
    )


def test_exemptions_name_existing_assets_and_say_why():
    from platform_assets.definitions import defs

    graph = defs.get_repository_def().asset_graph
    keys = graph.get_all_asset_keys()
    groups = {graph.get(k).group_name for k in keys}
    assert not set(EXEMPT_KEYS) - keys, "exempt keys that are no asset any more"
    assert not set(EXEMPT_GROUPS) - groups, "exempt groups that are no group any more"
    assert all(reason.strip() for reason in [*EXEMPT_KEYS.values(), *EXEMPT_GROUPS.values()])


def test_an_asset_added_without_a_policy_is_named():
    @asset(key=AssetKey(["ops", "new_thing"]), group_name="ops")
    def new_thing() -> MaterializeResult:
        return MaterializeResult()

    @asset(key=AssetKey(["ops", "new_retried_thing"]), group_name="ops", retry_policy=SERVER_RETRY)
    def new_retried_thing() -> MaterializeResult:
        return MaterializeResult()

    assert without_server_retry(Definitions(assets=[new_thing, new_retried_thing])) == ["ops/new_thing (ops): None"]
