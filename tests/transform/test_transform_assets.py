"""The dbt models through Dagster: partitions, single-run backfills, cost metadata, blocking
checks and the schedules, on the real servers of the session stack."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    SkipReason,
    build_schedule_context,
    instance_for_test,
    materialize,
)

from platform_assets.synthetic.raw_columns import LLM_CALL_FIELDS, PRODUCT_EVENT_FIELDS
from platform_assets.transform.assets import dbt_models
from platform_assets.transform.jobs import transform_daily_job, transform_previous_day
from platform_assets.transform.resources import build_dbt_resource

pytestmark = pytest.mark.e2e

# Days of their own, before the history other transform tests load (they never overlap).
TODAY = datetime.now(UTC).date()
WEEK = [TODAY - timedelta(days=70 - i) for i in range(7)]
BAD_DAY = TODAY - timedelta(days=50)


@pytest.fixture(scope="module")
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture(scope="module")
def res(platform_ready):
    return {**platform_ready, "dbt": build_dbt_resource()}


def product_rows(day: date, n: int, rng: random.Random) -> list[list]:
    rows = []
    for _ in range(n):
        at = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=rng.randrange(86_400))
        rows.append(
            [
                uuid.UUID(int=rng.getrandbits(128), version=4),
                rng.choice(["page_view", "feature_used", "session_start"]),
                at,
                rng.choice(["ws_a", "ws_b"]),
                f"s-{rng.randrange(20)}",
                f"{rng.randrange(50):032x}",
                "web",
                "{}",
                '{"path": "/pricing"}',
            ]
        )
    return rows


def llm_rows(day: date, n: int, rng: random.Random) -> list[list]:
    rows = []
    for _ in range(n):
        at = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=rng.randrange(86_400))
        rows.append(
            [
                uuid.UUID(int=rng.getrandbits(128), version=4),
                "llm_call",
                at,
                rng.choice(["ws_a", "ws_b"]),
                "s",
                f"{rng.randrange(80):032x}",  # overlaps the product users 0..49
                "sdk",
                "{}",
                "gpt-4o",
                "openai",
                rng.randrange(100, 2000),
                rng.randrange(10, 500),
                float(rng.randrange(50, 3000)),
                1,
                rng.randrange(1, 10_000) / 1e5,
            ]
        )
    return rows


@pytest.fixture(scope="module")
def week_data(platform_ready):
    rng = random.Random(7)
    rows = [r for day in WEEK for r in product_rows(day, 300, rng)]
    rows += rows[:25]  # redelivered copies: staging removes them
    llm = [r for day in WEEK for r in llm_rows(day, 100, rng)]
    with platform_ready["clickhouse"].client() as ch:
        ch.insert("raw.product_events", rows, column_names=PRODUCT_EVENT_FIELDS)
        ch.insert("raw.agent_events", llm, column_names=LLM_CALL_FIELDS)
    return {"product": rows, "llm": llm}


def expected_cost_per_active_user(data) -> dict[tuple[date, str], tuple]:
    """(day, workspace) -> (llm_calls, llm_cost_usd, active_users, cost per active user, cost of active users)."""
    active: dict[tuple[date, str], set[str]] = {}
    for r in data["product"]:
        active.setdefault((r[2].date(), r[3]), set()).add(r[5])
    calls: dict[tuple[date, str], list[tuple[str, float]]] = {}
    for r in data["llm"]:
        calls.setdefault((r[2].date(), r[3]), []).append((r[5], r[14]))
    out = {}
    for key in set(active) | set(calls):
        users, made = active.get(key, set()), calls.get(key, [])
        cost = sum(c for _, c in made)
        out[key] = (
            len(made),
            cost,
            len(users),
            cost / len(users) if users else None,
            sum(c for u, c in made if u in users),
        )
    return out


def partition_snapshot(clickhouse, first: date, last: date) -> dict[str, list[tuple]]:
    """Every row of every day-partitioned dbt table in [first, last], sorted."""
    lo, hi = first.strftime("%Y%m%d"), last.strftime("%Y%m%d")
    with clickhouse.client() as ch:
        tables = ch.query(
            "SELECT database, name FROM system.tables WHERE database IN ('staging', 'marts') "
            "AND engine LIKE '%MergeTree' AND partition_key != '' AND NOT endsWith(name, '__window') "
            "ORDER BY database, name"
        ).result_rows
        return {
            f"{db}.{name}": ch.query(
                f"SELECT * FROM `{db}`.`{name}` WHERE _partition_id BETWEEN '{lo}' AND '{hi}' ORDER BY tuple(*)"
            ).result_rows
            for db, name in tables
        }


def materialize_range(res, instance, first: date, last: date, **kwargs):
    return materialize(
        [dbt_models],
        resources=res,
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
        **kwargs,
    )


def test_week_backfill_is_one_run_and_twice_gives_identical_marts(week_data, res, instance, clickhouse):
    first = materialize_range(res, instance, WEEK[0], WEEK[-1])
    assert first.success
    key = AssetKey(["staging", "stg_kafka__product_events"])
    mats = [e for e in first.get_asset_materialization_events() if e.asset_key == key]
    # One dbt run for the whole range; Dagster records every day of it as materialized.
    assert sorted(e.partition for e in mats) == [d.isoformat() for d in WEEK]
    md = mats[0].materialization.metadata
    assert md["dbt/min_date"].value == WEEK[0].isoformat()
    assert md["dbt/max_date"].value == (WEEK[-1] + timedelta(days=1)).isoformat()
    # ClickHouse cost of the model, from system.query_log through dbt's query comments: one
    # observation per model once dbt has ended (the materializations were not held back for it).
    (cost_event,) = [e for e in first.get_asset_observation_events() if e.asset_key == key]
    cost = cost_event.asset_observation_data.asset_observation.metadata
    assert cost["clickhouse/read_rows"].value >= len(week_data["product"])
    assert cost["clickhouse/written_rows"].value == len(week_data["product"]) - 25
    assert cost["clickhouse/duration_ms"].value >= 0 and cost["clickhouse/peak_memory_bytes"].value > 0
    assert cost["dbt/min_date"].value == WEEK[0].isoformat()
    kinds = [e.event_type_value for e in first.all_events]
    last_built = max(i for i, k in enumerate(kinds) if k == "ASSET_MATERIALIZATION")
    assert kinds.index("ASSET_OBSERVATION") > last_built  # the costs follow, once dbt has ended
    before = partition_snapshot(clickhouse, WEEK[0], WEEK[-1])
    assert len(before["staging.stg_kafka__product_events"]) == 7 * 300
    assert len(before["marts.fct_product_events"]) == 7 * 300

    assert materialize_range(res, instance, WEEK[0], WEEK[-1]).success
    assert partition_snapshot(clickhouse, WEEK[0], WEEK[-1]) == before

    # The cross-domain mart: LLM spend beside product activity, per day and workspace.
    with clickhouse.client() as ch:
        got = {
            (r[0], r[1]): r[2:]
            for r in ch.query(
                "SELECT day, workspace_id, llm_calls, llm_cost_usd, active_users, llm_cost_per_active_user_usd, "
                "cost_of_active_users_usd FROM marts.mart_llm_cost_per_active_user_daily "
                f"WHERE day BETWEEN '{WEEK[0]}' AND '{WEEK[-1]}'"
            ).result_rows
        }
    expected = expected_cost_per_active_user(week_data)
    assert set(got) == set(expected)
    for key, (calls, cost, users, per_user, of_active) in expected.items():
        g = got[key]
        assert (g[0], g[2]) == (calls, users), key
        assert g[1] == pytest.approx(cost, rel=1e-9) and g[4] == pytest.approx(of_active, rel=1e-9, abs=1e-12)
        assert g[3] == pytest.approx(per_user, rel=1e-9), key


def test_rerun_of_one_day_replaces_only_that_day(week_data, res, instance, clickhouse):
    day = WEEK[3]
    with clickhouse.client() as ch:
        ch.command(
            f"ALTER TABLE raw.product_events DELETE WHERE toDate(occurred_at) = '{day}' "
            "AND workspace_id = 'ws_a' SETTINGS mutations_sync = 2"
        )
        expected_day = ch.query(
            f"SELECT uniqExact(event_id) FROM raw.product_events WHERE toDate(occurred_at) = '{day}'"
        ).result_rows[0][0]
    others = partition_snapshot(clickhouse, WEEK[0], WEEK[2])
    result = materialize([dbt_models], resources=res, instance=instance, partition_key=day.isoformat())
    assert result.success
    with clickhouse.client() as ch:
        got = ch.query(f"SELECT count() FROM staging.stg_kafka__product_events WHERE event_date = '{day}'").result_rows[
            0
        ][0]
    assert got == expected_day < 300
    assert partition_snapshot(clickhouse, WEEK[0], WEEK[2]) == others


def test_failing_error_test_blocks_everything_downstream(platform_ready, res, instance, clickhouse):
    from platform_assets.definitions import defs

    bad_id = uuid.uuid4()
    at = datetime(BAD_DAY.year, BAD_DAY.month, BAD_DAY.day, 12, tzinfo=UTC)
    with clickhouse.client() as ch:
        ch.insert(
            "raw.agent_events",
            [[bad_id, "not_a_type", at, "ws_bad", "s", "", "sdk", "{}"]],
            column_names=["event_id", "event_type", "occurred_at", "workspace_id", "session_id", "actor_id", "source",
                          "context"],
        )  # fmt: skip
    staged = AssetKey(["staging", "stg_kafka__agent_events"])
    graph = defs.get_repository_def().asset_graph
    downstream = graph.get(staged).child_keys
    result = materialize(
        [dbt_models], resources=res, instance=instance, partition_key=BAD_DAY.isoformat(), raise_on_error=False
    )
    assert not result.success
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert any(e.asset_key == staged and "accepted_values" in e.check_name for e in failed), failed
    built = {e.asset_key for e in result.get_asset_materialization_events()}
    assert staged in built  # the model itself was written, then its test failed
    assert not (downstream & built), f"built despite a failing upstream test: {downstream & built}"

    with clickhouse.client() as ch:
        ch.command(f"ALTER TABLE raw.agent_events DELETE WHERE event_id = '{bad_id}' SETTINGS mutations_sync = 2")
    again = materialize([dbt_models], resources=res, instance=instance, partition_key=BAD_DAY.isoformat())
    assert again.success
    assert downstream <= {e.asset_key for e in again.get_asset_materialization_events()}


def test_previous_day_schedule_targets_yesterday_and_skips_while_busy():
    at = datetime(2026, 11, 20, 0, 30, tzinfo=UTC)
    with instance_for_test() as inst:  # schedules read the instance through a reference
        request = transform_previous_day(build_schedule_context(instance=inst, scheduled_execution_time=at))
        assert request.partition_key == "2026-11-19"
        run = inst.add_run(
            DagsterRun(job_name=transform_daily_job.name, run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED)
        )
        skip = transform_previous_day(build_schedule_context(instance=inst, scheduled_execution_time=at))
        assert isinstance(skip, SkipReason)
        assert run.run_id in skip.skip_message and "STARTED" in skip.skip_message
