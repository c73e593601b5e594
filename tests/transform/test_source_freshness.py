"""dbt source freshness as Dagster asset checks on the source assets, on the real stack.

For the length of a test, the Kafka raw tables are swapped (EXCHANGE TABLES) for scratch
copies holding known rows, so the verdicts do not depend on what other tests wrote and
nothing is left behind: one row loaded now (pass), one loaded 2 hours ago (warn: warn_after
1 hour), no rows (dbt says error; a WARN check: never fed is not stalled), one loaded 2 days ago
(error: error_after 1 day). The CDC side (pg_repl/users) is read as it is.
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckSeverity,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    Definitions,
    define_asset_job,
)

from platform_assets.core.keys import raw_key, table_key
from platform_assets.transform.checks import CHECK_NAME, dbt_source_freshness
from platform_assets.transform.resources import build_dbt_resource

pytestmark = pytest.mark.integration

SCRATCH_DB = "freshness_test"
PRODUCT_COLUMNS = ["event_id", "event_type", "occurred_at", "workspace_id"]
SPAN_COLUMNS = ["trace_id", "span_id", "start_time", "end_time", "ingested_at"]


@contextmanager
def swapped(ch: Any, table: str, rows: list[list], columns: list[str]) -> Iterator[None]:
    """raw.<table> holds exactly `rows` inside the block; the real table is back afterwards."""
    scratch = f"{SCRATCH_DB}.{table}"
    ch.command(f"CREATE DATABASE IF NOT EXISTS {SCRATCH_DB}")
    ch.command(f"DROP TABLE IF EXISTS {scratch}")
    ch.command(f"CREATE TABLE {scratch} AS raw.{table}")
    if rows:
        ch.insert(scratch, rows, column_names=columns)
    ch.command(f"EXCHANGE TABLES raw.{table} AND {scratch}")
    try:
        yield
    finally:
        ch.command(f"EXCHANGE TABLES raw.{table} AND {scratch}")
        ch.command(f"DROP TABLE {scratch}")


def run_checks(keys: list[AssetKey]) -> dict[AssetKey, AssetCheckEvaluation]:
    """Executes the freshness check of each key (a subset of the multi-check) in one run."""
    selection = AssetSelection.checks(*(AssetCheckKey(k, CHECK_NAME) for k in keys))
    job = define_asset_job("source_freshness_test", selection=selection)
    defs = Definitions(asset_checks=[dbt_source_freshness], jobs=[job], resources={"dbt": build_dbt_resource()})
    result = defs.resolve_job_def(job.name).execute_in_process(
        instance=DagsterInstance.ephemeral(), raise_on_error=False
    )
    assert result.success, "a stale source (warn or error) must not fail the run"
    evaluations = result.get_asset_check_evaluations()
    assert sorted(e.check_name for e in evaluations) == [CHECK_NAME] * len(keys)
    return {e.asset_key: e for e in evaluations}


def md(evaluation: AssetCheckEvaluation, name: str) -> Any:
    return evaluation.metadata[name].value


def test_fresh_source_passes_stale_ones_warn_or_error(platform_ready, clickhouse):
    now = datetime.now(UTC)
    fresh = [[uuid.uuid4(), "page_view", now, "ws_freshness"]]  # ingested_at: now64(3), the default
    two_hours_old = [[uuid.uuid4().hex, uuid.uuid4().hex[:16], now, now, now - timedelta(hours=2)]]
    keys = [raw_key("product_events"), raw_key("spans"), raw_key("agent_events"), table_key("users")]
    with (
        clickhouse.client() as ch,
        swapped(ch, "product_events", fresh, PRODUCT_COLUMNS),
        swapped(ch, "spans", two_hours_old, SPAN_COLUMNS),
        swapped(ch, "agent_events", [], []),
    ):
        got = run_checks(keys)

    product = got[raw_key("product_events")]
    assert product.passed, product.description
    assert md(product, "status") == "pass" and md(product, "dbt_source") == "kafka.product_events"
    assert 0 <= md(product, "max_loaded_at_age_s") < 600

    spans = got[raw_key("spans")]
    assert not spans.passed and spans.severity == AssetCheckSeverity.WARN
    assert md(spans, "status") == "warn"
    assert 7200 - 60 <= md(spans, "max_loaded_at_age_s") < 7200 + 600
    assert spans.description.startswith("kafka.spans: warn: newest row loaded 2 h")
    assert md(spans, "warn_after") == "1 hour" and md(spans, "error_after") == "1 day"

    agents = got[raw_key("agent_events")]
    assert not agents.passed and agents.severity == AssetCheckSeverity.WARN  # empty: never fed, not stalled
    assert md(agents, "status") == "error"
    assert agents.description.startswith("kafka.agent_events: error: no rows yet")

    # CDC: the replica's updated_at, whatever the other tests left there; a verdict with its age.
    users = got[table_key("users")]
    assert md(users, "status") in ("pass", "warn", "error"), users.description
    assert md(users, "loaded_at_field") == "toDateTime(updated_at)"
    assert md(users, "max_loaded_at_age_s") >= 0
    assert users.passed == (md(users, "status") == "pass")

    with clickhouse.client() as ch:  # the real tables are back
        assert ch.command("SELECT count() FROM system.tables WHERE database = {db:String}", {"db": SCRATCH_DB}) == 0
        assert ch.command("SELECT count() FROM raw.product_events WHERE workspace_id = 'ws_freshness'") == 0


def test_source_past_error_after_is_an_error(platform_ready, clickhouse):
    now = datetime.now(UTC)
    two_days_old = [[uuid.uuid4(), "llm_call", now, "ws_freshness", now - timedelta(days=2)]]
    with clickhouse.client() as ch, swapped(ch, "agent_events", two_days_old, [*PRODUCT_COLUMNS, "ingested_at"]):
        got = run_checks([raw_key("agent_events")])
    agents = got[raw_key("agent_events")]
    assert not agents.passed and agents.severity == AssetCheckSeverity.ERROR, agents.description
    assert md(agents, "status") == "error"
    assert 2 * 86400 - 60 <= md(agents, "max_loaded_at_age_s") < 2 * 86400 + 600
    assert agents.description.startswith("kafka.agent_events: error: newest row loaded 2 days")
