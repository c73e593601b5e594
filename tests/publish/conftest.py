"""Publish tests: a Grafana to publish to (the in-repo fake, or a real one with the opt-in
``grafana_real`` marker and GRAFANA_URL), and the session stack with marts built for days of
this folder's own (today-85..today-82: far from the other modules' days, inside the raw TTL)."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from dagster import DagsterInstance, materialize
from fake_grafana import FakeGrafana  # beside the tests: pytest puts this folder on sys.path (no __init__.py)

from platform_assets.publish.client import GrafanaClient
from platform_assets.publish.macros import TimeRange
from platform_assets.synthetic.raw_columns import PRODUCT_EVENT_FIELDS

TODAY = datetime.now(UTC).date()
DAYS = [TODAY - timedelta(days=85 - i) for i in range(4)]
WORKSPACES = ["ws_graf_1", "ws_graf_2"]


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.grafana_real)])
def grafana_target(request) -> Iterator[dict[str, Any]]:
    """{"url", "token", "fake"}: the fake on a free port, or GRAFANA_URL (+ GRAFANA_API_TOKEN)."""
    if request.param == "real":
        if not os.environ.get("GRAFANA_URL"):
            pytest.skip("grafana_real: set GRAFANA_URL (and GRAFANA_API_TOKEN) to run against a real Grafana")
        yield {"url": os.environ["GRAFANA_URL"], "token": os.environ.get("GRAFANA_API_TOKEN"), "fake": None}
        return
    fake = FakeGrafana().start()
    try:
        yield {"url": fake.url, "token": fake.token, "fake": fake}
    finally:
        fake.stop()


@pytest.fixture
def grafana_client(grafana_target) -> Iterator[GrafanaClient]:
    with GrafanaClient(grafana_target["url"], grafana_target["token"]) as client:
        yield client


def product_rows(day: date, rng: random.Random) -> list[list[Any]]:
    """Sessions with a signup funnel and feature use, in two workspaces."""
    rows: list[list[Any]] = []
    for n in range(40):
        ws, actor = WORKSPACES[n % 2], f"{rng.getrandbits(64):016x}graf{n:012d}"
        t = datetime.combine(day, time(rng.randrange(20)), tzinfo=UTC) + timedelta(seconds=rng.randrange(3000))
        steps = [("page_view", '{"path": "/signup"}'), ("signup_submitted", "{}"), ("signup_completed", "{}")]
        steps = [*steps[: 1 + rng.randrange(3)], ("feature_used", '{"feature": "reports"}')]
        for i, (event_type, props) in enumerate(steps):
            rows.append([uuid.UUID(int=rng.getrandbits(128), version=4), event_type, t + timedelta(minutes=2 * i),
                         ws, f"graf-{day:%Y%m%d}-{n}", actor, "web", "{}", props])  # fmt: skip
    return rows


@pytest.fixture(scope="session")
def publish_marts(stack, clickhouse, postgres, kafka, cdc, dbt) -> TimeRange:
    """Schema, CDC replica, agent history and product events on DAYS, every mart built for them.
    Returns the time range that covers DAYS."""
    from platform_assets.cdc.assets import app_schema, build_replica_asset, source_replication
    from platform_assets.cdc.resources import configured_tables
    from platform_assets.ingest.assets import kafka_topics
    from platform_assets.ops.assets import clickhouse_schema
    from platform_assets.synthetic.history_agents import load_agent_history

    res = {"clickhouse": clickhouse, "postgres": postgres, "kafka": kafka, "cdc": cdc}
    assets = [kafka_topics, clickhouse_schema, app_schema, source_replication, build_replica_asset(configured_tables())]
    assert materialize(assets, resources=res, instance=DagsterInstance.ephemeral()).success
    load_agent_history(clickhouse, DAYS[0], len(DAYS), seed=8_500, user_hash_key=os.environ["USER_HASH_KEY"])
    rng = random.Random(85)
    with clickhouse.client() as ch:
        ch.command(
            "DELETE FROM raw.product_events WHERE startsWith(session_id, 'graf-')", settings={"mutations_sync": 2}
        )
        ch.insert(
            "raw.product_events", [r for d in DAYS for r in product_rows(d, rng)], column_names=PRODUCT_EVENT_FIELDS
        )
    window = {"min_date": DAYS[0].isoformat(), "max_date": (DAYS[-1] + timedelta(days=1)).isoformat()}
    dbt("seed")
    dbt("run", "--select", "+path:models/marts", vars=window)
    start = datetime.combine(DAYS[0], time(), tzinfo=UTC)
    return TimeRange(start, datetime.combine(DAYS[-1], time(23, 59, 59), tzinfo=UTC))
