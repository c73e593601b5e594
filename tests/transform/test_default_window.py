"""A dbt run without vars is an incremental run of the recent days; only --full-refresh rebuilds history.

The module writes its own workspace on its own old day (no other test writes or asserts on
it) and on yesterday, inside the default window (var recent_days, in dbt_project.yml).
"""

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import yaml

from platform_assets.core.paths import dbt_dir

pytestmark = pytest.mark.integration

MODELS = ["stg_kafka__product_events", "stg_app__events", "fct_product_events"]  # the view: a whole-table node
TABLES = ["staging.stg_kafka__product_events", "marts.fct_product_events"]
OLD_DAYS_BACK = 45  # this module's day: between the transform tests' days (raw TTL: 90 days)
COLUMNS = ["event_id", "event_type", "occurred_at", "workspace_id", "session_id", "actor_id", "source", "context"]


def recent_days() -> int:
    return int(yaml.safe_load((dbt_dir() / "dbt_project.yml").read_text())["vars"]["recent_days"])


def today() -> date:
    return datetime.now(UTC).date()


@pytest.fixture(scope="module")
def workspace(platform_ready, clickhouse) -> Iterator[str]:
    ws = f"ws_window_{uuid.uuid4().hex[:8]}"
    yield ws
    with clickhouse.client() as ch:
        for table in ["raw.product_events", *TABLES]:
            if ch.command(f"EXISTS TABLE {table}"):
                ch.command(f"ALTER TABLE {table} DELETE WHERE workspace_id = '{ws}' SETTINGS mutations_sync = 2")


def add_event(ch: Any, ws: str, day: date) -> None:
    at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    ch.insert("raw.product_events", [[uuid.uuid4(), "page_view", at, ws, "s1", "", "web", "{}"]], column_names=COLUMNS)


def counts(ch: Any, ws: str) -> dict[str, dict[date, int]]:
    """table -> day -> rows of the workspace."""
    out: dict[str, dict[date, int]] = {}
    for table in TABLES:
        rows = ch.query(
            f"SELECT event_date, count() FROM {table} WHERE workspace_id = {{ws:String}} GROUP BY 1", {"ws": ws}
        )
        out[table] = dict(rows.result_rows)
    return out


def parts(ch: Any, day: date) -> dict[str, list[str]]:
    """table -> the active parts of the day's partition."""
    out = {}
    for table in TABLES:
        db, name = table.split(".")
        out[table] = ch.query(
            "SELECT name FROM system.parts WHERE database = {db:String} AND table = {t:String} AND active "
            "AND partition_id = {p:String} ORDER BY name",
            {"db": db, "t": name, "p": day.strftime("%Y%m%d")},
        ).result_columns[0]
    return out


def test_run_without_vars_rebuilds_only_recent_days(workspace, clickhouse, dbt, dbt_window):
    old, recent = today() - timedelta(days=OLD_DAYS_BACK), today() - timedelta(days=1)
    with clickhouse.client() as ch:
        add_event(ch, workspace, old)
        add_event(ch, workspace, recent)
    for day in (old, recent):  # as a Dagster partition run would: explicit windows
        dbt("run", "--select", *MODELS, vars=dbt_window(day, day))
    with clickhouse.client() as ch:
        assert counts(ch, workspace) == {t: {old: 1, recent: 1} for t in TABLES}
        old_parts = parts(ch, old)
        assert all(old_parts.values()), old_parts
        # A late event for each day; the plain run below picks up only the recent one.
        add_event(ch, workspace, old)
        add_event(ch, workspace, recent)
        time.sleep(1.1)  # parts' modification_time has whole seconds: none of the above at `started`
        started = ch.command("SELECT now()")

    dbt("run", "--select", *MODELS)  # no vars

    first = today() - timedelta(days=recent_days() - 1)
    with clickhouse.client() as ch:
        assert counts(ch, workspace) == {t: {old: 1, recent: 2} for t in TABLES}
        assert parts(ch, old) == old_parts, "the old day's partition was rewritten"
        for table in TABLES:
            db, name = table.split(".")
            rewritten = ch.query(
                "SELECT DISTINCT partition_id FROM system.parts WHERE database = {db:String} AND table = {t:String} "
                "AND active AND modification_time >= {at:DateTime} ORDER BY 1",
                {"db": db, "t": name, "at": started},
            ).result_columns[0]
            assert recent.strftime("%Y%m%d") in rewritten, (table, rewritten)
            assert min(rewritten) >= first.strftime("%Y%m%d"), f"{table}: days before the window rewritten: {rewritten}"


def test_window_bounds_without_vars(dbt):
    """The compiled SQL: recent days by default (the var can widen it), all history with --full-refresh."""
    bound = "toDate(event_date) >= toDate('{}')"
    plain = dbt("compile", "--select", "fct_product_events").stdout
    assert bound.format(today() - timedelta(days=recent_days() - 1)) in plain, plain[-2000:]
    assert "toDate(event_date) <" not in plain  # the upper side stays open
    wider = dbt("compile", "--select", "fct_product_events", vars={"recent_days": "7"}).stdout
    assert bound.format(today() - timedelta(days=6)) in wider, wider[-2000:]
    full = dbt("compile", "--select", "fct_product_events", "--full-refresh").stdout
    assert "SELECT" in full and "toDate(event_date) >=" not in full, full[-2000:]
